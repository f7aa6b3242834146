"""The Compare tab in headless chromium: two lanes stream side by side, one is stopped alone.

Screenshot: /tmp/shots/compare.png (looked at by eye).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.registry import BackendRegistry
from runtime.settings import Settings
from tests.compare.conftest import paced
from tests.support.browser import page_in
from tests.ui.conftest import running_app

pytestmark = pytest.mark.browser
playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")

SHOTS = Path("/tmp/shots")


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    page = page_in(browser, 1400, 1500, timeout_ms=30000, accept_downloads=True)
    yield page
    page.context.close()


def test_two_lanes_stream_and_finish_with_chart_diff_and_card(page) -> None:
    fast = paced("fast", "The answer is 391 because 17 times 23 is 391. Final answer: 391", 0.03)
    slow = paced("slow", "The answer is 390 since 17 times 23 is 390. Final answer: 390", 0.06)
    registry = BackendRegistry.with_backends(Settings(), fast, slow)
    with running_app(registry=registry) as url:
        page.goto(url)
        page.get_by_role("tab", name="Compare").click()
        page.locator("#cmp-prompt textarea").fill("What is 17*23?")
        page.locator("#cmp-run").click()
        readout_1, readout_2 = page.locator("#cmp-readout-0"), page.locator("#cmp-readout-1")
        page.wait_for_function(
            "() => document.querySelector('#cmp-readout-1')?.innerText.includes('tok/s')"
        )  # live readout while streaming
        page.locator("#cmp-summary").get_by_text("Metrics (median / p95)").wait_for()
        assert "fast" in readout_1.inner_text()
        assert "slow" in readout_2.inner_text()
        assert "Final answer: 391" in page.locator("#cmp-output-0").inner_text()
        assert "Final answer: 390" in page.locator("#cmp-output-1").inner_text()
        summary = page.locator("#cmp-summary").inner_text()
        assert "lanes agree: no" in summary
        assert "first differs at word 3" in summary
        assert page.locator("#cmp-diff").get_by_text("391 because").count() >= 1
        page.locator("#cmp-chart").get_by_text("1: fast").wait_for()  # one series per lane, in the legend
        page.locator("#cmp-chart").get_by_text("2: slow").wait_for()
        share = page.locator("#cmp-share-link textarea, #cmp-share-link input").first.input_value()
        assert share.startswith(url.rstrip("/")) and "lane=fast" in share
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / "compare.png"), full_page=True)

        # the share link reopens the same setup in a new page
        page.goto(share)  # the link itself selects the Compare tab: no click here
        page.wait_for_function(
            "() => document.querySelector('#cmp-prompt textarea')?.value === 'What is 17*23?'"
        )
        assert page.get_by_role("tab", name="Compare").get_attribute("aria-selected") == "true"
        assert page.locator("#cmp-prompt textarea").is_visible()

        # a run from that page: its link gets the page's address once (the stored run shown
        # again must not put the address in front a second time)
        page.locator("#cmp-run").click()
        page.locator("#cmp-summary").get_by_text("Metrics (median / p95)").wait_for()
        again = page.wait_for_function(
            """() => {
                const box = document.querySelector('#cmp-share-link textarea, #cmp-share-link input');
                return box && box.value.includes('lane=fast') && box.value;
            }"""
        ).json_value()
        assert again.startswith(url.rstrip("/")) and again.count("://") == 1, again


def test_stop_one_lane_in_the_browser(page) -> None:
    long = paced("long", " ".join(["word"] * 400), 0.02)
    short = paced("short", " ".join(["done"] * 30), 0.02)
    registry = BackendRegistry.with_backends(Settings(), long, short)
    with running_app(registry=registry) as url:
        page.goto(url)
        page.get_by_role("tab", name="Compare").click()
        page.locator("#cmp-prompt textarea").fill("Talk")
        page.locator("#cmp-run").click()
        page.wait_for_function("() => document.querySelector('#cmp-readout-0')?.innerText.includes('tokens')")
        page.locator("#cmp-stop-0").click()
        page.locator("#cmp-summary").get_by_text("Metrics (median / p95)").wait_for()
        assert "stopped" in page.locator("#cmp-readout-0").inner_text()
        assert "✓" in page.locator("#cmp-readout-1").inner_text()
        assert long.cancelled == 1
        assert short.cancelled == 0


def test_a_lane_shows_the_answer_as_written(page) -> None:
    """A fixed-answer OpenAI-compatible server (the vLLM stand-in) in lane 1: its arithmetic and
    prices as written, its bold and $x^2$ rendered; the run card's Markdown agrees."""
    from backends.openai_compat import OpenAICompatBackend
    from tests.remote.standin_http import Script
    from tests.remote.vllm_standin import start_vllm
    from tests.ui.test_chat_tabs_browser import ANSWER, ARITHMETIC, MODEL, PRICES

    state, server = start_vllm()
    state.script = Script(text=ANSWER)
    remote = OpenAICompatBackend("vllm", base_url=state.url + "/v1", flavor="vllm", model=MODEL)
    other = paced("other", "Another lane.", 0.01)
    try:
        with running_app(registry=BackendRegistry.with_backends(Settings(), remote, other)) as url:
            page.goto(url)
            page.get_by_role("tab", name="Compare").click()
            box = page.locator("#cmp-prompt textarea")
            box.fill("Price check: 6*6*6?")
            box.press("Enter")
            page.locator("#cmp-summary").get_by_text("Metrics (median / p95)").wait_for()
            lane = page.locator("#cmp-output-0")
            page.wait_for_function(
                "() => document.querySelector('#cmp-output-0')?.innerText.includes('as math.')"
            )
            shown = lane.inner_text()
            assert ARITHMETIC in shown and PRICES in shown
            assert lane.locator("em").count() == 0
            assert lane.locator("strong", has_text="216").count() == 1
            assert lane.locator(".katex").count() == 1  # $x^2$ only: the prices are not math
            SHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SHOTS / "compare-lane-as-written.png"), full_page=True)
            with page.expect_download() as download:
                page.locator("#cmp-card-md").click()
            card = Path(download.value.path()).read_text(encoding="utf-8")
            assert "6\\*6\\*6 = 216" in card and PRICES in card  # renders as the lane does
            page.reload()  # the last comparison is kept in the browser and shown again
            page.wait_for_function(
                "() => document.querySelector('#cmp-output-0')?.innerText.includes('as math.')"
            )
            again = page.locator("#cmp-output-0").inner_text()
            assert ARITHMETIC in again and PRICES in again
            assert page.locator("#cmp-prompt textarea").input_value() == "Price check: 6*6*6?"
            assert "Another lane." in page.locator("#cmp-output-1").inner_text()
            assert page.locator("#cmp-summary").get_by_text("Metrics (median / p95)").count() == 1
        assert state.bodies("/v1/chat/completions")[0]["messages"][-1]["content"] == "Price check: 6*6*6?"
    finally:
        server.stop()
