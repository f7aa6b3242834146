"""The CPU budget of a comparison: which lanes run together, which take turns.

An in-process engine takes every core this process may use, so two different engines side by
side measure each other's contention (on 2 cores onnx decoded 35.8 tok/s and llamacpp 42.0
together, against ~60 and ~72 alone). Lanes of different in-process engines therefore run in
turn, one engine at a time; lanes of one engine run together (its scheduler batches them);
remote lanes use their servers' resources and run at once with everything. Giving each engine
its share of the cores instead (1 of 2 cores each) would halve both rates, so turns are what
keeps each lane's figures those of its engine alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from backends.base import Backend
from runtime.kinds import KINDS

ScheduleMode = Literal["remote", "alone", "shared", "in_turn"]


def available_cores() -> int:
    """The cores this process may run on (what an in-process engine takes by default)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def runs_in_process(backend: Backend) -> bool:
    kind = KINDS.get(type(backend).kind)
    return kind is not None and kind.in_process


@dataclass(frozen=True)
class LaneSchedule:
    """How a lane shared this machine with the other lanes, as the runner ran it."""

    in_process: bool
    cores: int
    engine_peers: tuple[int, ...] = ()
    """Other lanes on the same in-process engine: they ran at the same time, through its scheduler."""
    turn: int = 0
    """1-based place among the in-process engines that ran one after another; 0: no turns."""
    turns: int = 0
    turn_peers: tuple[int, ...] = ()
    """Lanes of the other in-process engines, which ran before or after this one."""

    @property
    def mode(self) -> ScheduleMode:
        if not self.in_process:
            return "remote"
        if self.turns > 1:
            return "in_turn"
        return "shared" if self.engine_peers else "alone"

    def describe(self, mean_batch: float | None = None) -> str:
        """One line for the lane's readout and the run card (lane numbers 1-based)."""
        if not self.in_process:
            return "ran at the same time as the other lanes (on its own server)"
        parts = []
        if self.turns > 1:
            parts.append(
                f"ran in turn with {_lanes(self.turn_peers)} (turn {self.turn} of {self.turns}): "
                f"in-process engines share {self.cores} cores"
            )
        if self.engine_peers:
            if mean_batch is None:
                how = ""
            elif mean_batch > 1.05:
                how = f", batched (mean batch {mean_batch:.1f})"
            else:
                how = f", one request at a time (mean batch {mean_batch:.1f})"
            parts.append(f"shared its engine with {_lanes(self.engine_peers)}{how}")
        if not parts:
            parts.append(f"alone on {self.cores} cores")
        return "; ".join(parts)


def _lanes(indices: tuple[int, ...]) -> str:
    numbers = [str(i + 1) for i in indices]
    if len(numbers) == 1:
        return f"lane {numbers[0]}"
    return "lanes " + ", ".join(numbers[:-1]) + " and " + numbers[-1]


def plan_turns(backends: list[Backend], first_turn: int = 0) -> list[list[int]]:
    """Lane indices of each in-process engine, in the order they run: engines in order of
    their first lane, rotated by ``first_turn`` (so repeated runs alternate which goes first)."""
    groups: dict[int, list[int]] = {}
    for index, backend in enumerate(backends):
        if runs_in_process(backend):
            groups.setdefault(id(backend), []).append(index)
    order = list(groups.values())
    if not order:
        return []
    shift = first_turn % len(order)
    return order[shift:] + order[:shift]


def schedules(backends: list[Backend], turns: list[list[int]]) -> list[LaneSchedule]:
    cores = available_cores()
    found = [LaneSchedule(in_process=False, cores=cores) for _ in backends]
    for place, group in enumerate(turns, start=1):
        others = tuple(sorted(i for g in turns if g is not group for i in g))
        for index in group:
            found[index] = LaneSchedule(
                in_process=True,
                cores=cores,
                engine_peers=tuple(i for i in group if i != index),
                turn=place if len(turns) > 1 else 0,
                turns=len(turns) if len(turns) > 1 else 0,
                turn_peers=others,
            )
    return found
