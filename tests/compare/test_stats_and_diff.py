"""Median/p95 over repeated runs, and where two answers diverge."""

from __future__ import annotations

import pytest

from backends.base import Metrics, SamplingOptions
from compare.diff import first_divergence, highlighted, markdown_diff, similarity, word_diff, words
from compare.runner import ComparisonResult, LaneResult
from compare.stats import lane_stats, percentile, summarize


def test_percentile_interpolates_like_numpy() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 95) == pytest.approx(4.8)
    assert percentile([2.0, 4.0], 95) == pytest.approx(3.9)
    assert percentile([7.0], 95) == 7.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_summarize_skips_missing_values() -> None:
    s = summarize([None, 1.0, 3.0, None, 2.0])
    assert s is not None
    assert (s.n, s.median, s.min, s.max) == (3, 2.0, 1.0, 3.0)
    assert summarize([None, None]) is None


def _metrics(ttft: float, rate: float | None, tokens: int, total: float) -> Metrics:
    return Metrics("b", "m", 10, tokens, ttft, total, rate, "stop")


def _run(*lanes: tuple[str, Metrics | None]) -> ComparisonResult:
    results = [
        LaneResult(i, "t", "", "b", "scripted", "m", SamplingOptions(), status=status, metrics=m)  # type: ignore[arg-type]
        for i, (status, m) in enumerate(lanes)
    ]
    return ComparisonResult(results, 1.0, "")


def test_lane_stats_per_lane_and_metric_over_finished_runs() -> None:
    runs = [
        _run(("done", _metrics(0.1, 50.0, 20, 0.5)), ("done", _metrics(0.3, 10.0, 20, 2.0))),
        _run(("done", _metrics(0.2, 40.0, 22, 0.7)), ("error", None)),
        _run(("done", _metrics(0.4, 30.0, 24, 0.9)), ("done", _metrics(0.5, 12.0, 21, 1.8))),
    ]
    first, second = lane_stats(runs)
    assert first["ttft_s"] is not None
    assert first["ttft_s"].median == pytest.approx(0.2)
    assert first["ttft_s"].p95 == pytest.approx(0.38)
    assert first["decode_tokens_per_s"] is not None
    assert first["decode_tokens_per_s"].median == 40.0
    assert first["completion_tokens"] is not None
    assert first["completion_tokens"].p95 == pytest.approx(23.8)
    assert second["total_s"] is not None
    assert second["total_s"].n == 2
    assert second["total_s"].median == pytest.approx(1.9)


def test_first_divergence_by_character_and_word() -> None:
    a = "The answer is 391 because 17 times 23 is 391."
    b = "The answer is 390 since 17 times 23 is 390."
    d = first_divergence(a, b)
    assert d is not None
    assert d.char_index == 16
    assert d.word_index == 3
    assert d.a_context.startswith("391 because")
    assert d.b_context.startswith("390 since")
    assert first_divergence(a, a) is None
    prefix = first_divergence("one two", "one two three")
    assert prefix is not None
    assert (prefix.char_index, prefix.word_index) == (7, 2)
    assert first_divergence("a  b", "a b") is not None  # spacing counts for the character index


def test_word_diff_keeps_text_and_marks_changes() -> None:
    a = "The answer is 391 because 17 times 23 is 391."
    b = "The answer is 390 since 17 times 23 is 390."
    segments = word_diff(a, b)
    assert "".join(s.text for s in segments if s.op != "delete") == b
    assert "".join(s.text for s in segments if s.op != "insert").split() == a.split()
    assert [(s.op, s.text.strip()) for s in segments if s.op != "equal"] == [
        ("delete", "391 because"), ("insert", "390 since"), ("delete", "391."), ("insert", "390."),
    ]  # fmt: skip
    assert highlighted(segments)[1] == ("391 because ", "-")
    assert markdown_diff(segments).startswith("The answer is ~~391 because~~ **390 since**")
    assert similarity(a, b) == pytest.approx(14 / 20)
    assert similarity("", "") == 1.0
    assert "".join(words("  x  y\n")) == "  x  y\n"
