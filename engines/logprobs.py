"""Log-probabilities from a row of logits (pure numpy, no model): what OpenAI's logprobs report.

The values are the model's own distribution (a log-softmax of the raw logits), before
temperature, top-p or a grammar mask, the way vLLM reports them by default.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from backends.base import TokenLogprob


def token_logprob(row: Any, token: int, top: int, text_of: Callable[[int], str]) -> TokenLogprob:
    """``row``: one step's logits (numpy float32, vocabulary long); ``top``: alternatives wanted."""
    import numpy as np

    peak = float(row.max())
    log_total = peak + float(np.log(np.exp(row - peak).sum(dtype=np.float64)))
    alternatives: tuple[tuple[str, float], ...] = ()
    if top > 0:
        best = np.argpartition(-row, top - 1)[:top]
        best = best[np.argsort(-row[best], kind="stable")]
        alternatives = tuple((text_of(int(i)), float(row[i]) - log_total) for i in best)
    return TokenLogprob(text_of(token), float(row[token]) - log_total, alternatives)


class TokenTexts:
    """Token id -> its text, decoded once; the tokenizer is shared, hence the lock."""

    def __init__(self, tokenizer: Any, lock: Any) -> None:
        self._tokenizer, self._lock = tokenizer, lock
        self._texts: dict[int, str] = {}

    def __call__(self, token: int) -> str:
        text = self._texts.get(token)
        if text is None:
            with self._lock:
                text = self._tokenizer.decode([token])
            self._texts[token] = text
        return text
