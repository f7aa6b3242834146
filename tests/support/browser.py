"""Debian's chromium under Playwright, shared by the browser tests: one browser per test module, a
fresh context (cookies, storage) per test. Skips with the reason when chromium is missing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")  # not longer: a module may start Playwright itself (bench browser)
def browser() -> Iterator[Any]:
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    with playwright.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield instance
        instance.close()


def page_in(
    browser: Any, width: int = 1400, height: int = 1000, timeout_ms: int = 20_000, **options: Any
) -> Any:
    """A page in a new context of ``browser`` (close it with ``page.context.close()``)."""
    context = browser.new_context(viewport={"width": width, "height": height}, **options)
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    return page
