"""Typed answers (numbers with precision and units, sets, systems, expressions) and their comparison.

``parse_answer`` turns a short answer text ("2 hours and 24 minutes", "x = 2 or x = -3",
"\\frac{x^3}{3} + C", "33.3%") into a value; ``compare`` judges it against a reference and says how
they are equal: exactly, after rounding at the precision shown, or in another unit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import sympy as sp

from mathcheck.kinds import Matrix, Region, open_interval, same_matrix, same_region
from mathcheck.normalize import has_pm, plus_minus
from mathcheck.normalize import strip as _strip
from mathcheck.parser import ParseError, parse_expr
from mathcheck.units import UNITS, Unit, prompt_unit

Verdict = Literal[
    "equivalent", "equivalent_after_rounding", "equivalent_in_other_unit", "not_equivalent", "unverifiable"
]
_RANK = {"equivalent": 0, "equivalent_in_other_unit": 1, "equivalent_after_rounding": 2, "not_equivalent": 3}


@dataclass
class Num:
    value: sp.Expr
    tol: sp.Expr | None = None
    """Half a unit of the last decimal shown (in the base unit), when the answer is a rounded decimal."""
    unit: Unit | None = None
    """The unit it was written in; ``value`` is in that dimension's base unit."""
    percent: bool = False
    compound: bool = False
    parts: tuple[Unit, ...] = ()
    """Every unit of a compound such as 2 h 24 min (each is a candidate for a bare reference)."""


@dataclass
class Expression:
    expr: sp.Expr
    plus_c: bool = False


@dataclass
class Equation:
    lhs: sp.Expr
    rhs: sp.Expr


@dataclass
class SetOf:
    items: list[Value]
    ordered: bool = False
    brackets: str = ""
    """"{" a set, "(" or "[" a tuple or list, "" a bare list ("2, 3", "x = 2 or x = -3")."""


@dataclass
class System:
    values: dict[str, Value] = field(default_factory=dict)


Value = Num | Expression | Equation | SetOf | System | Region | Matrix

_COMPOUND = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*(?:,?\s*and\s+|,\s*|\s+)(\d+(?:\.\d+)?)\s*([A-Za-z]+)"
    r"(?:\s*(?:,?\s*and\s+|,\s*|\s+)(\d+(?:\.\d+)?)\s*([A-Za-z]+))?\s*$"
)
_MIXED = re.compile(r"^\s*(-?)(\d+)\s+(\d+)\s*/\s*(\d+)(?:\s+[A-Za-z][A-Za-z ]*)?\s*$")


def _decimals(text: str) -> int | None:
    nums = re.findall(r"\d+(?:\.(\d+))?", text.replace(",", ""))
    if len(nums) != 1 or not nums[0]:
        return None
    return len(nums[0])


def parse_number(text: str, approx: bool = False) -> Num:
    """A single quantity: number, percent, money, a unit, or a compound time like 2 h 24 min."""
    m = _COMPOUND.match(text)
    if m:
        pairs = [(m.group(k), m.group(k + 1)) for k in (1, 3, 5) if m.group(k)]
        units = [UNITS.get(u) or UNITS.get(u.lower()) for _, u in pairs]
        if all(units) and len({u.dimension for u in units if u}) == 1:
            total = sum(
                (sp.Rational(v) * u.factor for (v, _), u in zip(pairs, units, strict=True) if u),
                sp.Integer(0),
            )
            return Num(total, None, units[0], compound=True, parts=tuple(u for u in units if u))
    m = _MIXED.match(text)
    if m and int(m.group(3)) < int(m.group(4)):
        value = int(m.group(2)) + sp.Rational(int(m.group(3)), int(m.group(4)))
        return Num(-value if m.group(1) else value)
    parsed = parse_expr(text, convert_units=True)
    if parsed.expr.free_symbols:
        raise ParseError("not a number")
    known = [u for u in parsed.units if u.dimension]
    unit = known[0] if known else None
    if len({u.dimension for u in known}) > 1:
        raise ParseError("mixed units")
    dec = _decimals(text)
    percent = "%" in text
    tol = None
    if (dec is not None and dec > 0) or approx:
        scale = (unit.factor if unit and len(known) == 1 else 1) / (100 if percent else 1)
        tol = sp.Rational(1, 2) * sp.Rational(1, 10) ** (dec or 0) * scale
    return Num(parsed.expr, tol, unit, percent)


_STRUCTURE = re.compile(
    r"<|>|≤|≥|\\(?:le|ge|leq|geq|lt|gt|leqslant|geqslant|neq?|in|cup|cap|infty|begin|binom|log_)\b|∞|∪|\\emptyset"
)
_NAMED_SET = re.compile(r"\(\s*[A-Za-z](?:\s*,\s*[A-Za-z])+\s*\)\s*(?:\\in|∈)\s*(\\\{.*\\\})\s*")
"""Tuples named by their unknowns, then a set of them (one unknown, ``x \\in S``, is a region)."""
_INTERVAL = re.compile(r"^[\[(][^\[\]()]*,[^\[\]()]*[\])]$")


def _kept(text: str) -> Value:
    from mathcheck.kept import read_value

    try:
        return read_value(text)  # type: ignore[no-any-return,unused-ignore]
    except (ValueError, TypeError, AttributeError, NotImplementedError) as exc:
        raise ParseError(str(exc) or "the kept parser cannot read it") from exc


def parse_answer(text: str) -> Value:
    """Parse a final answer or a reference. Raises ParseError when it is not understood."""
    raw = text
    approx = bool(re.search(r"≈|\\approx|approx|about|around|roughly", raw))
    text = _strip(text)
    if not text:
        raise ParseError("empty answer")
    named_set = _NAMED_SET.fullmatch(text)
    if named_set:  # (x, y) \in \{(4,8), (5,5)\}: the set of pairs is the answer
        return parse_answer(named_set.group(1))
    if has_pm(text):
        pair = plus_minus(text)
        assert pair is not None
        values = [parse_answer(p) for p in pair]
        flat = [
            v for val in values for v in (val.items if isinstance(val, SetOf) and not val.brackets else [val])
        ]
        return SetOf(flat)
    interval = _INTERVAL.match(text) and text[0] + text[-1] in ("[)", "(]", "[]")
    if _STRUCTURE.search(text) or interval:
        return _kept(text)
    try:
        return _parse_own(text, approx)
    except (ParseError, ValueError, TypeError, ZeroDivisionError) as exc:
        if "\\" in text or "{" in text:
            return _kept(text)
        raise ParseError(str(exc)) from exc


def _parse_own(text: str, approx: bool) -> Value:
    if _COMPOUND.match(text) or _MIXED.match(text):
        return parse_number(text, approx)
    if text.startswith("\\{") and text.endswith("\\}"):
        return SetOf([parse_answer(p) for p in _split_top(text[2:-2])], brackets="{")
    parts = _split_top(text)
    if len(parts) > 1:
        values = [parse_answer(p) for p in parts]
        names = [_assigned_name(p) for p in parts]
        if all(names) and len(set(names)) == len(names):
            return System({n: v for n, v in zip(names, values, strict=True) if n})
        ordered = text[0] + text[-1] in ("()", "[]") and _wrapped(text)
        return SetOf(values, ordered=ordered, brackets=text[0] if ordered else "")
    named = re.fullmatch(r"\s*\(\s*([A-Za-z](?:\s*,\s*[A-Za-z])+)\s*\)\s*=(.+)", text)
    if named:  # (a, b) = (5, 1)
        labels = [n.strip() for n in named.group(1).split(",")]
        value = parse_answer(named.group(2))
        if isinstance(value, SetOf) and len(value.items) == len(labels):
            return System(dict(zip(labels, value.items, strict=True)))
    if text[0] + text[-1] in ("()", "[]") and len(_split_top(text[1:-1])) > 1:
        return SetOf([parse_answer(p) for p in _split_top(text[1:-1])], ordered=True, brackets=text[0])
    if "=" in text:
        lhs, _, rhs = text.rpartition("=")
        numeric = not re.search(r"[A-Za-z]", lhs + rhs.replace("\\frac", "").replace("\\sqrt", ""))
        if "=" not in lhs and numeric and re.match(r"\s*[-$\d.]", rhs):
            return parse_answer(rhs)  # "2400 / 1000 = 2.4": the result is the answer
        name = _assigned_name(text)
        if name and "=" not in lhs:
            value = parse_answer(rhs)
            if (
                isinstance(value, Expression)
                and not value.plus_c
                and value.expr.free_symbols - {sp.Symbol(name)}
            ):
                return Equation(sp.Symbol(name), value.expr)  # y = x/2 - 1: a line, not a value
            return value
        if re.fullmatch(r"\s*[A-Za-z]'*\s*\(\s*[A-Za-z]\s*\)\s*", lhs) or "=" in lhs:
            return parse_answer(rhs)
        left, right = parse_expr(lhs).expr, parse_expr(rhs).expr
        return Equation(left, right)
    plus_c = bool(re.search(r"\+\s*C\s*$", text))
    if plus_c:
        text = re.sub(r"\+\s*C\s*$", "", text)
    try:
        return parse_number(text, approx)
    except ParseError:
        pass
    expr = parse_expr(text).expr
    return Expression(expr, plus_c)


def _wrapped(text: str) -> bool:
    """The first bracket closes at the end: "(1, 2)" but not "(1, 2), (3, 4)"."""
    depth = 0
    for i, c in enumerate(text):
        depth += (c in "([{") - (c in ")]}")
        if depth == 0:
            return i == len(text) - 1
    return False


def _assigned_name(part: str) -> str | None:
    m = re.fullmatch(r"\s*\$?\s*([A-Za-z](?:_\{?\w+\}?)?)\s*=\s*[^=]+", part)
    return m.group(1).replace("{", "").replace("}", "") if m else None


def _split_top(text: str) -> list[str]:
    """Split at top-level commas, semicolons, ' and ', ' or ' (not inside brackets or numbers like 1,000)."""
    text = re.sub(r"\s+(?:and|or)\s+", " ; ", text)
    text = text.replace("\\text{ or }", ";").replace("\\text{ and }", ";")
    parts, depth, cur, i = [], 0, "", 0
    while i < len(text):
        c = text[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if depth == 1 and c == ";" and text[i - 1 : i] != "\\":  # (0;-2;6): a tuple written with semicolons
            cur += ","
        elif depth == 0 and (c == ";" or (c == "," and not re.match(r",\d{3}(?!\d)", text[i:]))):
            parts.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


# --- comparison -------------------------------------------------------------------------


def _close(a: sp.Expr, b: sp.Expr) -> bool:
    try:
        diff = sp.N(a - b, 40)
        if diff.is_Number:
            scale = max(1.0, abs(float(sp.N(b, 20))))
            return abs(float(diff)) <= 1e-25 * scale
        return sp.simplify(a - b) == 0
    except (TypeError, ValueError):
        return False


def _within(a: sp.Expr, b: sp.Expr, tol: sp.Expr) -> bool:
    if b != 0 and a == 0:
        return False  # "0.00" is not a rounding of a tiny non-zero number
    try:
        return float(abs(sp.N(a - b, 30))) <= float(tol) * (1 + 1e-9)
    except (TypeError, ValueError):
        return False


def compare_numbers(ans: Num, gold: Num, prompt: str | None = None) -> Verdict:
    a, g = ans.value, gold.value
    other_unit = False
    if ans.unit and gold.unit and ans.unit.dimension != gold.unit.dimension:
        return "not_equivalent"
    if a.has(sp.oo, -sp.oo, sp.zoo) or g.has(sp.oo, -sp.oo, sp.zoo):
        return "equivalent" if a == g else "not_equivalent"  # ∞ and -∞
    angle = "angle" in (dimension_of(ans), dimension_of(gold))
    if angle and bool(ans.unit) != bool(gold.unit) and _close(a, g):
        return "equivalent"  # 30° and π/6: a bare angle may be in radians
    if ans.unit and gold.unit:
        other_unit = ans.unit.name != gold.unit.name or ans.compound != gold.compound
    elif ans.unit and not gold.unit:
        candidates = [*prompt_unit(prompt, ans.unit.dimension or ""), ans.unit, *ans.parts]
        if ans.unit.dimension == "money":
            candidates.append(UNITS["$"])  # 75 cents for a bare 0.75: dollars are the default
        for unit in candidates:
            verdict = compare_numbers(ans, Num(g * unit.factor, _scaled(gold.tol, unit), unit), None)
            if verdict != "not_equivalent":
                if unit.name != ans.unit.name or ans.compound:
                    return "equivalent_in_other_unit" if verdict == "equivalent" else verdict
                return verdict
        return "not_equivalent"
    elif gold.unit and not ans.unit:
        return compare_numbers(Num(a * gold.unit.factor, _scaled(ans.tol, gold.unit), gold.unit), gold, None)
    if ans.percent != gold.percent:
        alt = a * 100 if ans.percent else a / 100  # "25" for 25%, or "25%" for a reference of 25
        alt_tol = (ans.tol * 100 if ans.percent else ans.tol / 100) if ans.tol is not None else None
        if _close(alt, g) or (alt_tol is not None and _within(alt, g, alt_tol)):
            return "equivalent" if _close(alt, g) else "equivalent_after_rounding"
    if _close(a, g):
        return "equivalent_in_other_unit" if other_unit else "equivalent"
    if gold.tol is not None and _within(a, g, gold.tol):
        return "equivalent"  # the reference itself is rounded
    if ans.tol is not None and _within(a, g, ans.tol):
        return "equivalent_after_rounding"
    return "not_equivalent"


def _scaled(tol: sp.Expr | None, unit: Unit) -> sp.Expr | None:
    return None if tol is None else tol * unit.factor


def _expr_equal(a: sp.Expr, b: sp.Expr, up_to_constant: bool) -> bool:
    diff = sp.simplify(sp.expand(a - b))
    if diff == 0:
        return True
    if up_to_constant:
        syms = (a - b).free_symbols
        return all(sp.simplify(sp.diff(diff, s)) == 0 for s in syms) if syms else True
    return False


def _as_region(value: Value) -> Region | None:
    if isinstance(value, Region):
        return value
    if isinstance(value, SetOf) and value.ordered and len(value.items) == 2:  # (1, 4): maybe an interval
        lo, hi = value.items
        if isinstance(lo, Num) and isinstance(hi, Num):
            return open_interval(lo.value, hi.value)
    return None


def _line_of(value: Value) -> sp.Expr | None:
    """An answer given as ``y = f(x)`` compared with a bare ``f(x)``: the right side."""
    if (
        isinstance(value, Equation)
        and isinstance(value.lhs, sp.Symbol)
        and value.lhs not in value.rhs.free_symbols
    ):
        return value.rhs
    return None


def compare(ans: Value, gold: Value, prompt: str | None = None, up_to_constant: bool = False) -> Verdict:
    """How ``ans`` relates to ``gold``; "not_equivalent" when the kinds cannot match."""
    if isinstance(gold, SetOf) and len(gold.items) == 1 and not isinstance(ans, SetOf):
        gold = gold.items[0]
    if isinstance(ans, SetOf) and len(ans.items) == 1 and not isinstance(gold, SetOf):
        ans = ans.items[0]
    if isinstance(ans, Region) or isinstance(gold, Region):
        a_region, g_region = _as_region(ans), _as_region(gold)
        ok = a_region is not None and g_region is not None and same_region(a_region, g_region)
        return "equivalent" if ok else "not_equivalent"
    if isinstance(ans, Matrix) or isinstance(gold, Matrix):
        ok = isinstance(ans, Matrix) and isinstance(gold, Matrix) and same_matrix(ans, gold)
        return "equivalent" if ok else "not_equivalent"
    if isinstance(ans, Equation) and isinstance(gold, Expression) and _line_of(ans) is not None:
        ans = Expression(_line_of(ans))  # type: ignore[arg-type,unused-ignore]
    if isinstance(gold, Equation) and isinstance(ans, Expression) and _line_of(gold) is not None:
        gold = Expression(_line_of(gold))  # type: ignore[arg-type,unused-ignore]
    if isinstance(ans, Num) and isinstance(gold, Num):
        return compare_numbers(ans, gold, prompt)
    if isinstance(ans, Num | Expression) and isinstance(gold, Num | Expression):
        a = ans.value if isinstance(ans, Num) else ans.expr
        g = gold.value if isinstance(gold, Num) else gold.expr
        plus_c = up_to_constant or any(isinstance(v, Expression) and v.plus_c for v in (ans, gold))
        return "equivalent" if _expr_equal(a, g, plus_c) else "not_equivalent"
    if isinstance(ans, Equation) and isinstance(gold, Equation):
        ratio = sp.simplify((ans.lhs - ans.rhs) / (gold.lhs - gold.rhs))
        return "equivalent" if ratio.is_number and ratio != 0 else "not_equivalent"
    if isinstance(ans, System) and isinstance(gold, System):
        if set(ans.values) != set(gold.values):
            return "not_equivalent"
        return _worst([compare(ans.values[k], gold.values[k], prompt) for k in gold.values])
    if isinstance(ans, SetOf) and isinstance(gold, System):  # -5, 14/3 for x = -5, p = 14/3: in order
        ans = System(dict(zip(gold.values, ans.items, strict=False)))
        return compare(ans, gold, prompt) if len(ans.values) == len(gold.values) else "not_equivalent"
    if isinstance(ans, System) and isinstance(gold, SetOf):
        return compare(SetOf([ans.values[k] for k in sorted(ans.values)], True, "("), gold, prompt)
    if isinstance(ans, SetOf) and isinstance(gold, SetOf):
        if not (ans.ordered and gold.ordered):  # a set lists each member once: (3,17,3,7) twice is one
            ans, gold = _distinct(ans, prompt), _distinct(gold, prompt)
        if len(ans.items) != len(gold.items):
            return "not_equivalent"
        if ans.brackets and gold.brackets and (ans.brackets == "{") != (gold.brackets == "{"):
            return "not_equivalent"  # a set is not a tuple
        if gold.ordered and (ans.ordered or not ans.brackets):  # "1, 3" for the pair (1, 3): in order
            return _worst([compare(a, g, prompt) for a, g in zip(ans.items, gold.items, strict=True)])
        return _match_sets(ans.items, gold.items, prompt)
    return "not_equivalent"


def _distinct(value: SetOf, prompt: str | None) -> SetOf:
    kept: list[Value] = []
    for item in value.items:
        if not any(compare(item, k, prompt) == "equivalent" for k in kept):
            kept.append(item)
    return value if len(kept) == len(value.items) else SetOf(kept, value.ordered, value.brackets)


def _match_sets(ans: list[Value], gold: list[Value], prompt: str | None) -> Verdict:
    remaining = list(gold)
    verdicts: list[Verdict] = []
    for a in ans:
        for g in remaining:
            v = compare(a, g, prompt)
            if v != "not_equivalent":
                verdicts.append(v)
                remaining.remove(g)
                break
        else:
            return "not_equivalent"
    return _worst(verdicts)


def _worst(verdicts: list[Verdict]) -> Verdict:
    return max(verdicts, key=lambda v: _RANK.get(v, 3)) if verdicts else "not_equivalent"


def dimension_of(value: Value) -> str | None:
    return value.unit.dimension if isinstance(value, Num) and value.unit else None
