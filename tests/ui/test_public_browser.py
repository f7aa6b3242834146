"""A visitor in headless chromium: what a public instance refuses, and the warning a share link
to an unconfigured server opens with. A loopback listener proves no connection is made.

Screenshots: /tmp/shots/public-*.png (looked at by eye).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from backends.scripted import ScriptedBackend, ScriptedReply
from tests.support.browser import page_in
from tests.support.listener import Listener, loopback_listener
from tests.ui.conftest import running_app

pytestmark = pytest.mark.browser
playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")

SHOTS = Path("/tmp/shots")


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    page = page_in(browser, 1400, 1400)
    yield page
    page.context.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    with loopback_listener() as found:
        yield found


def backends() -> tuple[ScriptedBackend, ScriptedBackend]:
    local, remote = ScriptedBackend(label="onnx"), ScriptedBackend(label="openai")
    for backend in (local, remote):
        backend.enqueue(*(ScriptedReply(chunks=["4"]) for _ in range(10)))
    return local, remote


def pick(page: object, selector: str, value: str) -> None:
    """Choose ``value`` in a Gradio dropdown."""
    box = page.locator(f"{selector} input")  # type: ignore[attr-defined]
    box.click()
    page.get_by_role("option", name=value, exact=True).click()  # type: ignore[attr-defined]


def toast(page: object, words: str) -> str:
    found = page.locator(".toast-body").filter(has_text=words).first  # type: ignore[attr-defined]
    found.wait_for()
    return str(found.inner_text())


@pytest.mark.parametrize(
    ("backend", "model", "words"),
    [("openai", "stub@{url}", "must be a model name"), ("onnx", "/etc", "not a folder")],
)
def test_public_compare_tab_reads_the_model_box_as_a_name(
    page, listener: Listener, backend: str, model: str, words: str
) -> None:
    with running_app(*backends(), public=True) as url:
        page.goto(url)
        page.get_by_role("tab", name="Compare").click()
        page.locator("#cmp-prompt textarea").fill("What is 2 + 2?")
        pick(page, "#cmp-backend-1", backend)
        page.locator("#cmp-model-1 textarea, #cmp-model-1 input").first.fill(model.format(url=listener.url))
        page.locator("#cmp-run").click()
        assert words in toast(page, words)
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / f"public-compare-{backend}.png"))
    assert not listener.connections


def test_a_link_to_an_unconfigured_server_warns_and_waits_for_confirmation(page, listener: Listener) -> None:
    with running_app(*backends()) as url:
        query = urlencode(
            [("tab", "compare"), ("lane", "onnx"), ("lane", f"openai:stub@{listener.url}"), ("prompt", "Hi")]
        )
        page.goto(f"{url}?{query}")
        warning = page.locator("#cmp-link-warning")
        warning.get_by_text("has not configured").wait_for()
        assert f"openai:stub@{listener.url}" in warning.inner_text()
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / "public-link-warning.png"))
        page.locator("#cmp-run").click()
        assert "tick the box" in toast(page, "tick the box")
        assert not listener.connections
        page.locator("#cmp-trust input").check()
        page.locator("#cmp-run").click()
        assert listener.connected.wait(20)  # confirmed: now it may be contacted


def test_a_public_instance_does_not_open_such_a_link(page, listener: Listener) -> None:
    with running_app(*backends(), public=True) as url:
        query = urlencode(
            [("tab", "compare"), ("lane", "onnx"), ("lane", f"openai:stub@{listener.url}"), ("prompt", "Hi")]
        )
        page.goto(f"{url}?{query}")
        assert "does not have" in toast(page, "cannot be opened")
        assert page.locator("#cmp-prompt textarea").input_value() == ""
    assert not listener.connections


def test_public_limits_show_in_the_page_and_a_refused_prompt_stays(page) -> None:
    with running_app(*backends(), public=True, max_prompt_chars=8000, max_new_tokens_cap=1024) as url:
        page.goto(url)
        page.get_by_role("tab", name="Math").click()
        box = page.locator("#prompt-math textarea")
        long = "Add 2 and 2. " * 700  # 9,100 characters
        box.fill(long)
        page.locator("#send-math").click()
        page.locator("#chat-math").get_by_text("takes at most 8,000").wait_for()
        assert box.input_value() == long  # nothing is lost
        maxima = page.locator("input[type=range]").evaluate_all("inputs => inputs.map(i => Number(i.max))")
        assert 1024 in maxima and max(maxima) == 1024  # the token slider stops at the public cap
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / "public-long-prompt.png"))


def test_an_over_long_link_opens_a_page_that_says_so(page) -> None:
    with running_app(*backends()) as url:
        page.goto(url + "?tab=compare&lane=onnx&lane=openai&prompt=" + "x" * 40_000)
        assert "This link is too long to open" in page.locator("h1").inner_text()
