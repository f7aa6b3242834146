"""Accuracy with a 95% Wilson score interval, and the per-lane leaderboard figures.

The interval comes from statsmodels or scipy when installed (the well-kept implementations),
else from the closed form, which they agree with: for k correct of n, z = 1.959964,
centre = (k + z²/2) / (n + z²), half = z·sqrt(k(n-k)/n + z²/4) / (n + z²).
"""

from __future__ import annotations

import math
from statistics import median

from compare.stats import percentile

Z95 = 1.959963984540054


def wilson_interval(correct: int, total: int) -> tuple[float, float] | None:
    """The 95% Wilson score interval of correct/total; None when nothing was graded."""
    if total <= 0:
        return None
    if not 0 <= correct <= total:
        raise ValueError(f"correct must be within 0..{total}, got {correct}")
    try:
        from statsmodels.stats.proportion import proportion_confint

        low, high = proportion_confint(correct, total, alpha=0.05, method="wilson")
        return float(low), float(high)
    except ImportError:
        pass
    try:
        from scipy.stats import binomtest

        ci = binomtest(correct, total).proportion_ci(confidence_level=0.95, method="wilson")
        return float(ci.low), float(ci.high)
    except ImportError:
        return wilson_closed_form(correct, total)


def wilson_closed_form(correct: int, total: int) -> tuple[float, float]:
    n, k, z2 = total, correct, Z95 * Z95
    centre = (k + z2 / 2) / (n + z2)
    half = Z95 * math.sqrt(k * (n - k) / n + z2 / 4) / (n + z2)
    return max(0.0, centre - half), min(1.0, centre + half)


def p50_p95(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return median(values), percentile(values, 95)
