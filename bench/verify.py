"""`slm-playground bench verify`: mathcheck beside Math-Verify alone, on any labelled set.

    slm-playground bench verify --set ../shared/reference/verify-sets/mathverify-0.9.0-tests.jsonl

A set is JSON lines of {gold, response, expected} (``expected``: true when the response's answer
equals the gold, as in the shared Math-Verify cases; "correct"/"incorrect" also read), or the
project's labelled sets ({prompt, gold, response, label}), which go to :mod:`mathcheck.evaluate`
with their step checks. Without --set it scores the project's own sets. Each pair set prints one
table row per set with both scores from the same run, the time per answer (wall, through the
sandbox worker; and the worker's CPU time, which a busy machine does not change), and every miss.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Pair:
    id: str
    gold: str
    response: str
    expected: bool


@dataclass
class Score:
    name: str
    rows: int = 0
    mathcheck: int = 0
    math_verify: int = 0
    not_confident: int = 0
    failed: int = 0
    timed_out: int = 0
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)


def _expected(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    return {"correct": True, "incorrect": False}.get(str(value).strip().lower())


def load_pairs(path: Path) -> list[Pair] | None:
    """The {gold, response, expected} rows, or None when the file is a labelled project set.
    Raises ValueError naming the first bad line."""
    pairs: list[Pair] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path.name} line {number}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path.name} line {number}: not an object")
        if "label" in row and not pairs:
            return None
        expected = _expected(row.get("expected"))
        if not isinstance(row.get("response"), str) or row.get("gold") is None or expected is None:
            raise ValueError(f"{path.name} line {number}: needs gold, a string response and expected")
        pairs.append(Pair(str(row.get("id", f"line {number}")), str(row["gold"]), row["response"], expected))
    return pairs


def math_verify_alone(gold: str, response: str) -> bool:
    """Math-Verify 0.9.0 as its users call it, with its defaults: ``verify(parse(gold), parse(response))``."""
    from math_verify import parse, verify

    return bool(verify(parse(gold), parse(response)))


def score_pairs(name: str, pairs: list[Pair], budget_s: float, with_mv: bool, wall_s: float) -> Score:
    from mathcheck.sandbox import verify_response

    score = Score(name, rows=len(pairs))
    for pair in pairs:
        start = time.perf_counter()
        result = verify_response(pair.response, gold=pair.gold, budget_s=budget_s, wall_s=wall_s)
        score.times.append(time.perf_counter() - start)
        score.cpu.append(result.cpu_s)
        ours = (result.final == "correct") == pair.expected
        theirs = with_mv and math_verify_alone(pair.gold, pair.response) == pair.expected
        score.mathcheck += ours
        score.math_verify += theirs
        score.not_confident += not result.confident
        score.failed += result.checker_failed
        score.timed_out += result.timed_out
        if not ours or (with_mv and not theirs):
            who = "both" if not ours and not theirs else ("mathcheck" if not ours else "Math-Verify")
            score.misses.append(
                f"[{who} wrong] {pair.id}: expected {pair.expected}; mathcheck {result.final}"
                f" (answer {result.answer!r}; {'; '.join(result.notes) or 'no notes'});"
                f" gold {_short(pair.gold)} response {_short(pair.response)}"
            )
    return score


def _short(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def machine() -> str:
    from models.native_ops import cpu_model

    cpu = cpu_model() or "?"
    try:
        from importlib.metadata import version

        mv = version("math-verify")
    except Exception:  # not installed: the column says so
        mv = "not installed"
    return f"CPU {cpu} · kernel {platform.release()} · Python {platform.python_version()} · Math-Verify {mv}"


def render(scores: list[Score], with_mv: bool) -> str:
    head = ["set", "rows", "mathcheck", "Math-Verify alone", "not confident", "checker failed",
            "timed out", "median ms", "p90 ms", "max ms", "median CPU ms"]  # fmt: skip
    rows = []
    for s in scores:
        ms = sorted(t * 1000 for t in s.times) or [0.0]
        rows.append([
            s.name, str(s.rows), _pct(s.mathcheck, s.rows),
            _pct(s.math_verify, s.rows) if with_mv else "skipped", str(s.not_confident), str(s.failed),
            str(s.timed_out), f"{statistics.median(ms):.1f}", f"{ms[int(0.9 * (len(ms) - 1))]:.1f}",
            f"{ms[-1]:.1f}", f"{statistics.median(s.cpu) * 1000:.1f}" if s.cpu else "-",
        ])  # fmt: skip
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    fmt = " | ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*head), "-+-".join("-" * w for w in widths), *(fmt.format(*r) for r in rows)]
    return "\n".join(lines)


def _pct(a: int, b: int) -> str:
    return f"{a}/{b} ({a / b:.1%})" if b else "-"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set", type=Path, action="append", help="JSON lines to score (repeat; default: the project's sets)"
    )
    parser.add_argument("--budget", type=float, default=3.0, help="CPU seconds per answer for mathcheck")
    parser.add_argument(
        "--wall", type=float, default=60.0, help="wall-clock backstop per answer (the budget counts CPU time)"
    )
    parser.add_argument("--no-math-verify", action="store_true", help="skip the Math-Verify column")
    parser.add_argument("-v", "--verbose", action="store_true", help="project sets: list every disagreement")


def run(args: argparse.Namespace) -> int:
    from mathcheck import evaluate

    paths: list[Path] = args.set or []
    try:
        loaded = [(path, load_pairs(path)) for path in paths]
    except (OSError, ValueError) as exc:
        print(f"bench verify: {exc}", file=sys.stderr)
        return 2
    labelled = [path for path, pairs in loaded if pairs is None]
    pair_sets = [(path, pairs) for path, pairs in loaded if pairs is not None]
    with_mv = not args.no_math_verify
    if with_mv and pair_sets:
        try:
            import math_verify  # noqa: F401
        except ImportError:
            print("bench verify: math_verify is not installed; its column is skipped", file=sys.stderr)
            with_mv = False
    status = 0
    if labelled or not paths:
        args.set = labelled or None
        status = evaluate.run(args)
    if not pair_sets:
        return status
    from mathcheck.sandbox import warm_up

    warm_up()
    print(machine())
    scores = [score_pairs(path.name, pairs, args.budget, with_mv, args.wall) for path, pairs in pair_sets]
    print(render(scores, with_mv))
    for score in scores:
        if score.misses:
            print(f"\nmisses in {score.name} ({len(score.misses)}):")
            print("\n".join(f"  {miss}" for miss in score.misses))
    return status
