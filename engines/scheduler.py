"""One thread that runs every request of an in-process model, and its bridge to asyncio.

Requests join and leave between steps (continuous batching): the scheduler thread admits
waiting jobs while the batch has room, asks the engine for one step of work (a prefill chunk
and/or one decoding step for every running job), and frees a job's slot as soon as it is done
or its caller went away. Events a job emits in the thread reach its caller's event loop
through ``call_soon_threadsafe``; the caller closing its iterator marks the job cancelled,
and the scheduler drops it before the next step.

Nothing here knows about ONNX: an engine implements ``admit`` / ``step`` / ``release`` (see
:class:`Engine`), so any in-process runtime can share the queue, the fairness rule and the
metrics.

Admission: at most ``max_batch`` jobs run; the rest wait in arrival order, except that the
next free slot goes to the waiting job whose client has the fewest jobs running, and among
those to the client served least recently (so clients take turns even on a one-row engine such
as llama.cpp's): one client holding many connections cannot starve the others; nor, while
others use the model, can it fill more than half the queue.
Beyond that, or ``max_queue`` waiting jobs, ``submit`` raises :class:`QueueFull` (the engine
server answers 429 with Retry-After).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import AsyncGenerator
from typing import Any, Protocol

from backends.errors import BackendError, BackendResponseError, BackendUnavailable

CLIENT: contextvars.ContextVar[str] = contextvars.ContextVar("slm_client", default="")
"""Who is asking; jobs of one client share a turn. Every entry point sets it (the app's through
runtime.limits: the browser session or the API caller; the engine server: the peer address)."""

log = logging.getLogger("slm_playground.scheduler")
RATE_WINDOW_S = 10.0
_END = object()


class QueueFull(BackendUnavailable):
    """Every slot is busy and the queue is full; try again after ``retry_after_s``."""

    def __init__(self, backend: str, *, running: int, queued: int, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(
            backend, f"the model is busy ({running} generating, {queued} queued); retry in {retry_after_s} s"
        )


class Job:
    """One request inside the scheduler; engines subclass it with their per-request state."""

    def __init__(self) -> None:
        self.client = CLIENT.get()
        self.enqueued = time.perf_counter()
        self.admitted: float | None = None
        self.cancelled = threading.Event()
        self.done = False
        """Set by the engine when the job has emitted its last event."""
        self.batch_steps = 0
        self.batch_rows = 0
        """Decoding steps this job took part in, and the batch sizes summed over them."""
        self._emit: Any = None

    def emit(self, item: Any) -> None:
        """Hand an event (or an exception) to the caller (from the scheduler thread)."""
        if self._emit is not None:
            self._emit(item)

    def end(self) -> None:
        self.done = True
        self.emit(_END)

    def fail(self, exc: BaseException) -> None:
        if not self.done:
            self.done = True
            self.emit(exc)

    @property
    def queue_s(self) -> float:
        return 0.0 if self.admitted is None else self.admitted - self.enqueued

    @property
    def mean_batch(self) -> float:
        return self.batch_rows / self.batch_steps if self.batch_steps else 1.0


class Engine(Protocol):
    """What a scheduler drives; every method is called on the scheduler thread only."""

    def admit(self, job: Job) -> None:
        """Give the job a slot (raise BackendError to refuse it)."""

    def step(self, jobs: list[Job]) -> int:
        """Do one step of work for the running jobs; return how many tokens it generated.
        A job that has finished calls ``job.end()``."""

    def release(self, job: Job) -> None:
        """Free the job's slot (it is done or cancelled)."""


class Scheduler:
    def __init__(self, engine: Engine, *, name: str, max_batch: int, max_queue: int = 64) -> None:
        if max_batch < 1 or max_queue < 0:
            raise ValueError("max_batch must be >= 1 and max_queue >= 0")
        self.engine, self.name = engine, name
        self.max_batch, self.max_queue = max_batch, max_queue
        self._cv = threading.Condition()
        self._waiting: deque[Job] = deque()
        self._running: list[Job] = []
        self._closed = False
        self._thread: threading.Thread | None = None
        self._produced: deque[tuple[float, int]] = deque()
        self._outbox: list[tuple[asyncio.AbstractEventLoop, Any, Any]] = []
        """Events of the current step, handed to the event loop in one go after it: one
        wake-up per step instead of one per token, and the loop handles them while the next
        step computes (with one wake-up per token, the GIL went back and forth for each)."""
        self.batch_now = 0
        """Jobs in the last step (what /metrics shows as the batch size)."""
        self._admissions = 0
        self._served: dict[str, int] = {}
        """Per client with jobs here: when it last got a slot (the count of admissions then)."""

    # --- the caller's side (event loop) -------------------------------------------------

    async def stream(self, job: Job) -> AsyncGenerator[Any, None]:
        """Queue ``job`` and yield what it emits; closing the iterator cancels it."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        released = asyncio.Event()
        job._emit = lambda item: self._outbox.append((loop, queue.put_nowait, item))
        job._released = lambda: self._outbox.append((loop, _set, released))  # type: ignore[attr-defined]
        self._submit(job)
        try:
            while (item := await queue.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            job.cancelled.set()
            with self._cv:
                queued = job in self._waiting
                if queued:  # never started: nothing to wait for
                    self._waiting.remove(job)
                self._cv.notify()
            if not queued:
                await asyncio.shield(released.wait())  # the slot is free before the caller goes on

    def _submit(self, job: Job) -> None:
        with self._cv:
            if self._closed:
                raise BackendUnavailable(self.name, "the model is shutting down")
            free = self.max_batch - len(self._running)  # waiting jobs that start at the next step
            full = len(self._waiting) - free >= self.max_queue
            # while others use the model, one client may fill at most half the queue
            mine = sum(1 for j in self._waiting if j.client == job.client) - free
            shared = any(j.client != job.client for j in (*self._waiting, *self._running))
            if full or (shared and mine >= max(1, self.max_queue // 2)):
                raise QueueFull(
                    self.name,
                    running=len(self._running),
                    queued=len(self._waiting),
                    retry_after_s=max(1, round(self.retry_after_s())),
                )
            self._waiting.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=f"sched:{self.name}", daemon=True)
                self._thread.start()
            self._cv.notify()

    def position(self, job: Job) -> int:
        """1 for the next job to start, 2 for the one after...; 0 once it runs."""
        with self._cv:
            try:
                return self._waiting.index(job) + 1
            except ValueError:
                return 0

    def stats(self) -> dict[str, float]:
        with self._cv:
            return {
                "batch_size": float(self.batch_now),
                "max_batch": float(self.max_batch),
                "running": float(len(self._running)),
                "queued": float(len(self._waiting)),
                "tokens_per_s": self._rate(time.perf_counter()),
            }

    def retry_after_s(self) -> float:
        """A rough wait for a slot: the queue's length in average answer times."""
        rate = self._rate(time.perf_counter()) or 64.0  # nothing measured yet: a guess
        return min(30.0, max(1.0, (len(self._waiting) + 1) * 128 / rate))

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify()
        if self._thread is not None:
            self._thread.join(timeout=30)

    # --- the scheduler thread ----------------------------------------------------------

    def _rate(self, now: float) -> float:
        while self._produced and self._produced[0][0] < now - RATE_WINDOW_S:
            self._produced.popleft()
        if not self._produced:
            return 0.0
        span = max(now - self._produced[0][0], 1.0)
        return sum(n for _, n in self._produced) / span

    def _next_waiting(self) -> Job:
        """FIFO, but a client with fewer running jobs goes first, then the one served longest ago."""
        running = Counter(j.client for j in self._running)
        served = self._served

        def turn(i: int) -> tuple[int, int, int]:
            client = self._waiting[i].client
            return running[client], served.get(client, -1), i

        best = min(range(len(self._waiting)), key=turn)
        job = self._waiting[best]
        del self._waiting[best]
        self._admissions += 1
        served[job.client] = self._admissions
        present = {j.client for j in (*self._waiting, *self._running)} | {job.client}
        for client in [c for c in served if c not in present]:  # gone: forget them
            del served[client]
        return job

    def _loop(self) -> None:
        while True:
            with self._cv:
                for job in [j for j in self._waiting if j.cancelled.is_set()]:
                    self._waiting.remove(job)
                    _released(job)
                self._flush()
                while not self._closed and not self._running and not self._waiting:
                    self.batch_now = 0
                    self._cv.wait()
                if self._closed:
                    leftovers = [*self._waiting, *self._running]
                    self._waiting.clear()
                    self._running.clear()
                    break
                admitted = []
                while self._waiting and len(self._running) < self.max_batch:
                    job = self._next_waiting()
                    self._running.append(job)
                    admitted.append(job)
            for job in admitted:
                job.admitted = time.perf_counter()
                self._guard(job, self.engine.admit)
            self._finish([j for j in self._running if j.done or j.cancelled.is_set()])
            self._flush()
            if not self._running:
                continue
            self.batch_now = len(self._running)
            try:
                produced = self.engine.step(list(self._running))
            except Exception as exc:  # a failed step fails its jobs, not the thread
                error = exc if isinstance(exc, BackendError) else BackendResponseError(self.name, str(exc))
                for job in self._running:
                    job.fail(error)
                produced = 0
            if produced:
                with self._cv:
                    self._produced.append((time.perf_counter(), produced))
            self._finish([j for j in self._running if j.done or j.cancelled.is_set()])
        for job in leftovers:
            job.fail(BackendUnavailable(self.name, "the model was shut down"))
            self._release(job)
        self._flush()

    def _flush(self) -> None:
        items, self._outbox = self._outbox, []
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any]]] = {}
        for loop, deliver, item in items:
            by_loop.setdefault(loop, []).append((deliver, item))
        for loop, batch in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is listening
                loop.call_soon_threadsafe(_deliver, batch)

    def _guard(self, job: Job, action: Any) -> None:
        try:
            action(job)
        except Exception as exc:
            job.fail(exc if isinstance(exc, BackendError) else BackendResponseError(self.name, str(exc)))

    def _finish(self, jobs: list[Job]) -> None:
        for job in jobs:
            with self._cv:
                self._running.remove(job)
            self._release(job)

    def _release(self, job: Job) -> None:
        try:
            self.engine.release(job)
        except Exception:  # the slot's bookkeeping failed: say so, but keep serving the others
            log.exception("%s: releasing a job failed", self.name)
        finally:
            _released(job)


def _set(event: asyncio.Event) -> None:
    event.set()


def _deliver(batch: list[tuple[Any, Any]]) -> None:
    for deliver, item in batch:
        deliver(item)


def _released(job: Job) -> None:
    callback = getattr(job, "_released", None)
    if callback is not None:
        callback()
