"""Split ``<think>…</think>`` out of a streamed answer (pure; the chunks may cut a tag anywhere).

Reasoning models (DeepSeek-R1 distills, Qwen3, Phi-4-mini-reasoning) write their thinking inline
between these tags when the server does not separate it into reasoning deltas. The thinking is
shown apart, and is neither verified nor sent back to the model on the next turn.
"""

from __future__ import annotations

from typing import Literal

OPEN, CLOSE = "<think>", "</think>"
Piece = tuple[Literal["text", "reasoning"], str]


class ThinkSplitter:
    """Feed text chunks; get (kind, text) pieces. A partial tag at a chunk's end is held back."""

    def __init__(self) -> None:
        self._inside = False
        self._held = ""

    def feed(self, chunk: str) -> list[Piece]:
        text, self._held = self._held + chunk, ""
        pieces: list[Piece] = []
        while text:
            tag = CLOSE if self._inside else OPEN
            at = text.find(tag)
            if at >= 0:
                self._emit(pieces, text[:at])
                self._inside = not self._inside
                text = text[at + len(tag) :]
                continue
            keep = _partial_suffix(text, tag)
            self._emit(pieces, text[: len(text) - keep])
            self._held = text[len(text) - keep :]
            break
        return pieces

    def flush(self) -> list[Piece]:
        """The held-back end of the stream (an unfinished tag is just text)."""
        pieces: list[Piece] = []
        self._emit(pieces, self._held)
        self._held = ""
        return pieces

    def _emit(self, pieces: list[Piece], text: str) -> None:
        if text:
            pieces.append(("reasoning" if self._inside else "text", text))


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that starts ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0
