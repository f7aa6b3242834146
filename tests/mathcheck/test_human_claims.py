"""Arithmetic as people write it: every correct form passes, its slipped twin is caught with the
right value at the claim's precision, and real hypotheticals, examples and unit definitions stay unchecked."""

from __future__ import annotations

import pytest

from mathcheck.claims import check_claim, find_claims


def _verdicts(text: str) -> list[tuple[str, str, str | None]]:
    out = []
    for cand in find_claims(text):
        claim = check_claim(cand)
        if claim is not None:
            out.append((claim.text, claim.verdict, claim.expected))
    return out


@pytest.mark.parametrize(
    ("right", "slipped", "expected"),
    [
        ("She spends .75 * 40 = 30 dollars.", "She spends .75 * 40 = 35 dollars.", "30"),
        ("Girls: 150 x 2/3 = 100 girls", "Girls: 150 x 2/3 = 110 girls", "100"),
        ("Tickets: 4 x $6 = $24", "Tickets: 4 x $6 = $26", "24"),
        (
            "40 total pupils - 12 chess - 8 choir = 20 pupils",
            "40 total pupils - 12 chess - 8 choir = 22 pupils",
            "20",
        ),
        ("6 cats * 4 legs/cat = 24 legs", "6 cats * 4 legs/cat = 26 legs", "24"),
        (
            "If there were 30 red cars, the blue ones were 90-30=60.",
            "If there were 30 red cars, the blue ones were 90-30=50.",
            "60",
        ),
        ("He would need 3 * 4 = 12 cups.", "He would need 3 * 4 = 14 cups.", "12"),
        ("He should buy 12 - 5 = 7 more.", "He should buy 12 - 5 = 8 more.", "7"),
        ("She drank a total of 5 + 9 = 14 cups.", "She drank a total of 5 + 9 = 15 cups.", "14"),
        ("It grew by 530 g - 500 g = 30 g.", "It grew by 530 g - 500 g = 40 g.", "30"),
        ("Maria = 25 + 17 = 42 minutes", "Maria = 25 + 17 = 43 minutes", "42"),
        ("He ate 7.5 apples = 3 * 2.5 = 7.5 apples.", "He ate 8.5 apples = 3 * 2.5 = 8.5 apples.", "7.5"),
        ("Cost = 38 × $5 = $190.", "Cost = 38 × $5 = $170.", "190"),
        ("Each gets 27 / 4 = 6.75 slices.", "Each gets 27 / 4 = 6.25 slices.", "6.75"),
        ("3 hours * 5 days = 15 hours", "3 hours * 5 days = 16 hours", "15 hours"),
        ("10 / 3 = 3.33", "10 / 3 = 3.43", "3.33"),
    ],
)
def test_human_forms_pass_and_their_slips_are_caught(right: str, slipped: str, expected: str) -> None:
    ok = _verdicts(right)
    assert ok and all(v == "ok" for _, v, _ in ok), ok
    wrong = [c for c in _verdicts(slipped) if c[1] == "wrong"]
    assert len(wrong) == 1, _verdicts(slipped)
    assert wrong[0][2] == expected


@pytest.mark.parametrize(
    "text",
    [
        "Suppose she had 3 + 4 = 8 apples.",
        "For example, 2 + 2 = 5 would be a mistake.",
        "A common mistake is to write 12 + 5 = 18.",
        "If she had bought one more, it would have cost 5 * 4 = 22.",
        "Instead of 6 * 7 = 40, use the table.",
    ],
)
def test_real_hypotheticals_and_examples_stay_unchecked(text: str) -> None:
    assert all(v != "wrong" for _, v, _ in _verdicts(text)), _verdicts(text)


def test_unit_definitions_stay_unchecked() -> None:
    assert _verdicts("Note: 1 hour = 60 minutes and 1 pack = 10 pens.") == [
        ("1 hour = 60 minutes", "unchecked", None)
    ]


def test_the_first_false_link_of_a_chain_is_reported() -> None:
    assert _verdicts("Joe = 30 - 19 = 12 minutes, then 12 + 3 = 15.") == [
        ("30 - 19 = 12 minutes", "wrong", "11"),
        ("12 + 3 = 15", "ok", None),
    ]


def test_times_x_is_not_a_variable_times_sign_in_algebra() -> None:
    assert _verdicts("Expand: 2x(x-1) = 2x^2 - 2x") == [("2x(x-1) = 2x^2 - 2x", "ok", None)]


def test_degrees_in_working_are_checked_and_trig_is_left_alone() -> None:
    assert _verdicts("Each angle is 720° / 6 = 130°.") == [("720° / 6 = 130°", "wrong", "120")]
    assert _verdicts(r"$(6-2) \times 180^\circ = 720^\circ$") == [
        (r"(6-2) \times 180^\circ = 720^\circ", "ok", None)
    ]
    assert _verdicts("sin 30° = 0.5 and log 100 = 2") == []


def test_right_values_keep_the_claims_precision_and_units() -> None:
    assert _verdicts("5 × 0.50 = 2.00") == [("5 × 0.50 = 2.00", "wrong", "2.50")]
    assert _verdicts("2.00 + 3.00 = 6.00") == [("2.00 + 3.00 = 6.00", "wrong", "5.00")]
    assert _verdicts("2 h 30 min + 1 h 45 min = 4 h 25 min") == [
        ("2 h 30 min + 1 h 45 min = 4 h 25 min", "wrong", "4 h 15 min")
    ]
    assert _verdicts("Sarah earns $15/hour × 6 hours = $80.") == [("$15/hour × 6 hours = $80", "wrong", "90")]


def test_a_running_total_is_read_step_by_step() -> None:
    assert _verdicts("Running total: 20 - 5 = 15 - 3 = 12.") == [("20 - 5 = 15 - 3 = 12", "ok", None)]
    assert _verdicts("Running total: 20 - 5 = 15 - 3 = 13.") == [("20 - 5 = 15 - 3 = 13", "wrong", "12")]
    assert _verdicts("20 - 5 = 14 - 3 = 11") == [("20 - 5 = 14 - 3 = 11", "wrong", "15")]


def test_dates_times_phone_numbers_and_scores_are_not_claims() -> None:
    text = "On 12/25/2023 at 9:30, call 555-1234. It takes 3-4 days; the score was 3-1. Chapter 3.2 = intro."
    assert all(v != "wrong" for _, v, _ in _verdicts(text))


def test_latex_working_with_labels_escaped_dollars_and_unit_text() -> None:
    assert _verdicts(r"\[ \text{Total cost} = 3 \times \$4.50 = \$14.50 \]") == [
        (r"3 \times \$4.50 = \$14.50", "wrong", "13.50")
    ]
    assert _verdicts(r"The discount: \$80 \times 0.15 = \$14, so \$80 - \$12 = \$68.") == [
        (r"\$80 \times 0.15 = \$14", "wrong", "12"),
        (r"\$80 - \$12 = \$68", "ok", None),
    ]
    assert _verdicts(r"\( 1.5 \text{ hours} = 80 \text{ minutes} \)") == [
        (r"1.5 \text{ hours} = 80 \text{ minutes}", "wrong", "90 min")
    ]


def test_times_100_equals_a_percent() -> None:
    assert _verdicts("(172.8 - 120)/120 × 100 = 44%") == [("(172.8 - 120)/120 × 100 = 44%", "ok", None)]
    assert _verdicts("(172.8 - 120)/120 × 100 = 45%") == [("(172.8 - 120)/120 × 100 = 45%", "wrong", "44")]
    assert _verdicts("0.44 = 44%") == []
    assert _verdicts("So 0.2 × 50 = 10%.") == [("0.2 × 50 = 10%", "wrong", "10")]


@pytest.mark.parametrize(
    ("right", "slipped", "expected"),
    [
        (r"$\sum_{k=1}^{4} k^2 = 1 + 4 + 9 + 16 = 30$", r"$\sum_{k=1}^{4} k^2 = 1 + 4 + 9 + 16 = 31$", "30"),
        (r"$12\% \text{ of } 250 = 30$", r"$12\% \text{ of } 250 = 35$", "30"),
        (r"$1.5 \text{ kg} = 1500 \text{ g}$", r"$1.5 \text{ kg} = 150 \text{ g}$", "1500 g"),
        (r"$P(5, 2) = 5 \times 4 = 20$", r"$P(5, 2) = 5 \times 4 = 25$", "20"),
        (r"$\gcd(84, 126) = 42$", r"$\gcd(84, 126) = 21$", "42"),
        (
            r"Each angle is $\frac{720^\circ}{6} = 120^\circ$.",
            r"Each angle is $\frac{720^\circ}{6} = 110^\circ$.",
            "120",
        ),
    ],
)
def test_latex_written_claims_are_found_whole(right: str, slipped: str, expected: str) -> None:
    """An "=" inside \\sum_{k=1}, a comma inside P(5, 2), and $...$ holding only \\text or \\%."""
    assert [v for _, v, _ in _verdicts(right)] in (["ok"], ["unchecked"]), _verdicts(right)
    wrong = [c for c in _verdicts(slipped) if c[1] == "wrong"]
    assert len(wrong) == 1, _verdicts(slipped)
    assert wrong[0][2] == expected
