"""`slm-playground compare` through its add_arguments/run pair, as app/cli.py calls it."""

from __future__ import annotations

import argparse
import json

import pytest

from compare import cli
from compare.runcard import RunCard
from runtime.registry import BackendRegistry
from tests.compare.test_runcard import CATALOG


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_json_run_card(registry: BackendRegistry, capsys: pytest.CaptureFixture[str]) -> None:
    args = _args("--lane", "fast", "--lane", "slow#seed=7", "--preset", "math", "--prompt", "What is 17*23?",
                 "--runs", "2", "--max-new-tokens", "64", "--json")  # fmt: skip
    assert cli.run(args, registry=registry, presets=CATALOG) == 0
    out, err = capsys.readouterr()
    card = RunCard.from_json(out)
    assert card.runs == 2
    assert card.preset == "math"
    assert card.options["max_new_tokens"] == 64
    assert [lane.backend for lane in card.lanes] == ["fast", "slow"]
    assert card.lanes[1].options["seed"] == 7
    assert all(lane.stats["total_s"].n == 2 for lane in card.lanes)
    assert err.count("lane 1: done") == 2
    assert err.count("lane 2: done") == 2
    assert json.loads(out)["lanes"][0]["answer"].startswith("The answer is 391")


def test_markdown_by_default_and_quiet(registry: BackendRegistry, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        cli.run(_args("--lane", "fast", "--lane", "slow", "--prompt", "hi", "--quiet"), registry=registry)
        == 0
    )
    out, err = capsys.readouterr()
    assert out.startswith("# Comparison run card")
    assert err == ""


def test_bad_setup_exits_2_without_running(
    registry: BackendRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.run(_args("--lane", "fast", "--prompt", "hi"), registry=registry) == 2
    assert "2 to 4 lanes" in capsys.readouterr().err
    assert cli.run(_args("--lane", "fast", "--lane", "x:y", "--prompt", "hi"), registry=registry) == 2
    assert "unknown lane 'x:y'" in capsys.readouterr().err
    assert registry.get("fast").requests == []  # type: ignore[attr-defined]


def test_unreachable_remote_lane_fails_alone(
    registry: BackendRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _args(
        "--lane", "fast", "--lane", "openai:m@http://127.0.0.1:9", "--prompt", "hi", "--json", "--quiet"
    )
    assert cli.run(args, registry=registry) == 1
    card = RunCard.from_json(capsys.readouterr().out)
    assert [lane.status for lane in card.lanes] == ["done", "error"]
    assert card.lanes[1].backend_kind == "openai"
    assert card.lanes[1].error
