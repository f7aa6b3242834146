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


def _softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    scaled = logits.astype(np.float64) / temperature
    weights = np.exp(scaled - scaled.max())
    return weights / weights.sum()


# 2500 tokens (more than two of the sampler's blocks, and a partial one): a few heavy tokens on
# block edges, the rest a long light tail
WIDE = np.random.default_rng(3).normal(-4.0, 1.0, 2500).astype(np.float32)
WIDE[[3, 1023, 1024, 2047, 2499]] = [2.0, 1.5, 1.0, 0.5, 1.8]


def _frequencies(options: SamplingOptions, draws: int) -> np.ndarray:
    sampler = Sampler(options)
    return np.bincount([sampler.pick(WIDE) for _ in range(draws)], minlength=WIDE.size) / draws


def test_draws_from_the_whole_vocabulary_follow_the_softmax() -> None:
    draws = 6000
    seen = _frequencies(SamplingOptions(temperature=0.8, seed=11), draws)
    exact = _softmax(WIDE, 0.8)
    heavy = [3, 1023, 1024, 2047, 2499]
    sigma = np.sqrt(exact[heavy] * (1 - exact[heavy]) / draws)
    assert np.all(np.abs(seen[heavy] - exact[heavy]) < 4 * sigma), (seen[heavy], exact[heavy])
    tail = np.setdiff1d(np.arange(WIDE.size), heavy)
    assert abs(seen[tail].sum() - exact[tail].sum()) < 4 * np.sqrt(exact[tail].sum() / draws)


def test_a_nucleus_is_the_most_likely_tokens_up_to_top_p_renormalized() -> None:
    exact = _softmax(WIDE, 1.0)
    order = np.argsort(-exact)
    cut = int(np.searchsorted(np.cumsum(exact[order]), 0.7)) + 1
    nucleus = order[:cut]
    draws = 4000
    seen = _frequencies(SamplingOptions(temperature=1.0, top_p=0.7, seed=5), draws)
    assert set(np.flatnonzero(seen)) <= set(nucleus.tolist())
    inside = exact[nucleus] / exact[nucleus].sum()
    # the 5 heaviest one by one, the long light rest together (one by one, a few of its hundreds
    # of rare tokens would stray past any fixed bound)
    heavy, light = slice(0, 5), slice(5, None)
    sigma = np.sqrt(inside[heavy] * (1 - inside[heavy]) / draws)
    assert np.all(np.abs(seen[nucleus][heavy] - inside[heavy]) < 4 * sigma)
    rest = inside[light].sum()
    assert abs(seen[nucleus][light].sum() - rest) < 4 * np.sqrt(rest * (1 - rest) / draws)


def test_top_k_draws_follow_the_softmax_of_the_k_largest() -> None:
    draws = 3000
    seen = _frequencies(SamplingOptions(temperature=0.5, top_k=3, seed=9), draws)
    top = np.argsort(-WIDE)[:3]
    assert set(np.flatnonzero(seen)) == set(top.tolist())
    inside = _softmax(WIDE[top], 0.5)
    assert np.all(np.abs(seen[top] - inside) < 4 * np.sqrt(inside * (1 - inside) / draws))


def test_heaviest_holds_the_mass_asked_for_or_every_token() -> None:
    from engines.sampling import _heaviest

    weights = np.array([1.0, 0.5, 1e-4, 1e-7, 1e-10], np.float32)
    assert sorted(_heaviest(weights, 1.4).tolist()) == [0, 1]
    assert sorted(_heaviest(weights, 1.50005).tolist()) == [0, 1, 2]
    assert sorted(_heaviest(weights, float(weights.sum(dtype=np.float64))).tolist()) == [0, 1, 2, 3, 4]


def test_the_nucleus_keeps_the_token_that_crosses_top_p() -> None:
    logits = np.log(np.array([0.05, 0.5, 0.15, 0.3], np.float32))
    drawn = {Sampler(SamplingOptions(temperature=1.0, top_p=0.7, seed=s)).pick(logits) for s in range(200)}
    assert drawn == {1, 3}, "0.5 alone is under 0.7; with 0.3 the nucleus reaches it"


def test_top_k_then_top_p_within_the_k_renormalized() -> None:
    logits = np.log(np.array([0.06, 0.4, 0.2, 0.3, 0.04], np.float32))
    options = {"temperature": 1.0, "top_k": 3, "top_p": 0.6}
    draws = [Sampler(SamplingOptions(**options, seed=s)).pick(logits) for s in range(600)]
    # among the 3 largest (0.4, 0.3, 0.2 -> 0.44, 0.33, 0.22), 0.44 + 0.33 is the first to reach 0.6
    assert set(draws) == {1, 3}
    share = draws.count(1) / len(draws)
    assert abs(share - 0.4 / 0.7) < 4 * np.sqrt(0.57 * 0.43 / len(draws))


def test_a_tiny_temperature_picks_the_largest_logit() -> None:
    row = np.zeros(49152, np.float32)
    row[777] = 20.0
    for top_p in (1.0, 0.8):
        assert Sampler(SamplingOptions(temperature=1e-38, top_p=top_p, seed=1)).pick(row) == 777


def test_equal_weights_at_the_cut_go_to_the_lower_token_ids() -> None:
    logits = np.array([0.0, 1.0, 1.0, 1.0, 0.0], np.float32)  # 0.11, then three of 0.26 each
    drawn = {Sampler(SamplingOptions(temperature=1.0, top_p=0.5, seed=s)).pick(logits) for s in range(200)}
    assert drawn == {1, 2}
    options = SamplingOptions(temperature=1.0, top_k=4, top_p=0.5)
    top_k = {Sampler(options.model_copy(update={"seed": s})).pick(logits) for s in range(200)}
    assert top_k == {1, 2}
