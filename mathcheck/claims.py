"""Find the arithmetic claims in a response ("12 × 3 = 36", "$\\frac{3}{4} \\cdot 8 = 6$", chains
"a = b = c", congruences "a = b \\equiv c \\pmod n") and check each link with exact arithmetic.

Finding is pure text work; checking builds sympy values through :mod:`mathcheck.parser`. A link is
only called wrong when both sides parse, carry no unknowns (but for an expansion or a factoring,
checked as an identity), the claim is not hypothetical and the text around it cannot change its
meaning; anything less certain is "unchecked". A slip carried into a later step is marked once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal

from mathcheck.parser import FUNCTIONS, WORD_OPS, uses_imaginary_unit
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
    imaginary: bool = False
    """The response works with complex numbers: a lone ``i`` is the imaginary unit."""
    modulus: int | None = None
    """``2^3 = 8 \\equiv 1 \\pmod 7``: every link holds modulo this number."""
    rewriting: bool = False
    """The claim rewrites an expression (expanding, factoring, simplifying): a link with unknowns
    is an identity to check, not an equation to solve."""


@dataclass(frozen=True, slots=True)
class Claim:
    text: str
    span: tuple[int, int]
    verdict: ClaimVerdict
    expected: str | None = None
    """For a wrong claim: the correct value of the first false link's right side."""
    note: str = ""
    link: tuple[str, str, str] | None = None
    """For a wrong claim: its first false link, (left side, relation, right side)."""

    @property
    def step(self) -> str | None:
        """The first false link as written ("\\frac{336}{6} = 54" of a longer chain)."""
        return " ".join(self.link) if self.link else None


_LATEX_HINT = re.compile(r"\\[A-Za-z]{2,}|\\[(\[%]|\$\$|\^\{")
"""A LaTeX command (\\frac, \\text, \\pmod), \\( \\[ or \\%: the response's $...$ are math, not prices."""
_REGION = re.compile(
    r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\\\((.+?)\\\)|\\begin\{(?:align|equation|gather)\*?\}(.+?)\\end\{\w+\*?\}"
    r"|(?<!\\)\$((?:[^$\\]|\\.)+?)\$",  # inline math; \$ inside it is a dollar sign
    re.DOTALL,
)
_ROUGH = re.compile(
    r"\\\$|(?<![\d.])\.\d+|\d+(?:(?:,\d{3})+|\.\d+)*(?:\.\d+)?|\\[A-Za-z]+|[A-Za-z]+(?:/[A-Za-z]+)?|\S"
)
_OPS = set("+-−–*/×÷·^²³√()[]{}!%=≈$|_°")
_EQ = re.compile(
    r"(?<![<>!])=(?!=)|≈|\\approx|\\neq|≠|≡|\\equiv\b"
    r"|≤|≥|\\(?:le|ge|leq|geq|leqslant|geqslant|lt|gt)\b|(?<![<>=\-\\])[<>](?![=>])"
)
_RELATION = {"≈": "≈", "\\approx": "≈", "≠": "≠", "\\neq": "≠", "=": "=", "≡": "≡", "\\equiv": "≡"}
"""Each link's relation; an inequality (anything else) is "<": not checked, its neighbours are."""
_MODULUS = (
    r"(?:\\pmod\s*\{?\s*(\d+)\s*\}?|\(\s*(?:\\?mod|\\text\{\s*mod\s*\})\s*\{?\s*(\d+)\s*\}?\s*\)"
    r"|(?<!\\)\bmod(?:ulo)?\s+(\d+)\b)"
)
_MODULUS_END = re.compile(r"\s*" + _MODULUS + r"\s*[.,]?\s*$")
_MODULUS_AFTER = re.compile(r"[\s,]*(?:\\q?quad\s*)?" + _MODULUS)
_MOD_OPERATOR_END = re.compile(r"\s*\\mod\s*\{?\s*(\d+)\s*\}?\s*$")
"""``a \\equiv b \\mod n``: \\mod after a congruence names the modulus (elsewhere it is an operator)."""
_HYPOTHETICAL = re.compile(
    r"\b(?:suppose|supposing|assume|assuming|imagine|hypothetically|let's say|say we|for example|"
    r"for instance|e\.g|instead|wrong|wrongly|incorrect|incorrectly|mistake|mistakenly|not|isn't|doesn't|"
    r"don't|never|what if|would have|could have|should have|had been|were to)\b|≠|\\neq"
    r"|\bif\b[^.;\n]*\bhad\s+(?:\w+ed|been|bought|spent|made|taken|given|sold|gone|done|eaten|had|got)\b",
    re.IGNORECASE,
)
"""Real hypotheticals and examples. A plain "if" premise ("If there were 30 red cars, ...") and a
"would"/"should" sentence state the solution's own facts, so they are checked."""
_REWRITING = re.compile(
    r"\b(?:expand\w*|multiply\w* out|FOIL|distribut\w*|simplif\w*|factor\w*|rewrit\w*|complet\w* the square)",
    re.I,
)
_SOLVING = re.compile(
    r"\b(?:solv\w*|equations?|roots?|zeros?|intersect\w*|when|where|for which|find|if|let|suppose|set)\b",
    re.I,
)


def rewriting_task(prompt: str | None) -> bool:
    """A prompt that asks to expand, factor or simplify (and solves nothing): the response's
    links between expressions are identities."""
    return bool(prompt and _REWRITING.search(prompt) and not _SOLVING.search(prompt))


_CONNECTIVES = {
    "and", "or", "so", "then", "but", "is", "are", "was", "thus", "hence", "which", "while", "to",
    "in", "on", "at", "for", "with", "from", "of", "by", "per", "each", "the", "a", "an",
}  # fmt: skip
_LABEL = re.compile(r"[A-Za-z]+(?:/[A-Za-z]+)?")
_LINK_OPS = set("=+-−–*/×÷·") | {"x"}
_QUANTITY_WORDS = {"half", "third", "thirds", "quarter", "quarters", "fifth", "fifths", "twice", "double",
                   "triple", "percent", "fraction"}  # fmt: skip
_SCALING_VERBS = {
    "multiply",
    "multiplied",
    "multiplying",
    "divide",
    "divided",
    "dividing",
    "times",
    "scale",
    "scaled",
}
UNSAFE_BEFORE = {
    "of", "half", "twice", "double", "triple", "quarter", "third", "thirds", "times", "another", "extra",
    "more", "less", "than", "by", "per", "over", "minus", "plus", "except", "without", "remaining",
}  # fmt: skip
_LATEX_SPLIT = re.compile(
    r"\\\\(?!\s*&?\s*(?:=|\\approx))|\\implies|\\Rightarrow|\\rightarrow|\\to\b|\\Longrightarrow|\\quad|\\qquad|;|"
    r"\\text\{[^{}]*[A-Za-z]{2,}\s+[A-Za-z]{2,}[^{}]*\}"  # prose inside math: \text{Total cost}
    r"|\\(?:text|mathrm)\{\s*(?:and|or|so|then|since|because|thus|hence|where|which|is|are|if)\s*\}"
)


def _sentence(text: str, start: int, end: int) -> str:
    left = max(text.rfind(". ", 0, start), text.rfind("\n", 0, start), text.rfind("? ", 0, start))
    right_candidates = [i for i in (text.find(". ", end), text.find("\n", end)) if i != -1]
    right = min(right_candidates) if right_candidates else len(text)
    return text[left + 1 : right]


def _split_chain(piece: str) -> tuple[list[str], list[str]]:
    parts, relations, last = [], [], 0
    depth = scanned = 0
    for m in _EQ.finditer(piece):
        segment = piece[scanned : m.start()]  # "\sum_{k=1}^{4}": an "=" inside braces links nothing
        depth += segment.count("{") + segment.count("(") - segment.count("}") - segment.count(")")
        scanned = m.start()
        if depth != 0:
            continue
        parts.append(piece[last : m.start()])
        relations.append(_RELATION.get(m.group(0), "<"))
        last = m.end()
    parts.append(piece[last:])
    return [p.strip() for p in parts], relations


def _modulus(piece: str, after: str) -> tuple[str, int | None]:
    """The chain without its modulus (``\\pmod 7``, ``(mod 7)``, at its end or right after it)."""
    m = _MODULUS_END.search(piece)
    if m is None and re.search(r"≡|\\equiv\b", piece):
        m = _MOD_OPERATOR_END.search(piece)
    if m is not None:
        return piece[: m.start()], int(next(g for g in m.groups() if g))
    m = _MODULUS_AFTER.match(after)
    return piece, (int(next(g for g in m.groups() if g)) if m else None)


def _candidate(text: str, start: int, end: int, loose: bool) -> Candidate | None:
    piece, modulus = _modulus(text[start:end], text[end : end + 40])
    parts, relations = _split_chain(piece)
    if not relations or any(not p for p in parts) or "≠" in relations:
        return None
    if not re.search(r"\d", piece) or modulus == 0:
        return None
    sentence = _sentence(text, start, end)
    hyp = bool(_HYPOTHETICAL.search(sentence))
    rewriting = bool(_REWRITING.search(sentence)) and not _SOLVING.search(sentence)
    return Candidate(
        piece.strip(),
        (start, end),
        tuple(parts),
        tuple(relations),
        hyp,
        loose,
        modulus=modulus,
        rewriting=rewriting,
    )


def _top_commas(chunk: str) -> list[str]:
    """``a = 1, b = 2`` in two, but not the comma of ``\\gcd(84, 126) = 42`` or ``P(5, 2) = 20``."""
    pieces, depth, last = [], 0, 0
    for i, c in enumerate(chunk):
        depth += (c in "([{") - (c in ")]}")
        if c == "," and depth <= 0 and chunk[i + 1 : i + 2].isspace():
            pieces.append(chunk[last:i])
            last = i + 1
    return [*pieces, chunk[last:]]


def _latex_candidates(text: str, start: int, content: str) -> list[Candidate]:
    out = []
    cursor = 0
    pieces = [p for chunk in _LATEX_SPLIT.split(content) if chunk is not None for p in _top_commas(chunk)]
    for piece in pieces:
        at = content.find(piece, cursor)
        cursor = at + len(piece)
        opening = re.match(r"\s*&?\s*=(?!=)", piece)
        if opening:  # "\text{Total cost} = 3 \times 4.50 ...": the label was split off
            piece, at = piece[opening.end() :], at + opening.end()
        clean = piece.replace("&", " ").replace("\\\\", " ")
        clean = re.sub(r"\\boxed\{(.*)\}", r"\1", clean)
        stripped = clean.strip().rstrip(".,")
        if not stripped:
            continue
        lead = len(piece) - len(piece.lstrip())
        s = start + at + lead
        cand = _candidate(text, s, s + len(piece.strip().rstrip(".,")), loose=False)
        if cand is not None:
            chain = _modulus(stripped, "")[0] if cand.modulus else stripped
            cand = Candidate(
                stripped,
                cand.span,
                tuple(_split_chain(chain)[0]),
                cand.relations,
                cand.hypothetical,
                modulus=cand.modulus,
                rewriting=cand.rewriting,
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
    if tok[0].isdigit() or (tok[0] == "." and len(tok) > 1):
        return "M"
    if tok == "\\$":
        return "M"  # an escaped dollar sign outside math
    if tok.startswith("\\"):
        return "M" if tok[1:] in ("frac", "dfrac", "sqrt", "times", "cdot", "div", "pi", "approx") else "T"
    if tok in _OPS:
        if tok == "!" and not (prev[:1].isdigit() or prev == ")"):
            return "T"
        return "M"
    if tok[0].isalpha():
        after_number = prev[:1].isdigit() or prev in (")", "%") or (prev[:1] == "." and len(prev) > 1)
        if tok == "x" and after_number and (nxt[:1].isdigit() or nxt in ("$", "(", ".")) and not glued_prev:
            return "M"  # 150 x 2/3: a times sign
        if prev == "/" and i > 1 and tokens[i - 2].group(0)[:1].isdigit() and _word(tok):
            return "M"  # $15/hour: a rate's unit
        if _in_label_run(tokens, i):
            return "M"  # 40 total pupils - 12 chess, 6 cats * 4 legs/cat
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


def _word(tok: str) -> bool:
    return bool(_LABEL.fullmatch(tok)) and tok.lower() not in _CONNECTIVES and tok.lower() not in WORD_OPS


def _in_label_run(tokens: list[re.Match[str]], i: int) -> bool:
    """Words between a number and an operator are the number's label (at most three of them)."""
    k = i
    while k > 0 and i - k < 3 and _word(tokens[k].group(0)):
        k -= 1
    if not (0 <= k < i or k == i) or _word(tokens[k].group(0)):
        return False
    head = tokens[k].group(0)
    if not (head[:1].isdigit() or (head[:1] == "." and len(head) > 1) or head in (")", "%")):
        return False
    j = i
    while j + 1 < len(tokens) and j - k < 3 and _word(tokens[j + 1].group(0)):
        j += 1
    if j + 1 >= len(tokens) or not _word(tokens[i].group(0)):
        return False
    nxt = tokens[j + 1].group(0)
    return nxt in _LINK_OPS and (nxt != "x" or j + 2 < len(tokens))


def _loose_before(tokens: list[re.Match[str]], a: int) -> bool:
    """Words right before a claim that may change what it means ("half of 10 + 4 = 9")."""
    before = tokens[a - 1].group(0).lower()
    two_before = tokens[a - 2].group(0).lower() if a > 1 else ""
    if before == "of":
        return two_before in _QUANTITY_WORDS or two_before[:1].isdigit() or two_before == "%"
    if before == "by":
        return two_before in _SCALING_VERBS
    return before in UNSAFE_BEFORE or before == "-" or before[:1].isdigit()


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
            same_line = a > 0 and "\n" not in text[tokens[a - 1].end() : tokens[a].start()]
            loose = same_line and _loose_before(tokens, a)
            if same_line and tokens[a - 1].group(0).lower() in FUNCTIONS:
                i = j + 1
                continue  # "sin 30° = 0.5": the claim's left side starts before the run
            cand = _candidate(text, tokens[a].start(), tokens[b].end(), loose)
            if cand is not None:
                out.append(cand)
        i = j + 1
    return out


def _currency(text: str, m: re.Match[str]) -> bool:
    """``$5 = $170``: two dollar signs of money, not an inline formula."""
    content = m.group(5)
    return content[:1].isdigit() and (content != content.rstrip() or text[m.end() : m.end() + 1].isdigit())


def find_claims(text: str, rewriting: bool = False) -> list[Candidate]:
    """Every equality/approximation chain with a digit in it, in order of appearance.
    ``rewriting``: the task is to expand, factor or simplify (see :func:`rewriting_task`)."""
    regions: list[tuple[int, int, str]] = []
    if _LATEX_HINT.search(text) or re.search(r"\$[^$\d]", text):
        for m in _REGION.finditer(text):
            group = next(g for g in range(1, 6) if m.group(g) is not None)
            if group == 5 and _currency(text, m):
                continue
            regions.append((m.start(group), m.end(), m.group(group)))
    out: list[Candidate] = []
    cursor = 0
    for start, end, content in regions:
        out += _plain_candidates(text, cursor, start)
        out += _latex_candidates(text, start, content)
        cursor = end
    out += _plain_candidates(text, cursor, len(text))
    if uses_imaginary_unit(text):
        out = [replace(cand, imaginary=True) for cand in out]
    if rewriting:
        out = [c if _SOLVING.search(_sentence(text, *c.span)) else replace(c, rewriting=True) for c in out]
    return out[:MAX_CLAIMS]


from mathcheck.checking import check_claim, check_link, format_value  # noqa: E402 (re-exported)

__all__ = ["Candidate", "Claim", "check_claim", "check_link", "find_claims", "format_value"]
