"""The evaluation service on scripted lanes: verdicts, the leaderboard, the log, Stop, limits."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from evals.card import EvalCard
from evals.service import EvalSetup, EvalSetupError, prepare, recheck
from evals.sets import load_builtin, parse_set
from evals.stats import wilson_closed_form, wilson_interval
from tests.eval.conftest import AnswerBackend, registry_of

# Ten answers to the first ten items of the built-in math set, and the verdict a person gives each
# (references: 168, 108, 540, 12, 210, 8, 72, 9, 21, 21).
SAMPLE = [
    ("24 * 7 = 168\nFinal answer: 168", "correct"),
    ("156 - 48 = 108\nFinal answer: 108", "correct"),
    ("45 * 12 = 500\nFinal answer: 500", "incorrect"),  # 540
    ("96 / 8 = 12\nFinal answer: 12", "correct"),
    ("15 * 14 = 210\nFinal answer: $210", "correct"),
    ("320 / 40 = 8\nFinal answer: 8 days", "correct"),
    ("18 * 3 = 54\nFinal answer: 54", "incorrect"),  # 18 + 54 = 72 animals
    ("0.75 * 12 = 9\nFinal answer: 9.00", "correct"),
    ("6 * 350 / 100 = 20\nFinal answer: 20", "incorrect"),  # 21
    ("FAIL", "error"),  # the backend fails on this one
]


def sample_lane(label: str = "sample", delay_s: float = 0.0) -> AnswerBackend:
    math = load_builtin("math-word")
    by_prompt = {item.prompt: text for item, (text, _) in zip(math.items, SAMPLE, strict=False)}
    return AnswerBackend(label, lambda prompt: by_prompt.get(prompt, "Final answer: 0"), delay_s)


def run(evaluation) -> EvalCard:
    return asyncio.run(evaluation.execute())


def test_accuracy_equals_a_count_by_hand_of_ten_items_and_a_recheck(tmp_path: Path, presets) -> None:
    lanes = [sample_lane("sample"), AnswerBackend("zero", lambda _p: "It is 0.\nFinal answer: 0")]
    setup = EvalSetup(load_builtin("math-word"), ["sample", "zero"], limit=10, probe=False)
    card = run(prepare(setup, registry_of(*lanes), presets, out_dir=tmp_path))

    verdicts = [card.cell(i, 0).verdict for i in range(10)]
    assert verdicts == [verdict for _, verdict in SAMPLE]
    by_hand = sum(verdict == "correct" for _, verdict in SAMPLE)
    first, second = card.leaderboard()
    assert (first["correct"], first["total"], first["errors"]) == (by_hand, 10, 1)
    assert first["accuracy"] == pytest.approx(by_hand / 10)
    assert first["ci95"] == pytest.approx(list(wilson_closed_form(by_hand, 10)))
    assert second["correct"] == 0 and second["accuracy"] == 0.0
    # tokens per verified-correct answer: every completion token the lane spent, over its correct ones
    spent = sum(card.cell(i, 0).completion_tokens or 0 for i in range(10))
    assert first["tokens_per_correct"] == pytest.approx(spent / by_hand)

    stored = EvalCard.load(next(tmp_path.glob("*.json")))
    assert [(cells, s, r) for _, cells, s, r in recheck(stored)] == [(10, by_hand, by_hand), (10, 0, 0)]


def test_every_cell_is_in_the_log_as_it_finishes_and_the_log_rebuilds_the_card(tmp_path: Path) -> None:
    lane = sample_lane()
    setup = EvalSetup(load_builtin("math-word"), ["sample"], limit=6, probe=False)
    evaluation = prepare(setup, registry_of(lane), __import__("presets").load_catalog(), out_dir=tmp_path)
    lines_seen: list[int] = []

    def seen(_cell) -> None:  # the log already holds the cell when the callback runs
        lines_seen.append(len(evaluation.log_path.read_text().splitlines()))

    card = asyncio.run(evaluation.execute(seen))
    assert lines_seen == [2, 3, 4, 5, 6, 7]
    rebuilt = EvalCard.load(evaluation.log_path)
    assert rebuilt.leaderboard()[0]["correct"] == card.leaderboard()[0]["correct"] == 5


def test_items_of_a_lane_are_sent_together_up_to_its_concurrency(tmp_path: Path, presets) -> None:
    wide, narrow = sample_lane("wide", 0.01), sample_lane("narrow", 0.01)
    eval_set = load_builtin("math-word")
    setup = EvalSetup(eval_set, ["wide"], limit=12, concurrency=6, probe=False)
    card = run(prepare(setup, registry_of(wide), presets, out_dir=tmp_path))
    assert wide.most_in_flight == 6 and card.lanes[0].concurrency == 6
    run(prepare(EvalSetup(eval_set, ["narrow"], limit=12, concurrency=1, probe=False),
                registry_of(narrow), presets, out_dir=tmp_path))  # fmt: skip
    assert narrow.most_in_flight == 1
    assert "uncached" in card.how.lower() and "seed 0" in card.how


def test_stop_keeps_the_finished_items(tmp_path: Path, presets) -> None:
    text = "\n".join(json.dumps({"prompt": p, "reference": "1"}) for p in ["a", "b", "c HOLD", "d HOLD"])
    lane = AnswerBackend("lane", lambda _p: "Final answer: 1")
    lane.release = asyncio.Event()  # never set: the HOLD items wait until stopped
    evaluation = prepare(
        EvalSetup(parse_set(text), ["lane"], concurrency=4, probe=False), registry_of(lane), presets,
        out_dir=tmp_path,
    )  # fmt: skip

    async def stop_after_two() -> EvalCard:
        finished: list[int] = []

        def on_cell(cell) -> None:
            finished.append(cell.item)
            if len(finished) == 2:
                evaluation.run.stop()

        return await evaluation.execute(on_cell)

    card = asyncio.run(stop_after_two())
    assert card.stopped
    assert sorted(c.item for c in card.cells) == [0, 1]
    assert card.leaderboard()[0]["total"] == 2
    assert EvalCard.load(evaluation.card_path).cells == card.cells
    assert [i["lanes"][0]["verdict"] for i in card.contract()["items"]] == [
        "correct",
        "correct",
        "not run",
        "not run",
    ]


def test_public_limits_refuse_before_anything_runs(presets) -> None:
    lane = sample_lane()
    registry = registry_of(lane, max_eval_items=50, max_new_tokens_cap=256)
    with pytest.raises(EvalSetupError, match="at most 50 per evaluation"):
        prepare(EvalSetup(load_builtin("math-word"), ["sample"]), registry, presets)
    with pytest.raises(EvalSetupError, match="max_new_tokens must be"):
        prepare(EvalSetup(load_builtin("math-word"), ["sample"], limit=5, options={"max_new_tokens": 512}),
                registry, presets)  # fmt: skip
    with pytest.raises(EvalSetupError, match="unknown lane"):
        prepare(EvalSetup(load_builtin("math-word"), ["nowhere"], limit=5), registry, presets)
    assert lane.prompts == []


def test_wilson_interval_matches_the_published_value() -> None:
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(0, 4) == pytest.approx((0.0, 0.4899), abs=1e-4)
    assert wilson_interval(0, 0) is None
