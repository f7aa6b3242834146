"""``slm-playground bench verify``: score the checker on a hand-labelled set, next to Math-Verify.

Each line of the set has prompt, gold (or null), response and a label written by a human grader:
the final verdict ("correct", "incorrect", or "unverifiable" when there is neither a reference nor a
computable prompt) and the exact text of each planted wrong step. Printed: final-verdict agreement,
recall of planted wrong steps, "wrong" flags on correct steps, and time per message, for both checkers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_SET = Path(__file__).resolve().parent.parent / "tests" / "mathcheck" / "data" / "eval_set.jsonl"


@dataclass
class Case:
    id: str
    prompt: str | None
    gold: str | None
    response: str
    final: str
    wrong_steps: list[str]
    tags: list[str] = field(default_factory=list)

    def wrong_spans(self) -> list[tuple[int, int]]:
        spans = []
        for step in self.wrong_steps:
            at = self.response.find(step)
            if at < 0:
                raise ValueError(f"{self.id}: wrong step {step!r} is not in the response")
            spans.append((at, at + len(step)))
        return spans


def load_cases(path: Path = DEFAULT_SET) -> list[Case]:
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        raw = json.loads(line)
        label = raw["label"]
        if label["final"] not in ("correct", "incorrect", "unverifiable"):
            raise ValueError(f"line {number}: bad label {label['final']!r}")
        case = Case(raw["id"], raw.get("prompt"), raw.get("gold"), raw["response"], label["final"],
                    list(label.get("wrong_steps", [])), list(raw.get("tags", [])))  # fmt: skip
        case.wrong_spans()
        cases.append(case)
    return cases


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


@dataclass
class Score:
    name: str
    agree: int = 0
    total: int = 0
    planted_found: int = 0
    planted: int = 0
    false_flags: int = 0
    steps_checked: bool = True
    times: list[float] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)

    def row(self) -> list[str]:
        recall = (
            f"{self.planted_found}/{self.planted} ({self.planted_found / self.planted:.0%})"
            if self.planted
            else "-"
        )
        med = statistics.median(self.times) * 1000 if self.times else 0.0
        worst = max(self.times) * 1000 if self.times else 0.0
        return [
            self.name,
            f"{self.agree}/{self.total} ({self.agree / max(1, self.total):.0%})",
            recall if self.steps_checked else "n/a (no step check)",
            str(self.false_flags) if self.steps_checked else "n/a",
            f"{med:.1f}",
            f"{worst:.1f}",
        ]


def score_mathcheck(cases: list[Case], budget_s: float) -> Score:
    from mathcheck.sandbox import verify_response, warm_up

    warm_up()
    score = Score("mathcheck")
    for case in cases:
        start = time.perf_counter()
        result = verify_response(case.response, prompt=case.prompt, gold=case.gold, budget_s=budget_s)
        score.times.append(time.perf_counter() - start)
        score.total += 1
        if result.final == case.final:
            score.agree += 1
        else:
            score.misses.append(
                f"{case.id}: final {result.final} (label {case.final}); answer {result.answer!r}"
            )
        planted = case.wrong_spans()
        score.planted += len(planted)
        flagged = [c for c in result.claims if c.verdict == "wrong"]
        for span in planted:
            if any(_overlaps(span, c.span) for c in flagged):
                score.planted_found += 1
            else:
                score.misses.append(f"{case.id}: missed wrong step {case.response[span[0] : span[1]]!r}")
        for claim in flagged:
            if not any(_overlaps(span, claim.span) for span in planted):
                score.false_flags += 1
                score.misses.append(f"{case.id}: FALSE FLAG {claim.text!r} (expected {claim.expected})")
    return score


def score_math_verify(cases: list[Case]) -> Score:
    score = Score("math-verify", steps_checked=False)
    try:
        from math_verify import parse, verify
    except ImportError:
        score.misses.append("math_verify is not installed")
        return score
    for case in cases:
        start = time.perf_counter()
        if case.gold is None:
            final = "unverifiable"  # Math-Verify needs a reference
        else:
            gold = parse(f"${case.gold}$") or parse(case.gold)
            answer = parse(case.response)
            final = (
                "unverifiable"
                if not gold
                else ("correct" if answer and verify(gold, answer) else "incorrect")
            )
        score.times.append(time.perf_counter() - start)
        score.total += 1
        if final == case.final:
            score.agree += 1
        else:
            score.misses.append(f"{case.id}: final {final} (label {case.final})")
    return score


def _table(rows: list[list[str]]) -> str:
    head = [
        "checker",
        "final agreement",
        "planted wrong steps found",
        "false 'wrong' flags",
        "median ms",
        "worst ms",
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    fmt = " | ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(
        [fmt.format(*head), "-+-".join("-" * w for w in widths), *[fmt.format(*r) for r in rows]]
    )


def composition(cases: list[Case]) -> dict[str, Any]:
    tags: dict[str, int] = {}
    for case in cases:
        for tag in case.tags:
            tags[tag] = tags.get(tag, 0) + 1
    return {
        "cases": len(cases),
        "with reference": sum(c.gold is not None for c in cases),
        "no reference": sum(c.gold is None for c in cases),
        "planted wrong steps": sum(len(c.wrong_steps) for c in cases),
        "labels": {k: sum(c.final == k for c in cases) for k in ("correct", "incorrect", "unverifiable")},
        "tags": dict(sorted(tags.items())),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", type=Path, default=DEFAULT_SET, help="labelled JSON-lines set")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per message for mathcheck")
    parser.add_argument("--no-math-verify", action="store_true", help="skip the Math-Verify comparison")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every disagreement")


def run(args: argparse.Namespace) -> int:
    try:
        cases = load_cases(args.set)
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        print(f"bench verify: cannot load {args.set}: {exc}", file=sys.stderr)
        return 2
    comp = composition(cases)
    print(f"set: {args.set.name} · {json.dumps(comp)}")
    scores = [score_mathcheck(cases, args.budget)]
    if not args.no_math_verify:
        scores.append(score_math_verify(cases))
    print(_table([s.row() for s in scores]))
    over = sum(t > args.budget for t in scores[0].times)
    print(f"mathcheck messages over the {args.budget:.1f} s budget: {over}")
    if args.verbose:
        for s in scores:
            for miss in s.misses:
                print(f"  [{s.name}] {miss}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mathcheck.evaluate", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
