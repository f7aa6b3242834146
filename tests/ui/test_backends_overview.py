"""The Backends tab's overview in chromium: every backend with kind, masked URL, health, models
with format and quantization, server version; pulling a model and creating the preset models
on an Ollama endpoint (the Ollama stand-in)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from app.backends_view import masked_url
from backends.scripted import ScriptedBackend
from runtime.registry import BackendRegistry
from runtime.settings import Endpoint, Settings
from tests.remote.ollama_standin import start_ollama
from tests.support.browser import page_in
from tests.ui.conftest import running_app

playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")


def test_urls_lose_their_secrets() -> None:
    assert masked_url("https://user:sk-123@api.example.com/v1?api_key=sk-9&x=1") == (
        "https://•••@api.example.com/v1?api_key=•••&x=1"
    )
    assert masked_url("http://gpu:8000/v1") == "http://gpu:8000/v1"


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    page = page_in(browser, 1400, 1000)
    yield page
    page.context.close()


def table_text(page: object) -> str:
    return page.locator("#backends-table").inner_text()  # type: ignore[attr-defined]


def wait_for(page: object, locator: str, needle: str, timeout_s: float = 20.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = page.locator(locator).inner_text()  # type: ignore[attr-defined]
        if needle in text:
            return text
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} not in {locator}: {page.locator(locator).inner_text()}")  # type: ignore[attr-defined]


@pytest.mark.browser
def test_overview_lists_every_backend_and_ollama_pulls_and_creates(page: object) -> None:
    state, server = start_ollama()
    try:
        settings = Settings(endpoints=(Endpoint("ollama", server.url, name="local-ollama"),))
        registry = BackendRegistry(settings)
        registry.add(ScriptedBackend(label="onnx"))
        with running_app(registry=registry) as url:
            page.goto(url)  # type: ignore[attr-defined]
            page.get_by_role("tab", name="Backends").click()  # type: ignore[attr-defined]
            text = wait_for(page, "#backends-table", "Ollama 0.12.6")  # the server's version
            assert "local-ollama" in text and "ollama" in text and server.url in text
            assert "phi4-mini:latest (gguf, Q4_K_M, 3.8B)" in text  # format and quantization
            assert "onnx" in text and "ready" in text
            page.locator("#ollama-panel").get_by_text("Ollama: pull a model").click()  # type: ignore[attr-defined]
            page.locator("#pull-name textarea").first.fill("qwen3:0.6b")  # type: ignore[attr-defined]
            page.locator("#backends-tab-chosen input").first.click()  # type: ignore[attr-defined]
            page.get_by_role("option", name="local-ollama").click()  # type: ignore[attr-defined]
            state.script.delay_s = 0.4  # a slow download, so its progress bar can be seen
            page.locator("#pull-btn").click()  # type: ignore[attr-defined]
            page.locator("#ollama-note progress").wait_for()  # type: ignore[attr-defined]
            page.locator("#ollama-panel").screenshot(path="/tmp/shots16/ollama-pulling.png")  # type: ignore[attr-defined]
            wait_for(page, "#ollama-note", "Pulled qwen3:0.6b on local-ollama (success)")
            wait_for(page, "#backends-table", "qwen3:0.6b")
            state.script.delay_s = 0.0
            page.locator("#create-btn").click()  # type: ignore[attr-defined]
            wait_for(page, "#ollama-note", "phi4-mini-reasoning")
            wait_for(page, "#backends-table", "phi4-mini-coder")
            page.locator("#ollama-panel").screenshot(path="/tmp/shots16/ollama-panel.png")  # type: ignore[attr-defined]
        assert [path for path, _body in state.requests if path in ("/api/pull", "/api/create")] == [
            "/api/pull",
            "/api/create",
            "/api/create",
        ]
    finally:
        server.stop()
