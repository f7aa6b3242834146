"""The CPU budget of a comparison: different in-process engines take turns, one engine's lanes
run together, remote lanes run at once; models load before the clock and are reported apart."""

from __future__ import annotations

import argparse
import asyncio
import json

import pytest

from backends.errors import BackendUnavailable
from compare import cli
from compare.runner import Comparison, Lane
from compare.service import prepare, run_card_for
from compare.share import ComparisonSetup
from runtime.registry import BackendRegistry
from runtime.settings import Settings
from tests.compare.conftest import ScriptedEngine, ScriptedRemote

pytestmark = pytest.mark.usefixtures("engine_kind")


def _spans(log: list[tuple[str, str]]) -> dict[str, tuple[int, int]]:
    """Each backend's (start, end) position in the log of requests."""
    events = [e for e in log if e[0] != "load"]
    return {name: (events.index(("start", name)), events.index(("end", name))) for _, name in events}


async def test_different_engines_run_in_turn_and_the_order_alternates_between_runs() -> None:
    log: list[tuple[str, str]] = []
    a, b = ScriptedEngine("a", log), ScriptedEngine("b", log)
    lanes = [Lane(a), Lane(b)]
    first = await Comparison(lanes, prompt="hi").run()
    assert log == [("load", "a"), ("load", "b"), ("start", "a"), ("end", "a"), ("start", "b"), ("end", "b")]
    log.clear()
    second = await Comparison(lanes, prompt="hi", first_turn=1).run()
    assert log == [("start", "b"), ("end", "b"), ("start", "a"), ("end", "a")]  # loaded already
    assert first.turns == [[0], [1]] and second.turns == [[1], [0]]
    one, two = first.lanes
    assert [lane.status for lane in first.lanes + second.lanes] == ["done"] * 4
    assert one.schedule is not None and two.schedule is not None
    assert (one.schedule.mode, one.schedule.turn, one.schedule.turns) == ("in_turn", 1, 2)
    assert one.describe_schedule().startswith(
        "ran in turn with lane 2 (turn 1 of 2): in-process engines share"
    )
    assert second.lanes[1].describe_schedule().startswith("ran in turn with lane 1 (turn 1 of 2)")


async def test_one_engines_lanes_run_together_and_remote_lanes_run_at_once() -> None:
    log: list[tuple[str, str]] = []
    engine, other = ScriptedEngine("e", log, mean_batch=1.9), ScriptedEngine("o", log)
    remote = ScriptedRemote("r", log, words=30)
    lanes = [Lane(engine, title="e1"), Lane(engine, title="e2"), Lane(other), Lane(remote)]
    result = await Comparison(lanes, prompt="hi").run()
    assert all(lane.status == "done" for lane in result.lanes)
    starts = [name for kind, name in log if kind == "start"]
    assert starts[:3] == ["r", "e", "e"] or starts[:3] == ["e", "e", "r"], log
    first_end = next(i for i, e in enumerate(log) if e[0] == "end")
    assert log.index(("start", "o")) > first_end, "the other engine waits for its turn"
    assert log.index(("start", "o")) < log.index(("end", "r")), "the remote lane ran alongside"
    assert engine.requests and len(engine.requests) == 2
    e1, e2, o, r = result.lanes
    assert e1.schedule is not None and e2.schedule is not None and o.schedule is not None
    assert r.schedule is not None
    assert (e1.schedule.turn, e2.schedule.turn, o.schedule.turn) == (1, 1, 2)
    assert e1.schedule.engine_peers == (1,) and e1.schedule.mode == "in_turn"
    assert "shared its engine with lane 2, batched (mean batch 1.9)" in e1.describe_schedule()
    assert "ran in turn with lane 3" in e1.describe_schedule()
    assert r.schedule.mode == "remote"


async def test_a_lone_engine_beside_remote_lanes_runs_at_once_with_them() -> None:
    log: list[tuple[str, str]] = []
    result = await Comparison(
        [Lane(ScriptedEngine("e", log)), Lane(ScriptedRemote("r", log))], prompt="hi"
    ).run()
    spans = _spans(log)
    assert spans["r"][0] < spans["e"][1] and spans["e"][0] < spans["r"][1]
    assert result.turns == [[0]]
    assert [lane.schedule.mode for lane in result.lanes if lane.schedule] == ["alone", "remote"]


async def test_loading_happens_before_the_clock_and_is_reported_apart() -> None:
    log: list[tuple[str, str]] = []
    gate = asyncio.Event()
    slow_to_load, remote = (
        ScriptedEngine("e", log, load_gate=gate, load_delay_s=0.2),
        ScriptedRemote("r", log),
    )
    comparison = Comparison([Lane(slow_to_load), Lane(remote)], prompt="hi")
    notes = []
    async for update in comparison.stream():
        notes.append((update.lane, update.status, update.note, update.load_s))
        if update.note == "loading the model…" and update.lane == 0:
            await asyncio.sleep(0)  # every lane has had its chance to start
            assert log == [("load", "e")], "nothing starts while a model loads"
            gate.set()
    engine_lane, remote_lane = comparison.result().lanes
    assert engine_lane.load_s is not None and engine_lane.load_s >= 0.2
    assert remote_lane.load_s == 0.0
    assert engine_lane.metrics is not None and engine_lane.metrics.ttft_s is not None
    assert engine_lane.metrics.ttft_s < engine_lane.load_s, "TTFT must not include the load"
    assert comparison.result().wall_s < engine_lane.load_s + engine_lane.metrics.total_s
    assert (0, "waiting", "", engine_lane.load_s) in notes  # ready: the load travels in load_s
    assert log[0] == ("load", "e") and remote.requests


async def test_a_model_that_fails_to_load_fails_its_lane_only() -> None:
    log: list[tuple[str, str]] = []
    broken = ScriptedEngine("broken", log, load_error=BackendUnavailable("broken", "no such file"))
    fine = ScriptedEngine("fine", log)
    result = await Comparison([Lane(broken), Lane(fine)], prompt="hi").run()
    failed, ok = result.lanes
    assert failed.status == "error" and "no such file" in (failed.error or "")
    assert broken.requests == [] and ok.status == "done"


async def test_stopping_a_lane_that_waits_for_its_turn_stops_it_at_once() -> None:
    log: list[tuple[str, str]] = []
    first, waiting = ScriptedEngine("first", log, words=40), ScriptedEngine("waiting", log)
    comparison = Comparison([Lane(first), Lane(waiting)], prompt="hi")
    finished_order = []
    async for update in comparison.stream():
        if update.lane == 0 and update.tokens == 2 and not update.finished:
            assert update.note.startswith("ran in turn with lane 2")
            assert comparison.stop(1)
        if update.finished:
            finished_order.append((update.lane, update.status))
    assert finished_order == [(1, "stopped"), (0, "done")]
    assert waiting.requests == []


async def test_run_card_says_what_each_lane_did_and_alternates_through_prepare() -> None:
    log: list[tuple[str, str]] = []
    engines = (
        ScriptedEngine("a", log, mean_batch=2.0, load_delay_s=0.05),
        ScriptedEngine("b", log),
        ScriptedRemote("r", log),
    )
    registry = BackendRegistry.with_backends(Settings(), *engines)
    setup = ComparisonSetup(["a", "a#temperature=0", "b", "r"], "hi", runs=2)
    card = await run_card_for(setup, registry)
    assert card.turn_orders == [[[0, 1], [2]], [[2], [0, 1]]]
    assert card.notes[0].startswith("In-process engines ran in turn, one at a time, so none competed")
    assert "(run 1: lanes 1 + 2 → 3; run 2: lanes 3 → 1 + 2)" in card.notes[0]
    assert card.notes[1] == (
        "Lanes 1 and 2 shared the in-process engine `a`: they decoded in one batch (mean batch 2.0), "
        "so each lane's tokens/s is its share."
    )
    assert card.notes[2] == (
        f"Models were loaded before the clock started (lane 1 in {card.lanes[0].load_s:.1f} s, "
        f"lane 2 in {card.lanes[1].load_s:.1f} s); TTFT and total time exclude it."
    )
    lane_a, _, lane_b, lane_r = card.lanes
    assert lane_a.schedule is not None and lane_b.schedule is not None and lane_r.schedule is not None
    assert (lane_a.schedule.turn, lane_b.schedule.turn) == (2, 1)  # the last run's order
    assert lane_b.schedule.text.startswith("ran in turn with lanes 1 and 2 (turn 1 of 2)")
    assert lane_r.schedule.mode == "remote" and lane_r.load_s == 0.0
    assert lane_a.load_s is not None and lane_a.load_s > 0
    again = type(card).from_json(card.to_json())
    assert again == card
    markdown = card.to_markdown()
    assert (
        "| ran | in turn 2/2 (batched) | in turn 2/2 (batched) | in turn 1/2 | at once (remote) |" in markdown
    )
    assert "| model load before the clock (s) |" in markdown


def test_prepared_comparisons_rotate_the_engines(registry: BackendRegistry) -> None:
    log: list[tuple[str, str]] = []
    registry.add(ScriptedEngine("a", log))
    registry.add(ScriptedEngine("b", log))
    prepared = prepare(ComparisonSetup(["a", "b", "fast"], "hi"), registry)
    assert [prepared.comparison().turns for _ in range(3)] == [[[0], [1]], [[1], [0]], [[0], [1]]]


def test_the_cli_prints_each_lanes_load_and_turn(capsys: pytest.CaptureFixture[str]) -> None:
    log: list[tuple[str, str]] = []
    registry = BackendRegistry.with_backends(Settings(), ScriptedEngine("a", log), ScriptedEngine("b", log))
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--lane", "a", "--lane", "b", "--prompt", "hi", "--json"])
    assert cli.run(args, registry=registry) == 0
    out, err = capsys.readouterr()
    card = json.loads(out)
    assert [lane["schedule"]["mode"] for lane in card["lanes"]] == ["in_turn", "in_turn"]
    assert all(lane["load_s"] is not None for lane in card["lanes"])
    assert "lane 1: done" in err and "ran in turn with lane 2 (turn 1 of 2)" in err
    assert "loaded in" in err


async def test_bench_compare_marks_rows_of_engines_that_ran_in_turn() -> None:
    from backends.base import SamplingOptions
    from compare.bench import format_table, measure

    log: list[tuple[str, str]] = []
    engines = [Lane(ScriptedEngine("a", log), spec="a"), Lane(ScriptedEngine("b", log), spec="b")]
    remotes = [Lane(ScriptedRemote("r", log), spec="r"), Lane(ScriptedRemote("s", log), spec="s")]
    options = SamplingOptions(max_new_tokens=8)
    for lanes, in_turn in ((engines, True), (remotes, False)):
        report = await measure(lanes, prompt="hi", options=options, repeats=1, timeout_s=10)
        assert [row["in_turn"] for row in report["comparisons"]] == [in_turn]
        assert ("in turn (different in-process engines" in format_table(report)) is in_turn
