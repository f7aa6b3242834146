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


_LETTER = re.compile(
    r"\(\s*([A-Ea-e])\s*\)"  # (B)
    r"|\b(?i:option|choice|answer|letter)\s*(?i:is\s*)?[:#]?\s*\(?([A-Ea-e])\b(?![\w'])"  # option B
    r"|(?<![\w(])([A-E])\)"  # B) 3/4
    r"|(?:^|\b(?i:is|be|pick|choose|select|with)\s+)([A-E])(?=\s*(?:[.:,;!)]|$))"  # is A. / B.
)
_YES_NO_SAID = re.compile(
    r"(?:^|[.!?:;]\s+|\b(?:answer is|so|thus|therefore|hence|then)\s*,?\s*)(yes|no|true|false)\b"
    r"(?!\s+(?:one|more|longer|other|solution|way|matter|such)\b)",
    re.I,
)
_COMMON = frozenset(
    re.findall(
        r"\w+",
        "the a an so thus therefore hence then in on at after since because this that these those it its "
        "he she they we i you his her their our my final answer yes no both each all and but or if "
        "option choice correct step note finally overall also",
    )
)
"""Capitalised words that start a sentence without naming anything."""


def find_text_answer(sentence: str, gold: Text) -> str | None:
    """The answer of the reference's kind that a sentence commits to, as written: the choice letter
    ("The correct option is (B)", "B) 3/4", "option C"), yes/no ("No, it is not prime"), or the name
    ("Alice ran the farthest": the first name in it, the reference's words counting as one)."""
    plain = _plain(sentence)
    if gold.choice:
        letters = [next(g for g in m.groups() if g) for m in _LETTER.finditer(plain)]
        return letters[-1] if letters else None
    if gold.text in _YES_NO:
        said = [m.group(1) for m in _YES_NO_SAID.finditer(plain)]
        return said[-1] if said else None
    spans = [(m.start(), m.group(0)) for m in re.finditer(rf"\b{re.escape(gold.text)}\b", plain, re.I)]
    covered = [range(a, a + len(t)) for a, t in spans]
    for m in re.finditer(r"\b[A-Z][a-z]+(?:['’]s)?\b", plain):
        word = re.sub(r"['’]s$", "", m.group(0))
        if word.lower() not in _COMMON and not any(m.start() in r for r in covered):
            spans.append((m.start(), word))
    return min(spans)[1] if spans else None


def same_text(said: str, gold: Text) -> bool:
    """A found text answer against the reference (letters and words compare case-blind)."""
    return _ARTICLES.sub("", said.strip().lower()) == gold.text


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
