"""The verification pipeline: final answer vs a reference (given or computed), then every claim.

``verify_response`` (in :mod:`mathcheck.sandbox`) runs :func:`verify_inprocess` in a worker process
under a hard time limit; this module is the pure part and never imports gradio.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from mathcheck.answers import Verdict
from mathcheck.claims import Candidate, Claim, check_claim, find_claims, rewriting_task
from mathcheck.final import READ_ERRORS, StepTimeout, judge

MAX_RESPONSE_CHARS = 20_000
"""Longer responses are read at both ends: the working's start and the end, where the answer is."""
DEFAULT_BUDGET_S = 3.0
DEFAULT_CLAIM_S = 0.5

Limiter = Callable[[float], AbstractContextManager[None]]
__all__ = ["StepTimeout", "Verification", "render_markdown", "verify_inprocess"]


@dataclass(frozen=True)
class Verification:
    verdict: Verdict
    answer: str | None = None
    """The extracted final answer as written in the response."""
    answer_span: tuple[int, int] | None = None
    reference: str | None = None
    reference_source: Literal["given", "computed", "none"] = "none"
    claims: tuple[Claim, ...] = ()
    notes: tuple[str, ...] = ()
    elapsed_s: float = 0.0
    cpu_s: float = 0.0
    """CPU time the check took in its worker: what the budget counts, the same on a busy machine."""
    timed_out: bool = False
    checker_failed: bool = False
    """An exception inside the checker (a bug): the notes say "the checker failed" and why."""
    confident: bool = True
    """False when the two readers of the final answer disagree, only Math-Verify could read it, or
    Math-Verify was asked and did not finish (see :mod:`mathcheck.final`); kinds only the project
    reads stay confident."""

    @property
    def final(self) -> Literal["correct", "incorrect", "unverifiable"]:
        if self.verdict.startswith("equivalent"):
            return "correct"
        return "incorrect" if self.verdict == "not_equivalent" else "unverifiable"

    @property
    def wrong_claims(self) -> list[Claim]:
        return [c for c in self.claims if c.verdict == "wrong"]

    def to_json(self) -> dict[str, Any]:
        """The CLI's line: final plus claims (expected only on wrong claims)."""
        claims = []
        for c in self.claims:
            item: dict[str, Any] = {"text": c.text, "verdict": c.verdict}
            if c.verdict == "wrong" and c.expected is not None:
                item["expected"] = c.expected
            claims.append(item)
        return {"final": self.final, "verdict": self.verdict, "confident": self.confident,
                "answer": self.answer, "claims": claims, "notes": list(self.notes),
                "timed_out": self.timed_out, "checker_failed": self.checker_failed}  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _no_limit(_seconds: float) -> AbstractContextManager[None]:
    return nullcontext()


@dataclass
class _Clock:
    deadline: float
    per_step_s: float
    notes: list[str] = field(default_factory=list)

    def share(self) -> float:
        return max(0.0, min(self.per_step_s, self.deadline - time.process_time()))


def _parts(response: str) -> list[tuple[int, str]]:
    """(offset, text) pieces to read: all of it, or its start and its end when it is too long."""
    if len(response) <= MAX_RESPONSE_CHARS:
        return [(0, response)]
    half = MAX_RESPONSE_CHARS // 2
    return [(0, response[:half]), (len(response) - half, response[-half:])]


def verify_inprocess(
    response: str,
    *,
    prompt: str | None = None,
    gold: str | None = None,
    budget_s: float = DEFAULT_BUDGET_S,
    claim_s: float = DEFAULT_CLAIM_S,
    limiter: Limiter = _no_limit,
) -> Verification:
    """Verify one response in this process. ``limiter(seconds)`` bounds each step (see sandbox)."""
    start, cpu_start = time.monotonic(), time.process_time()
    clock = _Clock(cpu_start + budget_s, claim_s)  # CPU time: the same stops on a busy machine
    notes: list[str] = []
    parts = _parts(response)
    if len(parts) > 1:
        notes.append(f"a long response: its first and last {MAX_RESPONSE_CHARS // 2} characters were checked")
    end_offset, end_text = parts[-1]
    verdict: Verdict = "unverifiable"
    answer = span = ref_text = None
    source, confident, failed = "none", True, False
    try:
        with limiter(max(0.05, min(budget_s / 2, clock.deadline - time.process_time()))):
            final = judge(end_text, prompt, gold, limiter)
            verdict, ref_text, source, confident = (
                final.verdict,
                final.reference,
                final.source,
                final.confident,
            )
            notes += final.notes
            if final.extraction is not None:
                answer = final.extraction.text
                span = (final.extraction.span[0] + end_offset, final.extraction.span[1] + end_offset)
    except StepTimeout:
        notes.append("the final-answer check ran out of time")
        confident = False
    except READ_ERRORS as exc:
        notes.append(f"the final-answer check failed: {type(exc).__name__}")
    except Exception as exc:  # a bug in the checker: said as such, never a quiet "unverifiable"
        notes.append(f"the checker failed on the final answer: {_failure(exc)}")
        failed = True
    claims: list[Claim] = []
    skipped = 0
    try:
        candidates = _candidates(parts, rewriting_task(prompt))
    except Exception as exc:  # a bug in finding claims: the final verdict still stands
        notes.append(f"the checker failed while finding the steps: {_failure(exc)}")
        candidates, failed = [], True
    for cand in candidates:
        share = clock.share()
        if share <= 0.01:
            skipped += 1
            claims.append(Claim(cand.text, cand.span, "unchecked", note="time budget spent"))
            continue
        try:
            with limiter(share):
                claim = check_claim(cand, claims)
        except StepTimeout:
            claim = Claim(cand.text, cand.span, "unchecked", note="took too long")
        except (*READ_ERRORS, OverflowError):
            claim = Claim(cand.text, cand.span, "unchecked", note="could not evaluate")
        except Exception as exc:  # a bug in the checker
            claim = Claim(cand.text, cand.span, "unchecked", note=f"the checker failed: {_failure(exc)}")
            failed = True
        if claim is not None:
            claims.append(claim)
    if skipped:
        notes.append(f"{skipped} claims not checked: time budget spent")
    first = next((c for c in claims if c.verdict == "wrong"), None)
    if first is not None:  # where the solution went wrong, said once at the top of the notes
        where = "" if first.step in (None, first.text) else f", in {first.text}"
        notes.insert(0, f"first wrong step: {first.step or first.text} (should be {first.expected}){where}")
    return Verification(
        verdict=verdict,
        answer=answer,
        answer_span=span,
        reference=ref_text,
        reference_source=source,  # type: ignore[arg-type]
        claims=tuple(claims),
        notes=tuple(notes),
        elapsed_s=time.monotonic() - start,
        cpu_s=time.process_time() - cpu_start,
        timed_out=bool(skipped),
        confident=confident and not failed,
        checker_failed=failed,
    )


def _failure(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


def _candidates(parts: list[tuple[int, str]], rewriting: bool) -> list[Candidate]:
    out = []
    for offset, text in parts:
        for cand in find_claims(text, rewriting):
            span = (cand.span[0] + offset, cand.span[1] + offset)
            out.append(replace(cand, span=span) if offset else cand)
    return out


_VERDICT_TEXT = {
    "equivalent": "✓ equivalent to the reference",
    "equivalent_after_rounding": "✓ equivalent after rounding",
    "equivalent_in_other_unit": "✓ equivalent (in another unit)",
    "not_equivalent": "✗ not equivalent to the reference",
    "unverifiable": "? can't check the final answer",
}


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("`", "'")


def render_markdown(v: Verification) -> str:
    """A chat message's verification section: the final verdict, then ✓ / ✗ (right value) / ? per claim."""
    lines = ["**Verification**", ""]
    head = _VERDICT_TEXT[v.verdict] + ("" if v.confident else " (not confident)")
    if v.answer:
        head += f" · answer `{_escape(v.answer)}`"
    if v.reference:
        kind = "reference" if v.reference_source == "given" else "computed"
        head += f" · {kind} `{_escape(v.reference)}`"
    lines.append(head)
    if v.claims:
        lines.append("")
        for c in v.claims:
            if c.verdict == "ok":
                lines.append(f"- ✓ `{_escape(c.text)}`")
            elif c.verdict == "wrong":
                at = "" if c.step in (None, c.text) else f" (at `{_escape(c.step or '')}`)"
                lines.append(f"- ✗ `{_escape(c.text)}` → should be **{_escape(c.expected or '?')}**{at}")
            else:
                lines.append(f"- ? `{_escape(c.text)}`" + (f" ({c.note})" if c.note else ""))
    for note in v.notes:
        lines.append(f"\n_{_escape(note)}_")
    return "\n".join(lines)
