"""The thread-to-asyncio bridge of the in-process engines: order, errors, and Stop reaching the
worker (which has returned by the time ``aclose`` does)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from engines.threaded import Emit, stream_from_thread


async def test_events_arrive_in_order_and_the_stream_ends() -> None:
    def produce(emit: Emit[int], cancel: threading.Event) -> None:
        for i in range(5):
            emit(i)

    with ThreadPoolExecutor(1) as pool:
        assert [i async for i in stream_from_thread(pool, produce)] == [0, 1, 2, 3, 4]


async def test_an_error_in_the_worker_reaches_the_consumer_after_what_came_before() -> None:
    def produce(emit: Emit[int], cancel: threading.Event) -> None:
        emit(1)
        raise LookupError("decoding failed")

    seen: list[int] = []

    async def consume(pool: ThreadPoolExecutor) -> None:
        async for i in stream_from_thread(pool, produce):
            seen.append(i)

    with ThreadPoolExecutor(1) as pool, pytest.raises(LookupError, match="decoding failed"):
        await consume(pool)
    assert seen == [1]


async def test_closing_the_stream_stops_the_worker_before_aclose_returns() -> None:
    returned = threading.Event()

    def produce(emit: Emit[int], cancel: threading.Event) -> None:
        try:
            i = 0
            while not cancel.is_set():  # an endless decoding loop, checking Stop every step
                emit(i)
                i += 1
                cancel.wait(0.001)
        finally:
            returned.set()

    with ThreadPoolExecutor(1) as pool:
        stream = stream_from_thread(pool, produce)
        assert await anext(stream) == 0
        await stream.aclose()
        assert returned.is_set()  # no decoding outlives the request


async def test_a_request_stopped_while_queued_never_runs() -> None:
    release, ran = threading.Event(), []

    def first(emit: Emit[str], cancel: threading.Event) -> None:
        emit("started")
        release.wait(10)

    def second(emit: Emit[str], cancel: threading.Event) -> None:
        ran.append(True)

    with ThreadPoolExecutor(1) as pool:  # one context: requests queue behind each other
        busy = stream_from_thread(pool, first)
        assert await anext(busy) == "started"
        pending = asyncio.ensure_future(anext(stream_from_thread(pool, second)))
        await asyncio.sleep(0)  # one turn of the loop: the second request is now queued
        pending.cancel()  # Stop pressed while it waits
        await asyncio.sleep(0)  # one turn: the cancellation reaches it (it sets its cancel flag)
        release.set()
        await busy.aclose()
        with pytest.raises(asyncio.CancelledError):
            await pending
    assert ran == []
