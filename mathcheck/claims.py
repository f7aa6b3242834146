"""Find the arithmetic claims in a response ("12 × 3 = 36", "$\\frac{3}{4} \\cdot 8 = 6$", chains
"a = b = c") and check each link with exact arithmetic.

Finding is pure text work; checking builds sympy values through :mod:`mathcheck.parser`. A link is
only called wrong when both sides parse, carry no unknowns, the claim is not hypothetical and the
text around it cannot change its meaning; anything less certain is "unchecked".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import sympy as sp

from mathcheck.parser import FUNCTIONS, WORD_OPS, Parsed, ParseError, parse_expr
from mathcheck.units import UNITS

ClaimVerdict = Literal["ok", "wrong", "unchecked"]
MAX_CLAIMS = 150


@dataclass(frozen=True, slots=True)
class Candidate:
    text: str
    span: tuple[int, int]
    parts: tuple[str, ...]
    relations: tuple[str, ...]
    """"=" or "≈" between consecutive parts."""
    hypothetical: bool = False
    loose_context: bool = False
    """Words right before the claim may change its meaning ("half of 10 + 4 = 9")."""


@dataclass(frozen=True, slots=True)
class Claim:
    text: str
    span: tuple[int, int]
    verdict: ClaimVerdict
    expected: str | None = None
    """For a wrong claim: the correct value of the first false link's right side."""
    note: str = ""


_LATEX_HINT = re.compile(r"\\(?:frac|dfrac|times|cdot|sqrt|boxed|\(|\[)|\$\$|\^\{")
_REGION = re.compile(
    r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\\\((.+?)\\\)|\\begin\{(?:align|equation|gather)\*?\}(.+?)\\end\{\w+\*?\}"
    r"|\$([^$]+?)\$",
    re.DOTALL,
)
_ROUGH = re.compile(r"\d+(?:(?:,\d{3})+|\.\d+)*(?:\.\d+)?|\\[A-Za-z]+|[A-Za-z]+(?:/[A-Za-z]+)?|\S")
_OPS = set("+-−–*/×÷·^²³√()[]{}!%=≈$|_")
_EQ = re.compile(r"(?<![<>!])=(?!=)|≈|\\approx|\\neq|≠")
_HYPOTHETICAL = re.compile(
    r"\b(?:if|suppose|supposing|assume|assuming|would|could|should|wrong|incorrect|not|instead|"
    r"mistake|mistakenly|hypothetically|let's say|for example|e\.g|isn't|doesn't|never)\b|≠|\\neq",
    re.IGNORECASE,
)
_CONNECTIVES = {"and", "or", "so", "then", "but", "is", "are", "was", "thus", "hence", "which", "while", "to"}
UNSAFE_BEFORE = {
    "of", "half", "twice", "double", "triple", "quarter", "third", "thirds", "times", "another", "extra",
    "more", "less", "than", "by", "per", "over", "minus", "plus", "except", "without", "remaining",
}  # fmt: skip
_LATEX_SPLIT = re.compile(
    r"\\\\(?!\s*&?\s*(?:=|\\approx))|\\implies|\\Rightarrow|\\rightarrow|\\to\b|\\Longrightarrow|\\quad|\\qquad|;|,\s|"
    r"\\text\{[^{}]*[A-Za-z]{3,}[^{}]*\}|\\(?:text|mathrm)\{\s*(?:and|or|so|then)\s*\}"
)


def _sentence(text: str, start: int, end: int) -> str:
    left = max(text.rfind(". ", 0, start), text.rfind("\n", 0, start), text.rfind("? ", 0, start))
    right_candidates = [i for i in (text.find(". ", end), text.find("\n", end)) if i != -1]
    right = min(right_candidates) if right_candidates else len(text)
    return text[left + 1 : right]


def _split_chain(piece: str) -> tuple[list[str], list[str]]:
    parts, relations, last = [], [], 0
    depth = 0
    for m in _EQ.finditer(piece):
        segment = piece[last : m.start()]
        depth += segment.count("{") + segment.count("(") - segment.count("}") - segment.count(")")
        if depth != 0:
            continue
        parts.append(piece[last : m.start()])
        relations.append("≈" if m.group(0) in ("≈", "\\approx") else ("≠" if m.group(0) != "=" else "="))
        last = m.end()
    parts.append(piece[last:])
    return [p.strip() for p in parts], relations


def _candidate(text: str, start: int, end: int, loose: bool) -> Candidate | None:
    piece = text[start:end]
    parts, relations = _split_chain(piece)
    if not relations or any(not p for p in parts) or "≠" in relations:
        return None
    if not re.search(r"\d", piece):
        return None
    hyp = bool(_HYPOTHETICAL.search(_sentence(text, start, end)))
    return Candidate(piece.strip(), (start, end), tuple(parts), tuple(relations), hyp, loose)


def _latex_candidates(text: str, start: int, content: str) -> list[Candidate]:
    out = []
    cursor = 0
    for piece in _LATEX_SPLIT.split(content):
        if piece is None:
            continue
        at = content.find(piece, cursor)
        cursor = at + len(piece)
        clean = piece.replace("&", " ").replace("\\\\", " ")
        clean = re.sub(r"\\boxed\{(.*)\}", r"\1", clean)
        stripped = clean.strip().rstrip(".,")
        if not stripped:
            continue
        lead = len(piece) - len(piece.lstrip())
        s = start + at + lead
        cand = _candidate(text, s, s + len(piece.strip().rstrip(".,")), loose=False)
        if cand is not None:
            cand = Candidate(
                stripped, cand.span, tuple(_split_chain(stripped)[0]), cand.relations, cand.hypothetical
            )
            out.append(cand)
    return out


def _kind(tokens: list[re.Match[str]], i: int, text: str) -> str:
    """'M' when rough token i belongs to a math run, 'T' otherwise."""
    tok = tokens[i].group(0)
    prev = tokens[i - 1].group(0) if i else ""
    nxt = tokens[i + 1].group(0) if i + 1 < len(tokens) else ""
    glued_prev = i > 0 and tokens[i - 1].end() == tokens[i].start()
    glued_next = i + 1 < len(tokens) and tokens[i].end() == tokens[i + 1].start()
    if tok[0].isdigit():
        return "M"
    if tok.startswith("\\"):
        return "M" if tok[1:] in ("frac", "dfrac", "sqrt", "times", "cdot", "div", "pi", "approx") else "T"
    if tok in _OPS:
        if tok == "!" and not (prev[:1].isdigit() or prev == ")"):
            return "T"
        return "M"
    if tok[0].isalpha():
        after_number = prev[:1].isdigit() or prev in (")", "%")
        if after_number and (tok in UNITS or tok.lower() in UNITS):
            return "M"
        if tok in WORD_OPS or tok in ("squared", "cubed"):
            return "M"
        if tok == "of" and prev == "%":
            return "M"
        if tok in FUNCTIONS and nxt == "(":
            return "M"
        if len(tok) == 1 and (prev in _OPS or nxt in _OPS or (glued_prev and prev[:1].isdigit())):
            return "M" if not (tok in "aAI" and not (glued_prev or glued_next) and nxt not in _OPS) else "T"
        if tok.lower() in _CONNECTIVES:
            return "T"
        if after_number and tok.isalpha() and len(tok) > 1 and nxt in _OPS | {"", "."}:
            return "M"  # a label: 12 apples + 3 apples
        if (
            after_number
            and tok.isalpha()
            and len(tok) > 1
            and re.match(r"\s*[=+*/×÷-]", text[tokens[i].end() :])
        ):
            return "M"
    return "T"


def _plain_candidates(text: str, lo: int, hi: int) -> list[Candidate]:
    tokens = list(_ROUGH.finditer(text, lo, hi))
    kinds = [_kind(tokens, i, text) for i in range(len(tokens))]
    out: list[Candidate] = []
    i = 0
    while i < len(tokens):
        if kinds[i] != "M":
            i += 1
            continue
        j = i
        while (
            j + 1 < len(tokens)
            and kinds[j + 1] == "M"
            and "\n" not in text[tokens[j].end() : tokens[j + 1].start()]
        ):
            j += 1
        a, b = i, j
        while a <= b and tokens[a].group(0) in set("=≈*/×÷·^+)!%]}") | {"times", "plus"}:
            a += 1
        while b >= a and tokens[b].group(0) in set("=≈*/×÷·^+-−–([{√$") | set(WORD_OPS):
            b -= 1
        if a <= b:
            before = tokens[a - 1].group(0).lower() if a > 0 else ""
            same_line = a > 0 and "\n" not in text[tokens[a - 1].end() : tokens[a].start()]
            loose = same_line and (before in UNSAFE_BEFORE or before == "-" or before[:1].isdigit())
            cand = _candidate(text, tokens[a].start(), tokens[b].end(), loose)
            if cand is not None:
                out.append(cand)
        i = j + 1
    return out


def find_claims(text: str) -> list[Candidate]:
    """Every equality/approximation chain with a digit in it, in order of appearance."""
    regions: list[tuple[int, int, str]] = []
    if _LATEX_HINT.search(text) or re.search(r"\$[^$\d]", text):
        for m in _REGION.finditer(text):
            group = next(g for g in range(1, 6) if m.group(g) is not None)
            regions.append((m.start(group), m.end(), m.group(group)))
    out: list[Candidate] = []
    cursor = 0
    for start, end, content in regions:
        out += _plain_candidates(text, cursor, start)
        out += _latex_candidates(text, start, content)
        cursor = end
    out += _plain_candidates(text, cursor, len(text))
    return out[:MAX_CLAIMS]


# --- checking ---------------------------------------------------------------------------


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
    value = sp.nsimplify(value) if value.is_Float else value
    if value.is_Integer:
        return str(value)
    if value.is_Rational:
        q = int(value.q)
        while q % 2 == 0:
            q //= 2
        while q % 5 == 0:
            q //= 5
        if q == 1 and len(str(value.q)) <= 6:  # terminating decimal: write it exactly
            digits = len(str(value.q))
            return f"{sp.N(value, 30):.{digits}f}".rstrip("0").rstrip(".")
        if not _decimals_shown(like) and value.q < 1000:
            return f"{value.p}/{value.q} ≈ {float(value):.4g}"
    digits = max(_decimals_shown(like) + 2, 4)
    return f"{float(sp.N(value, 30)):.{digits}f}".rstrip("0").rstrip(".")


def _parse_side(part: str, convert: bool, log_base: int) -> Parsed:
    part = re.sub(r"\\boxed\{(.*)\}", r"\1", part)
    return parse_expr(part, convert_units=convert, log_base=log_base)


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


def check_link(lhs_text: str, rhs_text: str, relation: str) -> tuple[ClaimVerdict | None, str | None]:
    """Verdict of one link, or None when it is not a checkable arithmetic statement."""
    verdicts: list[tuple[ClaimVerdict | None, str | None]] = []
    for log_base in (10, 0):
        try:
            lhs = _parse_side(lhs_text, False, log_base or 10 if log_base else 10)
            rhs = _parse_side(rhs_text, False, 10)
            if log_base == 0:
                lhs = Parsed(
                    lhs.expr.replace(lambda e: e.func == sp.log, lambda e: sp.log(e.args[0])), lhs.units
                )
        except ParseError:
            return ("unchecked", None) if re.search(r"[\d]", lhs_text + rhs_text) else (None, None)
        verdicts.append(_check_parsed(lhs, rhs, lhs_text, rhs_text, relation))
        if not lhs.bare_log:
            break
    if any(v[0] == "ok" for v in verdicts):
        return "ok", None
    if len(verdicts) > 1:
        return "unchecked", None  # log without a base: neither reading holds
    return verdicts[0]


def _check_parsed(
    lhs: Parsed, rhs: Parsed, lhs_text: str, rhs_text: str, relation: str
) -> tuple[ClaimVerdict | None, str | None]:
    if lhs.expr.free_symbols or rhs.expr.free_symbols:
        if lhs.expr.free_symbols and rhs.expr.free_symbols and sp.expand(lhs.expr - rhs.expr) == 0:
            if _is_atom(lhs_text) or re.fullmatch(r"\s*[A-Za-z]\s*", lhs_text):
                return None, None
            return "ok", None  # an identity such as (x+1)^2 = x^2 + 2x + 1
        return None, None  # an equation or an assignment: not an arithmetic claim
    dims = {u.dimension for u in lhs.units + rhs.units if u.dimension}
    units = {u.name for u in lhs.units + rhs.units if u.dimension}
    conversion = len(units) > 1 and len(dims) == 1
    if _is_atom(lhs_text) and _is_atom(rhs_text) and not conversion:
        return None, None  # "4 apples = 12 apples" after words we dropped: not a calculation
    if conversion and _is_atom(lhs_text) and lhs.expr == 1:
        return "unchecked", None  # a unit definition: 1 h = 60 min
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
        left = parse_expr(lhs_text, convert_units=True).expr
        right = parse_expr(rhs_text, convert_units=True).expr
        if _holds(left, right, relation, rhs_text, lhs_text):
            return "ok", None
        if conversion:
            factor = next((u.factor for u in rhs.units if u.dimension), 1)
            return "wrong", format_value(left / factor, rhs_text) + (
                f" {rhs.units[0].name}" if rhs.units else ""
            )
    return "wrong", format_value(lhs.expr, rhs_text)


def check_claim(cand: Candidate) -> Claim | None:
    """Check each link left to right; the first false one decides, with its right value."""
    checked = 0
    for k, relation in enumerate(cand.relations):
        left, right = cand.parts[k], cand.parts[k + 1]
        verdict, expected = check_link(left, right, relation)
        if verdict is None:
            continue
        if verdict == "wrong":
            if cand.hypothetical:
                return Claim(cand.text, cand.span, "unchecked", note="hypothetical")
            if cand.loose_context and k == 0:
                return Claim(cand.text, cand.span, "unchecked", note="words before it may change its meaning")
            return Claim(cand.text, cand.span, "wrong", expected, note=f"{left.strip()} = {expected}")
        if verdict == "unchecked":
            return Claim(cand.text, cand.span, "unchecked", note="could not parse")
        checked += 1
    return Claim(cand.text, cand.span, "ok") if checked else None
