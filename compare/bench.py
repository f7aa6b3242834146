"""``slm-playground bench compare``: does running lanes side by side cost anything?

Measures the wall time of the slowest lane alone, then of a 2-lane and a 3-lane comparison
(the first lanes given), and prints the ratio; with truly parallel lanes a comparison of remote
lanes takes about as long as its slowest lane (target: at most 1.15x). Lanes of one in-process
engine share its batch, so their ratio says what batching costs; lanes of different in-process
engines run in turn (compare.budget), so their wall time is about the sum, by design: those
rows say "in turn" instead of a verdict.

    slm-playground bench compare --lane vllm:MODEL@URL --lane ollama:MODEL@HOST --lane openai:M@URL
    slm-playground bench compare --simulate      # paced in-process lanes that only wait (I/O-like)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from backends.base import (
    Backend,
    ChatRequest,
    Health,
    ModelInfo,
    SamplingOptions,
    StreamEvent,
    TextDelta,
    Usage,
)
from compare.budget import plan_turns

if TYPE_CHECKING:
    from compare.runner import Lane

TARGET_RATIO = 1.15


class PacedBackend(Backend):
    """Streams ``tokens`` words, one per ``delay_s``, after ``ttft_s``: a server that only waits."""

    kind = "simulated"

    def __init__(self, name: str, *, tokens: int, delay_s: float, ttft_s: float = 0.05) -> None:
        super().__init__(name)
        self.tokens, self.delay_s, self.ttft_s = tokens, delay_s, ttft_s

    async def _stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        await asyncio.sleep(self.ttft_s)
        count = min(self.tokens, request.options.max_new_tokens)
        for i in range(count):
            if i:
                await asyncio.sleep(self.delay_s)
            yield TextDelta(f"w{i} ")
        yield Usage(prompt_tokens=len(request.messages), completion_tokens=count, finish_reason="stop")

    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo("paced")]

    async def health(self) -> Health:
        return Health("ready", "simulated")


def simulated_lanes() -> list[Lane]:
    from compare.runner import Lane

    speeds = [(60, 0.010), (60, 0.015), (60, 0.020)]  # ~0.65 s, ~0.95 s, ~1.25 s
    return [
        Lane(PacedBackend(f"paced-{i + 1}", tokens=n, delay_s=d), spec=f"simulated {1 / d:.0f} tok/s")
        for i, (n, d) in enumerate(speeds)
    ]


async def _wall(lanes: list[Lane], prompt: str, options: SamplingOptions, timeout_s: float) -> float:
    from compare.runner import Comparison

    start = time.perf_counter()
    result = await Comparison(lanes, prompt=prompt, options=options, timeout_s=timeout_s).run()
    failed = [f"{lane.title}: {lane.error or lane.status}" for lane in result.lanes if lane.status != "done"]
    if failed:
        raise RuntimeError("lane failed during the benchmark: " + "; ".join(failed))
    return time.perf_counter() - start


async def measure(
    lanes: list[Lane], *, prompt: str, options: SamplingOptions, repeats: int, timeout_s: float
) -> dict[str, Any]:
    """Median wall times: each lane alone, then the first 2 and first 3 lanes together."""
    await _wall(lanes, prompt, options, timeout_s)  # warm-up: connections, model loads
    alone = []
    for lane in lanes:
        alone.append(
            statistics.median([await _wall([lane], prompt, options, timeout_s) for _ in range(repeats)])
        )
    rows = []
    for size in (2, 3):
        if len(lanes) < size:
            continue
        together = statistics.median(
            [await _wall(lanes[:size], prompt, options, timeout_s) for _ in range(repeats)]
        )
        slowest = max(alone[:size])
        in_turn = len(plan_turns([lane.backend for lane in lanes[:size]])) > 1
        rows.append(
            {
                "lanes": size,
                "wall_s": together,
                "slowest_alone_s": slowest,
                "ratio": together / slowest,
                "in_turn": in_turn,
            }
        )
    return {
        "alone": [
            {"lane": lane.spec or lane.title, "wall_s": wall} for lane, wall in zip(lanes, alone, strict=True)
        ],
        "comparisons": rows,
        "repeats": repeats,
        "target_ratio": TARGET_RATIO,
    }


def format_table(report: dict[str, Any]) -> str:
    lines = [f"{'lane alone':<60} {'wall (s)':>9}"]
    lines += [f"{row['lane'][:60]:<60} {row['wall_s']:>9.3f}" for row in report["alone"]]
    lines += [
        "",
        f"{'comparison':<12} {'wall (s)':>9} {'slowest alone (s)':>18} {'ratio':>7}  "
        f"target <= {TARGET_RATIO}",
    ]
    for row in report["comparisons"]:
        verdict = "ok" if row["ratio"] <= TARGET_RATIO else "over"
        if row.get("in_turn"):
            verdict = "in turn (different in-process engines: about the sum)"
        lines.append(
            f"{row['lanes']} lanes{'':<5} {row['wall_s']:>9.3f} {row['slowest_alone_s']:>18.3f} "
            f"{row['ratio']:>7.3f}  {verdict}"
        )
    lines.append(f"(median of {report['repeats']} repeats each)")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lane", action="append", default=[], metavar="SPEC", help="2 or 3 lane specs (see compare)"
    )
    parser.add_argument("--simulate", action="store_true", help="use 3 paced in-process lanes that only wait")
    parser.add_argument(
        "--prompt", default="Count from one to thirty in words.", help="prompt for every lane"
    )
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="measurements per row (median)")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    from compare.service import SetupError

    if not args.simulate and not 2 <= len(args.lane) <= 3:
        print("slm-playground bench compare: give 2 or 3 --lane specs, or --simulate", file=sys.stderr)
        return 2
    options = SamplingOptions(temperature=0.0, max_new_tokens=args.max_new_tokens)

    async def main() -> dict[str, Any]:
        from compare.lanes import backend_for_lane, parse_lane
        from compare.runner import Lane
        from runtime.registry import BackendRegistry
        from runtime.settings import settings_from_env

        registry = BackendRegistry(settings_from_env())
        try:
            if args.simulate:
                lanes = simulated_lanes()
            else:
                lanes = []
                for text in args.lane:
                    spec = parse_lane(text, known_labels=registry.labels())
                    backend, model = backend_for_lane(spec, registry)
                    lanes.append(Lane(backend, model=model, spec=str(spec)))
            return await measure(
                lanes,
                prompt=args.prompt,
                options=options,
                repeats=max(1, args.repeats),
                timeout_s=args.timeout,
            )
        finally:
            await registry.aclose()

    try:
        report = asyncio.run(main())
    except (SetupError, ValueError, RuntimeError) as exc:
        print(f"slm-playground bench compare: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if args.json else format_table(report))
    return 0
