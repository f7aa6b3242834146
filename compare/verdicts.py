"""Math verdicts per lane through mathcheck, and whether the lanes' final answers agree.

mathcheck is imported on first use (sympy takes a moment to import). ``verify_response`` blocks
(it runs in a worker process under a time budget), so :func:`verdicts` calls it from threads,
all lanes at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LaneVerdict:
    verdict: str
    """mathcheck's final word: "correct", "incorrect" or "unverifiable"."""
    answer: str | None
    """The final answer as written in the response."""
    detail: str = ""
    """The finer verdict (e.g. equivalent_after_rounding) and how many steps were wrong."""

    @property
    def label(self) -> str:
        return self.verdict + (f" ({self.answer})" if self.answer else "")


def verdict_for(text: str, *, prompt: str | None = None, gold: str | None = None) -> LaneVerdict | None:
    """mathcheck's verdict on one answer; None when the answer is empty."""
    from mathcheck import verify_response

    if not text.strip():
        return None
    try:
        result: Any = verify_response(text, prompt=prompt, gold=gold or None)
    except Exception as exc:  # a verifier bug must not lose the comparison
        return LaneVerdict("unverifiable", None, f"verifier failed: {type(exc).__name__}: {exc}")
    wrong = len(result.wrong_claims)
    detail = str(result.verdict) + (f"; {wrong} wrong step{'s' if wrong != 1 else ''}" if wrong else "")
    if result.notes:
        detail += "; " + "; ".join(result.notes)
    return LaneVerdict(result.final, result.answer, detail)


async def verdicts(texts: list[str], *, prompt: str, gold: str | None) -> list[LaneVerdict | None]:
    """Every lane's verdict, verified concurrently off the event loop."""
    return list(
        await asyncio.gather(*(asyncio.to_thread(verdict_for, t, prompt=prompt, gold=gold) for t in texts))
    )


def same_answer(a: str, b: str, prompt: str | None = None) -> bool:
    """Whether two final answers are the same value (sympy via mathcheck), else the same text."""
    try:
        from mathcheck.answers import compare, parse_answer

        return compare(parse_answer(a), parse_answer(b), prompt).startswith("equivalent")
    except Exception:  # not parseable as math (or mathcheck missing): compare as text
        return a.strip().casefold() == b.strip().casefold()


def agreement(found: list[LaneVerdict | None], prompt: str | None = None) -> bool | None:
    """Whether every lane reached the same final answer; None when fewer than two have one."""
    answers = [v.answer for v in found if v is not None and v.answer]
    if len(answers) < 2:
        return None
    return all(same_answer(answers[0], other, prompt) for other in answers[1:])
