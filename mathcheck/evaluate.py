"""``slm-playground bench verify``: score the checker on hand-labelled sets, next to Math-Verify.

Ten sets in tests/mathcheck/data, all written for this project: eval_set and heldout_set (mixed),
answers (final answers of every kind against a reference), worked (human-style worked solutions
from templates, each once correct and once with a planted slip whose step and right value are
labelled), the two *_heldout sets (the same kinds, written by hand after the checker was tuned
on the others), answers_fresh ("fresh answers": final answers phrased the ways models and people
end them, written before reading the extraction rules, with the lead's spot cases), and the
model-style solutions (solutions, solutions_fresh, and solutions_fresh2: a fresh batch written
after the tuning; a set's first line says who wrote it and when). Printed in one run, per kind:
final-verdict agreement for mathcheck and for Math-Verify alone (default settings),
slips caught (and with the right value), false "wrong" flags on correct steps, the median and
worst time per message, and how many verdicts were not confident.
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

DATA = Path(__file__).resolve().parent.parent / "tests" / "mathcheck" / "data"
DEFAULT_SET = DATA / "eval_set.jsonl"
SETS = tuple(
    DATA / f"{name}.jsonl"
    for name in (
        "eval_set",
        "heldout_set",
        "answers",
        "answers_heldout",
        "answers_fresh",
        "worked",
        "worked_heldout",
        "solutions",
        "solutions_fresh",
        "solutions_fresh2",
    )
)


@dataclass
class Case:
    id: str
    prompt: str | None
    gold: str | None
    response: str
    final: str
    wrong_steps: list[str]
    tags: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)
    """The right value of each planted wrong step, where labelled."""
    source: str = "eval_set"

    @property
    def kind(self) -> str:
        if self.tags[:1] == ["answer"]:
            return self.tags[1]
        if self.tags[:2] == ["worked", "model-style"]:
            return f"model-style ({self.source})"
        if self.tags[:1] == ["worked"]:
            return "worked, hand-written" if "heldout" in self.tags else "worked solutions"
        return f"mixed ({self.source})"

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
                    list(label.get("wrong_steps", [])), list(raw.get("tags", [])),
                    list(label.get("expected", [])), path.stem)  # fmt: skip
        case.wrong_spans()
        cases.append(case)
    return cases


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


@dataclass
class Tally:
    agree: int = 0
    mv_agree: int = 0
    total: int = 0
    planted: int = 0
    caught: int = 0
    right_value: int = 0
    valued: int = 0
    """Caught slips whose right value is labelled."""
    false_flags: int = 0
    correct_solutions: int = 0
    flagged_correct_solutions: int = 0
    not_confident: int = 0
    times: list[float] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        names = ("agree", "mv_agree", "total", "planted", "caught", "right_value", "valued", "false_flags",
                 "correct_solutions", "flagged_correct_solutions", "not_confident")  # fmt: skip
        for name in names:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.times += other.times


def _same_value(shown: str | None, expected: str) -> bool:
    if shown is None:
        return False
    head = shown.split("≈")[-1].strip().split(" ")[0].removeprefix("\\").lstrip("$")
    return head == expected.removeprefix("\\").lstrip("$")


def score_mathcheck(case: Case, tally: Tally, budget_s: float, misses: list[str]) -> None:
    from mathcheck.sandbox import verify_response

    start = time.perf_counter()
    result = verify_response(case.response, prompt=case.prompt, gold=case.gold, budget_s=budget_s)
    tally.times.append(time.perf_counter() - start)
    tally.total += 1
    tally.not_confident += not result.confident
    if result.final == case.final:
        tally.agree += 1
    else:
        misses.append(f"{case.id}: final {result.final} (label {case.final}); answer {result.answer!r}; "
                      f"{'; '.join(result.notes)}")  # fmt: skip
    planted = case.wrong_spans()
    flagged = [c for c in result.claims if c.verdict == "wrong"]
    tally.planted += len(planted)
    for k, span in enumerate(planted):
        hit = [c for c in flagged if _overlaps(span, c.span)]
        if hit:
            tally.caught += 1
            tally.valued += k < len(case.expected)
            if k < len(case.expected) and _same_value(hit[0].expected, case.expected[k]):
                tally.right_value += 1
            elif k < len(case.expected):
                misses.append(
                    f"{case.id}: {hit[0].text!r} expects {hit[0].expected!r}, label {case.expected[k]!r}"
                )
        else:
            claims = [(c.text, c.verdict, c.note) for c in result.claims if _overlaps(span, c.span)]
            misses.append(f"{case.id}: missed slip {case.response[span[0] : span[1]]!r} {claims}")
    false = [c for c in flagged if not any(_overlaps(span, c.span) for span in planted)]
    tally.false_flags += len(false)
    for claim in false:
        misses.append(f"{case.id}: FALSE FLAG {claim.text!r} (expected {claim.expected})")
    if not planted and case.tags[:1] == ["worked"]:
        tally.correct_solutions += 1
        tally.flagged_correct_solutions += bool(false)


def math_verify_final(case: Case) -> str:
    """Math-Verify alone with its default settings, on the whole response."""
    from math_verify import parse, verify

    if case.gold is None:
        return "unverifiable"  # Math-Verify needs a reference
    gold = parse(f"${case.gold}$") or parse(case.gold)
    if not gold:
        return "unverifiable"
    answer = parse(case.response)
    return "correct" if answer and verify(gold, answer) else "incorrect"


def _pct(a: int, b: int) -> str:
    return f"{a}/{b} ({a / b:.1%})" if b else "-"


def _table(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    fmt = " | ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(
        [fmt.format(*head), "-+-".join("-" * w for w in widths), *[fmt.format(*r) for r in rows]]
    )


def render(tallies: dict[str, Tally], with_mv: bool) -> str:
    head = ["kind", "cases", "mathcheck final", "Math-Verify final", "slips caught", "right value",
            "false flags", "median ms", "worst ms", "not confident"]  # fmt: skip
    total = Tally()
    rows = []
    for kind, t in [*sorted(tallies.items()), ("ALL", total)]:
        if kind != "ALL":
            total.add(t)
        rows.append([
            kind, str(t.total), _pct(t.agree, t.total), _pct(t.mv_agree, t.total) if with_mv else "skipped",
            _pct(t.caught, t.planted), _pct(t.right_value, t.valued),
            str(t.false_flags), f"{statistics.median(t.times) * 1000:.1f}" if t.times else "-",
            f"{max(t.times) * 1000:.1f}" if t.times else "-", str(t.not_confident),
        ])  # fmt: skip
    worked = Tally()
    for kind, t in tallies.items():
        if kind.startswith(("worked", "model-style")):
            worked.add(t)
    per100 = 100 * worked.flagged_correct_solutions / max(1, worked.correct_solutions)
    foot = (f"correct worked solutions with a false 'wrong' flag: {worked.flagged_correct_solutions}/"
            f"{worked.correct_solutions} ({per100:.2f} per 100)")  # fmt: skip
    return _table(head, rows) + "\n" + foot


def render_sets(by_set: dict[str, Tally], with_mv: bool) -> str:
    """One row per set file: final verdicts beside Math-Verify's, slips, false flags."""
    head = ["set", "cases", "mathcheck final", "Math-Verify final", "slips caught", "false flags",
            "correct solutions flagged"]  # fmt: skip
    rows = [
        [name, str(t.total), _pct(t.agree, t.total), _pct(t.mv_agree, t.total) if with_mv else "skipped",
         _pct(t.caught, t.planted), str(t.false_flags),
         _pct(t.flagged_correct_solutions, t.correct_solutions)]
        for name, t in by_set.items()
    ]  # fmt: skip
    return _table(head, rows)


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
    parser.add_argument(
        "--set", type=Path, action="append", help="labelled JSON-lines set (repeat; default: all three)"
    )
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per message for mathcheck")
    parser.add_argument("--no-math-verify", action="store_true", help="skip the Math-Verify comparison")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every disagreement")


def run(args: argparse.Namespace) -> int:
    paths = args.set or [path for path in SETS if path.exists()]
    try:
        cases = [case for path in paths for case in load_cases(path)]
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        print(f"bench verify: cannot load the sets: {exc}", file=sys.stderr)
        return 2
    with_mv = not args.no_math_verify
    if with_mv:
        try:
            import math_verify  # noqa: F401
        except ImportError:
            print("bench verify: math_verify is not installed; its column is skipped", file=sys.stderr)
            with_mv = False
    from mathcheck.sandbox import warm_up

    warm_up()
    print(f"sets: {', '.join(p.name for p in paths)} · {len(cases)} cases · budget {args.budget:.1f} s")
    tallies: dict[str, Tally] = {}
    misses: list[str] = []
    mv_misses: list[str] = []
    by_set: dict[str, Tally] = {}
    for case in cases:
        tally = Tally()
        score_mathcheck(case, tally, args.budget, misses)
        if with_mv:
            final = math_verify_final(case)
            tally.mv_agree += final == case.final
            if final != case.final:
                mv_misses.append(f"{case.id}: final {final} (label {case.final})")
        tallies.setdefault(case.kind, Tally()).add(tally)
        by_set.setdefault(case.source, Tally()).add(tally)
    print(render(tallies, with_mv))
    print()
    print(render_sets(by_set, with_mv))
    over = sum(t > args.budget for tally in tallies.values() for t in tally.times)
    print(f"mathcheck messages over the {args.budget:.1f} s budget: {over}")
    if args.verbose:
        for miss in misses:
            print(f"  [mathcheck] {miss}")
        for miss in mv_misses:
            print(f"  [math-verify] {miss}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mathcheck.evaluate", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
