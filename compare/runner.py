"""Run one prompt on 2-4 lanes, each streaming, timing out and stopping on its own.

Every lane is its own asyncio task reading ``backend.chat(request)``, so a slow lane never
delays another (FastChat's arena takes turns in one loop; this does not). Lane tasks push
updates into one queue that :meth:`Comparison.stream` yields from, for a live UI.

The CPU budget (compare.budget): lanes of *different* in-process engines run in turn, one
engine at a time, the order rotating between repeats; lanes of one engine run together and
remote lanes run at once with everything. Each lane records what it did in its
:class:`LaneSchedule`. Before the clock starts every backend gets ``warm_up()`` (model
loading), whose seconds are kept apart in ``load_s``, so TTFT never includes a load.

Stopping a lane cancels its task; the cancellation is thrown into the backend's stream at the
point it is waiting, so the backend's ``finally`` runs and it stops generating (the ONNX engine
stops its worker thread, HTTP backends close the response). A lane's timeout works the same
way. A lane that fails records its error; the others carry on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from backends.base import (
    Backend,
    ChatRequest,
    Done,
    Message,
    Metrics,
    ReasoningDelta,
    SamplingOptions,
    TextDelta,
    ToolCallEvent,
)
from backends.errors import BackendError
from compare.budget import LaneSchedule, plan_turns, schedules
from compare.lanes import MAX_LANES, SettingOverride

LaneStatus = Literal["waiting", "streaming", "done", "error", "timeout", "stopped"]
FINISHED: tuple[LaneStatus, ...] = ("done", "error", "timeout", "stopped")


@dataclass
class Lane:
    """One side of a comparison: a backend, the model to ask it for, one optional override."""

    backend: Backend
    model: str | None = None
    override: SettingOverride | None = None
    title: str = ""
    spec: str = ""
    """The lane spec it came from (compare.lanes), kept for run cards and share links."""

    def __post_init__(self) -> None:
        if not self.title:
            self.title = self.backend.name + (f" · {self.model}" if self.model else "")


@dataclass(frozen=True)
class LaneUpdate:
    """What the UI needs to redraw one lane."""

    lane: int
    status: LaneStatus
    text: str
    reasoning: str
    tokens: int
    """Streamed deltas so far (one delta ~ one token)."""
    elapsed_s: float
    tokens_per_s: float | None
    """Live decode rate: tokens after the first, over the time since the first."""
    error: str | None = None
    metrics: Metrics | None = None
    load_s: float | None = None
    """Seconds the backend spent loading before this lane's clock started (None: not yet)."""
    note: str = ""
    """What the lane is waiting for, or how it shared the machine (its schedule)."""

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


@dataclass
class LaneResult:
    index: int
    title: str
    spec: str
    backend: str
    backend_kind: str
    model: str
    options: SamplingOptions
    override: SettingOverride | None = None
    status: LaneStatus = "waiting"
    text: str = ""
    reasoning: str = ""
    tool_calls: list[str] = field(default_factory=list)
    error: str | None = None
    metrics: Metrics | None = None
    timeline: list[tuple[float, int]] = field(default_factory=list)
    """(seconds since the lane started, tokens streamed so far) at every delta: the chart's data."""
    started_at: float | None = None
    first_token_at: float | None = None
    schedule: LaneSchedule | None = None
    load_s: float | None = None
    """Seconds ``warm_up`` took before the clock started (0.0: ready already; None: not reached)."""
    note: str = ""

    def live_rate(self, now: float) -> float | None:
        tokens = len(self.timeline)
        if self.first_token_at is None or tokens < 2 or now <= self.first_token_at:
            return None
        return (tokens - 1) / (now - self.first_token_at)

    def snapshot(self, now: float) -> LaneUpdate:
        elapsed = 0.0 if self.started_at is None else now - self.started_at
        rate = self.metrics.decode_tokens_per_s if self.metrics else self.live_rate(now)
        return LaneUpdate(
            self.index, self.status, self.text, self.reasoning, len(self.timeline), elapsed, rate,
            self.error, self.metrics, self.load_s, self.note,
        )  # fmt: skip

    def describe_schedule(self) -> str:
        if self.schedule is None:
            return ""
        batch = self.metrics.server.get("mean_batch") if self.metrics is not None else None
        return self.schedule.describe(batch)


@dataclass
class ComparisonResult:
    lanes: list[LaneResult]
    wall_s: float
    """From the clock's start (after every warm-up) until the last lane finished."""
    started: str
    """UTC ISO time the comparison began."""
    turns: list[list[int]] = field(default_factory=list)
    """Lane indices per in-process engine, in the order the engines ran (one group: no turns)."""


def build_request(
    prompt: str, system_prompt: str, options: SamplingOptions, model: str | None
) -> ChatRequest:
    messages = [Message(role="system", content=system_prompt)] if system_prompt.strip() else []
    messages.append(Message(role="user", content=prompt))
    return ChatRequest(messages=tuple(messages), options=options, model=model)


class Comparison:
    """One run of a prompt on every lane. Use :meth:`stream` (live) or :meth:`run` (result only).

    ``first_turn`` rotates the order in which different in-process engines take their turns
    (pass the repeat's index, so run xN alternates)."""

    def __init__(
        self,
        lanes: list[Lane],
        *,
        prompt: str,
        system_prompt: str = "",
        options: SamplingOptions | None = None,
        timeout_s: float = 120.0,
        first_turn: int = 0,
    ) -> None:
        if not 1 <= len(lanes) <= MAX_LANES:
            raise ValueError(f"a comparison runs 1 to {MAX_LANES} lanes, got {len(lanes)}")
        if not prompt.strip():
            raise ValueError("the prompt is empty")
        if timeout_s <= 0:
            raise ValueError("the lane timeout must be positive")
        self.lanes = lanes
        self.prompt = prompt
        self.system_prompt = system_prompt
        self.options = options or SamplingOptions()
        self.timeout_s = timeout_s
        backends = [lane.backend for lane in lanes]
        self.turns = plan_turns(backends, first_turn)
        """Lane indices per in-process engine, in the order the engines run."""
        self._results: list[LaneResult] = []
        self._requests: list[ChatRequest] = []
        for i, (lane, schedule) in enumerate(zip(lanes, schedules(backends, self.turns), strict=True)):
            lane_options = lane.override.apply(self.options) if lane.override else self.options
            self._requests.append(build_request(prompt, system_prompt, lane_options, lane.model))
            self._results.append(
                LaneResult(
                    index=i,
                    title=lane.title,
                    spec=lane.spec,
                    backend=lane.backend.name,
                    backend_kind=type(lane.backend).kind,
                    model=lane.model or lane.backend.default_model(),
                    options=lane_options,
                    override=lane.override,
                    schedule=schedule,
                )
            )
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._driver: asyncio.Task[None] | None = None
        self._stop_requested = [False] * len(lanes)
        self._queue: asyncio.Queue[LaneUpdate] = asyncio.Queue()
        self._started_wall = ""
        self._t0 = 0.0
        self._wall_s = 0.0

    # --- control -----------------------------------------------------------------------

    def stop(self, index: int) -> bool:
        """Stop one lane; the others go on. False if it had already finished."""
        if not 0 <= index < len(self.lanes):
            raise IndexError(f"there is no lane {index + 1}; this comparison has {len(self.lanes)}")
        result = self._results[index]
        if result.status in FINISHED:
            return False
        self._stop_requested[index] = True
        if index in self._tasks:
            self._tasks[index].cancel()
        elif self._driver is not None:  # loading or waiting for its turn: it never starts
            self._finish(result, "stopped")
        return True

    def stop_all(self) -> None:
        for i in range(len(self.lanes)):
            self.stop(i)

    @property
    def running(self) -> bool:
        return any(r.status not in FINISHED for r in self._results) and self._driver is not None

    # --- running -----------------------------------------------------------------------

    async def stream(self) -> AsyncIterator[LaneUpdate]:
        """Warm every backend up, then run the lanes (in turn where the CPU budget says so)
        and yield each lane's updates as they happen, until all finish.

        Leaving the loop early (or the consumer being cancelled) stops every lane.
        """
        if self._driver is not None:
            raise RuntimeError("a Comparison runs once; create a new one to run again")
        self._started_wall = datetime.now(UTC).isoformat(timespec="seconds")
        self._t0 = time.perf_counter()
        self._driver = asyncio.create_task(self._drive())
        remaining = len(self.lanes)
        try:
            while remaining:
                update = await self._queue.get()
                if update.finished:
                    remaining -= 1
                yield update
        finally:
            tasks = [self._driver, *self._tasks.values()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._wall_s = time.perf_counter() - self._t0

    async def run(self, on_update: Callable[[LaneUpdate], None] | None = None) -> ComparisonResult:
        async for update in self.stream():
            if on_update is not None:
                on_update(update)
        return self.result()

    def result(self) -> ComparisonResult:
        return ComparisonResult(
            lanes=list(self._results),
            wall_s=self._wall_s,
            started=self._started_wall,
            turns=[list(group) for group in self.turns],
        )

    def _push(self, result: LaneResult) -> None:
        self._queue.put_nowait(result.snapshot(time.perf_counter()))

    def _finish(self, result: LaneResult, status: LaneStatus, error: str | None = None) -> None:
        result.status, result.error = status, error
        self._push(result)

    async def _drive(self) -> None:
        in_turn = [i for group in self.turns for i in group]
        remote = [i for i in range(len(self.lanes)) if i not in in_turn]
        await self._warm_up(remote, self.turns)
        self._t0 = time.perf_counter()  # the clock starts once everything is loaded
        for group in self.turns[1:]:
            for i in group:
                self._note(i, f"waiting for its turn ({self._results[i].describe_schedule()})")
        remote_tasks = [self._start(i) for i in remote]
        for group in self.turns:
            await asyncio.gather(*(self._start(i) for i in group))
        await asyncio.gather(*remote_tasks)

    def _note(self, index: int, note: str) -> None:
        result = self._results[index]
        if result.status not in FINISHED:
            result.note = note
            self._push(result)

    def _start(self, index: int) -> asyncio.Task[None]:
        task = asyncio.create_task(self._run_lane(index))
        self._tasks[index] = task
        return task

    async def _warm_up(self, remote: list[int], turns: list[list[int]]) -> None:
        """Load every backend before the clock: remote ones at once, in-process engines one at
        a time (each load then has the cores to itself, so its seconds mean what they say)."""

        async def engines_in_turn() -> None:
            for group in turns:
                await self._warm_up_backend(group)

        by_backend: dict[int, list[int]] = {}
        for i in remote:
            by_backend.setdefault(id(self.lanes[i].backend), []).append(i)
        await asyncio.gather(engines_in_turn(), *(self._warm_up_backend(g) for g in by_backend.values()))

    async def _warm_up_backend(self, indices: list[int]) -> None:
        waiting = [i for i in indices if not self._stop_requested[i]]
        if not waiting:
            return
        for i in waiting:
            self._note(i, "loading the model…")
        backend = self.lanes[waiting[0]].backend
        status: LaneStatus = "waiting"
        error = None
        load_s: float | None = None
        try:
            async with asyncio.timeout(self.timeout_s):
                load_s = await backend.warm_up()
        except TimeoutError:
            status, error = "timeout", f"the model did not load within {self.timeout_s:g} s"
        except BackendError as exc:
            status, error = "error", str(exc)
        except Exception as exc:  # one lane's bug must not take the other lanes down
            status, error = "error", f"{type(exc).__name__}: {exc}"
        for i in waiting:
            result = self._results[i]
            if result.status in FINISHED:  # stopped while loading
                continue
            result.load_s = load_s
            if status != "waiting":
                self._finish(result, status, error)
            else:
                self._note(i, "")  # ready; the load's seconds travel in load_s

    async def _run_lane(self, index: int) -> None:
        result = self._results[index]
        if result.status in FINISHED:  # stopped, or failed to load
            return
        result.started_at = time.perf_counter()
        if self._stop_requested[index]:
            self._finish(result, "stopped")
            return
        result.status = "streaming"
        result.note = result.describe_schedule()
        self._push(result)
        events = self.lanes[index].backend.chat(self._requests[index])
        try:
            async with asyncio.timeout(self.timeout_s):
                async for event in events:
                    now = time.perf_counter()
                    if isinstance(event, Done):
                        result.metrics = event.metrics
                        result.model = event.metrics.model or result.model
                        result.status = "done"
                        result.note = result.describe_schedule()  # now with the engine's batch figure
                        break
                    if isinstance(event, TextDelta):
                        result.text += event.text
                    elif isinstance(event, ReasoningDelta):
                        result.reasoning += event.text
                    elif isinstance(event, ToolCallEvent):
                        result.tool_calls.append(f"{event.call.name}({event.call.arguments})")
                    if result.first_token_at is None:
                        result.first_token_at = now
                    result.timeline.append((now - result.started_at, len(result.timeline) + 1))
                    self._queue.put_nowait(result.snapshot(now))
                else:
                    result.status, result.error = "error", "the stream ended without metrics"
        except asyncio.CancelledError:
            if not self._stop_requested[index]:
                raise  # the whole comparison is being torn down
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            result.status = "stopped"
        except TimeoutError:
            result.status = "timeout"
            result.error = f"no complete answer within {self.timeout_s:g} s; the lane was stopped"
        except BackendError as exc:
            result.status, result.error = "error", str(exc)
        except Exception as exc:  # a lane's bug must not take the other lanes down
            result.status, result.error = "error", f"{type(exc).__name__}: {exc}"
        finally:
            await events.aclose()  # type: ignore[attr-defined]
            if result.status not in FINISHED:
                result.status = "stopped"
            self._push(result)
