"""Opt-in checks against a REAL Ollama; skipped unless its address is set (the live vLLM
suite, which the test command runs against a real vLLM, is test_vllm_live.py).

    OLLAMA_HOST=http://127.0.0.1:11434 [OLLAMA_MODEL=phi4-mini] .venv/bin/pytest tests/remote -m live

They ask for a few tokens only, so they are cheap on a real GPU or a laptop running Ollama.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from backends.base import ChatRequest, Message
from backends.errors import ModelNotFound
from backends.ollama import OllamaBackend
from tests.remote.helpers import ask, collect, text_of

pytestmark = pytest.mark.live

OLLAMA_HOST = os.environ.get("OLLAMA_HOST", "").strip()
needs_ollama = pytest.mark.skipif(not OLLAMA_HOST, reason="set OLLAMA_HOST to run against a real Ollama")


@pytest.fixture
async def live_ollama() -> AsyncIterator[OllamaBackend]:
    backend = OllamaBackend("ollama-live", host=OLLAMA_HOST, model=os.environ.get("OLLAMA_MODEL") or None)
    yield backend
    await backend.aclose()


@needs_ollama
async def test_ollama_health_models_and_a_short_streamed_answer(live_ollama):
    assert (await live_ollama.health()).status == "ready"
    models = await live_ollama.list_models()
    if not models:
        pytest.skip("this Ollama has no models: run `ollama pull phi4-mini`")
    request = ask("Reply with one word: hello", temperature=0, max_new_tokens=8)
    events, done = await collect(live_ollama, request)
    assert text_of(events).strip()
    assert done.metrics.completion_tokens
    assert done.metrics.server["server_eval_s"] > 0
    assert done.metrics.server["server_tokens_per_s"] > 0


@needs_ollama
async def test_ollama_unknown_model_says_how_to_pull(live_ollama):
    request = ChatRequest(messages=(Message(role="user", content="hi"),), model="no-such-model-xyz")
    with pytest.raises(ModelNotFound) as caught:
        await collect(live_ollama, request)
    assert "ollama pull no-such-model-xyz" in caught.value.hint
