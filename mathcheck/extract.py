"""Find the final answer in a response: \\boxed{}, a "final answer" line, or the concluding sentence.

The answer is the value the response commits to, not its last number: "Final Answer: the speed is
100 km/h, so the time is 2.4 h" gives 2.4 h; when a reference is known, a quantity of the reference's
dimension (time, length, money) is preferred within the chosen sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mathcheck.answers import Equation, Value, dimension_of, parse_answer
from mathcheck.kinds import Text, find_text_answer
from mathcheck.parser import ParseError, uses_imaginary_unit


@dataclass(frozen=True, slots=True)
class Extraction:
    text: str
    span: tuple[int, int]
    source: str
    """"boxed", "final answer" or "conclusion"."""
    value: Value | None = None
    raw: str = ""
    """The whole box or answer line, for answers that are words (names, yes/no, a choice letter)."""


_MARKER = re.compile(
    r"(?:final answer|the answer is|answer\s*:|answer is|the result is|solution is|solutions are|####)"
    r"\s*(?:is\s*)?(?::|[-–](?=\s))?\s*(?:\*\*)?\s*:?",  # "Answer - 5", never the sign of "is -3969"
    re.IGNORECASE,
)
_CONCLUDE = re.compile(
    r"\b(?:therefore|thus|so|hence|in total|altogether|overall|total|answer|final(?:ly)?|in conclusion)\b",
    re.IGNORECASE,
)
_META = re.compile(
    r"\b(?:steps?|took|hope|let me know)\b|✓"
    # a check of the working, not a conclusion: "Check: 3*5 = 15", "Substituting back, 2(3)+1 = 7"
    r"|^\W*(?:let(?: me|'s|us)\s+|double[- ])?(?:check|checking|verify|verifying|substitut\w*|plug\w*)\b",
    re.I,
)
_CLAUSE = re.compile(
    r",?\s+(?:so|therefore|thus|hence|which means|meaning|giving|and so|that is|namely)\b\s*,?"
    r"|,?\s+i\.\s?e\.,?|;|\.\s+|\s+=>\s+|→"
    r"|\\implies|\\Rightarrow",
    re.IGNORECASE,
)
_COPULA = re.compile(
    r"\b(?:is|are|was|were|equals|be|gives|get|makes|takes|costs|earns|needs|has|have|had|spends|"
    r"remain|remains|left with|works out to|comes to)\b\s*:?|=|≈|\\approx",
    re.IGNORECASE,
)
_QUANTITY = re.compile(
    r"-?\$?\s?(?:\d[\d,]*(?:\.\d+)?|\.\d+)(?:\s*/\s*\d+)?(?:\s*%|\s*(?:[A-Za-z]+(?:/[A-Za-z]+)?)"
    r"(?:\s*(?:and\s+)?\d+(?:\.\d+)?\s*[A-Za-z]+)?)?"
)
_MATH_START = re.compile(
    r"(?<![A-Za-z])[A-Za-z](?:_\{?\w+\}?)?\s*(?:=|<|>|≤|≥|≠|\\(?:leq?|geq?|neq?|lt|gt|in)\b)"
    r"|(?<![A-Za-z])[-−]|[$(\d\\]|\.\d|\{"  # a sign, not the hyphen of "y-intercept"
)
_INLINE = re.compile(
    r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\\\((.+?)\\\)|(?<!\\)\$(?!\d[^$]*\$\d)([^$]+)(?<!\\)\$(?!\d)", re.S
)
"""Math in a sentence; not the text between two prices ("spends $12 and keeps $8")."""
_INLINE_CHARS = 2000
_NAME_ONLY = re.compile(r"\$\s*[A-Za-z](?:_\{?\w+\}?)?\s*\$|\\\(\s*[A-Za-z]\s*\\\)")
_LISTED = re.compile(r"\s*(?:,|,?\s*(?:and|or)|\\text\{\s*(?:and|or)\s*\})\s*", re.I)
"""What may stand between the pieces of one listed answer."""
_MATHY = re.compile(r"\d|\$|\\[(\[]|\\[A-Za-z]{2,}|(?<![A-Za-z])[A-Za-z]\s*(?:[<>≤≥≠]|=(?!=))|[πθ√]")
"""A sentence that may hold a mathematical answer (a number, LaTeX, "x < 5", "π")."""
_RELATIONS = {
    "greater than or equal to": ">=", "at least": ">=", "no less than": ">=", "not less than": ">=",
    "less than or equal to": "<=", "at most": "<=", "no more than": "<=", "not more than": "<=",
    "greater than": ">", "more than": ">", "bigger than": ">", "larger than": ">",
    "less than": "<", "smaller than": "<", "fewer than": "<",
}  # fmt: skip
_WORDED = re.compile(
    r"(?<![A-Za-z])(?![aI]\s)([A-Za-z])\s+(?:(?:must|has to|should|can|will)\s+be\s+|is\s+)?("
    + "|".join(sorted(map(re.escape, _RELATIONS), key=len, reverse=True))
    + r")\s+",
    re.I,
)
"""A relation said in words after a one-letter variable: "x must be at least 3" is x >= 3."""
_PROSE = re.compile(
    r"\b(?:we|get|got|is|are|was|be|the|so|set|its|has|had|to|of|for|by|as|if|now|our|you|it's|that's)\b",
    re.I,
)
"""Short words that make a fragment a sentence, not a bare answer."""
_TAIL = re.compile(
    r"\s+(?:because|since|as|which|that|for|to|in|on|per|each|after|when|if|from)\b.*$"
    r"|\s+of\s+(?:the|a|an|all|his|her|its|their|them|it)\b.*$"  # "0.75 of the pie", not "3 of 4"
    r"|\s+\((?![^()]*\\)[^()]*[A-Za-z]{3,}[^()]*\)\s*\.?\s*$",  # "42 (rounded)", not "(x-1)(x+1)"
    re.IGNORECASE,
)


def boxed_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            spans.append((m.end(), i - 1))
    return spans


def _try(text: str) -> Value | None:
    try:
        return parse_answer(text)
    except (ParseError, ValueError, TypeError, ZeroDivisionError, RecursionError):
        return None


def _inline(fragment: str) -> tuple[str, Value] | None:
    """The sentence's last piece of math ($...$, \\(...\\)), with the pieces listed just before it
    ("$x = 3$ and $x = -3$"); a pure-arithmetic piece ("$3 \\times 4 = 12$") gives its result."""
    fragment = fragment[-_INLINE_CHARS:]  # an answer's sentence; bounds the scan on pathological text
    found = list(_INLINE.finditer(fragment))
    # "The largest $n$ is 34": a lone name with the number after it in words is not the answer
    found = [
        m for m in found if not (_NAME_ONLY.fullmatch(m.group(0)) and re.search(r"\d", fragment[m.end() :]))
    ]
    reason = re.search(r",?\s+(?:because|since|as|given that)\b", fragment, re.I)
    if reason and any(m.end() <= reason.start() for m in found):
        found = [m for m in found if m.end() <= reason.start()]  # "$x = 3$, since $2x = 6$"
    if not found:
        return None
    said = _predicate(fragment, found[-1])
    if said is not None:
        return said
    group = [found[-1]]
    for prev in reversed(found[:-1]):
        if not _LISTED.fullmatch(fragment[prev.end() : group[0].start()]):
            break
        group.insert(0, prev)
    texts = [_exact(next(g for g in m.groups() if g is not None).strip().rstrip(".,;")) for m in group]
    for text in dict.fromkeys([" and ".join(texts), texts[-1]]):
        value = _try(text)
        if isinstance(value, Equation) and _computed(value, text):
            text = text.rsplit("=", 1)[1].strip()
            value = _try(text)
        if value is not None:
            return text, value
    return None


_PREDICATE = re.compile(
    r"\s*(?:is|are|was|equals|has|have|ends (?:in|with)|gives|leaves|yields|contains|comes to|works out to)"
    r"(?:\s+[A-Za-z]+){0,3}?\s+(-?\d[\d,]*(?:\.\d+)?(?:\s*\\?%|\s+percent\b)?)(?:\s+[A-Za-z]+){0,3}\s*[.!;]?\s*$",
    re.I,
)


def _predicate(fragment: str, math: re.Match[str]) -> tuple[str, Value] | None:
    """``$100!$ ends in 24 zeros``, ``$2^{10}$ is 1024``: the math names what the sentence is about,
    the plain number after its verb is the answer (math that states a value, ``$x = 5$``, is not)."""
    if re.search(r"=|<|>|\\(?:le|ge|neq|approx|in)\b|≤|≥|≈", math.group(0)):
        return None
    m = _PREDICATE.match(fragment, math.end())
    if m is None:
        return None
    value = _try(m.group(1))
    return (m.group(1), value) if value is not None else None


def _computed(value: Equation, text: str) -> bool:
    """``3 \\times 4 = 12``, ``|3 + 4i| \\cdot |1 - i| = 5\\sqrt{2}``: arithmetic whose result is the
    answer; with complex numbers about, ``i`` is the imaginary unit, not an unknown."""
    unknowns = value.lhs.free_symbols | value.rhs.free_symbols
    if unknowns and {s.name for s in unknowns} == {"i"} and uses_imaginary_unit(text):
        unknowns = set()
    return not unknowns and not re.fullmatch(r"\s*i\s*", text.rsplit("=", 1)[0])


_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")


def _bold(fragment: str) -> tuple[str, Value] | None:
    """The last bold value of a sentence: models bold the answer ("$100!$ ends in **24** zeros")."""
    for m in reversed(list(_BOLD.finditer(fragment))):
        if re.fullmatch(r"\s*\(?\d+[.)]\s*|.*:\s*", m.group(1)):
            continue  # a label: "**2.** So the total is 14", "**Step 2:**"
        text = m.group(1).strip().rstrip(".,;").strip().strip("$").strip()
        if re.search(r"\d", text) and (value := _try(text)) is not None:
            return text, value
    return None


_RESTATED = re.compile(r"\bwhich is\s+(-?[$€£]?\d[\d,.]*\s*(?:[$€£%]|[A-Za-z²³]{1,3})?)\s*[.!]?\s*$")
_APPROX = re.compile(r"\\approx|≈")


def _exact(text: str) -> str:
    """``x = 1/3 \\approx 0.33``: the exact value, not the rounded restatement after it."""
    parts = _APPROX.split(text)
    return parts[0].strip() if len(parts) > 1 and re.search(r"\d", parts[0]) else text


def _pick(fragment: str, want_dimension: str | None) -> tuple[str, Value | None]:
    """Narrow a sentence to the answer phrase and parse it."""
    fragment = _WORDED.sub(lambda m: f"{m.group(1)} {_RELATIONS[m.group(2).lower()]} ", fragment)
    bold = _bold(fragment)
    if bold is not None:
        return bold
    fragment = fragment.replace("**", "").strip()
    restated = _RESTATED.search(fragment)
    if restated:  # "10 which is 1,000.99€": the value restated at the end is the answer
        value = _try(restated.group(1))
        if value is not None:
            return restated.group(1).strip(), value
    bare = re.sub(r"\\[A-Za-z]+", " ", _INLINE.sub(" ", fragment)) if len(fragment) < 80 else "long"
    if len(fragment) < 80 and not re.search(r"[A-Za-z]{4,}", bare) and not _PROSE.search(bare):
        # "x > 2.", "+/- 2", "(1, 2).", but not "We get $2 \le x$" (read as the product W*e*g*e*t)
        value = _try(fragment)
        if value is not None:
            return re.sub(r"^\$+|\$+$", "", fragment.strip().rstrip(".").strip()).strip(), value
    clauses = [c for c in _CLAUSE.split(fragment) if c and re.search(r"\d|\\frac|[a-z]\s*=", c)]
    candidates = list(reversed(clauses)) or [fragment]
    if want_dimension:  # prefer a quantity of the reference's kind anywhere in the sentence
        for q in reversed(list(_QUANTITY.finditer(fragment))):
            value = _try(q.group(0))
            if value is not None and dimension_of(value) == want_dimension:
                return q.group(0).strip(), value
    inline = _inline(fragment)
    if inline is not None:
        return inline
    for clause in candidates:
        clause = clause.strip().strip("*").strip()
        start = _MATH_START.search(clause)
        if start:
            phrase = _TAIL.sub("", clause[start.start() :]).strip()
            value = _try(phrase)
            if value is not None:
                return phrase, value
        pieces = _COPULA.split(clause)
        tail = pieces[-1] if len(pieces) > 1 else clause
        if re.fullmatch(r"\s*[A-Za-z]\s*", pieces[-2] if len(pieces) > 1 else ""):
            tail = clause[clause.rfind(pieces[-2]) :]  # keep "x = 5" together
        tail = _TAIL.sub("", tail.strip().strip("$").strip())
        value = _try(tail)
        if value is not None:
            return tail, value
        quantities = list(_QUANTITY.finditer(tail))
        glued = quantities and re.match(r"\s*[π\\^]|[A-Za-z(]", tail[quantities[0].end() :])
        if len(quantities) == 1 and not glued and not re.search(r"\\[A-Za-z]|[{}^]", tail):
            # a lone quantity, never a digit inside LaTeX or the 25 of "25π"
            value = _try(quantities[0].group(0))
            if value is not None:
                return quantities[0].group(0).strip(), value
    return fragment, None


def extract_answer(
    response: str, want_dimension: str | None = None, want_text: Text | None = None
) -> Extraction | None:
    """The committed final answer, or None when the response does not commit to one.

    ``want_text`` (a reference that is words, yes/no or a choice letter) reads the end of the last
    paragraph for an answer of that kind when nothing is boxed or marked as the answer.
    """
    boxes = boxed_spans(response)
    markers = list(_MARKER.finditer(response))
    if boxes and not (markers and markers[-1].start() > boxes[-1][1] and _has_answer(response, markers[-1])):
        last_line = response.rfind("\n", 0, boxes[-1][0])
        same_line = [b for b in boxes if b[0] > last_line]
        texts = list(dict.fromkeys(response[a:b].strip() for a, b in same_line))  # one answer boxed twice
        text = ", ".join(texts)
        value = _try(text)
        if value is None and len(texts) == 1:
            text, value = _pick(text, want_dimension)
        return Extraction(text, (same_line[0][0], same_line[-1][1]), "boxed", value, ", ".join(texts))
    if markers:
        m = markers[-1]
        line = _answer_line(response, m)
        start = response.find(line, m.end()) if line else m.end()
        text, value = _pick(line, want_dimension)
        return Extraction(text, (start, start + len(line)), "final answer", value, line)
    sentences = [
        (m.start(), m.group(0))
        for m in re.finditer(r"[^\n]*?(?:[.!?](?=\s|$)|\n|$)", response)
        if m.group(0).strip()
    ]
    if want_text is not None:
        return _text_conclusion(response, sentences, want_text)
    mathy = [(s, t) for s, t in sentences if _MATHY.search(t)]
    if not mathy:
        return None
    statements = [(s, t) for s, t in mathy if not _META.search(t)]
    if not statements:
        return None
    start, sentence = statements[-1]
    trailing = [t for s, t in sentences if s > start and not _META.search(t)]
    if trailing and not _CONCLUDE.search(sentence):
        return None  # the response goes on past its last number: no committed answer
    text, value = _pick(sentence, want_dimension)
    if value is None:
        return None
    return Extraction(text, (start, start + len(sentence)), "conclusion", value, sentence.strip())


def _text_conclusion(response: str, sentences: list[tuple[int, str]], want: Text) -> Extraction | None:
    statements = [(s, t) for s, t in sentences if not _META.search(t)]
    if not statements:
        return None
    paragraph = response.rfind("\n\n", 0, statements[-1][0] + 1)
    for start, sentence in reversed([(s, t) for s, t in statements if s >= paragraph]):
        found = find_text_answer(sentence, want)
        if found is not None:
            return Extraction(found, (start, start + len(sentence)), "conclusion", None, sentence.strip())
    return None


def _answer_line(response: str, m: re.Match[str]) -> str:
    """The text after a "final answer" marker: the rest of its line, or the next line when it is bare."""
    rest = response[m.end() :]
    line = rest.split("\n", 1)[0].strip()
    if not line.strip("*:#-_ "):  # "**Final Answer**" on its own line
        nxt = [ln for ln in rest.split("\n")[1:] if ln.strip()]
        line = nxt[0].strip() if nxt else ""
    return line


def _has_answer(response: str, m: re.Match[str]) -> bool:
    return bool(re.search(r"\w", _answer_line(response, m)))
