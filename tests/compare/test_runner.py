"""Parallel, independent lanes: timing, failure, timeout and Stop on one lane only."""

from __future__ import annotations

import asyncio
import time

import pytest

from backends.base import SamplingOptions
from backends.errors import BackendUnavailable
from backends.scripted import ScriptedBackend, ScriptedReply
from compare.lanes import SettingOverride, parse_override
from compare.runner import Comparison, Lane
from tests.compare.conftest import paced


async def _alone(backend: ScriptedBackend) -> float:
    start = time.perf_counter()
    await Comparison([Lane(backend)], prompt="hi").run()
    return time.perf_counter() - start


async def test_two_io_bound_lanes_take_about_as_long_as_the_slower_one() -> None:
    a = paced("a", " ".join(["tok"] * 20), 0.02)  # ~0.4 s
    b = paced("b", " ".join(["tok"] * 20), 0.03)  # ~0.6 s
    alone = [await _alone(a), await _alone(b)]
    start = time.perf_counter()
    result = await Comparison([Lane(a), Lane(b)], prompt="hi").run()
    wall = time.perf_counter() - start
    assert [lane.status for lane in result.lanes] == ["done", "done"]
    assert wall < 0.75 * sum(alone), (wall, alone)
    assert wall >= max(alone) * 0.9
    assert result.wall_s == pytest.approx(wall, abs=0.05)


async def test_updates_interleave_while_streaming(two_lanes: tuple[ScriptedBackend, ScriptedBackend]) -> None:
    seen: list[int] = []
    rates: list[float] = []
    async for update in Comparison([Lane(b) for b in two_lanes], prompt="hi").stream():
        if update.status == "streaming" and update.tokens:
            seen.append(update.lane)
            if update.tokens_per_s is not None:
                rates.append(update.tokens_per_s)
    first_slow = seen.index(1)
    assert 0 in seen[first_slow:], "the fast lane should still stream after the slow one began"
    assert rates
    assert all(r > 0 for r in rates)


async def test_a_failing_lane_records_its_error_and_the_other_finishes() -> None:
    good = paced("good", "one two three four", 0.01)
    bad = ScriptedBackend(label="bad")
    bad.enqueue(ScriptedReply(chunks=["a", "b", "c"], error_after=2, error=BackendUnavailable("bad", "gone")))
    result = await Comparison([Lane(bad), Lane(good)], prompt="hi").run()
    failed, ok = result.lanes
    assert failed.status == "error"
    assert "gone" in (failed.error or "")
    assert failed.text == "ab"
    assert ok.status == "done"
    assert ok.text.split() == ["one", "two", "three", "four"]
    assert ok.metrics is not None
    assert ok.metrics.completion_tokens == 4


async def test_a_hanging_lane_times_out_alone_and_its_stream_is_closed() -> None:
    hung = ScriptedBackend(label="hung", first_token_delay_s=30)
    good = paced("good", "fine thanks", 0.01)
    start = time.perf_counter()
    result = await Comparison([Lane(hung), Lane(good)], prompt="hi", timeout_s=0.3).run()
    assert time.perf_counter() - start < 2
    assert result.lanes[0].status == "timeout"
    assert "0.3 s" in (result.lanes[0].error or "")
    assert hung.cancelled == 1
    assert result.lanes[1].status == "done"
    assert result.lanes[1].text == "fine thanks "


async def test_stop_one_lane_only() -> None:
    long = paced("long", " ".join(["word"] * 200), 0.01)
    short = paced("short", " ".join(["word"] * 10), 0.01)
    comparison = Comparison([Lane(long), Lane(short)], prompt="hi")
    async for update in comparison.stream():
        if update.lane == 0 and update.tokens == 5 and not update.finished:
            assert comparison.stop(0)
    stopped, finished = comparison.result().lanes
    assert stopped.status == "stopped"
    assert 5 <= len(stopped.timeline) < 200
    assert long.cancelled == 1, "the stopped backend's stream must be closed"
    assert finished.status == "done"
    assert len(finished.timeline) == 10
    assert short.cancelled == 0
    assert comparison.stop(1) is False


async def test_stop_all_and_leaving_the_loop_close_every_stream() -> None:
    a, b = paced("a", " ".join(["x"] * 100), 0.01), paced("b", " ".join(["y"] * 100), 0.01)
    comparison = Comparison([Lane(a), Lane(b)], prompt="hi")
    async for update in comparison.stream():
        if update.tokens == 3 and not update.finished:
            comparison.stop_all()
    assert [lane.status for lane in comparison.result().lanes] == ["stopped", "stopped"]
    assert (a.cancelled, b.cancelled) == (1, 1)

    c = paced("c", " ".join(["z"] * 100), 0.01)
    stream = Comparison([Lane(c)], prompt="hi").stream()
    async for update in stream:
        if update.tokens == 2:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    assert c.cancelled == 1


async def test_every_lane_gets_the_same_request_except_its_one_override() -> None:
    a, b = ScriptedBackend(label="a"), ScriptedBackend(label="b")
    options = SamplingOptions(temperature=0.7, max_new_tokens=64, seed=1)
    lanes = [Lane(a, model="m1"), Lane(b, override=parse_override("temperature=0"))]
    result = await Comparison(lanes, prompt="What?", system_prompt="Be brief.", options=options).run()
    ra, rb = a.requests[0], b.requests[0]
    assert [m.role for m in ra.messages] == ["system", "user"]
    assert ra.messages[1].content == "What?"
    assert ra.messages == rb.messages
    assert ra.model == "m1"
    assert rb.model is None
    assert ra.options == options
    assert rb.options == options.model_copy(update={"temperature": 0.0})
    assert result.lanes[1].options.temperature == 0.0


async def test_metrics_and_timeline_per_lane(two_lanes: tuple[ScriptedBackend, ScriptedBackend]) -> None:
    result = await Comparison([Lane(b) for b in two_lanes], prompt="hi").run()
    for lane in result.lanes:
        m = lane.metrics
        assert m is not None
        assert m.completion_tokens == 10
        assert m.ttft_s is not None
        assert m.decode_tokens_per_s is not None
        assert m.decode_tokens_per_s > 0
        times = [t for t, _ in lane.timeline]
        assert times == sorted(times)
        assert [n for _, n in lane.timeline] == list(range(1, 11))
    fast, slow = result.lanes
    assert fast.metrics
    assert slow.metrics
    assert fast.metrics.decode_tokens_per_s > slow.metrics.decode_tokens_per_s  # type: ignore[operator]


def test_invalid_comparisons_fail_before_any_request() -> None:
    backend = ScriptedBackend()
    with pytest.raises(ValueError, match="empty"):
        Comparison([Lane(backend)], prompt="  ")
    with pytest.raises(ValueError, match="1 to 4"):
        Comparison([Lane(backend)] * 5, prompt="hi")
    with pytest.raises(ValueError, match="temperature"):
        Comparison([Lane(backend, override=SettingOverride("temperature", 5.0))], prompt="hi")
    with pytest.raises(IndexError, match="no lane 4"):
        Comparison([Lane(backend)], prompt="hi").stop(3)
    assert backend.requests == []


async def test_stop_before_start_marks_the_lane_stopped() -> None:
    a, b = ScriptedBackend(label="a"), ScriptedBackend(label="b")
    comparison = Comparison([Lane(a), Lane(b)], prompt="hi")
    comparison.stop(0)
    result = await comparison.run()
    assert [lane.status for lane in result.lanes] == ["stopped", "done"]
    assert a.requests == []
    await asyncio.sleep(0)
