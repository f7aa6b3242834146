"""Timeouts, servers that die mid-answer, and slow servers that must not block anyone else.

Each scenario runs against both stand-ins (vLLM over SSE, Ollama over NDJSON).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from backends.base import Backend, Done
from backends.errors import BackendResponseError, BackendUnavailable
from backends.ollama import OllamaBackend
from backends.openai_compat import OpenAICompatBackend
from tests.remote.helpers import ask, collect, drain, text_of
from tests.remote.ollama_standin import start_ollama
from tests.remote.standin_http import StandIn
from tests.remote.vllm_standin import start_vllm

MakeBackend = Callable[..., Backend]


def vllm_backend(url: str, **timeouts: float) -> Backend:
    return OpenAICompatBackend("vllm", base_url=url + "/v1", flavor="vllm", **timeouts)


def ollama_backend(url: str, **timeouts: float) -> Backend:
    return OllamaBackend("ollama", host=url, model="phi4-mini", **timeouts)


@pytest.fixture(params=["vllm", "ollama"])
def server(request: pytest.FixtureRequest) -> tuple[StandIn, MakeBackend]:
    if request.param == "vllm":
        return request.getfixturevalue("vllm"), vllm_backend
    return request.getfixturevalue("ollama_standin"), ollama_backend


@pytest.fixture
async def quick_timeout(server: tuple[StandIn, MakeBackend]) -> AsyncIterator[tuple[StandIn, Backend]]:
    state, make = server
    backend = make(state.url, read_timeout_s=0.5, connect_timeout_s=1.0)
    if isinstance(backend, OpenAICompatBackend):
        await backend.list_models()  # the model listing is not what these tests time
    yield state, backend
    await backend.aclose()


async def test_read_timeout_before_any_answer_is_unavailable_with_a_clear_message(quick_timeout):
    state, backend = quick_timeout
    state.script.hang_before_headers = True
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as caught:
        await collect(backend, ask())
    assert time.monotonic() - started < 5
    assert "sent nothing for 0.5 s" in caught.value.message
    assert "read timeout" in caught.value.hint


async def test_read_timeout_mid_answer_keeps_the_text_and_raises(quick_timeout):
    state, backend = quick_timeout
    state.script.text = ["Half", " an", " answer", " then", " silence"]
    state.script.hang_after = 3
    received: list = []
    with pytest.raises(BackendResponseError) as caught:
        await drain(backend, ask(), received)
    assert text_of(received) == "Half an answer"
    assert "mid-answer" in caught.value.message
    assert "0.5 s" in caught.value.message


async def test_server_dying_mid_stream_keeps_the_text_and_raises(quick_timeout):
    state, backend = quick_timeout
    state.script.text = ["Kept", " text", " lost"]
    state.script.drop_after = 2
    received: list = []
    with pytest.raises(BackendResponseError) as caught:
        await drain(backend, ask(), received)
    assert text_of(received) == "Kept text"
    assert not any(isinstance(e, Done) for e in received)
    assert "kept" in caught.value.hint


async def test_a_slow_server_does_not_block_a_fast_one(server):
    """Two chats at once: a slow server (10 chunks x 0.15 s) and a fast one."""
    slow_state, make = server
    slow_state.script.text = ["slow"] * 10
    slow_state.script.delay_s = 0.15
    start_other = start_vllm if make is vllm_backend else start_ollama
    fast_state, fast_server = start_other()
    slow, fast = make(slow_state.url), make(fast_state.url)
    finished: dict[str, float] = {}
    t0 = time.monotonic()

    async def run(label: str, backend: Backend) -> str:
        events, _ = await collect(backend, ask())
        finished[label] = time.monotonic() - t0
        return text_of(events)

    try:
        slow_text, fast_text = await asyncio.gather(run("slow", slow), run("fast", fast))
    finally:
        await slow.aclose()
        await fast.aclose()
        fast_server.stop()
    assert slow_text == "slow" * 10
    assert fast_text == "Hello, world!"
    assert finished["slow"] >= 1.3  # 9 pauses of 0.15 s really happened
    assert finished["fast"] < finished["slow"] - 0.8  # the fast one did not wait for the slow one


async def test_two_concurrent_chats_on_one_slow_server_overlap(server):
    """A backend object serves several users at once: two 1 s answers take about 1 s, not 2 s."""
    state, make = server
    state.script.text = ["x"] * 6
    state.script.delay_s = 0.2
    backend = make(state.url)
    t0 = time.monotonic()
    try:
        results = await asyncio.gather(collect(backend, ask()), collect(backend, ask()))
    finally:
        await backend.aclose()
    assert [text_of(events) for events, _ in results] == ["xxxxxx", "xxxxxx"]
    assert time.monotonic() - t0 < 1.8


async def test_server_closing_the_stream_before_any_text_is_a_response_error(quick_timeout):
    """The server was reached (headers came) so this is not "unavailable": say what happened."""
    state, backend = quick_timeout
    state.script.drop_after = 0
    with pytest.raises(BackendResponseError) as caught:
        await collect(backend, ask())
    assert not isinstance(caught.value, BackendUnavailable)
    assert "before" in caught.value.message or "without answering" in caught.value.message


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose listen backlog is full: the TCP handshake never completes (connect timeout)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.05)
    yield port
    for sock in (*fillers, listener):
        sock.close()


@pytest.mark.parametrize("make", [vllm_backend, ollama_backend], ids=["vllm", "ollama"])
async def test_connect_timeout_is_honoured(unanswered_port, make):
    backend = make(f"http://127.0.0.1:{unanswered_port}", connect_timeout_s=0.5, read_timeout_s=30)
    started = time.monotonic()
    try:
        with pytest.raises(BackendUnavailable) as caught:
            await collect(backend, ask())
    finally:
        await backend.aclose()
    assert time.monotonic() - started < 5  # not the 30 s read timeout
    assert "in time" in caught.value.message
