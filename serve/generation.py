"""Between the HTTP side and a backend stream: admission to a bounded number of generation
slots, the task that pumps one backend stream, and waiting that gives up when the client goes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, TypeVar

import anyio
from starlette.requests import Request

from backends.base import (
    Backend,
    ChatEvent,
    ChatRequest,
    Done,
    ReasoningDelta,
    TextDelta,
    TokenLogprob,
    ToolCall,
)
from backends.base import ToolCallEvent as ToolCallEv
from backends.errors import BackendResponseError
from serve.metrics import ServerMetrics

T = TypeVar("T")
_END = object()


class ClientGone(Exception):
    """Raised when the client disconnected before its answer started."""


class SlotQueue:
    """A bounded queue in front of ``slots`` generation slots (counts feed /metrics)."""

    def __init__(self, slots: int, queue: int, metrics: ServerMetrics) -> None:
        if slots < 1 or queue < 0:
            raise ValueError("max_concurrency must be >= 1 and max_queue >= 0")
        self.slots, self.queue = slots, queue
        self._metrics = metrics
        self._semaphore = asyncio.Semaphore(slots)

    def reserve(self) -> bool:
        """Take a place in the queue, or say no when the queue is full."""
        if self._metrics.running + self._metrics.waiting >= self.slots + self.queue:
            return False
        self._metrics.waiting += 1
        return True

    async def acquire(self) -> None:
        try:
            await self._semaphore.acquire()
        finally:
            self._metrics.waiting -= 1
        self._metrics.running += 1

    def release(self) -> None:
        self._metrics.running -= 1
        self._semaphore.release()


class Generation:
    """One backend stream pumped by its own task into a queue the HTTP side reads."""

    def __init__(self, backend: Backend, request: ChatRequest) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._task = asyncio.create_task(self._pump(backend, request))

    async def _pump(self, backend: Backend, request: ChatRequest) -> None:
        try:
            async for event in backend.chat(request):
                self._queue.put_nowait(event)
            self._queue.put_nowait(_END)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # handed to the reader, who maps it to an HTTP error
            self._queue.put_nowait(exc)

    async def drain(self) -> tuple[list[str], list[str], list[ToolCall], list[TokenLogprob], Done]:
        """Every event of a whole answer: text, reasoning, tool calls, logprobs, and the Done."""
        text: list[str] = []
        reasoning: list[str] = []
        calls: list[ToolCall] = []
        logprobs: list[TokenLogprob] = []
        while (event := await self.next()) is not None:
            if isinstance(event, TextDelta):
                text.append(event.text)
                logprobs.extend(event.logprobs)
            elif isinstance(event, ReasoningDelta):
                reasoning.append(event.text)
            elif isinstance(event, ToolCallEv):
                calls.append(event.call)
            elif isinstance(event, Done):
                return text, reasoning, calls, logprobs, event
        raise BackendResponseError("engine", "the stream ended without a final usage record")

    async def next(self) -> ChatEvent | None:
        """The next event; None after the last one; re-raises the backend's error."""
        item = await self._queue.get()
        if item is _END:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    async def close(self) -> None:
        """Stop the backend (closing its iterator) and wait until it has let go."""
        if not self._task.done():
            self._task.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.wait([self._task])


async def _wait_for_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await ``work`` but give up (raising ClientGone) as soon as the client disconnects."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_wait_for_disconnect(request))
    try:
        await asyncio.wait([task, watcher], return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    raise ClientGone
