"""``slm-playground bench math``: run math problems with reference answers through backends and
report accuracy with the verification detail, as a table and an ASCII bar chart.

Problems are (prompt, gold) pairs so any source can feed it (the math preset's examples, a JSONL file).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backends.base import Backend, SamplingOptions
    from mathcheck.verify import Verification

SYSTEM_PROMPT = "Solve the problem step by step. End with 'Final answer:' followed by the answer."
BUILTIN_PROBLEMS: list[tuple[str, str]] = [
    ("What is 17 × 23?", "391"),
    ("Solve for x: 3x + 5 = 20.", "5"),
    ("A train travels at 100 km/h. How many hours does it take to travel 240 km?", "2.4"),
    ("A jacket costs $80 and is 25% off. What is the sale price in dollars?", "60"),
    ("Find the derivative of f(x) = x^3 + 2x^2 - 5x.", "3x^2 + 4x - 5"),
]


@dataclass
class Outcome:
    prompt: str
    gold: str
    response: str
    verification: Verification | None
    seconds: float
    error: str | None = None


@dataclass
class BackendResult:
    name: str
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, final: str) -> int:
        return sum(1 for o in self.outcomes if o.verification is not None and o.verification.final == final)

    @property
    def errors(self) -> int:
        return sum(1 for o in self.outcomes if o.error)

    @property
    def wrong_steps(self) -> int:
        return sum(len(o.verification.wrong_claims) for o in self.outcomes if o.verification is not None)

    @property
    def accuracy(self) -> float:
        return self.count("correct") / len(self.outcomes) if self.outcomes else 0.0


async def _ask(backend: Backend, prompt: str, options: SamplingOptions | None) -> str:
    from backends.base import ChatRequest, Message, SamplingOptions, TextDelta

    request = ChatRequest(
        messages=(Message(role="system", content=SYSTEM_PROMPT), Message(role="user", content=prompt)),
        options=options or SamplingOptions.model_validate({"temperature": 0.0, "max_new_tokens": 512}),
    )
    parts: list[str] = []
    async for event in backend.chat(request):
        if isinstance(event, TextDelta):
            parts.append(event.text)
    return "".join(parts)


async def run_benchmark(
    backends: Sequence[Backend],
    problems: Sequence[tuple[str, str]],
    *,
    options: SamplingOptions | None = None,
    budget_s: float = 3.0,
) -> list[BackendResult]:
    """Ask every backend every problem (one at a time, so timings are not shared) and verify the replies."""
    from backends.errors import BackendError
    from mathcheck.sandbox import verify_response

    results = []
    for backend in backends:
        result = BackendResult(backend.name)
        for prompt, gold in problems:
            start = time.perf_counter()
            try:
                response = await _ask(backend, prompt, options)
            except BackendError as exc:
                result.outcomes.append(Outcome(prompt, gold, "", None, time.perf_counter() - start, str(exc)))
                continue
            seconds = time.perf_counter() - start
            verification = await asyncio.to_thread(
                verify_response, response, prompt=prompt, gold=gold, budget_s=budget_s
            )
            result.outcomes.append(Outcome(prompt, gold, response, verification, seconds))
        results.append(result)
    return results


def render_table(results: Sequence[BackendResult]) -> str:
    head = ["backend", "problems", "correct", "incorrect", "can't check", "errors", "wrong steps", "accuracy"]
    rows = [
        [r.name, str(len(r.outcomes)), str(r.count("correct")), str(r.count("incorrect")),
         str(r.count("unverifiable")), str(r.errors), str(r.wrong_steps), f"{r.accuracy:.0%}"]
        for r in results
    ]  # fmt: skip
    widths = [max(len(x[i]) for x in [head, *rows]) for i in range(len(head))]
    fmt = " | ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(
        [fmt.format(*head), "-+-".join("-" * w for w in widths), *(fmt.format(*r) for r in rows)]
    )


def render_chart(results: Sequence[BackendResult], width: int = 40) -> str:
    """Accuracy as ASCII bars, one per backend."""
    name_width = max((len(r.name) for r in results), default=0)
    lines = []
    for r in results:
        filled = round(r.accuracy * width)
        lines.append(f"{r.name:<{name_width}} |{'█' * filled}{'·' * (width - filled)}| {r.accuracy:.0%}")
    return "\n".join(lines)


def render_details(results: Sequence[BackendResult]) -> str:
    lines = []
    for r in results:
        for o in r.outcomes:
            v = o.verification
            status = o.error or (f"{v.final} ({v.verdict}); answer {v.answer!r}" if v else "?")
            lines.append(f"[{r.name}] {o.prompt[:60]!r} gold {o.gold!r}: {status} · {o.seconds:.2f} s")
            for claim in v.wrong_claims if v else []:
                lines.append(f"    ✗ {claim.text} → {claim.expected}")
    return "\n".join(lines)


def load_problems(path: Path) -> list[tuple[str, str]]:
    """JSON lines with "prompt" and "gold" (or "answer")."""
    problems = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            record = json.loads(line)
            gold = record.get("gold", record.get("answer"))
            if not isinstance(record.get("prompt"), str) or gold is None:
                raise ValueError(f"line {number}: needs 'prompt' and 'gold'")
            problems.append((record["prompt"], str(gold)))
    return problems


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--problems", type=Path, help="JSON lines with prompt and gold (default: a built-in five)"
    )
    parser.add_argument("--backend", action="append", default=[], help="registry label; repeat for several")
    parser.add_argument("--budget", type=float, default=3.0, help="verification seconds per answer")
    parser.add_argument("--details", action="store_true", help="print each problem's verdict and wrong steps")


def run(
    args: argparse.Namespace,
    backends: Sequence[Backend] | None = None,
    problems: Sequence[tuple[str, str]] | None = None,
) -> int:
    """Backends come from the caller (the lead's CLI resolves --backend labels through the registry)."""
    try:
        if args.problems:
            problems = load_problems(args.problems)
        elif problems is None:
            problems = BUILTIN_PROBLEMS
    except (OSError, ValueError, json.JSONDecodeError) as exc:
        print(f"bench math: cannot read problems: {exc}", file=sys.stderr)
        return 2
    if not backends:
        print(
            "bench math: no backend given (the CLI passes backends resolved from --backend)", file=sys.stderr
        )
        return 2
    results = asyncio.run(run_benchmark(backends, problems, budget_s=args.budget))
    print(render_table(results))
    print()
    print(render_chart(results))
    if args.details:
        print()
        print(render_details(results))
    return 0
