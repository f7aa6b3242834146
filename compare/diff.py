"""Where two answers part ways: the first divergence and a word-level diff.

Pure functions over strings. A word keeps its trailing whitespace, so joining the segments
of a diff gives back the text, and a change of spacing alone does not count as a difference.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

_WORD = re.compile(r"\s*\S+\s*|\s+")

Op = Literal["equal", "delete", "insert"]


@dataclass(frozen=True)
class Divergence:
    char_index: int
    """Index in both texts of the first character that differs (the shorter length if one is a prefix)."""
    word_index: int
    """Index (0-based) of the first word that differs."""
    a_context: str
    b_context: str
    """Up to a few words of each answer from the divergence on, for display."""


@dataclass(frozen=True)
class Segment:
    op: Op
    text: str


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def first_divergence(a: str, b: str, context_words: int = 6) -> Divergence | None:
    """None when the answers are identical."""
    if a == b:
        return None
    char_index = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    wa, wb = [w.strip() for w in words(a)], [w.strip() for w in words(b)]
    word_index = next(
        (i for i, (x, y) in enumerate(zip(wa, wb, strict=False)) if x != y), min(len(wa), len(wb))
    )
    return Divergence(
        char_index=char_index,
        word_index=word_index,
        a_context=" ".join(wa[word_index : word_index + context_words]),
        b_context=" ".join(wb[word_index : word_index + context_words]),
    )


def word_diff(a: str, b: str) -> list[Segment]:
    """Segments turning ``a`` into ``b``: equal runs, words only in a (delete), only in b (insert)."""
    wa, wb = words(a), words(b)
    matcher = difflib.SequenceMatcher(a=[w.strip() for w in wa], b=[w.strip() for w in wb], autojunk=False)
    segments: list[Segment] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            segments.append(Segment("equal", "".join(wb[j1:j2])))
            continue
        if i2 > i1:
            segments.append(Segment("delete", "".join(wa[i1:i2])))
        if j2 > j1:
            segments.append(Segment("insert", "".join(wb[j1:j2])))
    return segments


def similarity(a: str, b: str) -> float:
    """Share of words in common, 0..1 (difflib ratio over words)."""
    if not a and not b:
        return 1.0
    return difflib.SequenceMatcher(
        a=[w.strip() for w in words(a)], b=[w.strip() for w in words(b)], autojunk=False
    ).ratio()


def highlighted(segments: list[Segment]) -> list[tuple[str, str | None]]:
    """(text, label) pairs for a highlighted-text view: "-" only in the first, "+" only in the second."""
    labels: dict[Op, str | None] = {"equal": None, "delete": "-", "insert": "+"}
    return [(s.text, labels[s.op]) for s in segments]


def markdown_diff(segments: list[Segment]) -> str:
    """The diff inline: ~~removed~~ and **added** words."""
    parts = []
    for s in segments:
        if s.op == "equal":
            parts.append(s.text)
        else:
            core, tail = s.text.rstrip(), s.text[len(s.text.rstrip()) :]
            lead = core[: len(core) - len(core.lstrip())]
            mark = "~~" if s.op == "delete" else "**"
            parts.append(f"{lead}{mark}{core.strip()}{mark}{tail or ' '}")
    return "".join(parts).strip()
