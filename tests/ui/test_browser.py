"""The app in headless Debian chromium (Playwright): what a person sees and clicks.

Scripted backends make most of these deterministic; one test runs the real default model
through the in-process ONNX backend and is skipped, with the reason, when it is not prepared.
Screenshots of every tab go to /tmp/shots/ for a look by eye.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.scripted import ScriptedBackend, ScriptedReply
from runtime.panel_fields import field_named, panel_fields
from runtime.registry import BackendRegistry
from runtime.settings import Settings
from tests.support.browser import page_in
from tests.ui.conftest import running_app

pytestmark = pytest.mark.browser
playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")

SHOTS = Path("/tmp/shots")
MATH_ANSWER = [
    "Speed: $240/3 = 80$ km/h.\n\n",
    "New speed: $80 + 20 = 100$ km/h.\n\n",
    "$$t = \\frac{240}{100} = 2.4$$\n\n",
    "Final answer: 2.4",
]


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    page = page_in(browser, 1400, 1000)
    yield page
    page.context.close()


def open_tab(page: object, url: str, tab: str) -> None:
    page.goto(url)  # type: ignore[attr-defined]
    page.get_by_role("tab", name=tab).click()  # type: ignore[attr-defined]


def chat_text(page: object, tab: str) -> str:
    return page.locator(f"#chat-{tab}").inner_text()  # type: ignore[attr-defined]


def settled(text: str) -> str:
    """A chat's text without Gradio's transient loading mark."""
    return "\n".join(line for line in text.splitlines() if line.strip() != "Loading content").strip()


def wait_for_text(page: object, tab: str, needle: str, timeout_s: float = 20.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = chat_text(page, tab)
        if needle in text:
            return text
        time.sleep(0.05)
    raise AssertionError(f"{needle!r} did not appear in the {tab} chat; it shows:\n{chat_text(page, tab)}")


def test_math_example_streams_an_answer_and_its_metrics(page: object) -> None:
    backend = ScriptedBackend(label="onnx", delay_s=0.25, replies=[ScriptedReply(chunks=MATH_ANSWER)])
    with running_app(backend) as url:
        open_tab(page, url, "Math")
        page.locator("#examples-math").get_by_text("A train travels 240 km").click()  # type: ignore[attr-defined]
        partial = wait_for_text(page, "math", "Speed:")
        assert "Final answer" not in partial  # seen mid-stream
        final = wait_for_text(page, "math", "TTFT")
        assert "Final answer: 2.4" in final
        assert "onnx · scripted-model" in final
        assert "tok/s" in final
        assert page.locator("#chat-math .katex").count() >= 2  # type: ignore[attr-defined]
        verified = wait_for_text(page, "math", "Verification:", timeout_s=30)
        assert "Verification: correct" in verified  # 2.4 against the example's reference
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / "math-answer.png"), full_page=True)  # type: ignore[attr-defined]
    assert "240 km" in backend.requests[0].messages[-1].content


def test_stop_halts_the_stream_and_keeps_the_partial_answer(page: object) -> None:
    backend = ScriptedBackend(
        label="onnx", delay_s=0.1, replies=[ScriptedReply(chunks=[f"w{i} " for i in range(200)])]
    )
    with running_app(backend) as url:
        open_tab(page, url, "Reasoning")
        page.locator("#prompt-reasoning textarea").fill("Count for me")  # type: ignore[attr-defined]
        page.locator("#send-reasoning").click()  # type: ignore[attr-defined]
        wait_for_text(page, "reasoning", "w5 ")
        page.locator("#stop-reasoning").click()  # type: ignore[attr-defined]
        stopped = wait_for_text(page, "reasoning", "Stopped")
        time.sleep(1.0)
        after = chat_text(page, "reasoning")
        # nothing more arrived (Gradio's own "Loading content" mark may still be up at the stop
        # note while the chat is saved in the browser; it is not part of the conversation)
        assert settled(after) == settled(stopped)
        assert "w199" not in after
        assert "TTFT" not in after
        deadline = time.monotonic() + 5
        while backend.cancelled == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert backend.cancelled == 1  # the backend's stream was closed, not left running


def test_share_link_restores_tab_preset_settings_backend_and_prompt(page: object) -> None:
    with running_app(ScriptedBackend(label="onnx"), ScriptedBackend(label="remote")) as url:
        open_tab(page, url, "Coding")
        page.locator("#prompt-coding textarea").fill("Write a GCD function in Rust")  # type: ignore[attr-defined]
        page.locator("#temperature-coding input[type=number]").fill("0.65")  # type: ignore[attr-defined]
        page.locator("#temperature-coding input[type=number]").press("Enter")  # type: ignore[attr-defined]
        page.locator("#backend-coding input").click()  # type: ignore[attr-defined]
        page.get_by_role("option", name="remote").click()  # type: ignore[attr-defined]
        page.locator("#share-panel-coding").get_by_text("Share and presets").click()  # type: ignore[attr-defined]
        page.locator("#share-coding").click()  # type: ignore[attr-defined]
        link_box = page.locator("#share-url-coding textarea")  # type: ignore[attr-defined]
        deadline = time.monotonic() + 10
        while not link_box.input_value().startswith("http") and time.monotonic() < deadline:
            time.sleep(0.05)
        link = link_box.input_value()
        assert "tab=coding" in link
        assert "temperature=0.65" in link

        fresh = page.context.new_page()  # type: ignore[attr-defined]
        fresh.goto(link)
        prompt = fresh.locator("#prompt-coding textarea")
        deadline = time.monotonic() + 10
        while prompt.input_value() != "Write a GCD function in Rust" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert prompt.input_value() == "Write a GCD function in Rust"
        assert fresh.get_by_role("tab", name="Coding").get_attribute("aria-selected") == "true"
        assert fresh.locator("#temperature-coding input[type=number]").input_value() == "0.65"
        assert fresh.locator("#backend-coding input").input_value() == "remote"
        assert fresh.locator("#preset-coding input").input_value() == "coding"
        assert "Restored from a share link" in fresh.locator("#status-coding").inner_text()


# A value other than the coding preset's for every chat-panel field, as typed in the browser.
EVERY_SETTING = {
    "system_prompt": "Answer in Rust only.",
    "temperature": "0.35",
    "top_p": "0.8",
    "top_k": "12",
    "max_new_tokens": "256",
    "seed": "42",
    "tools": True,
    "json_output": True,
    "json_schema": '{"type": "object"}',
}


def _fill(page: object, name: str, value: object) -> None:
    elem = "#" + field_named(name).elem + "-coding"
    if isinstance(value, bool):
        page.locator(f"{elem} input").check()  # type: ignore[attr-defined]
    elif field_named(name).control.component == "textbox":
        page.locator(f"{elem} textarea").fill(str(value))  # type: ignore[attr-defined]
    else:
        box = page.locator(f"{elem} input[type=number]")  # type: ignore[attr-defined]
        box.fill(str(value))
        box.press("Enter")


def _shown(page: object, name: str) -> object:
    elem = "#" + field_named(name).elem + "-coding"
    if field_named(name).kind == "bool":
        return page.locator(f"{elem} input").is_checked()  # type: ignore[attr-defined]
    if field_named(name).control.component == "textbox":
        return page.locator(f"{elem} textarea").input_value()  # type: ignore[attr-defined]
    return page.locator(f"{elem} input[type=number]").input_value()  # type: ignore[attr-defined]


def test_a_share_link_restores_every_chat_setting(page: object) -> None:
    assert set(EVERY_SETTING) == {f.name for f in panel_fields()}  # a new field belongs here too
    with running_app(ScriptedBackend(label="onnx")) as url:
        open_tab(page, url, "Coding")
        for name, value in EVERY_SETTING.items():
            _fill(page, name, value)
        page.locator("#share-panel-coding").get_by_text("Share and presets").click()  # type: ignore[attr-defined]
        page.locator("#share-coding").click()  # type: ignore[attr-defined]
        link_box = page.locator("#share-url-coding textarea")  # type: ignore[attr-defined]
        deadline = time.monotonic() + 10
        while not link_box.input_value().startswith("http") and time.monotonic() < deadline:
            time.sleep(0.05)
        fresh = page.context.new_page()  # type: ignore[attr-defined]
        fresh.goto(link_box.input_value())
        fresh.locator("#status-coding").get_by_text("Restored from a share link").wait_for()
        for name, value in EVERY_SETTING.items():
            if name == "json_schema":  # the same schema, laid out again
                assert json.loads(str(_shown(fresh, name))) == json.loads(str(value))
            else:
                assert _shown(fresh, name) == value, name


def test_importing_a_broken_preset_shows_an_error_and_keeps_settings(page: object, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"name": "oops", "options": {"temperature": 7}}))
    with running_app(ScriptedBackend(label="onnx")) as url:
        open_tab(page, url, "Math")
        page.locator("#share-panel-math").get_by_text("Share and presets").click()  # type: ignore[attr-defined]
        with page.expect_file_chooser() as chooser:  # type: ignore[attr-defined]
            page.locator("#import-math").click()  # type: ignore[attr-defined]
        chooser.value.set_files(str(broken))
        text = wait_for_text(page, "math", "Preset not imported")
        assert "options.temperature" in text
        assert page.locator("#temperature-math input[type=number]").input_value() == "0.3"  # type: ignore[attr-defined]


def test_screenshots_of_every_tab(page: object) -> None:
    SHOTS.mkdir(exist_ok=True)
    backend = ScriptedBackend(label="onnx", replies=[ScriptedReply(chunks=MATH_ANSWER)])
    with running_app(backend, ScriptedBackend(label="remote")) as url:
        page.goto(url)  # type: ignore[attr-defined]
        page.get_by_role("tab", name="Reasoning").wait_for()  # type: ignore[attr-defined]
        tabs = [t.inner_text() for t in page.get_by_role("tab").all()]  # type: ignore[attr-defined]
        assert {"Reasoning", "Coding", "Math", "Backends"} <= set(tabs)
        for tab in tabs:
            page.get_by_role("tab", name=tab).click()  # type: ignore[attr-defined]
            time.sleep(0.5)
            path = SHOTS / f"{tab.lower()}.png"
            page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
            assert path.stat().st_size > 10_000


def _real_registry() -> BackendRegistry:
    try:
        from engines.onnx_engine import OnnxBackend
        from models.model_store import resolve_model_dir

        model_dir = resolve_model_dir("")
    except Exception as exc:
        pytest.skip(
            f"the default ONNX model is not available here ({type(exc).__name__}: {exc}); "
            "run `slm-playground model prepare`"
        )
    settings = Settings()
    return BackendRegistry(settings, in_process=lambda: OnnxBackend("onnx", model_dir))


@pytest.mark.model
@pytest.mark.slow
def test_real_default_model_answers_a_math_example(page: object) -> None:
    registry = _real_registry()
    page.set_default_timeout(120_000)  # type: ignore[attr-defined]  # the model loads on first use
    with running_app(registry=registry) as url:
        open_tab(page, url, "Math")
        page.locator("#examples-math").get_by_text("A train travels 240 km").click()  # type: ignore[attr-defined]
        try:
            final = wait_for_text(page, "math", "TTFT", timeout_s=240)
        finally:
            page.screenshot(path=str(SHOTS / "math-real-model.png"), full_page=True)  # type: ignore[attr-defined]
        assert "onnx ·" in final
        assert "completion tokens" in final
