"""Checking an arithmetic claim link by link: exact arithmetic, rounding at the precision shown,
unit conversions, complex numbers, congruences modulo n, identities where an expression is
expanded or factored, and the right value of the first false link at the claim's own precision.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sympy as sp

from mathcheck.claims import Candidate, Claim, ClaimVerdict
from mathcheck.parser import Parsed, ParseError, parse_expr


def _decimals_shown(part: str) -> int:
    found = re.findall(r"\d\.(\d+)", part)
    return max((len(d) for d in found), default=0)


def _is_atom(part: str) -> bool:
    """A single number, maybe with a unit or label: nothing is computed on this side."""
    core = re.sub(r"\\(?:text|mathrm)\{[^{}]*\}|\\[,;! ]|[$%]", " ", part)
    core = re.sub(r"(?<=\d)\s*[A-Za-z]+(?:/[A-Za-z]+)?(?:\s+[A-Za-z]+)?\s*$", "", core.strip())
    return bool(re.fullmatch(r"-?\d[\d,]*(?:\.\d+)?", core.strip().replace("{,}", "")))


def format_value(value: sp.Expr, like: str = "") -> str:
    """The right value: exact when it is short, else a decimal a little finer than the claim's."""
    value = sp.expand(value) if value.has(sp.I) else value  # (2+3i)(2-3i) is 13
    if value.is_real is False:  # a complex number: a ± bi, each part at the claim's precision
        real, imag = value.as_real_imag()
        a, b = (format_value(part, like).split(" ≈ ")[-1] for part in (real, sp.Abs(imag)))
        b = "" if b == "1" else b
        if real == 0:
            return f"{'-' if imag < 0 else ''}{b}i"
        return f"{a} {'-' if imag < 0 else '+'} {b}i"
    value = sp.nsimplify(value) if value.is_Float else value
    shown = _decimals_shown(like)
    if value.is_Integer:
        return f"{value}.{'0' * shown}" if shown else str(value)  # 2.00 + 3.00 = 6.00 expects 5.00
    if value.is_Rational:
        q = int(value.q)
        while q % 2 == 0:
            q //= 2
        while q % 5 == 0:
            q //= 5
        if q == 1 and value.q <= 10**6:  # terminating decimal: write it exactly (27/4 = 6.75)
            digits = max(shown, next(d for d in range(7) if (value * 10**d).is_Integer))
            return f"{sp.N(value, 30):.{digits}f}"  # 5 × 0.50 = 2.00 expects 2.50
        if not _decimals_shown(like) and value.q < 1000:
            return f"{value.p}/{value.q} ≈ {float(value):.4g}"
    if shown:  # at the claim's own precision: 10 / 3 = 3.43 expects 3.33
        return f"{float(sp.N(value, 30)):.{shown}f}"
    return f"{float(sp.N(value, 30)):.4f}".rstrip("0").rstrip(".")


def _unit_word(text: str) -> str:
    """The unit as the claim writes it on the right ("16 hours" -> "hours")."""
    m = re.search(r"\d\s*([A-Za-z]+(?:/[A-Za-z]+)?)", text)
    return m.group(1) if m else ""


def _parse_side(
    part: str, convert: bool, log_base: int, imaginary: bool = False, modulus: int | None = None
) -> Parsed:
    part = re.sub(r"\\boxed\{(.*)\}", r"\1", part)
    return parse_expr(part, convert_units=convert, log_base=log_base, imaginary=imaginary, modulus=modulus)


def _holds(lhs: sp.Expr, rhs: sp.Expr, relation: str, rhs_text: str, lhs_text: str) -> bool:
    diff = sp.N(lhs - rhs, 40)
    if not diff.is_Number:
        return bool(sp.simplify(lhs - rhs) == 0)
    if diff == 0 or abs(diff) < sp.Float("1e-30") * max(1, abs(sp.N(rhs, 20))):
        return True
    dec = max(_decimals_shown(rhs_text), 0)
    if dec or relation == "≈" or _decimals_shown(lhs_text):
        # a rounded result: allow one unit in the last place shown on either side
        dec = dec or (0 if relation == "≈" else _decimals_shown(lhs_text))
        return bool(abs(diff) <= sp.Rational(1, 10**dec) * (1 + sp.Rational(1, 10**9)))
    return False


def check_link(
    lhs_text: str,
    rhs_text: str,
    relation: str,
    imaginary: bool = False,
    modulus: int | None = None,
    rewriting: bool = False,
) -> tuple[ClaimVerdict | None, str | None]:
    """Verdict of one link, or None when it is not a checkable arithmetic statement.
    ``imaginary``: a lone ``i`` is the imaginary unit (the response works with complex numbers);
    ``modulus``: the link holds modulo this number (a congruence, ``\\pmod 7``);
    ``rewriting``: an expression is being expanded or factored, so a link between polynomials in
    the same unknowns is an identity."""
    verdicts: list[tuple[ClaimVerdict | None, str | None]] = []
    for log_base in (10, 0):
        try:
            lhs = _parse_side(lhs_text, False, log_base or 10 if log_base else 10, imaginary, modulus)
            rhs = _parse_side(rhs_text, False, 10, imaginary, modulus)
            if log_base == 0:
                lhs = Parsed(
                    lhs.expr.replace(lambda e: e.func == sp.log, lambda e: sp.log(e.args[0])), lhs.units
                )
        except ParseError:
            if not re.search(r"\d", lhs_text) or not re.search(r"\d", rhs_text):
                return None, None  # "Joe = 33 - 23": a name for the value, not arithmetic
            return "unchecked", None
        if modulus is not None:
            return _congruent(lhs.expr, rhs.expr, modulus)
        if rewriting and _rewritten(lhs, rhs, lhs_text, rhs_text):
            return _identity(lhs.expr, rhs.expr)
        verdicts.append(_check_parsed(lhs, rhs, lhs_text, rhs_text, relation, imaginary))
        if not lhs.bare_log:
            break
    if any(v[0] == "ok" for v in verdicts):
        return "ok", None
    if "%" in rhs_text and "%" not in lhs_text and re.search(r"[×*x]\s*100\s*$", lhs_text.strip()):
        plain = check_link(lhs_text, rhs_text.replace("\\%", "").replace("%", ""), relation, imaginary)
        if plain[0] == "ok":
            return plain  # "(172.8 - 120)/120 × 100 = 44%": the percent sign labels the result
    if len(verdicts) > 1:
        return "unchecked", None  # log without a base: neither reading holds
    return verdicts[0]


def _rewritten(lhs: Parsed, rhs: Parsed, lhs_text: str, rhs_text: str) -> bool:
    """``(x+2)(x+3) = x^2 + 5x + 6``: polynomials in the same unknowns, one side in brackets, with
    the same leading terms."""
    unknowns = lhs.expr.free_symbols
    if not unknowns or unknowns != rhs.expr.free_symbols or lhs.units or rhs.units:
        return False
    if not (lhs.expr.is_polynomial(*unknowns) and rhs.expr.is_polynomial(*unknowns)):
        return False
    if "(" not in lhs_text + rhs_text or re.fullmatch(r"\s*[A-Za-z](?:_\{?\w+\}?)?\s*", lhs_text):
        return False
    # a rewriting keeps the leading terms (3(x+2) = 2x + 10 is an equation, (x+1)^2 = x^2 + 1 a slip)
    difference = sp.expand(lhs.expr - rhs.expr)
    degree = sp.Poly(lhs.expr, *unknowns).total_degree()
    return difference == 0 or sp.Poly(difference, *unknowns).total_degree() < degree


def _identity(lhs: sp.Expr, rhs: sp.Expr) -> tuple[ClaimVerdict, str | None]:
    """The right side should be the left one expanded, or factored where it is written as a product."""
    if sp.expand(lhs - rhs) == 0:
        return "ok", None
    return "wrong", _polynomial(sp.factor(lhs) if isinstance(rhs, sp.Mul | sp.Pow) else sp.expand(lhs))


def _polynomial(expr: sp.Expr) -> str:
    """x**2 + 5*x + 6 as people write it: x^2 + 5x + 6."""
    text = str(expr).replace("**", "^")
    return re.sub(r"(?<=\d)\*(?=[A-Za-z(])|(?<=\))\*(?=[A-Za-z(])", "", text).replace("*", "·")


def _congruent(lhs: sp.Expr, rhs: sp.Expr, modulus: int) -> tuple[ClaimVerdict | None, str | None]:
    """``2^{10} \\equiv 2 \\pmod 7``: whole numbers equal modulo ``modulus``; the right value is the
    left side's least residue."""
    if lhs.free_symbols or rhs.free_symbols:
        return None, None
    if not (lhs.is_Integer and rhs.is_Integer):
        return "unchecked", None
    if (lhs - rhs) % modulus == 0:
        return "ok", None
    return "wrong", str(lhs % modulus)


def _check_parsed(
    lhs: Parsed, rhs: Parsed, lhs_text: str, rhs_text: str, relation: str, imaginary: bool = False
) -> tuple[ClaimVerdict | None, str | None]:
    if lhs.expr.free_symbols or rhs.expr.free_symbols:
        if lhs.expr.free_symbols and rhs.expr.free_symbols and sp.expand(lhs.expr - rhs.expr) == 0:
            if _is_atom(lhs_text) or re.fullmatch(r"\s*[A-Za-z]\s*", lhs_text):
                return None, None
            return "ok", None  # an identity such as (x+1)^2 = x^2 + 2x + 1
        return None, None  # an equation or an assignment: not an arithmetic claim
    dims = {u.dimension for u in lhs.units + rhs.units if u.dimension}
    if "angle" in dims and re.search(r"sin|cos|tan|cot|sec|csc", lhs_text + rhs_text):
        return "unchecked", None  # sin 30°: claims keep degrees as written, trig needs radians
    units = {u.name for u in lhs.units + rhs.units if u.dimension}
    conversion = len(units) > 1 and len(dims) == 1
    if _is_atom(lhs_text) and _is_atom(rhs_text) and not conversion:
        return None, None  # "4 apples = 12 apples" after words we dropped: not a calculation
    if conversion and _is_atom(lhs_text) and lhs.expr == 1:
        return "unchecked", None  # a unit definition: 1 h = 60 min
    if len([u for u in lhs.units if u.dimension]) >= 2 and not re.search(r"[-+−–]", lhs_text.lstrip("-")):
        # 3 hours * 5 days = 15 hours: units multiplied are counts, not conversions
        if _holds(lhs.expr, rhs.expr, relation, rhs_text, lhs_text):
            return "ok", None
        return "wrong", (format_value(lhs.expr, rhs_text) + " " + _unit_word(rhs_text)).strip()
    if _holds(lhs.expr, rhs.expr, relation, rhs_text, lhs_text):
        return "ok", None
    if len(re.findall(r"[/÷]", lhs_text)) >= 2 and "(" not in lhs_text:
        return "unchecked", None  # 10 ÷ 5/6: the order of the divisions is ambiguous
    side_units = [[u for u in p.units if u.dimension] for p in (lhs, rhs)]
    if conversion and all(len(us) == 1 for us in side_units):  # 50 min = 5/6 h: the unit scales the side
        left_all, right_all = lhs.expr * side_units[0][0].factor, rhs.expr * side_units[1][0].factor
        if _holds(left_all, right_all, relation, rhs_text, lhs_text):
            return "ok", None
        expected = format_value(left_all / side_units[1][0].factor, rhs_text)
        return "wrong", f"{expected} {side_units[1][0].name}"
    if lhs.units or rhs.units:
        left = parse_expr(lhs_text, convert_units=True, imaginary=imaginary).expr
        right = parse_expr(rhs_text, convert_units=True, imaginary=imaginary).expr
        if _holds(left, right, relation, rhs_text, lhs_text):
            return "ok", None
        parts = [u for u in rhs.units if u.dimension]
        if conversion and len(parts) == 2 and parts[0].factor > parts[1].factor and left.is_Rational:
            whole = sp.floor(left / parts[0].factor)  # 4 h 25 min expects 4 h 15 min
            rest = (left - whole * parts[0].factor) / parts[1].factor
            return "wrong", f"{whole} {parts[0].name} {format_value(rest)} {parts[1].name}"
        if conversion:
            factor = next((u.factor for u in rhs.units if u.dimension), 1)
            return "wrong", format_value(left / factor, rhs_text) + (
                f" {rhs.units[0].name}" if rhs.units else ""
            )
    return "wrong", format_value(lhs.expr, rhs_text)


def _described(left: str, right: str) -> bool:
    """A chain that opens with a labelled quantity and then shows how it is computed."""
    words = re.sub(r"\\(?:text|mathrm|mbox)\s*\{([^{}]*)\}", r" \1", left)  # 2 \text{ dozen}
    return _is_atom(left) and bool(re.search(r"\d\s*[A-Za-z]", words)) and not _is_atom(right)


def _running_total(left: str, right: str, imaginary: bool) -> bool:
    """The right side opens with the left side's value and goes on computing."""
    m = re.match(r"\s*\$?\s*(-?\d[\d,]*(?:\.\d+)?)\s*[-+*/×÷·−]", right)
    if not m:
        return False
    try:
        value = parse_expr(left, imaginary=imaginary).expr
        return bool(sp.Rational(m.group(1).replace(",", "")) == value)
    except (ParseError, ValueError, TypeError):
        return False


def check_claim(cand: Candidate, earlier: Sequence[Claim] = ()) -> Claim | None:
    """Check each link left to right; the first false one decides, with its right value and its text.

    A link that cannot be read (words, notation the parser does not know) leaves the others checked:
    "A = B = C = 54" is wrong when ``C = 54`` is, whatever ``A`` is; with no false link it stays
    unchecked, never a ✓ for what was not read. A false link that follows from an ``earlier`` wrong
    step ("3^2 = 10", then "3^2 \\equiv 3 \\pmod 7") is that slip carried on, not a second one."""
    checked = unreadable = 0
    for k, relation in enumerate(cand.relations):
        left, right = cand.parts[k], cand.parts[k + 1]
        if relation == "<" or (relation == "≡" and cand.modulus is None):
            continue  # an inequality, a congruence without its modulus: the other links are checked
        verdict, expected = check_link(left, right, relation, cand.imaginary, cand.modulus, cand.rewriting)
        if verdict is None:
            continue
        if verdict == "wrong":
            if cand.hypothetical:
                return Claim(cand.text, cand.span, "unchecked", note="hypothetical")
            if cand.loose_context and k == 0:
                return Claim(cand.text, cand.span, "unchecked", note="words before it may change its meaning")
            if k == 0 and len(cand.relations) > 1 and _described(left, right):
                continue  # "ate 2.5 apples = 3 * 2.5 = 7.5 apples": the words name the quantity
            if k + 1 < len(cand.relations) and _running_total(left, right, cand.imaginary):
                continue  # "20 - 5 = 15 - 3 = 12": the total so far, then the next step
            source = _carried_from(cand, left, right, relation, earlier)
            if source is not None:
                return Claim(cand.text, cand.span, "unchecked", note=f"follows from the wrong step {source}")
            link = (left.strip(), relation, right.strip())
            return Claim(
                cand.text, cand.span, "wrong", expected, note=f"{left.strip()} = {expected}", link=link
            )
        if verdict == "unchecked":
            unreadable += 1
            continue
        checked += 1
    if unreadable:
        return Claim(cand.text, cand.span, "unchecked", note="could not parse")
    return Claim(cand.text, cand.span, "ok") if checked else None


def _same(a: str, b: str) -> bool:
    return re.sub(r"\s+|\\left|\\right", "", a) == re.sub(r"\s+|\\left|\\right", "", b)


def _carried_from(
    cand: Candidate, left: str, right: str, relation: str, earlier: Sequence[Claim]
) -> str | None:
    """The earlier wrong step this link repeats or builds on: the same left side, and the link holds
    with the value that step gave it."""
    for claim in earlier:
        if claim.verdict != "wrong" or claim.link is None or not _same(claim.link[0], left):
            continue
        given = claim.link[2]
        verdict, _ = check_link(given, right, relation, cand.imaginary, cand.modulus)
        if verdict == "ok" or (verdict is None and _same(given, right)):
            return claim.step
    return None
