"""Choosing the next token from a row of logits, per request (pure numpy, no model).

Each request in a batch keeps its own settings and its own random generator, so a seeded
request draws the same tokens whatever else shares the decoding step.

Why no full sort: sorting SmolLM2's 49k-token vocabulary (and exponentials in float64) cost
5-6 ms a token at this project's default temperature and top-p on an AMD EPYC, as much as a
one-row decoding step of the model, and the scheduler samples every row of a step in turn.
Only a nucleus's cut needs an order, and it is made of the heaviest tokens: one comparison over
the vocabulary finds them, and only their weights are sorted. The whole distribution (top_p 1)
needs no order at all: a draw walks block sums, then one block. Weights are float32 (numpy's
float32 exponential took a fifth of float64's time here), sums float64.
"""

from __future__ import annotations

import numpy as np

from backends.base import SamplingOptions

_FLOORS = (1e-3, 1e-6, 1e-9)
"""Weights, relative to the most likely token's, tried in turn as the floor of a nucleus's
candidates: a candidate set that holds the nucleus's mass holds the nucleus itself."""
_BLOCK = 1024
"""Tokens a block in a draw from the whole distribution."""


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
        row = np.asarray(logits, np.float32)
        # the maximum is subtracted before dividing: logits over a tiny temperature would
        # overflow float32, their differences from the maximum only reach -inf (weight 0)
        temperature = np.float32(self.temperature)
        with np.errstate(over="ignore"):
            if 0 < self.top_k < row.size:
                ids = np.argpartition(row, -self.top_k)[-self.top_k :]
                top = row[ids]
                weights = np.exp((top - top.max()) / temperature)
                return self._nucleus(ids, weights, float(weights.sum(dtype=np.float64)))
            scaled = row - row.max()
            scaled /= temperature
        weights = np.exp(scaled, out=scaled)  # in place: one vocabulary-sized array a token
        if self.top_p >= 1.0:
            return self._anywhere(weights)
        total = float(weights.sum(dtype=np.float64))
        ids = _heaviest(weights, self.top_p * total)
        return self._nucleus(ids, weights[ids], total)

    def _nucleus(self, ids: np.ndarray, weights: np.ndarray, total: float) -> int:
        """Draw among IDS (weights WEIGHTS, shares of TOTAL) those that are the most likely, as
        few as reach top_p of TOTAL (always at least the most likely one; among equal weights
        at the cut, the lower token ids). The cut comes from the sorted weights alone (numpy
        sorts float32 ~10x faster than a stable argsort); the draw needs no order."""
        if self.top_p < 1.0:
            ordered = np.sort(weights)[::-1]
            cumulative = np.cumsum(ordered, dtype=np.float64)
            cut = min(int(np.searchsorted(cumulative / total, self.top_p)) + 1, ordered.size)
            lightest = ordered[cut - 1]
            keep = weights > lightest
            ties = np.flatnonzero(weights == lightest)
            ties = ties[np.argsort(ids[ties], kind="stable")][: cut - int(keep.sum())]
            keep[ties] = True
            ids, weights = ids[keep], weights[keep]
        return int(ids[self._draw(np.cumsum(weights, dtype=np.float64))])

    def _anywhere(self, weights: np.ndarray) -> int:
        """A token drawn from all of WEIGHTS: the block its share falls in, then the token."""
        full = weights.size // _BLOCK * _BLOCK
        sums = weights[:full].reshape(-1, _BLOCK).sum(axis=1, dtype=np.float64)
        blocks = np.cumsum(np.append(sums, weights[full:].sum(dtype=np.float64)))
        target = self._rng.random() * blocks[-1]
        block = min(int(np.searchsorted(blocks, target, side="right")), blocks.size - 1)
        first = block * _BLOCK
        inside = np.cumsum(weights[first : first + _BLOCK], dtype=np.float64)
        target -= blocks[block - 1] if block else 0.0
        return first + min(int(np.searchsorted(inside, target, side="right")), inside.size - 1)

    def _draw(self, cumulative: np.ndarray) -> int:
        """An index drawn with probability proportional to its step in CUMULATIVE."""
        at = int(np.searchsorted(cumulative, self._rng.random() * cumulative[-1], side="right"))
        return min(at, cumulative.size - 1)


def _heaviest(weights: np.ndarray, mass: float) -> np.ndarray:
    """Ids of the heaviest tokens, a set that holds at least MASS of the weight (every token
    heavier than the lightest one it holds is in it, so a nucleus of that mass lies inside)."""
    for floor in _FLOORS:
        ids = np.flatnonzero(weights >= floor)
        if float(weights[ids].sum(dtype=np.float64)) >= mass:
            return ids
    return np.arange(weights.size)
