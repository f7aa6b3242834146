"""Run every item of a set on each lane and grade it as it finishes.

Lanes run one after another, so an in-process lane never shares the CPU with another lane and
each lane's timings are its own. Within a lane, up to ``concurrency`` items are in flight at
once: an in-process lane's items then decode together on the batching scheduler, a remote
lane's go to its server together. Each item is a one-lane :class:`compare.runner.Comparison`,
so TTFT and tokens/s are measured exactly as in the Compare tab. Nothing is cached.

Each cell is graded (in a worker thread: mathcheck runs in its own process) and handed to
``on_cell`` the moment it finishes; :meth:`EvalRun.stop` cancels what is in flight and keeps
every finished cell.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from backends.base import SamplingOptions
from compare.runner import Comparison, Lane, LaneResult
from evals.card import Cell
from evals.checks import grade
from evals.sets import Item


@dataclass
class EvalLane:
    lane: Lane
    concurrency: int
    in_process: bool


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    elapsed_s: float
    lane: int
    """The lane running now (lanes run one after another)."""

    @property
    def eta_s(self) -> float | None:
        if not self.done or self.done >= self.total:
            return None
        return self.elapsed_s / self.done * (self.total - self.done)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


class EvalRun:
    def __init__(
        self,
        items: list[Item],
        lanes: list[EvalLane],
        *,
        system_prompt: str,
        options: SamplingOptions,
        preset_is_math: bool,
        timeout_s: float,
        on_cell: Callable[[Cell], None] | None = None,
        on_lane_done: Callable[[int, float], None] | None = None,
    ) -> None:
        if not items or not lanes:
            raise ValueError("an evaluation needs at least one item and one lane")
        self.items, self.lanes = items, lanes
        self.system_prompt, self.options = system_prompt, options
        self.preset_is_math, self.timeout_s = preset_is_math, timeout_s
        self.on_cell, self.on_lane_done = on_cell, on_lane_done
        self.done = 0
        self.current_lane = 0
        self.stopped = False
        self._tasks: list[asyncio.Task[None]] = []
        self._t0 = 0.0

    @property
    def total(self) -> int:
        return len(self.items) * len(self.lanes)

    def progress(self) -> Progress:
        elapsed = time.perf_counter() - self._t0 if self._t0 else 0.0
        return Progress(self.done, self.total, elapsed, self.current_lane)

    def stop(self) -> None:
        """Cancel what is in flight and start nothing more; finished cells stay."""
        self.stopped = True
        for task in self._tasks:
            task.cancel()

    async def run(self) -> float:
        """Run every lane in turn; returns the wall time in seconds."""
        self._t0 = time.perf_counter()
        for index, lane in enumerate(self.lanes):
            if self.stopped:
                break
            self.current_lane = index
            started = time.perf_counter()
            gate = asyncio.Semaphore(max(1, lane.concurrency))
            self._tasks = [
                asyncio.create_task(self._item(index, lane.lane, i, item, gate))
                for i, item in enumerate(self.items)
            ]
            outcomes = await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks = []
            failures = [o for o in outcomes if isinstance(o, Exception)]
            if failures:
                raise failures[0]  # a bug in grading or bookkeeping: never silently lose a cell
            if self.on_lane_done is not None:
                self.on_lane_done(index, time.perf_counter() - started)
        return time.perf_counter() - self._t0

    async def _item(
        self, lane_index: int, lane: Lane, index: int, item: Item, gate: asyncio.Semaphore
    ) -> None:
        async with gate:
            if self.stopped:
                return
            comparison = Comparison(
                [lane],
                prompt=item.prompt,
                system_prompt=self.system_prompt,
                options=self.options,
                timeout_s=self.timeout_s,
            )
            result = (await comparison.run()).lanes[0]
        if result.status == "stopped":
            return
        grading = asyncio.ensure_future(asyncio.to_thread(self._graded, lane_index, index, item, result))
        try:
            cell = await asyncio.shield(grading)
        except asyncio.CancelledError:  # Stop during grading: the answer finished, so keep it
            cell = await grading
        self.done += 1
        if self.on_cell is not None:
            self.on_cell(cell)

    def _graded(self, lane_index: int, index: int, item: Item, result: LaneResult) -> Cell:
        metrics = result.metrics
        figures = {
            "ttft_s": metrics.ttft_s if metrics else None,
            "total_s": metrics.total_s if metrics else None,
            "prompt_tokens": metrics.prompt_tokens if metrics else None,
            "completion_tokens": metrics.completion_tokens if metrics else None,
            "tokens_per_s": metrics.decode_tokens_per_s if metrics else None,
            "finish_reason": metrics.finish_reason if metrics else None,
        }
        common = {
            "item": index,
            "lane": lane_index,
            "status": result.status,
            "text": result.text,
            "reasoning": result.reasoning,
            "error": result.error,
            **figures,
        }
        if result.status != "done":
            return Cell(verdict="error", detail=result.error or result.status, **common)
        found = grade(result.text, item, preset_is_math=self.preset_is_math)
        verdict = {"verdict": found.verdict, "answer": found.answer, "detail": found.detail}
        return Cell(steps=found.steps, **verdict, **common)
