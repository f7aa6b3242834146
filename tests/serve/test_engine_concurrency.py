"""Concurrency, capacity and client disconnects against the engine server over real HTTP."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import openai
import pytest

from backends.scripted import ScriptedBackend, ScriptedReply
from tests.serve.conftest import MODEL, Engine

USER = [{"role": "user", "content": "count"}]


def wait_until(condition, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def gauge(engine: Engine, name: str) -> float:
    for line in httpx.get(f"{engine.base_url}/metrics").text.splitlines():
        if line.startswith(f"slm_engine:{name}{{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


async def test_sixteen_concurrent_clients_all_complete_none_lost(start_engine) -> None:
    backend = ScriptedBackend(delay_s=0.01)
    backend.enqueue(*(ScriptedReply(chunks=("reply ", str(i), " done")) for i in range(16)))
    engine = start_engine(backend, max_concurrency=4, max_queue=16)
    client = engine.async_client()

    async def one(i: int) -> str:
        if i % 2:
            result = await client.chat.completions.create(model=MODEL, messages=USER)
            return result.choices[0].message.content or ""
        stream = await client.chat.completions.create(model=MODEL, messages=USER, stream=True)
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    try:
        answers = await asyncio.gather(*(one(i) for i in range(16)))
    finally:
        await client.close()
    # every scripted reply reached exactly one client: nothing lost, duplicated or interleaved
    assert sorted(answers) == sorted(f"reply {i} done" for i in range(16))
    assert len(backend.requests) == 16
    assert backend.cancelled == 0
    assert gauge(engine, "num_requests_running") == 0
    assert gauge(engine, "num_requests_waiting") == 0


async def test_generations_never_exceed_max_concurrency(start_engine) -> None:
    running = peak = 0

    class Counting(ScriptedBackend):
        async def _stream(self, request):
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            try:
                async for event in super()._stream(request):
                    yield event
            finally:
                running -= 1

    engine = start_engine(Counting(delay_s=0.02), max_concurrency=2)
    client = engine.async_client()
    try:
        results = await asyncio.gather(
            *(client.chat.completions.create(model=MODEL, messages=USER) for _ in range(6))
        )
    finally:
        await client.close()
    assert [r.choices[0].message.content for r in results] == ["Hello, world!"] * 6
    assert peak == 2


async def test_over_capacity_is_a_429_and_the_accepted_ones_finish(start_engine) -> None:
    engine = start_engine(ScriptedBackend(delay_s=0.1), max_concurrency=1, max_queue=1)
    client = engine.async_client()
    try:
        results = await asyncio.gather(
            *(client.chat.completions.create(model=MODEL, messages=USER) for _ in range(3)),
            return_exceptions=True,
        )
    finally:
        await client.close()
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 1
    assert isinstance(refused[0], openai.RateLimitError)
    assert refused[0].response.headers["retry-after"] == "1"
    assert refused[0].code == "queue_full"
    assert [r.choices[0].message.content for r in results if not isinstance(r, Exception)] == [
        "Hello, world!"
    ] * 2


def test_disconnect_mid_stream_closes_the_backend_stream(start_engine) -> None:
    backend = ScriptedBackend(delay_s=0.1)
    backend.enqueue(ScriptedReply(chunks=tuple(f"t{i} " for i in range(200))))
    engine = start_engine(backend)
    received = []
    payload = {"model": MODEL, "messages": USER, "stream": True}
    with httpx.stream("POST", f"{engine.base_url}/v1/chat/completions", json=payload, timeout=10) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                received.append(line)
            if len(received) == 3:
                break  # leaving the block closes the connection
    assert wait_until(lambda: backend.cancelled == 1), "the backend stream was not closed"
    assert wait_until(lambda: gauge(engine, "num_requests_running") == 0)
    # the slot is free again: the next request is served at once
    backend.delay_s = 0.0
    result = engine.client.chat.completions.create(model=MODEL, messages=USER)
    assert result.choices[0].message.content == "Hello, world!"


def test_disconnect_before_first_token_and_while_queued(start_engine) -> None:
    backend = ScriptedBackend(first_token_delay_s=30.0)
    engine = start_engine(backend, max_concurrency=1)
    url = f"{engine.base_url}/v1/chat/completions"
    payload = {"model": MODEL, "messages": USER, "stream": True}

    def give_up_after(read_s: float) -> None:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(url, json=payload, timeout=httpx.Timeout(10, read=read_s))

    holder = threading.Thread(target=give_up_after, args=(3.0,))  # holds the only slot, no token yet
    holder.start()
    assert wait_until(lambda: gauge(engine, "num_requests_running") == 1)
    give_up_after(0.5)  # queued behind it, then gone
    assert wait_until(lambda: gauge(engine, "num_requests_waiting") == 0)
    assert len(backend.requests) == 1  # the queued one never reached the backend
    assert backend.cancelled == 0
    holder.join()
    assert wait_until(lambda: backend.cancelled == 1)
    assert wait_until(lambda: gauge(engine, "num_requests_running") == 0)


def test_disconnect_during_a_non_streaming_request_closes_the_backend(start_engine) -> None:
    backend = ScriptedBackend(delay_s=0.1)
    backend.enqueue(ScriptedReply(chunks=tuple("x" * 100)))
    engine = start_engine(backend)
    payload = {"model": MODEL, "messages": USER}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{engine.base_url}/v1/chat/completions", json=payload, timeout=httpx.Timeout(10, read=0.5)
        )
    assert wait_until(lambda: backend.cancelled == 1)


class Scheduled(ScriptedBackend):
    """A scripted backend whose scheduler reports itself and refuses when its queue is full."""

    full = False

    async def _stream(self, request):
        from engines.scheduler import QueueFull

        if self.full:
            raise QueueFull(self.name, running=8, queued=64, retry_after_s=7)
        async for event in super()._stream(request):
            yield event

    def stats(self) -> dict[str, float]:
        return {"batch_size": 3.0, "max_batch": 8.0, "queued": 2.0, "tokens_per_s": 123.5}


@pytest.mark.parametrize("stream", [True, False])
def test_a_full_scheduler_queue_is_429_with_retry_after(start_engine, stream: bool) -> None:
    backend = Scheduled()
    backend.full = True
    engine = start_engine(backend)
    payload = {"model": MODEL, "messages": USER, "stream": stream}
    response = httpx.post(f"{engine.base_url}/v1/chat/completions", json=payload, timeout=10)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.json()["error"]["code"] == "queue_full"


def test_metrics_show_the_batch_the_queue_and_aggregate_rate(start_engine) -> None:
    engine = start_engine(Scheduled())
    assert gauge(engine, "batch_size") == 3
    assert gauge(engine, "max_batch_size") == 8
    assert gauge(engine, "queue_length") == 2
    assert gauge(engine, "generation_tokens_per_second") == 123.5
