"""Math verdicts per lane through mathcheck, and whether the lanes' final answers agree.

Everything mathematical runs in mathcheck's sandbox worker under its CPU-time budget (sympy and
Math-Verify never run on the event loop or in the app's process): ``verify_response`` for each
lane's verdict and ``same_answer`` for the agreement. Both block, so :func:`verdicts` calls them
from threads and settles the agreement there too; the run card built next then finds it settled.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

_SETTLED: dict[tuple[tuple[LaneVerdict | None, ...], str | None], bool | None] = {}
"""Agreements :func:`verdicts` settled in a thread, for the run card built on the event loop."""
_SETTLED_MAX = 64


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
    except Exception as exc:  # a verifier bug must not lose the comparison; it is said, not hidden
        return LaneVerdict("unverifiable", None, f"the checker failed: {type(exc).__name__}: {exc}")
    wrong = len(result.wrong_claims)
    detail = str(result.verdict) + (f"; {wrong} wrong step{'s' if wrong != 1 else ''}" if wrong else "")
    if result.notes:
        detail += "; " + "; ".join(result.notes)
    return LaneVerdict(result.final, result.answer, detail)


async def verdicts(texts: list[str], *, prompt: str, gold: str | None) -> list[LaneVerdict | None]:
    """Every lane's verdict, verified concurrently off the event loop, with their agreement."""
    found = list(
        await asyncio.gather(*(asyncio.to_thread(verdict_for, t, prompt=prompt, gold=gold) for t in texts))
    )
    agree = await asyncio.to_thread(agreement, found, prompt)
    while len(_SETTLED) >= _SETTLED_MAX:
        _SETTLED.pop(next(iter(_SETTLED)))
    _SETTLED[(tuple(found), prompt)] = agree
    return found


def same_answer(a: str, b: str, prompt: str | None = None) -> bool:
    """Whether two final answers are the same value (read in the sandbox worker), else the same text.
    Blocks: call it from a thread."""
    from mathcheck.sandbox import same_answer as same_value

    try:
        same = same_value(a, b, prompt=prompt)
    except Exception:  # mathcheck missing or its worker cannot start: compare as text
        same = None
    return same if same is not None else a.strip().casefold() == b.strip().casefold()


def agreement(found: list[LaneVerdict | None], prompt: str | None = None) -> bool | None:
    """Whether every lane reached the same final answer; None when fewer than two have one.
    Settled already for verdicts from :func:`verdicts`; otherwise read now (blocking)."""
    key = (tuple(found), prompt)
    if key in _SETTLED:
        return _SETTLED[key]
    answers = [v.answer for v in found if v is not None and v.answer]
    if len(answers) < 2:
        return None
    return all(same_answer(answers[0], other, prompt) for other in answers[1:])
