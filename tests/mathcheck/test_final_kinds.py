"""Final answers compared as what they are, read by both readers, and taken from where a response commits."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mathcheck.sandbox import _alarm
from mathcheck.verify import Verification, render_markdown, verify_inprocess

DATA = Path(__file__).parent / "data"


def _final(answer: str, gold: str, prompt: str | None = None) -> Verification:
    return verify_inprocess(f"Final answer: {answer}", gold=gold, prompt=prompt, limiter=_alarm)


@pytest.mark.parametrize(
    ("kind", "gold", "answer", "final"),
    [
        ("number", "0.6", ".6", "correct"),
        ("number", "2500", "2 500", "correct"),
        ("number", "2500.50", "2,500.50€", "correct"),
        ("number", "12310", "$12,310$", "correct"),
        ("number", "12310", "12,301", "incorrect"),
        ("fraction", "1/2", r"$\frac12$", "correct"),
        ("fraction", r"3\pi/4", r"$\frac34\pi$", "correct"),
        ("fraction", r"\frac{1}{2}", r"$\cfrac{1}{2}$", "correct"),
        ("fraction", r"\frac{3}{5}", r"$\dfrac{5}{3}$", "incorrect"),
        ("wrapping", "7", r"\( 7 \)", "correct"),
        ("wrapping", "5", r"$5\text{ meters}$", "correct"),
        ("interval", "[2,5)", "$[2,5)$", "correct"),
        ("interval", "[2,5)", "$[2,5]$", "incorrect"),
        ("interval", "(1,4)", "$[1,4)$", "incorrect"),
        ("interval", r"(-\infty,3]", r"$x \le 3$", "correct"),
        ("interval", r"(-\infty,-2)\cup(2,\infty)", r"$(-\infty,-2] \cup [2,\infty)$", "incorrect"),
        ("relation", r"y \leq 3", "y <= 3", "correct"),
        ("relation", r"y \leq 3", "y < 3", "incorrect"),
        ("relation", r"t \in (1,4]", r"$1 < t \le 4$", "correct"),
        ("relation", "2 < x < 7", "(2, 7)", "correct"),
        (
            "matrix",
            r"\begin{pmatrix}2&1\\1&2\end{pmatrix}",
            r"$\begin{bmatrix}2&1\\1&2\end{bmatrix}$",
            "correct",
        ),
        (
            "matrix",
            r"\begin{pmatrix}1&2\\3&4\end{pmatrix}",
            r"$\begin{pmatrix}1&3\\2&4\end{pmatrix}$",
            "incorrect",
        ),
        ("set", r"\{1,2,3\}", r"$\{3,1,2\}$", "correct"),
        ("set", "(3,1)", "(1,3)", "incorrect"),
        ("set", "(1,2,3)", r"$\{1,2,3\}$", "incorrect"),
        ("set", "(5,1)", "$(a,b)=(5,1)$", "correct"),
        ("set", "-2, 3", "3, -2", "correct"),
        ("equation", "x-2y-2=0", r"$y=\frac12x-1$", "correct"),
        ("equation", "x-2y-2=0", "y = 2x - 1", "incorrect"),
        ("equation", "5", "x = 5", "correct"),
        ("plus-minus", r"2 \pm \sqrt{3}", r"$2 \pm \sqrt3$", "correct"),
        ("plus-minus", r"\pm 3", "3, -3", "correct"),
        ("plus-minus", r"\pm 3", "3", "incorrect"),
        ("degrees", r"30^\circ", "30", "correct"),
        ("degrees", r"30^\circ", r"$\frac{\pi}{6}$", "correct"),
        ("degrees", r"30^\circ", "60°", "incorrect"),
        ("base", "11", "$1011_2$", "correct"),
        ("base", "255", "$FF_{16}$", "correct"),
        ("base", "11", "$1101_2$", "incorrect"),
        ("text", "B", r"$\textbf{(B)}$", "correct"),
        ("text", "B", "C", "incorrect"),
        ("text", "yes", "Yes, she can.", "correct"),
        ("text", "Maria", r"$\text{Maria}$", "correct"),
        ("text", "Maria", "Joe", "incorrect"),
        ("units", "2.4 h", "2 h 24 min", "correct"),
        ("units", "25%", "0.25", "correct"),
        ("units", "5 km", "500 m", "incorrect"),
        ("units", "0.75", "75 cents", "correct"),
        ("expression", "25*pi", "25π square units", "correct"),
        ("expression", "25*pi", "25 square units", "incorrect"),
        ("number", "320000", "3.2e5", "correct"),
        ("number", "12", "twelve", "correct"),
        ("number", "1/3", r"$0.\overline{3}$", "correct"),
        ("number", r"-\infty", r"$\infty$", "incorrect"),
        ("set", r"\emptyset", r"$\varnothing$", "correct"),
    ],
)
def test_each_kind_is_compared_as_what_it_is(kind: str, gold: str, answer: str, final: str) -> None:
    result = _final(answer, gold)
    assert result.final == final, (kind, result.verdict, result.answer, result.notes)


def test_no_final_answer_is_unverifiable_with_the_reason() -> None:
    result = verify_inprocess("We split 14 into 10 and 4, multiply each part, then add them.", gold="126")
    assert result.final == "unverifiable"
    assert "the response commits to no final answer" in result.notes


def test_repeated_identical_boxes_are_one_answer() -> None:
    text = r"The sum is $\boxed{57}$." + "\nAgain: $\\boxed{57}$ and $\\boxed{57}$."
    assert verify_inprocess(text, gold="57").final == "correct"


def test_final_answer_line_after_intermediate_boxes_wins() -> None:
    text = "Part one: $\\boxed{120}$.\nPart two: $\\boxed{200}$.\nThe final answer is $12,310$"
    result = verify_inprocess(text, gold="12310")
    assert result.final == "correct"
    assert result.answer is not None and "12,310" in result.answer


def test_the_end_of_a_long_answer_is_always_read() -> None:
    work = "".join(f"Step {k}: {k} + 1 = {k + 1}.\n" for k in range(3000))
    result = verify_inprocess(work + "Final answer: 42", gold="42", limiter=_alarm)
    assert len(work) > 40_000
    assert result.final == "correct"
    assert result.answer_span is not None and result.answer_span[0] > len(work) - 1
    assert any("long response" in note for note in result.notes)


def test_no_number_is_picked_from_latex_the_reader_cannot_parse() -> None:
    nested = "\\sqrt{" * 200 + "2" + "}" * 200
    assert verify_inprocess(f"Final answer: ${nested}$", gold="2").final == "unverifiable"


def test_a_proof_of_equality_decides_where_the_readers_judge_one_answer_differently() -> None:
    # Math-Verify reads 1011_2 as one thousand and eleven; the project reads it as eleven
    result = verify_inprocess("Final answer: $1011_2$", gold="11", limiter=_alarm)
    assert result.final == "correct" and result.confident
    assert any("Math-Verify reads the answer as different" in note for note in result.notes)
    # the project does not add matrices in an answer; Math-Verify's algebra proves the equality
    matrices = (
        "\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix} + \\begin{pmatrix}5 & 6 \\\\ 7 & 8\\end{pmatrix}"
    )
    total = "\\begin{pmatrix}6 & 8 \\\\ 10 & 12\\end{pmatrix}"
    algebra = verify_inprocess(f"The sum is ${matrices}$", gold=f"${total}$", limiter=_alarm)
    assert algebra.final == "correct" and algebra.confident
    assert any("Math-Verify's comparison decides" in note for note in algebra.notes)


def test_readers_that_took_different_answers_decide_by_what_is_measured() -> None:
    # Math-Verify takes the first root of the box; the project takes both, from a box: it decides
    both = "So the answer is $\\boxed{p = -1 \\text{ and } p = \\dfrac{15}{8}}$"
    result = verify_inprocess(both, gold="p=-1,p=\\frac{15}{8}", limiter=_alarm)
    assert result.final == "correct" and result.confident
    assert any("the project's reader decides: Math-Verify took another answer" in n for n in result.notes)
    # recorded in solutions_fresh3b (divisors-720): an answer line against Math-Verify's other number
    line = "$$(4+1)(2+1)(1+1) = 5 \\cdot 3 \\cdot 2 = 30$$\n\n**Answer:** 720 has **30** positive divisors."
    divisors = verify_inprocess(line, gold="30", limiter=_alarm)
    assert divisors.final == "correct" and divisors.confident
    # a concluding sentence that does not give the reference, Math-Verify reading "equal": a coin toss
    coin = verify_inprocess("Thus x = 3.", gold="\\pm 3", limiter=_alarm)
    assert coin.final == "incorrect"
    assert not coin.confident and coin.to_json()["confident"] is False
    assert any("not confident: Math-Verify took another answer" in note for note in coin.notes)
    agreed = verify_inprocess("Final answer: $[2,5)$", gold="[2,5)", limiter=_alarm)
    assert agreed.confident


def test_labelled_answer_set_agrees_per_kind() -> None:
    """Regression guard over tests/mathcheck/data/answers.jsonl (the bench prints the full table)."""
    agree: dict[str, list[bool]] = defaultdict(list)
    for line in (DATA / "answers.jsonl").read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        result = verify_inprocess(case["response"], prompt=case["prompt"], gold=case["gold"], limiter=_alarm)
        agree[case["tags"][1]].append(result.final == case["label"]["final"])
    assert sum(map(len, agree.values())) >= 300
    low = {kind: sum(v) / len(v) for kind, v in agree.items() if sum(v) / len(v) < 0.97}
    assert not low, low


def test_mixed_and_worked_sets_meet_the_targets() -> None:
    """Regression guard for the bench's targets: final agreement, slips caught, no false flags."""
    from mathcheck import evaluate

    cases = [c for name in ("eval_set", "heldout_set", "worked", "worked_heldout")
             for c in evaluate.load_cases(DATA / f"{name}.jsonl")]  # fmt: skip
    agree = caught = planted = false_flags = 0
    for case in cases:
        result = verify_inprocess(case.response, prompt=case.prompt, gold=case.gold, limiter=_alarm)
        agree += result.final == case.final
        spans = case.wrong_spans()
        flagged = [c.span for c in result.claims if c.verdict == "wrong"]
        planted += len(spans)
        caught += sum(any(a < f[1] and f[0] < b for f in flagged) for a, b in spans)
        false_flags += sum(not any(a < f[1] and f[0] < b for a, b in spans) for f in flagged)
    assert agree / len(cases) >= 0.99  # all but a handful (the bench lists each miss with -v)
    assert caught / planted >= 0.95
    assert false_flags == 0


def test_one_reader_where_two_were_asked_is_not_confident() -> None:
    """Math-Verify running out of its CPU time leaves the project's reader alone: not confident."""
    from mathcheck.final import ALONE_S, StepTimeout

    @contextmanager
    def second_reader_times_out(seconds: float) -> Iterator[None]:
        if seconds == ALONE_S:
            raise StepTimeout
        yield

    result = verify_inprocess("Final answer: $[2,5)$", gold="[2,5)", limiter=second_reader_times_out)
    assert result.final == "correct"  # the project's reader still decides
    assert not result.confident
    assert result.to_json()["confident"] is False
    assert any("one reader only" in note for note in result.notes)
    assert "(not confident)" in render_markdown(result)
    # an answer only the project reads (a unit) never asks Math-Verify: one reader by design
    own = verify_inprocess("Final answer: 5 km", gold="5", limiter=second_reader_times_out)
    assert own.final == "correct" and own.confident


def test_pairs_named_by_their_unknowns_in_a_set_are_the_set() -> None:
    """Recorded in solutions_fresh3b (sfft-pairs): "(x, y) \\in \\{...\\}" was judged incorrect."""
    gold = r"\{(4,8), (5,5), (6,4), (9,3)\}"
    right = r"**Answer:** \((x, y) \in \{(4,8), (5,5), (6,4), (9,3)\}\)"
    assert verify_inprocess(right, gold=gold, limiter=_alarm).final == "correct"
    for wrong in (
        r"\((x, y) \in \{(4,8), (5,5), (6,4)\}\)",
        r"\((x, y) \in \{(8,4), (5,5), (6,4), (9,3)\}\)",
    ):
        assert verify_inprocess(f"**Answer:** {wrong}", gold=gold, limiter=_alarm).final == "incorrect"
