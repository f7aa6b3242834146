"""Choosing the next token from a row of logits, per request (pure numpy, no model).

Each request in a batch keeps its own settings and its own random generator, so a seeded
request draws the same tokens whatever else shares the decoding step.
"""

from __future__ import annotations

import numpy as np

from backends.base import SamplingOptions


class Sampler:
    """Greedy (temperature 0) or temperature / top-k / top-p sampling for one request."""

    def __init__(self, options: SamplingOptions) -> None:
        self.greedy = options.greedy
        self.temperature = options.temperature
        self.top_k = options.top_k
        self.top_p = options.top_p
        self._rng = np.random.default_rng(options.seed)

    def pick(self, logits: np.ndarray) -> int:
        """The next token for one row of logits (shape [vocab])."""
        if self.greedy:
            return int(np.argmax(logits))
        scaled = logits.astype(np.float64) / self.temperature
        if 0 < self.top_k < scaled.size:
            keep = np.argpartition(scaled, -self.top_k)[-self.top_k :]
        else:
            keep = np.arange(scaled.size)
        values = scaled[keep]
        order = np.argsort(values)[::-1]  # most likely first
        keep, values = keep[order], values[order]
        probs = np.exp(values - values[0])
        probs /= probs.sum()
        if self.top_p < 1.0:
            # the smallest set whose mass reaches top_p (always at least the most likely token)
            cut = int(np.searchsorted(np.cumsum(probs), self.top_p)) + 1
            keep, probs = keep[:cut], probs[:cut] / probs[:cut].sum()
        return int(keep[self._rng.choice(keep.size, p=probs)])
