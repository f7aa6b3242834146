"""Reference answers computed from the prompt itself, for questions that say exactly what to do:
solve an equation or a system, differentiate, integrate, evaluate an expression.

Word problems have no such reference; they return None and only the steps are checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sympy as sp

from mathcheck.answers import Expression, Num, SetOf, System, Value
from mathcheck.parser import ParseError, parse_expr


@dataclass(frozen=True, slots=True)
class Task:
    kind: str
    """"solve", "system", "derivative", "integral", "evaluate"."""
    reference: Value
    description: str
    up_to_constant: bool = False


_MATH_IN_PROMPT = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.DOTALL)
_SOLVE = re.compile(
    r"\b(?:solve|find (?:all )?(?:the )?(?:values? of |real )?(?:x|y|z|n|t|solutions?|roots?))\b", re.I
)
_DERIV = re.compile(r"\b(?:derivative of|differentiate)\b\s*(?:the function\s*)?(.+)", re.I | re.S)
_INTEG = re.compile(
    r"\b(?:integral of|integrate|antiderivative of|evaluate\s+\\int|\\int)\b\s*(.+)", re.I | re.S
)
_EVAL = re.compile(
    r"\b(?:what is|what's|compute|calculate|evaluate|simplify|find the value of)\b\s*:?\s*(.+)", re.I | re.S
)
_LEAD = re.compile(r"^\s*(?:[fgy]\s*\(\s*x\s*\)\s*=|y\s*=|the (?:function|expression)\s*)", re.I)


def _math_text(prompt: str) -> str:
    """The prompt with LaTeX delimiters removed and trailing words/punctuation cut."""
    found = [next(g for g in m.groups() if g is not None) for m in _MATH_IN_PROMPT.finditer(prompt)]
    return " ; ".join(found) if found else prompt


def _clean(fragment: str) -> str:
    fragment = re.sub(r"\s*(?:with respect to|w\.r\.t\.?)\s+[a-z]\b.*$", "", fragment, flags=re.I | re.S)
    fragment = re.sub(r"\\,?\s*d\s*x\b|\bdx\b", "", fragment)
    fragment = re.sub(r"\\int\s*", "", fragment)
    fragment = re.sub(
        r"\b(?:and|for|then|give|show|please|if|where|in)\b.*$", "", fragment, flags=re.I | re.S
    )
    return _LEAD.sub("", fragment.strip().rstrip("?.!:").strip().strip("$").strip())


def _equations(prompt: str) -> list[tuple[sp.Expr, sp.Expr]]:
    text = _math_text(prompt)
    out = []
    for piece in re.split(r";|,\s|\band\b|\\\\|\n|:", text):
        if piece.count("=") != 1:
            continue
        lhs, rhs = piece.split("=")
        lhs = re.sub(r"^.*?\b(?:solve|for|equation|system)\b\s*:?", "", lhs, flags=re.I).strip()
        rhs = _clean(rhs)
        try:
            left, right = parse_expr(lhs).expr, parse_expr(rhs).expr
        except ParseError:
            continue
        if (left - right).free_symbols:
            out.append((left, right))
    return out


def task_from_prompt(prompt: str | None) -> Task | None:
    """A computed reference when the prompt is a self-contained math exercise, else None."""
    if not prompt or len(prompt) > 2000:
        return None
    m = _DERIV.search(prompt)
    if m:
        try:
            expr = parse_expr(_clean(_math_text(m.group(1)) if "$" in m.group(1) else m.group(1))).expr
        except ParseError:
            return None
        var = _variable(expr)
        return Task("derivative", Expression(sp.diff(expr, var)), f"d/d{var} of {expr}") if var else None
    m = _INTEG.search(prompt)
    if m:
        body = _math_text(m.group(1)) if "$" in m.group(1) else m.group(1)
        bounds = re.search(r"from\s+(\S+)\s+to\s+(\S+)|_\{?([^}^\s]+)\}?\^\{?([^}\s]+)\}?", body)
        try:
            if bounds:
                lo, hi = (
                    (bounds.group(1), bounds.group(2))
                    if bounds.group(1)
                    else (bounds.group(3), bounds.group(4))
                )
                integrand = parse_expr(_clean(body[: bounds.start()] + " " + body[bounds.end() :])).expr
                var = _variable(integrand)
                if not var:
                    return None
                a, b = parse_expr(lo.rstrip(".,?")).expr, parse_expr(hi.rstrip(".,?")).expr
                return Task(
                    "integral", Num(sp.integrate(integrand, (var, a, b))), f"∫ {integrand} from {a} to {b}"
                )
            integrand = parse_expr(_clean(body)).expr
        except ParseError:
            return None
        var = _variable(integrand)
        if not var:
            return None
        antiderivative = sp.integrate(integrand, var)
        if antiderivative.has(sp.Integral):
            return None
        return Task("integral", Expression(antiderivative, plus_c=True), f"∫ {integrand} d{var}", True)
    if _SOLVE.search(prompt) or re.search(r"\bsystem\b", prompt, re.I):
        equations = _equations(prompt)
        if not equations:
            return None
        symbols = sorted(set().union(*[(a - b).free_symbols for a, b in equations]), key=str)
        if len(equations) == 1 and len(symbols) == 1:
            sol = sp.solve(sp.Eq(*equations[0]), symbols[0])
            real = [s for s in sol if s.is_real]
            if not real:
                return None
            return Task(
                "solve", SetOf([Num(s) for s in real]), f"solve {equations[0][0]} = {equations[0][1]}"
            )
        if len(equations) == len(symbols) >= 2:
            sol = sp.solve([sp.Eq(a, b) for a, b in equations], symbols, dict=True)
            if len(sol) != 1:
                return None
            return Task("system", System({str(k): Num(v) for k, v in sol[0].items()}), "solve the system")
        return None
    m = _EVAL.search(prompt)
    if m:
        try:
            expr = parse_expr(_clean(_math_text(m.group(1)))).expr
        except ParseError:
            return None
        if expr.free_symbols:
            return Task("evaluate", Expression(sp.simplify(expr)), f"simplify {expr}")
        return Task("evaluate", Num(expr), f"evaluate {expr}")
    return None


def _variable(expr: sp.Expr) -> sp.Symbol | None:
    syms = sorted(expr.free_symbols, key=str)
    if sp.Symbol("x") in syms:
        return sp.Symbol("x")
    return syms[0] if len(syms) == 1 else None
