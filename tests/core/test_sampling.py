"""Per-request token choice from logits (engines/sampling.py)."""

from __future__ import annotations

import numpy as np

from backends.base import SamplingOptions
from engines.sampling import Sampler

LOGITS = np.array([0.1, 3.0, 2.9, -1.0, 0.5, 2.0], dtype=np.float32)


def test_greedy_takes_the_largest_logit() -> None:
    assert Sampler(SamplingOptions(temperature=0.0)).pick(LOGITS) == 1


def test_top_k_and_top_p_limit_the_candidates() -> None:
    draws = {Sampler(SamplingOptions(temperature=1.5, top_k=2, seed=s)).pick(LOGITS) for s in range(200)}
    assert draws == {1, 2}
    tight = {Sampler(SamplingOptions(temperature=1.0, top_p=0.01, seed=s)).pick(LOGITS) for s in range(50)}
    assert tight == {1}, "the most likely token alone reaches any top_p"


def test_a_seed_draws_the_same_tokens_and_requests_do_not_share_a_generator() -> None:
    options = SamplingOptions(temperature=1.0, seed=42)
    first, second = Sampler(options), Sampler(options)
    other = Sampler(SamplingOptions(temperature=1.0, seed=7))
    a = [first.pick(LOGITS) for _ in range(30)]
    [other.pick(LOGITS) for _ in range(30)]  # interleaved draws of another request change nothing
    assert a == [second.pick(LOGITS) for _ in range(30)]


def test_temperature_spreads_the_draws() -> None:
    draws = [Sampler(SamplingOptions(temperature=2.0, seed=s)).pick(LOGITS) for s in range(300)]
    counts = np.bincount(draws, minlength=LOGITS.size)
    assert counts[1] > counts[3] and counts[2] > 0 and counts.sum() == 300
