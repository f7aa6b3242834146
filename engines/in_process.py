"""What every in-process engine shares: loading once, health, the scheduler, and how an answer ends.

An in-process kind (onnx, llamacpp, a test's scripted engine) subclasses
:class:`InProcessBackend`: it says how to check its model source, how to load it (blocking,
off the event loop) and which :class:`~engines.scheduler.Engine` runs its requests with how
many rows. The base loads on first use (or on :meth:`InProcessBackend.warm_up`), reports
health while loading, runs every request on the model's one scheduler (one queue per
engine, fair per client) and answers the queue questions the app asks (capacity, place in
line, stats). :class:`AnswerText` is the end-of-answer assembly both engines use: tool-call
parsing, stop strings, the tail flush and the final usage record.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import abstractmethod
from collections.abc import AsyncIterator
from typing import Any

from backends.base import (
    Backend,
    ChatRequest,
    FinishReason,
    Health,
    StreamEvent,
    TextDelta,
    ToolCallEvent,
    Usage,
)
from backends.errors import BackendError
from engines.onnx_tools import ToolCallParser
from engines.scheduler import Engine, Job, Scheduler
from engines.stops import StopMatcher


class AnswerText:
    """Generated text in, the events a caller sees out: tool calls held and parsed, stop
    strings held back and cut, and at the end the tail, the tool calls and the usage record."""

    def __init__(self, job: Job, request: ChatRequest) -> None:
        self.job = job
        self.stops = StopMatcher(request.options.stop)
        offered = bool(request.tools) and request.tool_choice != "none"
        self.tools = ToolCallParser(request.tools, request.tool_choice) if offered else None

    @property
    def stopped(self) -> bool:
        return self.stops.stopped

    def feed(self, piece: str, logprobs: tuple[Any, ...] = ()) -> bool:
        """Show what of ``piece`` is safe to show; False while it was all held back."""
        if self.tools is not None and piece:
            piece = self.tools.feed(piece)
        text = self.stops.feed(piece) if piece else ""
        if text:
            self.job.emit(TextDelta(text, logprobs=logprobs))
        return bool(text)

    def finish(
        self,
        finish: FinishReason,
        *,
        prompt_tokens: int,
        completion_tokens: int,
        model: str,
        reused_tokens: int = 0,
        logprobs: tuple[Any, ...] = (),
    ) -> None:
        """Emit what was held, the tool calls and the usage record; end the job.
        ``reused_tokens``: prompt tokens the KV cache held already (not prefilled again)."""
        if tail := self.stops.flush():  # held back as a possible stop string; it was not one
            self.job.emit(TextDelta(tail, logprobs=logprobs))
        if self.tools is not None:
            if rest := self.tools.flush():
                self.job.emit(TextDelta(rest))
            for call in self.tools.calls():
                self.job.emit(ToolCallEvent(call))
            if self.tools.calls() and finish == "stop":
                finish = "tool_calls"
        server = {
            "prefill_tokens": float(prompt_tokens - reused_tokens),
            "reused_tokens": float(reused_tokens),
            "queue_s": self.job.queue_s,
            "mean_batch": self.job.mean_batch,
        }
        self.job.emit(
            Usage(
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                finish_reason=finish,
                model=model,
                server=server,
            )
        )
        self.job.end()


class InProcessBackend(Backend):
    """A model loaded in this process, its requests on one scheduler thread."""

    def __init__(self, name: str, *, max_queue: int = 64) -> None:
        super().__init__(name)
        self.max_queue = max_queue
        self._loaded: Any = None
        self._load_task: asyncio.Future[Any] | None = None
        self.scheduler: Scheduler | None = None

    # --- what a kind provides ------------------------------------------------------------

    @abstractmethod
    def check_source(self) -> None:
        """Raise a BackendError when the model folder or file is not usable (cheap, no load)."""

    @abstractmethod
    def load_blocking(self) -> Any:
        """Load the model (runs in a worker thread); raise BackendUnavailable on failure."""

    @abstractmethod
    def engine_for(self, loaded: Any) -> tuple[Engine, int]:
        """The scheduler's engine for the loaded model, and how many rows it runs at once."""

    @abstractmethod
    async def job_for(self, request: ChatRequest, loaded: Any) -> Job:
        """The scheduler job for one request (raise a BackendError to refuse it)."""

    @abstractmethod
    def capacity(self) -> int:
        """Requests that run at once (known before loading where the kind can tell)."""

    def unload(self, loaded: Any) -> None:
        """Free the loaded model (after the scheduler stopped)."""

    def ready_note(self) -> str:
        return f"{self.default_model()} loaded in-process"

    # --- loading -------------------------------------------------------------------------

    async def warm_up(self) -> float:
        """Load the model if it is not loaded yet; the seconds that took (0.0: it was loaded)."""
        if self._loaded is not None:
            return 0.0
        started = time.perf_counter()
        await self.ensure_loaded()
        return time.perf_counter() - started

    async def ensure_loaded(self) -> Any:
        if self._loaded is not None:
            return self._loaded
        if self._load_task is None:
            self._load_task = asyncio.get_running_loop().run_in_executor(None, self.load_blocking)
        try:
            loaded = await asyncio.shield(self._load_task)
        except BackendError:
            self._load_task = None  # a later request tries again (the file may appear)
            raise
        if self._loaded is None:
            engine, rows = self.engine_for(loaded)
            self.scheduler = Scheduler(engine, name=self.name, max_batch=rows, max_queue=self.max_queue)
            self._loaded = loaded
        return self._loaded

    async def health(self) -> Health:
        if self._loaded is not None:
            return Health("ready", self.ready_note())
        if self._load_task is None:
            try:
                self.check_source()
            except BackendError as exc:
                return Health("unreachable", exc.message)
            self._load_task = asyncio.get_running_loop().run_in_executor(None, self.load_blocking)
        if self._load_task.done():
            try:
                await self.ensure_loaded()
            except BackendError as exc:
                return Health("unreachable", exc.message)
            return Health("ready", self.ready_note())
        return Health("loading", f"loading {self.default_model()}")

    # --- the queue -----------------------------------------------------------------------

    def stats(self) -> dict[str, float]:
        """Batch size, queue length and aggregate tokens/s (for /metrics)."""
        return self.scheduler.stats() if self.scheduler is not None else {}

    def waiting(self) -> int:
        """Requests queued for a place (0 while every request runs)."""
        return int(self.stats().get("queued", 0))

    def ahead(self) -> int:
        """How many requests a new one would wait behind (0: it would start at once): those
        queued, plus one to finish when every row is taken."""
        stats = self.stats()
        if not stats:
            return 0
        return max(0, int(stats["running"] + stats["queued"] - stats["max_batch"]) + 1)

    def busy(self) -> bool:
        """Whether a new request would wait in line."""
        return self.ahead() > 0

    async def _stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Load if needed, queue the request's job on the scheduler, yield its events."""
        loaded = await self.ensure_loaded()
        job = await self.job_for(request, loaded)
        assert self.scheduler is not None
        # aclosing: the caller's Stop must reach the scheduler now, not when the GC finalizes
        events = self.scheduler.stream(job)
        async with contextlib.aclosing(events):
            async for event in events:
                yield event

    async def aclose(self) -> None:
        loaded, self._loaded = self._loaded, None
        if self.scheduler is not None:
            await asyncio.to_thread(self.scheduler.close)
            self.scheduler = None
        if loaded is not None:
            self.unload(loaded)
        self._load_task = None
