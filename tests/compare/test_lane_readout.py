"""The Compare lane's readout says how long the model loaded and how the lane shared the cores."""

from __future__ import annotations

import pytest

from app.render import lane_readout
from compare.runner import Comparison, Lane, LaneUpdate
from tests.compare.conftest import ScriptedEngine, ScriptedRemote

pytestmark = pytest.mark.usefixtures("engine_kind")


async def test_readouts_through_a_run_of_two_engines_and_a_remote_lane() -> None:
    log: list[tuple[str, str]] = []
    lanes = [Lane(ScriptedEngine("a", log, load_delay_s=0.15)), Lane(ScriptedEngine("b", log))]
    lanes.append(Lane(ScriptedRemote("r", log)))
    seen: dict[int, list[str]] = {0: [], 1: [], 2: []}
    last: dict[int, LaneUpdate] = {}
    async for update in Comparison(lanes, prompt="hi").stream():
        seen[update.lane].append(lane_readout(update))
        last[update.lane] = update
    assert seen[0][0] == "… waiting · 0 tokens · 0.0 s  \nloading the model…"
    assert any("waiting for its turn (ran in turn with lane 1 (turn 2 of 2)" in text for text in seen[1])
    done_a = seen[0][-1].split("  \n")
    assert done_a[0].startswith("✓ a · engine-model") and "tok/s" in done_a[0]
    assert done_a[1] == f"loaded in {last[0].load_s:.1f} s (before the clock; not in TTFT)"
    assert done_a[2].startswith("ran in turn with lane 2 (turn 1 of 2): in-process engines share")
    assert seen[2][-1].split("  \n")[1:] == ["ran at the same time as the other lanes (on its own server)"]


def test_a_failed_lane_shows_its_error_under_its_status() -> None:
    update = LaneUpdate(1, "error", "", "", 0, 0.5, None, error="could not load x.gguf", load_s=None)
    assert lane_readout(update) == "✗ error · 0 tokens · 0.5 s  \ncould not load x.gguf"
