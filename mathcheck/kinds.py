"""Answer kinds compared as what they are: regions of the line (intervals, inequalities, ``t \\in
(1,4]``), matrices and vectors, and text answers (multiple-choice letters, yes/no, names).

A region keeps its variable: ``y \\le 3`` and ``(-\\infty, 3]`` are the same set, and the bracket
matters (``(1,4)`` is not ``[1,4)``). Text answers compare as words, never as symbols.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sympy as sp


@dataclass
class Region:
    """A subset of the real line, maybe with the variable it constrains."""

    set: sp.Set
    var: str | None = None


@dataclass
class Matrix:
    value: sp.Matrix


@dataclass
class Text:
    text: str
    """Lower-cased words; for a multiple-choice answer, the letter."""
    choice: bool = False


_CHOICE = re.compile(r"^\(?\s*([A-Ea-e])\s*\)?(?:[\s.:)]|$)")
_YES_NO = {"yes", "no", "true", "false"}
_TEXT_WRAP = re.compile(r"\\(?:text|textbf|mathrm|mathbf|textit|mbox)\s*\{([^{}]*)\}")
_ARTICLES = re.compile(r"^(?:the|a|an)\s+", re.I)


def _plain(text: str) -> str:
    prev = None
    while prev != text:
        prev, text = text, _TEXT_WRAP.sub(r"\1", text)
    return text.replace("$", "").replace("**", "").strip().strip(".!,;:").strip()


def text_reference(gold: str) -> Text | None:
    """A reference that is words, a yes/no or a choice letter; None for anything mathematical."""
    plain = _plain(gold)
    m = re.fullmatch(r"\(?\s*([A-E])\s*\)?", plain)
    if m:
        return Text(m.group(1).lower(), choice=True)
    words = plain.lower()
    if words in _YES_NO:
        return Text(words)
    if re.fullmatch(r"[A-Za-z][A-Za-z' -]{2,}", plain) and not re.search(
        r"\b(?:sqrt|frac|pi|sin|cos|ln|log)\b", plain
    ):
        return Text(_ARTICLES.sub("", words))
    return None


def text_matches(answer: str, gold: Text) -> bool:
    plain = _plain(answer)
    if gold.choice:
        m = _CHOICE.match(plain) or re.search(r"\b(?:option|choice)\s+\(?([A-Ea-e])\b", plain, re.I)
        return m is not None and m.group(1).lower() == gold.text
    words = _ARTICLES.sub("", plain.lower())
    if gold.text in _YES_NO:
        first = re.match(r"[a-z]+", words)
        return first is not None and first.group(0) == gold.text
    return words == gold.text or re.sub(r"[^a-z ]", "", words).strip() == gold.text


def region_of(expr: sp.Basic) -> Region | None:
    """An interval, a union, an inequality in one variable or ``x \\in S`` as a region."""
    if isinstance(expr, sp.Set) and not isinstance(expr, sp.FiniteSet):
        return Region(expr)
    if isinstance(expr, sp.Eq) and isinstance(expr.rhs, sp.Set) and isinstance(expr.lhs, sp.Symbol):
        return Region(expr.rhs, str(expr.lhs))
    if isinstance(expr, (sp.And, sp.Or, sp.Rel)) and not isinstance(expr, sp.Eq):
        free = expr.free_symbols
        if len(free) != 1:
            return None
        (var,) = free
        rel = expr if not isinstance(expr, sp.Ne) else sp.Or(var < expr.rhs, var > expr.rhs)
        solved = (
            sp.solveset(rel, var, sp.S.Reals) if not isinstance(rel, sp.Or | sp.And) else _solve(rel, var)
        )
        return Region(solved, str(var)) if isinstance(solved, sp.Set) else None
    return None


def _solve(expr: sp.Basic, var: sp.Symbol) -> sp.Set:
    if isinstance(expr, sp.And):
        return sp.Intersection(*(_solve(a, var) for a in expr.args))
    if isinstance(expr, sp.Or):
        return sp.Union(*(_solve(a, var) for a in expr.args))
    return sp.solveset(expr, var, sp.S.Reals)


def _same_set(a: sp.Set, b: sp.Set) -> bool:
    if a == b:
        return True
    try:
        return bool(sp.Complement(a, b) == sp.S.EmptySet and sp.Complement(b, a) == sp.S.EmptySet)
    except (TypeError, ValueError):
        return False


def same_region(ans: Region, gold: Region) -> bool:
    if ans.var and gold.var and ans.var != gold.var:
        return False
    return _same_set(ans.set, gold.set)


def same_matrix(ans: Matrix, gold: Matrix) -> bool:
    if ans.value.shape != gold.value.shape:
        return False
    return all(sp.simplify(a - g) == 0 for a, g in zip(ans.value, gold.value, strict=True))


def open_interval(lo: sp.Expr, hi: sp.Expr) -> Region | None:
    """``(a, b)`` read as an interval, for comparing a pair with a region."""
    try:
        return Region(sp.Interval.open(lo, hi)) if bool(lo < hi) else None
    except TypeError:
        return None
