"""The bridge every in-process engine uses: a blocking token loop in a worker thread, its events
on the event loop as an async iterator.

Native runtimes (onnxruntime-genai, llama.cpp) decode in a blocking call per token and are not
safe to share between threads mid-request, so one worker thread owns the request from start to
end and hands each event to the loop with ``call_soon_threadsafe``. Closing the iterator (Stop,
``aclose``, a timeout cancelling the consumer) sets ``cancel``, which the loop checks before
every step; the iterator then waits for the worker to return, so no decoding outlives the
request and nothing leaks into the next one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from typing import TypeVar

T = TypeVar("T")
Emit = Callable[[T], None]
Producer = Callable[[Emit[T], threading.Event], None]
"""``produce(emit, cancel)``: runs in the worker thread, calls ``emit`` per event, returns when
done or soon after ``cancel`` is set. An exception it raises reaches the consumer."""


class _End:
    pass


_END = _End()


async def stream_from_thread(executor: Executor, produce: Producer[T]) -> AsyncIterator[T]:
    """Run ``produce`` on ``executor`` and yield what it emits, in order."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[T | BaseException | _End] = asyncio.Queue()
    cancel = threading.Event()

    def put(item: T | BaseException | _End) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            cancel.set()

    def work() -> None:
        try:
            if not cancel.is_set():  # closed while queued behind another request
                produce(put, cancel)
        except BaseException as exc:  # handed to the consumer, who raises it
            put(exc)
        finally:
            put(_END)

    job = loop.run_in_executor(executor, work)
    try:
        while not isinstance(item := await queue.get(), _End):
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        cancel.set()
        await asyncio.shield(job)  # the worker stops within one decoding step
