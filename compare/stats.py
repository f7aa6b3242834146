"""Median and p95 per lane and metric over repeated runs ("run xN").

Percentiles use linear interpolation between closest ranks (numpy's default), so p95 of
two runs lies between them rather than jumping to the maximum. Failed or stopped runs do not
count; ``n`` says how many runs each figure rests on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from backends.base import Metrics
from compare.runner import ComparisonResult

METRICS: dict[str, str] = {
    "ttft_s": "time to first token (s)",
    "decode_tokens_per_s": "decode tokens/s",
    "completion_tokens": "completion tokens",
    "prompt_tokens": "prompt tokens",
    "total_s": "total time (s)",
}
"""Metric field -> human label, in display order."""


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    p95: float
    min: float
    max: float


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation; values need not be sorted."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values: Sequence[float | None]) -> Summary | None:
    present = [float(v) for v in values if v is not None]
    if not present:
        return None
    return Summary(
        n=len(present),
        median=percentile(present, 50),
        p95=percentile(present, 95),
        min=min(present),
        max=max(present),
    )


def metric_stats(metrics: Sequence[Metrics]) -> dict[str, Summary | None]:
    return {name: summarize([getattr(m, name) for m in metrics]) for name in METRICS}


def lane_stats(runs: Sequence[ComparisonResult]) -> list[dict[str, Summary | None]]:
    """Per lane (by index), per metric, over the runs in which that lane finished."""
    if not runs:
        return []
    lanes = len(runs[0].lanes)
    per_lane: list[list[Metrics]] = [[] for _ in range(lanes)]
    for run in runs:
        for lane in run.lanes:
            if lane.status == "done" and lane.metrics is not None:
                per_lane[lane.index].append(lane.metrics)
    return [metric_stats(metrics) for metrics in per_lane]
