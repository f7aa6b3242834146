"""Final answers as open models write them (signs, bold, several boxes, decimal commas, ``!=``,
``\\approx`` restatements) and the combination with Math-Verify alone, on inputs written here."""

from __future__ import annotations

import pytest

from mathcheck.sandbox import _alarm
from mathcheck.verify import verify_inprocess


@pytest.mark.parametrize(
    ("response", "gold", "final"),
    [
        ("Adding the two parts, 4 - 3973 = -3969. The final answer is -3969", "-3969", "correct"),
        ("The final answer is -3969", "3969", "incorrect"),  # the sign is part of the answer
        ("Expanding, we get $-12+15i$. The final answer is -12+15i", "-12+15i", "correct"),
        ("Each of the 100 rows loses 6 seats, so the answer is **6**.", "6", "correct"),
        ("Final Answer: The largest $n$ is 34.", "34", "correct"),
        ("Final Answer: The largest $n$ is 35.", "34", "incorrect"),
        ("The pairs are $(1, 1006), (3, 331), (11, 31)$.", "(1, 1006), (3, 331), (11, 31)", "correct"),
        ("The pairs are $(11, 31), (1, 1006), (3, 331)$.", "(1, 1006), (3, 331), (11, 31)", "correct"),
        (r"Hence $\boxed{(1, 2)}, \boxed{(2, 1)}, \boxed{(-1, -20)}$.", "(2,1),(-1,-20),(1,2)", "correct"),
        (r"Hence $\boxed{(1, 2)}, \boxed{(2, 1)}$.", "(2,1),(-1,-20),(1,2)", "incorrect"),
        ("Le prix est 2,74 $.", "2.74", "correct"),
        ("La réponse : 1,22", "1.22", "correct"),
        ("The answer is 1,000", "1000", "correct"),  # a thousands comma stays one
        ("The solution is $x != 5$", r"x \neq 5", "correct"),
        (r"So $x = 1/3 \approx 0.33$.", "1/3", "correct"),
        (r"So $x = 2/3 \approx 0.67$.", "1/3", "incorrect"),
    ],
)
def test_model_written_answers(response: str, gold: str, final: str) -> None:
    result = verify_inprocess(response, gold=gold, limiter=_alarm)
    assert result.final == final, (result.answer, result.notes)


def test_units_and_words_between_numbers_read_as_people_mean_them() -> None:
    right = verify_inprocess(
        r"She needs $2 \text{ dozen} = 2 \times 12 = 24 \text{ cups}$. The answer is 24.", gold="24"
    )
    assert [c.verdict for c in right.claims] == ["ok"]
    slip = verify_inprocess(
        r"She needs $2 \text{ dozen} = 2 \times 12 = 26 \text{ cups}$. The answer is 26.", gold="24"
    )
    assert [(c.verdict, c.expected) for c in slip.claims] == [("wrong", "24")]


def test_a_chained_claim_names_its_first_wrong_link() -> None:
    result = verify_inprocess("So 3 × 4 = 12 + 5 = 18 + 2 = 20 in all. The answer is 20.", gold="19")
    wrong = result.wrong_claims
    assert len(wrong) == 1
    assert "12 + 5 = 18" in wrong[0].note or wrong[0].expected == "17", wrong[0]


def test_a_crash_inside_the_checker_is_reported_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real bug stands in here by a broken step finder: the note must say the checker failed."""
    import mathcheck.verify as verify

    def broken(_text: str, _rewriting: bool = False) -> list[object]:
        raise IndexError("list index out of range")

    monkeypatch.setattr(verify, "find_claims", broken)
    result = verify.verify_inprocess("So 2 + 2 = 4. The answer is 4.", gold="4")
    assert result.final == "correct"  # the final verdict still stands
    assert result.checker_failed and not result.confident
    assert any("the checker failed" in note and "IndexError" in note for note in result.notes)
    assert result.to_json()["checker_failed"] is True


def test_dollar_signs_inside_inline_math_keep_the_claim_whole() -> None:
    slip = verify_inprocess(r"**Discount:** $\$80 \times 25\% = \$17$", gold="60")
    assert [(c.verdict, c.expected) for c in slip.claims] == [("wrong", "20")]
    right = verify_inprocess(r"**Discount:** $\$80 \times 25\% = \$20$ and $3 \times 4 = 12$", gold="20")
    assert [c.verdict for c in right.claims] == ["ok", "ok"]


def test_the_first_wrong_step_of_a_chain_is_named_by_its_link() -> None:
    # recorded in solutions_fresh2 (fresh2-committee-slip)
    result = verify_inprocess(
        "We need $\\binom{8}{3}$:\n$$\\binom{8}{3} = \\frac{8 \\cdot 7 \\cdot 6}{3 \\cdot 2 \\cdot 1}"
        " = \\frac{336}{6} = 54$$\n\nThere are $\\boxed{54}$ ways.",
        gold="56",
    )
    assert result.final == "incorrect"
    assert result.notes[0].startswith(
        "first wrong step: \\frac{336}{6} = 54 (should be 56), in \\binom{8}{3}"
    )


@pytest.mark.parametrize(
    ("response", "gold", "final"),
    [
        # recorded in solutions_fresh2: the bold number is the answer, not the $100!$ before it
        ("$20 + 4 = 24$\n\nSo $100!$ ends in **24** zeros.", "24", "correct"),
        ("$20 + 4 = 24$\n\nSo $100!$ ends in **25** zeros.", "24", "incorrect"),
        ("**2.** So the total is 14.", "14", "correct"),  # a bold list number is a label
        # the math names the subject, the plain number after its verb is the answer
        ("So $100!$ ends in 24 zeros.", "24", "correct"),
        ("So $100!$ ends in 25 zeros.", "24", "incorrect"),
        ("So $7^{2026}$ leaves a remainder of 49.", "49", "correct"),
        (r"The probability $\frac{1}{2}$ is 50%.", "1/2", "correct"),
        ("Thus $x = 5$ is 2 more than 3.", "5", "correct"),  # math that states a value keeps it
        # recorded in solutions_fresh2 (fresh2-modulus): a complex computation's result is the answer
        (r"Therefore, $|3 + 4i| \cdot |1 - i| = 5\sqrt{2}$.", r"5\sqrt{2}", "correct"),
        (r"Therefore, $|3 + 4i| \cdot |1 - i| = 5\sqrt{3}$.", r"5\sqrt{2}", "incorrect"),
    ],
)
def test_the_answer_phrase_models_mean(response: str, gold: str, final: str) -> None:
    result = verify_inprocess(response, gold=gold, limiter=_alarm)
    assert result.final == final, (result.answer, result.notes)
