"""The final answer against its reference, read twice: by the project's reader (units, time,
percentages, text answers, references computed from the prompt) and by Math-Verify alone, as its
users call it on the whole response.

How the two combine is measured (``slm-playground bench verify``), not who finishes first: the
rules are in :func:`_combine`. Every limit counts the worker's CPU time, so a busy machine gives
the same verdict. A verdict is not confident where the rule is a coin toss by measure (the
readers took different answers from the response), where only Math-Verify could read the answer,
or where Math-Verify ran out of its CPU time (one reader where two were asked).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

from mathcheck.answers import Num, SetOf, Value, Verdict, compare, dimension_of, parse_answer
from mathcheck.extract import Extraction, boxed_spans, extract_answer
from mathcheck.kinds import Text, find_text_answer, same_text, text_matches, text_reference
from mathcheck.parser import ParseError
from mathcheck.tasks import task_from_prompt

SECOND_S = 0.5
"""CPU seconds Math-Verify may spend on the project's extracted answer (relations can be slow)."""
ALONE_S = 1.0
"""CPU seconds Math-Verify may spend reading and comparing the whole response."""


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


def _gold_answer(gold: str) -> str:
    """A reference given as a whole worked solution: the answer it boxes (the last box) or states."""
    if len(gold) < 80:
        return gold
    spans = boxed_spans(gold)
    if spans:
        return gold[spans[-1][0] : spans[-1][1]]
    found = extract_answer(gold)  # "... Final Answer: The final answer is $28 \\%$."
    return found.text if found is not None and found.value is not None else gold


def _reference(prompt: str | None, gold: str | None) -> _Reference:
    if gold is not None and str(gold).strip():
        gold = _gold_answer(str(gold))
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
    """Math-Verify's verdict on the answer the project extracted, or None."""
    from mathcheck.kept import second_opinion

    try:
        with limit(SECOND_S):
            return second_opinion(answer, gold)
    except StepTimeout:
        out.notes.append(f"Math-Verify used up its {SECOND_S:.1f} s of CPU time on the extracted answer")
    except READ_ERRORS:
        pass
    return None


def _alone(
    response: str, gold: str, limit: Callable[[float], AbstractContextManager[None]], out: Final
) -> bool | None:
    """Math-Verify alone on the whole response (its own extraction), or None when it reads nothing.
    Its limit is CPU time in the worker, so a busy machine does not change the outcome."""
    from mathcheck.kept import alone

    try:
        with limit(ALONE_S):
            return alone(gold, response)
    except StepTimeout:
        out.notes.append(f"Math-Verify used up its {ALONE_S:.1f} s of CPU time: one reader only")
        out.confident = False
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
    combine: bool = True,
) -> Final:
    """The final answer's verdict: the project's reader, combined with Math-Verify's (see _combine)."""
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
    if ref.text is not None:  # words, yes/no, a choice letter: the project's kind
        if extraction is None:
            out.notes.append("the response commits to no final answer")
            return out
        said = extraction.raw or extraction.text
        ok = text_matches(said, ref.text) or text_matches(extraction.text, ref.text)
        if not ok:  # "The correct option is (C) 12 cm", "Alice ran the farthest"
            found = find_text_answer(said, ref.text)
            ok = found is not None and same_text(found, ref.text)
        out.verdict = "equivalent" if ok else "not_equivalent"
        return out
    if extraction is None:
        out.notes.append("the response commits to no final answer")
    elif ref.value is None or extraction.value is None:
        if ref.value is not None:
            out.notes.append(f"could not read the final answer {_short(extraction.text)}")
    else:
        out.verdict = compare(extraction.value, ref.value, prompt, ref.up_to_constant)
        if _own_kinds(extraction.value) or out.verdict == "equivalent_after_rounding":
            return out  # units, percentages, times, rounding at the precision shown: the project's kind
    if combine and gold and ref.source == "given":
        _combine(response, str(gold), extraction, limit, out)
    return out


def _combine(
    response: str,
    gold: str,
    extraction: Extraction | None,
    limit: Callable[[float], AbstractContextManager[None]],
    out: Final,
) -> None:
    """Settle the verdict with Math-Verify alone, by what each reader is measured to do well.

    Measured on Math-Verify's own cases and the project's sets (``bench verify``): where both
    readers took the same answer but judge it differently, a proof of equality wins (the project's
    units, rounding, degrees, bases and regions; Math-Verify's LaTeX algebra), except a set written
    against a tuple, which the project refuses on purpose (not confident). Where they took different
    answers, the project's extraction wins (plain-text answers, several boxes) unless it is a bare
    symbol ("The largest $n$ is 34" read as n); it is confident where it read a box or an answer
    line, or found the reference in the concluding sentence, and not confident otherwise (a coin
    toss by measure). What only one of them reads, that one decides.
    """
    whole = _alone(response, gold, limit, out)
    ours = None if out.verdict == "unverifiable" else out.verdict.startswith("equivalent")
    if whole is None or whole == ours:
        return
    mark: Verdict = "equivalent" if whole else "not_equivalent"
    said = "equal" if whole else "different"
    if ours is None:
        if not whole or (extraction is None and _goes_on(response)):
            out.notes.append(f"Math-Verify reads the answer as {said}")  # cut off mid-working, or
            return  # "different" from a reader that may have taken any number: still unverifiable
        out.verdict, out.confident = mark, False
        out.notes.append(f"read by Math-Verify only: it reads the answer as {said}")
        return
    assert extraction is not None  # ours is a verdict, so an answer was extracted
    if _second(extraction.text, gold, limit, out) == whole:  # the same answer, judged differently
        if not whole:
            out.notes.append("the project's reader decides: Math-Verify reads the answer as different")
        elif not _set_against_tuple(extraction.value, gold):
            out.verdict = mark
            out.notes.append("Math-Verify's comparison decides: it reads the answer as equal")
        else:
            out.confident = False
            out.notes.append("not confident: Math-Verify reads this set and tuple as equal")
        return
    if _bare_symbol(extraction.text):
        out.verdict, out.confident = mark, False
        out.notes.append(f"not confident: the readers took different answers; Math-Verify's ({said}) decides")
    elif extraction.source in ("boxed", "final answer") or ours:
        # measured on the project's sets and the shared cases: where the readers took different
        # answers, ours was right 111 of 111 times when it read a box or an answer line, and 20 of
        # 20 when the sentence it read gives the reference itself; the rest (ours different, read
        # from a concluding sentence) were 2 right of 3: a coin toss
        out.notes.append(f"the project's reader decides: Math-Verify took another answer ({said})")
    else:
        out.confident = False
        out.notes.append(f"not confident: Math-Verify took another answer from the response ({said})")


def _goes_on(response: str) -> bool:
    """Prose after the response's last number: it stops mid-working rather than at an answer."""
    digits = list(re.finditer(r"\d", response))
    after = response[digits[-1].end() :] if digits else response
    return len(re.findall(r"[A-Za-z]{2,}", re.sub(r"\\[A-Za-z]+", " ", after))) >= 3


def _bare_symbol(text: str) -> bool:
    """An extracted "answer" that is only a name: n, N, f(x) (the sentence's number was missed)."""
    return bool(re.fullmatch(r"\s*\$?\s*[A-Za-z](?:\([A-Za-z]\))?\s*\$?\s*", text))


def _set_against_tuple(value: Value | None, gold: str) -> bool:
    try:
        ref = parse_answer(gold)
    except READ_ERRORS:
        return False
    if not (isinstance(value, SetOf) and isinstance(ref, SetOf)):
        return False
    return bool(value.brackets and ref.brackets) and (value.brackets == "{") != (ref.brackets == "{")
