"""The whitelisted parser, answer extraction and typed comparison."""

from __future__ import annotations

import pytest
import sympy as sp

from mathcheck.answers import compare, parse_answer
from mathcheck.extract import extract_answer
from mathcheck.parser import ParseError, parse_expr


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (r"\frac{3}{4}\times 8", 6),
        ("12 × 3 − 4", 32),
        (r"2^{10} - 10^2", 924),
        (r"\sqrt{16} + 3^2", 13),
        ("5!", 120),
        ("7² ÷ 7", 7),
        (r"2\frac{1}{2}", sp.Rational(5, 2)),
        ("1,234 + 1", 1235),
        ("15% of 80", 12),
        ("3 x 4", 12),
        (r"4 \cdot 5 \cdot 6", 120),
        ("$1,250", 1250),
    ],
)
def test_parser_builds_exact_values(text: str, value: object) -> None:
    assert parse_expr(text).expr == value


@pytest.mark.parametrize(
    "text",
    [
        "9^9^9",
        "2^2^2^2^2^2",
        "(10^1000)!",
        "1000!",
        "__import__('os')",
        "os.system('x')",
        r"\input{x}",
        "x" * 700,
    ],
)
def test_parser_refuses_unsafe_or_huge(text: str) -> None:
    with pytest.raises(ParseError):
        parse_expr(text)


@pytest.mark.parametrize(
    ("answer", "gold", "prompt", "verdict"),
    [
        ("2 hours and 24 minutes", "2.4", "How many hours does it take?", "equivalent_in_other_unit"),
        ("144 min", "2.4 h", None, "equivalent_in_other_unit"),
        ("0.3333", "1/3", None, "equivalent_after_rounding"),
        ("0.3", "1/3", None, "equivalent_after_rounding"),
        ("0.34", "1/3", None, "not_equivalent"),
        ("0.00", "0.001", None, "not_equivalent"),
        ("3", "3.4", None, "not_equivalent"),
        ("$1,250.00", "1250", None, "equivalent"),
        ("2 1/2", "5/2", None, "equivalent"),
        ("25%", "1/4", None, "equivalent"),
        ("25", "25%", None, "equivalent"),
        ("x = 2 or x = -3", "-3, 2", None, "equivalent"),
        ("x = 2", "-3, 2", None, "not_equivalent"),
        ("-3, 0, 2", "-3, 2", None, "not_equivalent"),
        (r"x = \pm 4", r"\{-4, 4\}", None, "equivalent"),
        ("x = 3, y = 1", "(3, 1)", None, "equivalent"),
        ("(1, 3)", "x=3, y=1", None, "not_equivalent"),
        (r"\frac{x^3}{3} + C", "x^3/3", None, "equivalent"),
        ("x^2 + 7", "x^2 + C", None, "equivalent"),
        ("(x+3)(x+2)", "x^2 + 5x + 6", None, "equivalent"),
        (r"\sqrt{2}/2", r"\frac{1}{\sqrt{2}}", None, "equivalent"),
        ("100 km/h", "2.4 h", None, "not_equivalent"),
    ],
)
def test_compare_typed_values(answer: str, gold: str, prompt: str | None, verdict: str) -> None:
    assert compare(parse_answer(answer), parse_answer(gold), prompt) == verdict


@pytest.mark.parametrize(
    ("response", "expected_text"),
    [
        ("Speed 240/2.4 = 100.\nFinal Answer: the speed is 100 km/h, so the time is 2.4 h", "2.4 h"),
        (r"So we get $\boxed{\frac{3}{4}}$ cups.", r"\frac{3}{4}"),
        ("24 × 3 = 72\nSo Maria has 72 books. That took 2 steps.", "72"),
        ("She gives away 14, so 36 - 14 = 22.\nShe has 22 apples left.", "22"),
        ("Thus, x = 2 or x = -3.", "x = 2 or x = -3"),
        ("**Final Answer**\n\n$$ 42 $$", "42"),
        ("So the answer is 5 because 2 + 3 = 5.", "5"),
    ],
)
def test_extraction_takes_the_committed_answer(response: str, expected_text: str) -> None:
    found = extract_answer(response, "time" if "km/h" in response else None)
    assert found is not None
    assert found.value is not None
    assert compare(found.value, parse_answer(expected_text)) == "equivalent"


def test_extraction_of_a_rambling_reply_is_none() -> None:
    assert extract_answer("We can split 14 into 10 and 4 and multiply each part, then add them.") is None


def test_binomial_coefficients_and_the_imaginary_unit() -> None:
    assert parse_expr(r"\binom{8}{3}").expr == 56
    assert parse_expr("-8i^2", imaginary=True).expr == 8
    assert parse_expr("-8i^2").expr == -8 * sp.Symbol("i") ** 2  # a name unless the text is complex
    with pytest.raises(ParseError):
        parse_expr(r"\binom{5000}{2500}")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (r"\log_2 64 + \log_{3} 81 - \log_5 25", 8),
        (r"\left\lfloor \frac{100}{5} \right\rfloor + \lfloor 100/25 \rfloor", 24),
        (r"\lceil 7/2 \rceil", 4),
        (r"17 \bmod 5", 2),
        (r"\dbinom{6}{2}", 15),
        (r"\gcd(84, 126) + \operatorname{lcm}(4, 6)", 54),
        (r"\frac{720^\circ}{6}", 120),  # degrees inside a fraction keep the fraction's braces
    ],
)
def test_notation_of_olympiad_solutions(text: str, value: object) -> None:
    assert parse_expr(text).expr == value
