"""The public API: the hard time budget holds from any thread, and results are complete otherwise."""

from __future__ import annotations

import threading
import time

import pytest

from mathcheck import render_markdown, verify_response, warm_up
from mathcheck.sandbox import StepTimeout, _alarm, shutdown


@pytest.fixture(scope="module", autouse=True)
def _workers() -> object:
    warm_up()
    yield
    shutdown()


POWER_TOWERS = (
    "We compute 9^9^9^9 = 5 and (10^1000)! = 2, then 99999999^99999 = 1. "
    + " ".join(f"{i}^{{{i}^{{{i}^{{{i}}}}}}} = 7" for i in range(2, 30))
    + " The answer is 5."
)


def test_pathological_input_returns_within_budget() -> None:
    start = time.monotonic()
    result = verify_response(POWER_TOWERS, gold="5", budget_s=1.0)
    assert time.monotonic() - start < 1.5
    assert result.verdict == "equivalent"
    assert not result.wrong_claims


def test_budget_holds_from_a_non_main_thread_and_kills_an_overrun() -> None:
    # heavy enough that the worker cannot finish inside 20 ms of wall time (the backstop limit)
    long = "\n".join(f"$\\frac{{{i}}}{{3}} \\times {i + 1} = {i * (i + 1)}$" for i in range(1, 150))
    long += "\nThe answer is $x^2 + 2x + 1$."
    box: dict[str, object] = {}

    def call() -> None:
        start = time.monotonic()
        box["result"] = verify_response(long, gold="(x+1)^2", budget_s=2.0, wall_s=0.02)
        box["elapsed"] = time.monotonic() - start

    thread = threading.Thread(target=call)
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    assert box["elapsed"] < 0.5  # type: ignore[operator]
    result = box["result"]
    assert result.verdict == "unverifiable"
    assert result.timed_out
    assert any(note.startswith("timed out") for note in result.notes)
    # the replacement worker serves the next call normally
    again = verify_response("So 6 × 7 = 42. The answer is 42.", gold="42", budget_s=2.0)
    assert again.verdict == "equivalent"
    assert [c.verdict for c in again.claims] == ["ok"]


def test_concurrent_calls_from_threads() -> None:
    results: list[str] = []

    def call(n: int) -> None:
        v = verify_response(
            f"So {n} + {n} = {2 * n + 1}. The answer is {2 * n}.", gold=str(2 * n), budget_s=3.0
        )
        results.append(f"{v.verdict}:{v.wrong_claims[0].expected}")

    threads = [threading.Thread(target=call, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(results) == [f"equivalent:{2 * n}" for n in range(4)]


def test_step_alarm_interrupts_python_work_in_the_main_thread() -> None:
    start = time.process_time()  # the limit counts CPU time, whatever the machine's load

    def spin() -> None:
        with _alarm(0.1):
            while True:
                sum(range(1000))

    with pytest.raises(StepTimeout):
        spin()
    assert time.process_time() - start < 0.5


def test_no_reference_prompt_is_computed_and_rendered() -> None:
    v = verify_response(
        "Subtract 5: 3x = 20 - 5 = 16, so x = 16/3.\n\nFinal answer: x = 16/3",
        prompt="Solve for x: 3x + 5 = 20.",
    )
    assert v.verdict == "not_equivalent"
    assert v.reference_source == "computed"
    text = render_markdown(v)
    assert "✗ not equivalent" in text
    assert "20 - 5 = 16" in text
    assert "**15**" in text


def test_nested_step_alarms_keep_the_outer_limit() -> None:
    fired: list[str] = []

    def step() -> None:
        with _alarm(0.3):
            try:
                with _alarm(0.05):  # the second reader's own limit, inside the final-answer step
                    while True:
                        sum(range(1000))
            except StepTimeout:
                fired.append("inner")
            while True:  # the outer limit still holds after the inner one ended
                sum(range(1000))

    start = time.process_time()
    with pytest.raises(StepTimeout):  # the outer limit fired after the inner one
        step()
    assert fired == ["inner"]
    # CPU time, so load does not move it much; the window only rules out the outer limit being cut
    # to the inner one's 0.05 s or lost (it would never fire); its exact length is not the point
    assert 0.15 < time.process_time() - start < 5.0


def test_two_answers_are_compared_in_the_worker() -> None:
    from mathcheck.sandbox import same_answer

    assert same_answer("2.4 h", "144 minutes") is True
    assert same_answer("3", "4") is False
    assert same_answer("Paris", "12") is None  # not both values: the caller compares text
    start = time.process_time()
    assert same_answer("9^9^9^9^9", "1", budget_s=0.5) is None  # never evaluated in this process
    assert time.process_time() - start < 0.2


def test_compare_lanes_get_verdicts_and_agreement_off_the_event_loop() -> None:
    import asyncio

    from compare.verdicts import agreement, verdicts

    texts = ["So 6 × 24 = 144. The answer is 144 minutes.", "The answer is 2.4 h.", ""]
    found = asyncio.run(verdicts(texts, prompt="How long is the trip?", gold="2.4 h"))
    assert [v.verdict if v else None for v in found] == ["correct", "correct", None]
    assert agreement(found, "How long is the trip?") is True
