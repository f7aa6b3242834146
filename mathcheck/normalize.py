"""Answer text as written -> answer text the parsers read: wrappers off (``\\boxed``, ``$``, ``\\(``,
``\\[``, ``\\text``, ``\\mathbf``), numbers as one token (``2 500``, ``6{,}000``, ``2,500.50€``), base
subscripts as their value (``1011_2`` -> 11), degree marks as a unit, and ``±`` as two answers.
"""

from __future__ import annotations

import re

_DECORATION = re.compile(
    r"^(?:approximately|approx\.?|about|around|roughly|exactly|only|just|a total of|total of|"
    r"equal to|equals|is|are|be|of|=|≈|~|\\approx)\s+",
    re.IGNORECASE,
)
_WRAPPERS = re.compile(
    r"\\(?:mathbf|textbf|boldsymbol|bm|mathit|textit|mathrm|text|mbox|operatorname)\s*\{([^{}]*)\}"
)
_DEGREES = re.compile(r"\s*(?:\^\s*\{?\s*\\circ\s*\}?|°|\\degree|\\text\{\s*°\s*\}|\s+degrees?\b)")
_THOUSANDS = re.compile(r"(?<![\d.,])(\d{1,3})((?:(?:\s|\\,|\\ |\\;|\{,\}|\\!)\d{3})+)(?![\d])")
_CURRENCY = re.compile(r"€|£|¥|\\euro\b|\\pounds\b|\bEUR\b|\bGBP\b")
_BASE = re.compile(r"(?<![\w.])(\d[0-9A-F]*|[A-F][0-9A-F]*(?=_\{?1[1-6]))_\{?(\d{1,2})\}?(?![\w])")
_PM = re.compile(r"\\pm|±|\+/-|\\mp|∓")
_REPEATING = re.compile(r"(\d*)\.(\d*)\\overline\s*\{(\d+)\}")
_SCIENTIFIC = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)[eE]([+-]?\d{1,3})(?![\w.])")
_UNITS_WORDS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
]  # fmt: skip
_TENS_WORDS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_word(text: str) -> str | None:
    """ "twelve", "forty-two" as digits (a whole answer only; 0 to 99)."""
    words = re.fullmatch(r"\s*([a-z]+)(?:[- ]([a-z]+))?\s*", text.lower())
    if not words:
        return None
    first, second = words.groups()
    if second is None and first in _UNITS_WORDS:
        return str(_UNITS_WORDS.index(first))
    if first in _TENS_WORDS and (second is None or second in _UNITS_WORDS[1:10]):
        return str(20 + 10 * _TENS_WORDS.index(first) + (_UNITS_WORDS.index(second) if second else 0))
    return None


def _repeating(m: re.Match[str]) -> str:
    whole, fixed, period = m.group(1) or "0", m.group(2), m.group(3)
    # x = whole.fixed(period)...: numerator over 10^len(fixed) * (10^len(period) - 1)
    den = 10 ** len(fixed) * (10 ** len(period) - 1)
    num = int(whole + fixed + period) - int(whole + fixed or "0")
    return f"({num}/{den})"


def _base_value(m: re.Match[str]) -> str:
    digits, base = m.group(1), int(m.group(2))
    try:
        return str(int(digits, base)) if 2 <= base <= 36 else m.group(0)
    except ValueError:
        return m.group(0)


_DECIMAL_COMMA = re.compile(r"0,\d+(?![\d,])|[1-9]\d*,\d{2}(?![\d,])")
"""A number with a decimal comma, as written in much of Europe: 1,22 or 1000,99 or 0,111 (not 1,000)."""


def decimal_comma(text: str) -> str:
    """A whole plain-text answer that is one number with a decimal comma, with a decimal point
    (``2,74 $`` -> ``2.74 $``); lists ("1,2"), thousands ("1,000") and LaTeX stay as they are."""
    core = text.strip()
    m = _DECIMAL_COMMA.match(core)
    if m is None or "\\" in core or "$" in core.replace(" $", "").rstrip("$"):
        return text
    rest = core[m.end() :]
    if not re.fullmatch(r"\s*(?:[$€£%]\s*)?(?:[A-Za-z²³]{1,4})?\s*\.*", rest):
        return text
    return core[: m.start()] + m.group(0).replace(",", ".") + rest


def strip(text: str) -> str:
    """The answer itself, without the dressing around it."""
    text = re.sub(r"(?<![\d)}])!+$", "", text.strip().rstrip(".;:,")).strip()  # 3! is a factorial
    text = decimal_comma(text)
    text = text.replace("!=", "\\neq ")
    text = re.sub(r"\\(?:boxed|fbox)\s*\{(.*)\}", r"\1", text)
    text = re.sub(r"^\$+|\$+$", "", text.strip())
    text = re.sub(r"^\\[(\[]|\\[)\]]$", "", text.strip()).strip()
    text = text.replace("**", "").replace("\\approx", "≈").replace("\\displaystyle", "")
    text = text.replace("\\cfrac", "\\frac").replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = text.replace("\\left", "").replace("\\right", "").replace("\\!", "").replace("\\%", "%")
    text = _DEGREES.sub(" deg", text)
    text = _THOUSANDS.sub(lambda m: m.group(1) + re.sub(r"\D", "", m.group(2)), text)
    text = _CURRENCY.sub("", text).replace("\\,", " ")
    prev = None
    while prev != text:
        prev, text = text, _WRAPPERS.sub(lambda m: " " + m.group(1).strip(), text)
    text = _BASE.sub(_base_value, text)
    text = _REPEATING.sub(_repeating, text)  # 0.\overline{3} is 1/3
    text = _SCIENTIFIC.sub(r"(\1*10^(\2))", text)  # 3.2e5, never 3.2·e·5
    text = text.replace("\\varnothing", "\\emptyset").replace("∅", "\\emptyset")
    if re.fullmatch(r"\{[^{}\\]*,[^{}\\]*\}", text.strip()):
        text = text.strip()[1:-1]  # ${1,3}$: LaTeX braces only group; a set is \{1,3\}
    text = text.strip().rstrip(".;:").strip()
    prev = None
    while prev != text:
        prev = text
        text = _DECORATION.sub("", text).strip()
    return number_word(text) or text


def plus_minus(text: str) -> tuple[str, str] | None:
    """``a ± b`` as the two texts ``a + b`` and ``a - b`` (the first ± only; None when there is none)."""
    m = _PM.search(text)
    if not m:
        return None
    minus_first = m.group(0) in ("\\mp", "∓")
    plus, minus = ("-", "+") if minus_first else ("+", "-")
    return text[: m.start()] + plus + text[m.end() :], text[: m.start()] + minus + text[m.end() :]


def has_pm(text: str) -> bool:
    return bool(_PM.search(text))
