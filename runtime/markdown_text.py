"""Model text as Markdown source that shows it as written (pure: no gradio, no I/O).

Answers are Markdown with math, so a chat renders them, but two habits of word problems break
on the way: ``6*6*6`` becomes "6", an italic "6", "6" (``*`` opens emphasis between letters or
digits), and ``$3 each, so 4 pens cost $12`` becomes inline math when ``$`` is a math delimiter.
:func:`shown` returns the source a Markdown + KaTeX renderer shows as the text was meant:

- an arithmetic ``*`` (or ``~`` between digits) is backslash-escaped; ``**bold**``, ``*italic*``
  and lists are left alone;
- ``$`` is not a math delimiter for the renderer (see :data:`LATEX_DELIMITERS`), so prices stay
  prices; ``$x^2$`` that reads as math (Pandoc's rule: no space inside the dollars, no digit
  after the closing one, and a math-looking body) is rewritten as ``\\(x^2\\)``;
- code (fenced blocks, inline spans) and math already delimited (``$$``, ``\\[``, ``\\(``) are
  untouched.

:func:`written` undoes the escapes, so the text a chat sends back (history, saved chats,
exports) is the model's own. ``$x^2$`` stays ``\\(x^2\\)`` there: the same math, and the one
spelling the renderer shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Literal

Kind = Literal["prose", "code", "math"]

LATEX_DELIMITERS: list[dict[str, str | bool]] = [
    {"left": "$$", "right": "$$", "display": True},
    {"left": "\\[", "right": "\\]", "display": True},
    {"left": "\\(", "right": "\\)", "display": False},
]
"""For gr.Chatbot / gr.Markdown: no single ``$`` (see :func:`shown`)."""

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_MATH_OPEN = {"$$": "$$", "\\[": "\\]", "\\(": "\\)"}
_PUNCT = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")

# Pandoc's tex_math_dollars: "$" then a non-space, a closing "$" after a non-space and before no digit.
_DOLLAR_MATH = re.compile(r"(?<![\\$\w])\$(?=[^\s$])([^$\n]*?[^\s\\$])\$(?![\d$])")
_MATHY = re.compile(r"\\[A-Za-z]+|[\^_{}=]")
_OPERAND_BEFORE, _OPERAND_AFTER = "A-Za-z0-9)\\]", "A-Za-z0-9(\\[$"
_ARITHMETIC = re.compile(
    rf"(?<=[{_OPERAND_BEFORE}])(\*\*?)(?=[{_OPERAND_AFTER}])"  # 6*6, 2**3, x*y, 4*$1
    r"|(?<=[0-9)] )(\*)(?=[0-9(])"  # 6 *6
    r"|(?<=[0-9)])(\*)(?= [0-9(])"  # 6* 6
    r"|(?<=[0-9])(~)(?=[0-9])"  # 3~4 (a range, not strikethrough)
)
_ESCAPED = re.compile(
    rf"(?<=[{_OPERAND_BEFORE}])((?:\\\*){{1,2}})(?=[{_OPERAND_AFTER}])"
    r"|(?<=[0-9)] )(\\\*)(?=[0-9(])"
    r"|(?<=[0-9)])(\\\*)(?= [0-9(])"
    r"|(?<=[0-9])(\\~)(?=[0-9])"
)


def _escape(match: re.Match[str]) -> str:
    return "".join("\\" + char for char in match.group())


def _unescape(match: re.Match[str]) -> str:
    return match.group().replace("\\", "")


def segments(text: str) -> Iterator[tuple[Kind, str]]:
    """``text`` cut into prose, code and delimited math; the pieces join back to ``text``."""
    lines = text.splitlines(keepends=True)
    prose: list[str] = []
    i = 0
    while i < len(lines):
        opened = _FENCE.match(lines[i])
        if not opened:
            prose.append(lines[i])
            i += 1
            continue
        yield from _inline("".join(prose))
        prose = []
        fence, end = opened.group(1), i + 1
        while end < len(lines) and not re.match(rf"^ {{0,3}}{fence[0]}{{{len(fence)},}}\s*$", lines[end]):
            end += 1
        yield "code", "".join(lines[i : end + 1])  # an unclosed fence runs to the end, as in Markdown
        i = end + 1
    yield from _inline("".join(prose))


def _inline(text: str) -> Iterator[tuple[Kind, str]]:
    """Prose with inline code spans and delimited math cut out."""
    start = i = 0
    while i < len(text):
        found = _span_at(text, i)
        if found is None:
            i += 2 if text[i] == "\\" and text[i + 1 : i + 2] in _PUNCT else 1
            continue
        kind, end = found
        if start < i:
            yield "prose", text[start:i]
        yield kind, text[i:end]
        start = i = end
    if start < len(text):
        yield "prose", text[start:]


def _span_at(text: str, i: int) -> tuple[Kind, int] | None:
    """A code span or delimited math starting at ``i``: its kind and end, or None."""
    for left, right in _MATH_OPEN.items():
        if text.startswith(left, i):
            close = text.find(right, i + len(left) + 1)
            return ("math", close + len(right)) if close >= 0 else None
    if text[i] != "`":
        return None
    run = len(text[i:]) - len(text[i:].lstrip("`"))
    for match in re.finditer(r"`+", text[i + run :]):
        if len(match.group()) == run:
            return "code", i + run + match.end()
    return None


def _is_math(body: str) -> bool:
    """A ``$...$`` body that reads as math: a command or ^ _ { } =, or a short formula without
    words (``x``, ``2x+1``, ``f(x)``); not a bare number, which is more likely a price."""
    if _MATHY.search(body):
        return True
    return not re.search(r"[A-Za-z]{3,}", body) and not re.fullmatch(r"[\d.,\s]+", body)


def _show_prose(text: str) -> str:
    out, last = [], 0
    for match in _DOLLAR_MATH.finditer(text):
        if _is_math(match.group(1)):
            out += [_ARITHMETIC.sub(_escape, text[last : match.start()]), f"\\({match.group(1)}\\)"]
            last = match.end()
    out.append(_ARITHMETIC.sub(_escape, text[last:]))
    return "".join(out)


def shown(text: str) -> str:
    """Markdown source that shows ``text`` as written (see the module's docstring)."""
    return "".join(_show_prose(piece) if kind == "prose" else piece for kind, piece in segments(text))


def written(source: str) -> str:
    """The text :func:`shown` made ``source`` from (its escapes removed)."""
    return "".join(
        _ESCAPED.sub(_unescape, piece) if kind == "prose" else piece for kind, piece in segments(source)
    )
