"""The kept parser: Math-Verify and latex2sympy2_extended read LaTeX the project's parser does not
(intervals, relations, matrices, ``\\in``, ``\\cup``, ``\\binom``), and Math-Verify gives a second
opinion on the final answer.

Their signal-based timeouts are off (``parsing_timeout=None``, ``timeout_seconds=None``): signals
break in threads, and this code runs in the sandbox worker, whose own limit holds the budget. Text
that would make sympy evaluate a huge number (power towers, big factorials) never reaches them.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import sympy as sp

from mathcheck.kinds import Matrix, region_of

MAX_KEPT_CHARS = 1500
ALONE_CHARS = 4000
_TOWER = re.compile(
    r"\^\s*\{[^{}]*\^|\^\s*\(?\s*\d+\s*\)?\s*\^|\^\s*\{?\s*\d{5,}|\d{4,}\s*!|[)}]\s*!|\\(?:frac|sqrt)(?:[^{}]*\{){12}"
)

logging.getLogger("math_verify").setLevel(logging.ERROR)  # its "timeout disabled" warning: ours holds


def warm() -> None:
    """Import and exercise both libraries once (the worker does this before it says it is ready)."""
    second_opinion("$\\frac{1}{2}$", "0.5")
    read_sympy("[1, 2)")


def too_big(text: str) -> bool:
    """Text that could make sympy build a number too large to hold (or recurse too deep)."""
    return len(text) > MAX_KEPT_CHARS or bool(_TOWER.search(text)) or text.count("{") > 60


def read_sympy(text: str) -> list[Any]:
    """What the kept parser makes of ``text`` read as LaTeX (sympy objects only)."""
    if too_big(text):
        return []
    from math_verify import parse
    from math_verify.parser import LatexExtractionConfig

    found = parse(f"${text}$", [LatexExtractionConfig()], fallback_mode="no_fallback", parsing_timeout=None)
    return [f for f in found if isinstance(f, sp.Basic | sp.MatrixBase)]


def _imaginary(expr: sp.Basic) -> sp.Basic:
    i = sp.Symbol("i")
    return expr.subs(i, sp.I) if i in getattr(expr, "free_symbols", set()) else expr


def _number(expr: sp.Expr) -> Any:
    from mathcheck.answers import Expression, Num

    expr = _imaginary(expr)
    if expr.free_symbols:
        return Expression(expr)
    if isinstance(expr, sp.Float):
        text = format(expr, "f").rstrip("0")
        decimals = len(text.split(".")[1]) if "." in text else 0
        value = sp.Rational(text or "0")
        return Num(value, sp.Rational(1, 2) / 10**decimals if decimals else None)
    return Num(sp.nsimplify(expr) if expr.has(sp.Float) else expr)


def to_value(obj: Any) -> Any:
    """A kept-parser result as one of the project's answer kinds (raises ValueError if none fits)."""
    from mathcheck.answers import Equation, SetOf, System

    if isinstance(obj, sp.MatrixBase):
        return Matrix(sp.Matrix(obj))
    region = region_of(obj) if isinstance(obj, sp.Basic) else None
    if region is not None:
        return region
    if isinstance(obj, sp.FiniteSet):
        items = list(obj.args)
        if items and all(isinstance(a, sp.Eq) and isinstance(a.lhs, sp.Symbol) for a in items):
            names = [str(a.lhs) for a in items]
            if len(set(names)) == len(names):
                return System({str(a.lhs): to_value(a.rhs) for a in items})
            return SetOf([to_value(a.rhs) for a in items], brackets="")
        return SetOf([to_value(a) for a in items], brackets="{")
    if isinstance(obj, sp.Tuple):
        return SetOf([to_value(a) for a in obj.args], ordered=True, brackets="(")
    if isinstance(obj, sp.Eq):
        lhs, rhs = obj.lhs, obj.rhs
        labelled = isinstance(lhs, sp.Tuple) and all(isinstance(a, sp.Symbol) for a in lhs.args)
        if labelled and isinstance(rhs, sp.Tuple) and len(lhs) == len(rhs):
            return System({str(a): to_value(b) for a, b in zip(lhs.args, rhs.args, strict=True)})
        if isinstance(lhs, sp.Symbol) and isinstance(rhs, sp.FiniteSet):
            return SetOf([to_value(a) for a in rhs.args], brackets="")
        if isinstance(lhs, sp.Symbol) and isinstance(rhs, sp.Expr) and not rhs.free_symbols - {lhs}:
            return to_value(rhs)  # an assignment: x = 5
        return Equation(_imaginary(lhs), _imaginary(rhs))
    if isinstance(obj, sp.Expr):
        return _number(obj)
    raise ValueError(f"no answer kind for {type(obj).__name__}")


def read_value(text: str) -> Any:
    """``text`` through the kept parser, as an answer kind; raises ValueError when it cannot read it."""
    found = read_sympy(text)
    if not found:
        raise ValueError("the kept parser cannot read it")
    return to_value(found[0])


def alone(gold: str, response: str) -> bool | None:
    """Math-Verify by itself, as its users call it: ``verify(parse(gold), parse(response))`` on the
    whole response with its defaults; None when it reads nothing on either side."""
    tail = response[-ALONE_CHARS:]  # where the answer is; bounds the regex scans on huge text
    if too_big(gold) or _TOWER.search(tail):
        return None
    from math_verify import parse, verify

    ref = parse(gold, parsing_timeout=None) or parse(f"${gold}$", parsing_timeout=None)
    ans = parse(tail, parsing_timeout=None)
    if not ref or not ans:
        return None
    return bool(verify(ref, ans, timeout_seconds=None))


def second_opinion(answer: str, gold: str) -> bool | None:
    """Math-Verify's own verdict on the extracted answer: True/False, or None if it cannot read one."""
    if too_big(answer) or too_big(gold):
        return None
    from math_verify import parse, verify

    ref = parse(f"${gold}$", parsing_timeout=None) or parse(gold, parsing_timeout=None)
    ans = parse(answer if "$" in answer else f"${answer}$", parsing_timeout=None)
    if not ref or not ans:
        return None
    return bool(verify(ref, ans, timeout_seconds=None))
