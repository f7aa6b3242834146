"""The final answer against its reference, read twice: by the project's reader (units, time,
percentages, text answers, references computed from the prompt) and by Math-Verify.

Confidence rests on the two readers: a verdict is not confident when they disagree, when only
Math-Verify can read the answer, or when Math-Verify was asked and did not finish (one reader where
two should be). Kinds that only the project reads (units, percentages, compound times, text answers,
references computed from the prompt, an answer rounded at the precision shown, text Math-Verify
cannot parse) have one reader by design and stay confident.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

from mathcheck.answers import Num, Value, Verdict, compare, dimension_of, parse_answer
from mathcheck.extract import Extraction, extract_answer
from mathcheck.kinds import Text, find_text_answer, same_text, text_matches, text_reference
from mathcheck.parser import ParseError
from mathcheck.tasks import task_from_prompt

SECOND_S = 0.15
"""The most the second reader may take: Math-Verify's symbolic checks can be slow on relations."""


class StepTimeout(BaseException):
    """One step (a claim, the final comparison) ran past its share of the budget.

    A BaseException so that library code catching ``Exception`` (Math-Verify does) cannot swallow it.
    """


def _no_limit(_seconds: float) -> AbstractContextManager[None]:
    return nullcontext()


def _short(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


READ_ERRORS = (ParseError, ValueError, TypeError, ZeroDivisionError, RecursionError, AttributeError)


@dataclass
class Final:
    verdict: Verdict = "unverifiable"
    extraction: Extraction | None = None
    reference: str | None = None
    source: str = "none"
    confident: bool = True
    notes: list[str] = field(default_factory=list)


@dataclass
class _Reference:
    value: Value | None = None
    text: Text | None = None
    shown: str | None = None
    source: str = "none"
    up_to_constant: bool = False
    problem: str | None = None


def _reference(prompt: str | None, gold: str | None) -> _Reference:
    if gold is not None and str(gold).strip():
        gold = str(gold)
        text = text_reference(gold)
        if text is not None:
            return _Reference(text=text, shown=gold, source="given")
        try:
            integral = bool(prompt and re.search(r"integra|antiderivative|\\int", prompt, re.I))
            return _Reference(parse_answer(gold), shown=gold, source="given", up_to_constant=integral)
        except READ_ERRORS:
            return _Reference(
                shown=gold, source="given", problem=f"could not read the reference {_short(gold)}"
            )
    task = task_from_prompt(prompt)
    if task is None:
        return _Reference()
    return _Reference(
        task.reference, shown=task.description, source="computed", up_to_constant=task.up_to_constant
    )


def _second(
    answer: str, gold: str, limit: Callable[[float], AbstractContextManager[None]], out: Final
) -> bool | None:
    """Math-Verify's verdict, or None. Running out of time leaves one reader where two were asked:
    the verdict is then not confident. Text Math-Verify cannot read at all is the project's kind."""
    from mathcheck.kept import second_opinion

    try:
        with limit(SECOND_S):
            return second_opinion(answer, gold)
    except StepTimeout:
        out.confident = False
        out.notes.append(f"Math-Verify did not finish within {SECOND_S * 1000:.0f} ms: one reader only")
    except READ_ERRORS:
        pass
    return None


def _own_kinds(value: Value) -> bool:
    """Answers whose meaning Math-Verify does not read (units, percentages, compound times)."""
    return isinstance(value, Num) and bool(value.unit or value.percent or value.compound)


def judge(
    response: str,
    prompt: str | None,
    gold: str | None,
    limit: Callable[[float], AbstractContextManager[None]] = _no_limit,
) -> Final:
    """Both readers' verdict on the response's final answer; ``limit(s)`` bounds the second reader."""
    ref = _reference(prompt, gold)
    out = Final(reference=ref.shown, source=ref.source)
    if ref.problem:
        out.notes.append(ref.problem)
    extraction = extract_answer(
        response, dimension_of(ref.value) if ref.value is not None else None, want_text=ref.text
    )
    out.extraction = extraction
    if ref.source == "none":
        out.notes.append("no reference given and the prompt is not a computable exercise")
        return out
    if extraction is None:
        out.notes.append("the response commits to no final answer")
        return out
    if ref.text is not None:
        said = extraction.raw or extraction.text
        ok = text_matches(said, ref.text) or text_matches(extraction.text, ref.text)
        if not ok:  # "The correct option is (C) 12 cm", "Alice ran the farthest"
            found = find_text_answer(said, ref.text)
            ok = found is not None and same_text(found, ref.text)
        out.verdict = "equivalent" if ok else "not_equivalent"
        return out
    if ref.value is None or extraction.value is None:
        opinion = _second(extraction.text, gold, limit, out) if gold else None
        if opinion is None:
            if ref.value is not None:
                out.notes.append(f"could not read the final answer {_short(extraction.text)}")
            return out
        out.verdict = "equivalent" if opinion else "not_equivalent"
        out.confident = False
        out.notes.append("read by Math-Verify only")
        return out
    out.verdict = compare(extraction.value, ref.value, prompt, ref.up_to_constant)
    if (
        gold
        and ref.source == "given"
        and not _own_kinds(extraction.value)
        and out.verdict != "equivalent_after_rounding"
    ):
        opinion = _second(extraction.text, gold, limit, out)
        if opinion is not None and opinion != out.verdict.startswith("equivalent"):
            out.confident = False
            out.notes.append(
                "not confident: Math-Verify reads the answer as " + ("equal" if opinion else "different")
            )
    return out
