"""Every tab at desktop (1400 px) and phone (390 px) width, light and dark, in chromium: nothing
runs off the side of a phone, and the screenshots go to /tmp/shots16/ to be looked at."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from backends.scripted import ScriptedBackend, ScriptedReply
from tests.support.browser import page_in
from tests.ui.conftest import running_app
from tests.ui.test_browser import MATH_ANSWER, wait_for_text

pytestmark = pytest.mark.browser
playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
SHOTS = Path("/tmp/shots16")
THINKING = ["<think>", "240 km in 3 h is 80 km/h; ", "plus 20 is 100.", "</think>", *MATH_ANSWER]


def open_tab(page: object, name: str) -> None:
    """Click a tab; on a phone the last tabs sit in Gradio's "More tabs" menu."""
    tab = page.get_by_role("tab", name=name)  # type: ignore[attr-defined]
    if tab.count() and tab.is_visible():
        tab.click()
        return
    page.get_by_role("button", name="More tabs").click()  # type: ignore[attr-defined]
    page.locator(".overflow-dropdown button", has_text=name).click()  # type: ignore[attr-defined]


@pytest.mark.parametrize(("width", "scheme"), [(1400, "light"), (390, "light"), (390, "dark")])
def test_every_tab_fits_the_width_and_is_captured(browser: object, width: int, scheme: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    backend = ScriptedBackend(label="onnx", replies=[ScriptedReply(chunks=THINKING)])
    with running_app(backend, ScriptedBackend(label="remote")) as url:
        page = page_in(browser, width, 900, color_scheme=scheme)
        page.goto(url + ("?__theme=dark" if scheme == "dark" else ""))
        page.get_by_role("tab", name="Reasoning").wait_for()
        open_tab(page, "Math")
        page.locator("#examples-math").get_by_text("A train travels 240 km").click()
        wait_for_text(page, "math", "Verification:", timeout_s=30)
        for tab in ("Reasoning", "Coding", "Math", "Compare", "Backends"):
            open_tab(page, tab)
            time.sleep(0.6)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{tab} at {width} px is {overflow} px wider than the screen"
            page.screenshot(path=str(SHOTS / f"{tab.lower()}-{width}-{scheme}.png"), full_page=True)
        page.context.close()
