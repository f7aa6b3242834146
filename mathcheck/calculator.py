"""The calculator tool's arithmetic: mathcheck's one whitelisted parser, exact values, a budget.

The expression comes from a model, so it is read by :func:`mathcheck.parser.parse_expr` (never
``eval``/``sympify``; exponents, factorials and digit counts capped) with a few calculator
functions added, then simplified by sympy. ``sandbox.calculate`` runs :func:`calculate_inprocess`
in the verification worker under a hard time limit, so a slow simplification costs at most the
budget and never runs on the caller's event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import sympy as sp

from mathcheck.final import READ_ERRORS, StepTimeout
from mathcheck.parser import MAX_FACTORIAL, Functions, parse_expr

MAX_EXPRESSION_CHARS = 200
CALCULATOR_BUDGET_S = 2.0

Limiter = Callable[[float], AbstractContextManager[None]]


class CalculationError(ValueError):
    """The expression is not allowed, not a finite number, or took too long; says which."""


def _factorial(value: sp.Expr) -> sp.Expr:
    if not (value.is_Integer and 0 <= value <= MAX_FACTORIAL):
        raise CalculationError(f"factorial() takes a whole number from 0 to {MAX_FACTORIAL}")
    return sp.factorial(value)


def _round(value: sp.Expr) -> sp.Expr:
    return sp.floor(value + sp.Rational(1, 2))  # half up, exactly (no float on the way)


FUNCTIONS: Functions = {
    "factorial": _factorial,
    "floor": sp.floor,
    "ceil": sp.ceiling,
    "round": _round,
    "asin": sp.asin,
    "acos": sp.acos,
    "atan": sp.atan,
}
"""Beside mathcheck's own (sqrt, abs, sin, cos, tan, arcsin.., exp, ln, log = base 10)."""


def evaluate(expression: str) -> sp.Expr:
    """The exact value of a numeric expression; raises CalculationError saying what is wrong."""
    text = expression.strip()
    if not text:
        raise CalculationError("the expression is empty")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise CalculationError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        expr = parse_expr(text, functions=FUNCTIONS).expr
    except CalculationError:
        raise
    except READ_ERRORS as exc:  # the parser's reason: "unknown word 'open'", "exponent too large"
        raise CalculationError(f"not allowed in a calculation: {text!r} ({exc})") from None
    if expr.free_symbols:
        names = ", ".join(sorted(str(s) for s in expr.free_symbols))
        raise CalculationError(f"the calculator takes numbers only, not unknowns ({names})")
    return sp.simplify(expr)


def format_value(value: sp.Expr) -> str:
    """Exact form, plus a decimal when the exact form is not already one."""
    if value.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        raise CalculationError("the result is not a finite number")
    if value.is_Integer:
        return str(value)
    decimal = sp.N(value, 12)
    if not decimal.is_number:
        raise CalculationError("the result is not a number")
    shown = f"{float(decimal):.10g}" if decimal.is_real else str(decimal)
    return shown if value.is_Float else f"{value} ≈ {shown}"


def _no_limit(_seconds: float) -> AbstractContextManager[None]:
    return nullcontext()


def calculate_inprocess(expression: str, *, budget_s: float, limiter: Limiter = _no_limit) -> str:
    """The formatted value, computed in this process; ``limiter`` bounds it (see sandbox)."""
    try:
        with limiter(budget_s):
            return format_value(evaluate(expression))
    except StepTimeout:
        raise CalculationError("the calculation took too long; try a simpler expression") from None
    except CalculationError:
        raise
    except (*READ_ERRORS, OverflowError) as exc:
        raise CalculationError(f"cannot evaluate {expression.strip()!r}: {exc}") from None
