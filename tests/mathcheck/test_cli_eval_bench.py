"""The verify CLI on JSON lines, the evaluation set's composition, and the math benchmark."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from backends.scripted import ScriptedBackend, ScriptedReply
from mathcheck import bench, cli, evaluate
from mathcheck.sandbox import shutdown


@pytest.fixture(scope="module", autouse=True)
def _workers() -> object:
    yield
    shutdown()


def _run_cli(tmp_path: Path, lines: list[str]) -> tuple[int, list[dict[str, object]]]:
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    target = tmp_path / "out.jsonl"
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    code = cli.run(parser.parse_args([str(source), "-o", str(target)]))
    return code, [json.loads(x) for x in target.read_text(encoding="utf-8").splitlines()]


def test_verify_cli_writes_one_line_per_input(tmp_path: Path) -> None:
    lines = [
        {
            "prompt": "3 bags of 12, give 14?",
            "gold": "22",
            "response": "3 × 12 = 36. 36 - 14 = 24.\nShe has 24.",
        },
        {"prompt": "What is 17 × 23?", "gold": None, "response": "17 × 23 = 391. The answer is 391."},
        {"prompt": "Tell a story", "gold": None, "response": "Once upon a time there were 3 bears."},
    ]
    code, out = _run_cli(tmp_path, [json.dumps(line) for line in lines])
    assert code == 0
    assert [o["final"] for o in out] == ["incorrect", "correct", "unverifiable"]
    assert out[0]["claims"] == [
        {"text": "3 × 12 = 36", "verdict": "ok"},
        {"text": "36 - 14 = 24", "verdict": "wrong", "expected": "22"},
    ]
    assert out[1]["claims"] == [{"text": "17 × 23 = 391", "verdict": "ok"}]


def test_verify_cli_reports_bad_lines_and_keeps_going(tmp_path: Path) -> None:
    code, out = _run_cli(
        tmp_path, ["{not json", json.dumps({"gold": "1"}), json.dumps({"response": "So 1 + 1 = 2."})]
    )
    assert code == 1
    assert "error" in out[0]
    assert "error" in out[1]
    assert out[2]["final"] == "unverifiable"


def test_verify_cli_reads_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(
        "sys.stdin", io.StringIO(json.dumps({"gold": "4", "response": "2 + 2 = 4, so 4."}) + "\n")
    )
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args([])) == 0
    assert json.loads(capsys.readouterr().out)["final"] == "correct"


def test_evaluation_set_has_the_claimed_composition() -> None:
    cases = evaluate.load_cases()
    comp = evaluate.composition(cases)
    assert comp["cases"] >= 80
    assert comp["no reference"] >= 15
    assert comp["planted wrong steps"] >= 25
    assert comp["tags"]["latex"] >= 30
    assert comp["tags"]["plain"] >= 30
    assert comp["tags"]["unusual"] >= 15
    assert all(c.response.count(step) == 1 for c in cases for step in c.wrong_steps)
    assert len({c.id for c in cases}) == len(cases)


async def test_math_benchmark_scores_scripted_backends() -> None:
    good = ScriptedBackend(label="good")
    good.enqueue(
        ScriptedReply(chunks=["17 × 23 = 391.\n", "Final answer: 391"]),
        ScriptedReply(chunks=["3x = 15 so x = 5.\nFinal answer: x = 5"]),
    )
    bad = ScriptedBackend(label="bad")
    bad.enqueue(
        ScriptedReply(chunks=["17 × 23 = 381.\nFinal answer: 381"]),
        ScriptedReply(chunks=["Final answer: x = 5"]),
    )
    problems = [("What is 17 × 23?", "391"), ("Solve for x: 3x + 5 = 20.", "5")]
    results = await bench.run_benchmark([good, bad], problems)
    assert [r.count("correct") for r in results] == [2, 1]
    assert results[1].wrong_steps == 1
    table = bench.render_table(results)
    assert "good" in table
    assert "100%" in table
    assert "50%" in table
    chart = bench.render_chart(results, width=10)
    assert "good |██████████|" in chart
    assert "bad  |█████·····|" in chart
    assert "17 × 23 = 381 → 391" in bench.render_details(results)


def test_answer_and_worked_sets_have_the_claimed_composition() -> None:
    answers = evaluate.load_cases(evaluate.DATA / "answers.jsonl")
    kinds: dict[str, int] = {}
    for case in answers:
        kinds[case.kind] = kinds.get(case.kind, 0) + 1
    assert len(answers) >= 300
    assert len(kinds) >= 14
    assert min(kinds.values()) >= 15
    worked = evaluate.load_cases(evaluate.DATA / "worked.jsonl")
    worked += evaluate.load_cases(evaluate.DATA / "worked_heldout.jsonl")
    slipped = [c for c in worked if c.wrong_steps]
    assert len(slipped) >= 150
    assert all(len(c.expected) == len(c.wrong_steps) for c in slipped)  # each slip's right value
    ids = {c.id for c in worked}
    assert all(c.id.removesuffix("-slip") in ids for c in slipped)  # each slip has its correct twin


def test_bench_verify_prints_every_column_per_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        {"id": "a", "gold": "[2,5)", "response": "Final answer: $[2,5]$", "label": {"final": "incorrect"},
         "tags": ["answer", "interval"]},
        {"id": "w", "gold": "7", "response": "So 3 + 4 = 7.\nThe answer is 7.", "label": {"final": "correct"},
         "tags": ["worked", "plain"]},
        {"id": "w-slip", "gold": "7", "response": "So 3 + 4 = 8.\nThe answer is 8.",
         "label": {"final": "incorrect", "wrong_steps": ["3 + 4 = 8"], "expected": ["7"]},
         "tags": ["worked", "slip"]},
    ]  # fmt: skip
    path = tmp_path / "set.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    parser = argparse.ArgumentParser()
    evaluate.add_arguments(parser)
    assert evaluate.run(parser.parse_args(["--set", str(path)])) == 0
    out = capsys.readouterr().out
    for column in ("mathcheck final", "Math-Verify final", "slips caught", "right value", "false flags",
                   "median ms", "worst ms", "not confident"):  # fmt: skip
        assert column in out
    lines = {line.split("|")[0].strip(): line for line in out.splitlines() if "|" in line}
    assert "1/1 (100.0%)" in lines["interval"]
    assert "2/2 (100.0%)" in lines["worked solutions"]
    assert "1/1 (100.0%)" in lines["worked solutions"].split("|")[4]  # the slip, caught
    assert "0.00 per 100" in out
    assert "over the 3.0 s budget: 0" in out
    by_set = [cell.strip() for cell in lines["set"].split("|")]  # one row per set file as well
    assert by_set == ["set", "3", "3/3 (100.0%)", "3/3 (100.0%)", "1/1 (100.0%)", "0", "0/1 (0.0%)"]


def test_the_fresh_answers_set_is_its_own_row() -> None:
    assert evaluate.DATA / "answers_fresh.jsonl" in evaluate.SETS
    cases = evaluate.load_cases(evaluate.DATA / "answers_fresh.jsonl")
    assert {c.kind for c in cases} == {"fresh answers"}
    labels = [c.final for c in cases]
    assert len(cases) >= 140 and labels.count("incorrect") >= len(cases) // 4  # wrong answers too
