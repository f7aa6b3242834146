"""Final answers taken from how models and people end a response when nothing is boxed or marked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mathcheck.answers import compare, parse_answer
from mathcheck.extract import extract_answer
from mathcheck.sandbox import _alarm
from mathcheck.verify import verify_inprocess

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (r"We get $2 \le x$.", r"x \geq 2"),  # the sentence's math, not the sentence
        (r"The set is $\{3,1,2\}$.", r"\{1,2,3\}"),
        (r"The roots are $x = 3$ and $x = -3$.", "x = 3 or x = -3"),  # one listed answer
        (r"We get $x = 1$ and $y = 2$, so the solution is $(x, y) = (1, 2)$.", "x = 1, y = 2"),
        (r"So $3 \times 4 = 12$ apples in total.", "12"),  # arithmetic gives its result
        (r"Thus $x = 3$, since $2x = 6$.", "3"),  # not the math of the reason
        ("Therefore, he needs 12 more boxes, since 22 - 10 = 12.", "12"),
        (r"The period is $\pi$.", r"\pi"),  # math without a digit
        ("Solving, x < 5.", "x < 5"),
        ("Hence x must be at least 3.", r"x \geq 3"),  # a relation in words
        ("This simplifies to (x-1)(x+1).", "x^2 - 1"),
        ("That's 0.75 of the pie.", "0.75"),
        ("So the y-intercept is the point (2, 0).", "(2, 0)"),
        ("So, she ran 5 laps of 10 m, i.e., 50 m in total.", "50 m"),
        ("After checking each case, there are 17 ways.", "17"),
    ],
)
def test_the_last_sentence_gives_its_answer(response: str, expected: str) -> None:
    found = extract_answer(response)
    assert found is not None and found.value is not None, found
    assert compare(found.value, parse_answer(expected)) == "equivalent", found


@pytest.mark.parametrize(
    ("response", "gold", "final"),
    [
        ("The correct option is (B).", "B", "correct"),
        ("Comparing the four, the best fit is B) 3/4.", "B", "correct"),
        ("So the answer must be option C.", "C", "correct"),
        ("The correct choice is **A**.", "A", "correct"),
        ("I'd go with (A).", "D", "incorrect"),
        ("Correct answer: (C) 12 cm", "D", "incorrect"),
        ("No. 51 = 3 × 17, so it is not prime.", "no", "correct"),
        ("No, it is not possible.", "yes", "incorrect"),
        ("They meet again on a Tuesday.", "Tuesday", "correct"),
        ("Therefore, Carol has the most marbles.", "Bob", "incorrect"),
        ("Let me think about each option carefully.", "B", "unverifiable"),
    ],
)
def test_text_answers_are_read_from_the_last_sentences(response: str, gold: str, final: str) -> None:
    assert verify_inprocess(response, gold=gold, limiter=_alarm).final == final


def test_a_response_that_goes_on_past_its_numbers_commits_to_nothing() -> None:
    assert extract_answer("First add 3 and 4. Then we still need to divide by the rest.") is None


def test_fresh_answer_set_agrees() -> None:
    """Regression guard over answers_fresh.jsonl (written before reading these rules; see bench)."""
    cases = [json.loads(line) for line in (DATA / "answers_fresh.jsonl").read_text("utf-8").splitlines()]
    misses = []
    for case in cases:
        result = verify_inprocess(case["response"], prompt=case["prompt"], gold=case["gold"], limiter=_alarm)
        if result.final != case["label"]["final"]:
            misses.append((case["id"], result.final, result.answer))
    assert len(cases) >= 140
    assert len(misses) <= 0.03 * len(cases), misses
