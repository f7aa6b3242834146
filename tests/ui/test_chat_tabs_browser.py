"""Every chat tab in headless chromium, against a fixed-answer OpenAI-compatible server (the vLLM
stand-in): Enter sends, the answer shows as written (arithmetic, prices, and still bold and
math), and after a reload the chat is back, open, and in the tab's list (#21).

Screenshot of the Math tab after the reload: /tmp/shots/math-after-reload.png.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.openai_compat import OpenAICompatBackend
from tests.remote.standin_http import Script
from tests.remote.vllm_standin import VLLMStandIn, start_vllm
from tests.support.browser import page_in
from tests.ui.conftest import running_app
from tests.ui.test_browser import chat_text, wait_for_text

pytestmark = pytest.mark.browser
playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")

SHOTS = Path("/tmp/shots")
MODEL = "microsoft/Phi-4-mini-instruct"
ANSWER = [
    "Step one: 6*6*6 = 216 and 2*3*4 = 24.\n\n",
    "Pens: $3 each, so 4 pens cost $12.\n\n",
    "So **216** it is, with $x^2$ as math.",
]
ARITHMETIC, PRICES = "6*6*6 = 216 and 2*3*4 = 24", "$3 each, so 4 pens cost $12"


@pytest.fixture(scope="module")
def fixed_server() -> Iterator[VLLMStandIn]:
    state, server = start_vllm()
    yield state
    server.stop()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    page = page_in(
        browser, 1400, 1000, timeout_ms=90_000
    )  # a tab mounts on its first click: slow on 2 busy cores
    yield page
    page.context.close()


def wait_until(check, what: str, timeout_s: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def stored(page: object, tab: str) -> str | None:
    return page.evaluate(f"() => localStorage.getItem('slm-playground-chats-{tab}')")  # type: ignore[attr-defined]


def send_and_wait_for_the_save(page: object, tab: str, question: str) -> str:
    """Enter in the tab's prompt box; returns the chat's text once the turn is saved."""
    before = stored(page, tab)
    box = page.locator(f"#prompt-{tab} textarea")  # type: ignore[attr-defined]
    box.fill(question)
    box.press("Enter")
    wait_for_text(page, tab, "TTFT")
    wait_until(lambda: stored(page, tab) not in (None, before), f"the {tab} chat to be saved")
    return wait_for_text(page, tab, "as math.")  # the Markdown renders after the metrics line


def assert_shown_as_written(page: object, tab: str, text: str) -> None:
    assert ARITHMETIC in text and PRICES in text
    chat = page.locator(f"#chat-{tab}")  # type: ignore[attr-defined]
    assert chat.locator(".message-row em").count() == 0  # no stray italics from the stars
    assert chat.locator("strong", has_text="216").count() == 1  # intended bold still bold
    assert chat.locator(".katex").count() >= 1  # $x^2$ is math, the prices are not


@pytest.mark.parametrize("tab", ["reasoning", "coding", "math"])
def test_each_chat_tab_shows_the_answer_as_written_and_keeps_it_open_across_a_reload(
    page: object, fixed_server: VLLMStandIn, tab: str
) -> None:
    fixed_server.reset()
    fixed_server.script = Script(text=ANSWER)
    backend = OpenAICompatBackend("vllm", base_url=fixed_server.url + "/v1", flavor="vllm", model=MODEL)
    question = f"Price check in {tab}: 6*6*6?"
    with running_app(backend) as url:
        page.goto(url)  # type: ignore[attr-defined]
        page.get_by_role("tab", name=tab.title()).click()  # type: ignore[attr-defined]
        text = send_and_wait_for_the_save(page, tab, question)
        assert_shown_as_written(page, tab, text)
        sent = fixed_server.bodies("/v1/chat/completions")[0]["messages"][-1]["content"]
        assert sent == question  # the model gets the text as typed

        page.reload()  # type: ignore[attr-defined]
        selected = page.get_by_role("tab", name=tab.title())  # type: ignore[attr-defined]
        wait_until(lambda: selected.get_attribute("aria-selected") == "true", f"the {tab} tab to reopen", 90)
        back = wait_for_text(page, tab, "as math.", timeout_s=90)
        assert question in back
        assert_shown_as_written(page, tab, back)
        page.locator(f"#chats-panel-{tab}").get_by_text("Chats (kept in this browser)").click()  # type: ignore[attr-defined]
        picked = page.locator(f"#chats-{tab} input").input_value()  # type: ignore[attr-defined]
        assert picked.startswith(question) and f"vllm/{MODEL}" in picked  # open, and in the list
        if tab == "math":
            SHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SHOTS / "math-after-reload.png"), full_page=True)  # type: ignore[attr-defined]

        # The next turn sends the model its own words back, not the escaped source.
        page.locator(f"#prompt-{tab} textarea").fill("And 2*3?")  # type: ignore[attr-defined]
        page.locator(f"#prompt-{tab} textarea").press("Enter")  # type: ignore[attr-defined]
        wait_until(lambda: len(fixed_server.bodies("/v1/chat/completions")) == 2, "the second request")
        history = fixed_server.bodies("/v1/chat/completions")[1]["messages"]
        answer = next(m["content"] for m in history if m["role"] == "assistant")
        # every star and price as the model wrote them; its $x^2$ comes back spelled \(x^2\)
        assert answer == "".join(ANSWER).replace("$x^2$", "\\(x^2\\)")
        assert "6*6*6 = 216" in chat_text(page, tab)


@pytest.mark.model
@pytest.mark.slow
def test_the_real_model_answers_in_the_math_tab_and_the_verified_chat_survives_a_reload(
    page: object,
) -> None:
    from tests.ui.test_browser import _real_registry

    registry = _real_registry()
    page.set_default_timeout(120_000)  # type: ignore[attr-defined]  # the model loads on first use
    question = (  # an example of the Math preset, typed: its reference makes the check decisive
        "If a car travels at 60 mph for 2.5 hours, then at 80 mph for 1.5 hours, "
        "what is the total distance traveled?"
    )
    with running_app(registry=registry) as url:
        page.goto(url)  # type: ignore[attr-defined]
        page.get_by_role("tab", name="Math").click()  # type: ignore[attr-defined]
        before = stored(page, "math")
        box = page.locator("#prompt-math textarea")  # type: ignore[attr-defined]
        box.fill(question)
        box.press("Enter")
        wait_for_text(page, "math", "Verification:", timeout_s=300)
        wait_until(lambda: stored(page, "math") not in (None, before), "the math chat to be saved")
        answer = page.locator("#chat-math .message-row").nth(1).inner_text()  # type: ignore[attr-defined]
        verdict = page.locator("#chat-math").get_by_text("Verification:").first.inner_text()  # type: ignore[attr-defined]
        assert "onnx ·" in chat_text(page, "math")

        page.reload()  # type: ignore[attr-defined]
        back = wait_for_text(page, "math", "Verification:", timeout_s=90)  # the Math tab reopens
        assert question in back and "onnx ·" in back
        assert page.locator("#chat-math").get_by_text("Verification:").first.inner_text() == verdict  # type: ignore[attr-defined]
        wait_until(
            lambda: page.locator("#chat-math .message-row").nth(1).inner_text() == answer,  # type: ignore[attr-defined]
            "the same answer, rendered the same, after the reload",
        )
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / "math-real-model-after-reload.png"), full_page=True)  # type: ignore[attr-defined]
