"""Model text shown as written: arithmetic and prices survive Markdown, intended Markdown, code
and LaTeX still render. Checked with markdown-it (CommonMark, the rules the browser's parser
follows for emphasis) on lines models write in word problems."""

from __future__ import annotations

import html
import re

import pytest
from markdown_it import MarkdownIt

from runtime.markdown_text import LATEX_DELIMITERS, segments, shown, written

# Lines as models write them (from the newcomer's report, #21, and the team's own runs).
ARITHMETIC_AND_PRICES = [
    "Step one: 6*6*6 = 216 and 2*3*4 = 24",
    "$3 each, so 4 pens cost $12",
    "To find the total, multiplying $1.00 by 4: 4 * $1.00 = $4.",
    "The area is 3*4*5 = 60 cubic units, and 2**3 = 8.",
    "She buys 6 *6 apples and 7* 7 pears.",
    "It takes 3~4 hours at $15/hour, so $45 to $60.",
    "Total: (2+3)*4 = 20, then 20*$0.50 = $10.00",
    # the embedded SmolLM2-135M in the Math tab (browser test, 2026-12-07)
    "The car travels at 60 mph for 2.5 hours, which means it covers a distance of 2.5 * 60 = 150 miles.",
    "At 80 mph for 1.5 hours, it covers a distance of 1.5 * 80 = 120 miles.",
]
INTENDED = [
    "The answer is **42**.",
    "*Note:* prices are in dollars.",
    "* first item\n* second item with *emphasis*",
    "Use `a*b*c` or\n\n```python\nprint(6*6*6)\n```\n",
]
MATH = [
    ("Let $x^2$ be the square.", "\\(x^2\\)"),
    ("so $y$ grows", "\\(y\\)"),
    ("and \\(a+b\\) too", "\\(a+b\\)"),
    ("$$\\frac{1}{2}$$", "$$\\frac{1}{2}$$"),
    ("\\[ 6*6 = 36 \\]", "\\[ 6*6 = 36 \\]"),
]


def rendered_text(source: str) -> str:
    """What a reader sees: the rendered HTML without tags."""
    out = MarkdownIt("commonmark").render(source)
    return html.unescape(re.sub(r"<[^>]+>", "", out)).strip()


@pytest.mark.parametrize("line", ARITHMETIC_AND_PRICES)
def test_arithmetic_and_prices_render_as_written(line: str) -> None:
    source = shown(line)
    assert "<em>" not in MarkdownIt("commonmark").render(source)
    assert rendered_text(source) == line
    assert written(source) == line


def test_the_raw_line_would_have_been_mangled() -> None:
    """The check above is not vacuous: without shown() the parser eats the stars."""
    assert rendered_text(ARITHMETIC_AND_PRICES[0]) == "Step one: 666 = 216 and 234 = 24"


@pytest.mark.parametrize("line", INTENDED)
def test_intended_markdown_and_code_are_left_alone(line: str) -> None:
    assert shown(line) == line
    assert written(line) == line


def test_intended_markdown_still_renders() -> None:
    out = MarkdownIt("commonmark").render(shown("Step 6*6 = 36, so the answer is **42** and *done*."))
    assert "<strong>42</strong>" in out and "<em>done</em>" in out and "6*6 = 36" in out


@pytest.mark.parametrize(("line", "math"), MATH)
def test_math_gets_a_delimiter_the_renderer_knows(line: str, math: str) -> None:
    source = shown(line)
    assert math in source
    lefts = [str(d["left"]) for d in LATEX_DELIMITERS]
    assert "$" not in lefts and {"$$", "\\(", "\\["} <= set(lefts)


def test_prices_are_never_math() -> None:
    for line in ARITHMETIC_AND_PRICES:
        assert "\\(" not in shown(line)


def test_code_is_untouched_even_unclosed_while_streaming() -> None:
    partial = "Here:\n```python\nx = 6*6\n"
    assert shown(partial) == "Here:\n" + "```python\nx = 6*6\n"
    assert [kind for kind, _ in segments(partial)] == ["prose", "code"]


def test_segments_join_back_to_the_text() -> None:
    for line in ARITHMETIC_AND_PRICES + INTENDED + [m for m, _ in MATH]:
        assert "".join(piece for _, piece in segments(line)) == line


def test_shown_then_written_then_shown_is_stable() -> None:
    for line in ARITHMETIC_AND_PRICES + INTENDED + [m for m, _ in MATH]:
        assert shown(written(shown(line))) == shown(line)


def test_the_chat_sends_markdown_and_hands_the_handlers_back_the_text() -> None:

    from app.render import WrittenChatbot, text_of

    chatbot = WrittenChatbot()
    line = ARITHMETIC_AND_PRICES[0]
    history = [{"role": "user", "content": "6*6*6?"}, {"role": "assistant", "content": line}]
    sent = chatbot.postprocess(history)  # what the browser gets
    assert [m.content[0].text for m in sent.root] == ["6\\*6\\*6?", shown(line)]  # type: ignore[union-attr]
    back = chatbot.preprocess(sent)  # the browser sends it back with the next event
    assert [text_of(m["content"]) for m in back] == ["6*6*6?", line]
