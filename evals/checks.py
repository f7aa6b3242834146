"""Grading one answer against an item's checks: correct, incorrect, unverifiable (or error).

Math goes through mathcheck's public entry point (``verify_response``: final answer and every
arithmetic step, in its own worker process under a time budget); the other checks are plain
text tests. Grading is pure given the answer text, so ``eval --recheck`` regrades a stored run
and must reach the same verdicts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from evals.sets import Check, Item

Verdict = Literal["correct", "incorrect", "unverifiable", "error"]
MAX_REGEX_INPUT = 20_000
"""Characters of an answer a regex check reads (patterns come from set files)."""
_FINAL = re.compile(r"(?:final answer|answer)\s*[:：]\s*(.+)", re.IGNORECASE)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class Grade:
    verdict: Verdict
    answer: str | None
    """The extracted answer as written (math: mathcheck's reading; else the final line)."""
    detail: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)
    """mathcheck's step checks (text, verdict ok|wrong|unchecked, expected) for math items."""


def grade(text: str, item: Item, *, preset_is_math: bool) -> Grade:
    """The verdict on ``text`` as an answer to ``item``; every check must pass to be correct."""
    checks = item.checks_for(preset_is_math)
    if not text.strip():
        return Grade("incorrect" if checks else "unverifiable", None, "empty answer")
    if not checks:
        return Grade("unverifiable", final_line(text), "no reference and no checks")
    grades = [_one(text, check, item) for check in checks]
    verdicts = {g.verdict for g in grades}
    verdict: Verdict = (
        "incorrect" if "incorrect" in verdicts else "correct" if verdicts == {"correct"} else "unverifiable"
    )
    first = grades[0]
    detail = "; ".join(g.detail for g in grades if g.detail)
    return Grade(verdict, first.answer, detail, [s for g in grades for s in g.steps])


def final_line(text: str) -> str:
    """The answer a non-math check reads: what follows the last "answer:", else the last line."""
    found = _FINAL.findall(text)
    line = found[-1] if found else text.strip().splitlines()[-1]
    return line.strip().strip("*").strip().rstrip(".").strip()


def _one(text: str, check: Check, item: Item) -> Grade:
    if check.type == "math":
        return _math(text, item.prompt, check.value or item.reference)
    if check.type == "json":
        return _json(text, check.json_schema or {"type": "object"})
    expected = (check.value or "").strip()
    if check.type == "exact":
        answer = final_line(text)
        ok = answer.casefold() == expected.casefold()
        return Grade("correct" if ok else "incorrect", answer, "" if ok else f"expected exactly {expected!r}")
    if check.type == "contains":
        ok = expected.casefold() in text.casefold()
        return Grade("correct" if ok else "incorrect", final_line(text), "" if ok else f"no {expected!r}")
    found = re.search(expected, text[:MAX_REGEX_INPUT])
    answer = found.group(0) if found else final_line(text)
    return Grade("correct" if found else "incorrect", answer, "" if found else f"no match for /{expected}/")


def _math(text: str, prompt: str, reference: str | None) -> Grade:
    from mathcheck import verify_response

    try:
        result: Any = verify_response(text, prompt=prompt, gold=reference or None)
    except Exception as exc:  # a verifier failure must not lose the run
        return Grade("unverifiable", None, f"verifier failed: {type(exc).__name__}: {exc}")
    checked = result.to_json()
    wrong = sum(1 for c in checked["claims"] if c["verdict"] == "wrong")
    detail = str(result.verdict) + (f"; {wrong} wrong step{'s' * (wrong != 1)}" if wrong else "")
    return Grade(result.final, result.answer, detail, list(checked["claims"]))


def _json(text: str, schema: dict[str, Any]) -> Grade:
    from jsonschema import Draft202012Validator

    fenced = _FENCE.search(text)
    body = (fenced.group(1) if fenced else text).strip()
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        return Grade("incorrect", body[:200], f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    errors = sorted(Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "the value"
        return Grade("incorrect", body[:200], f"schema: {where}: {errors[0].message}")
    return Grade("correct", body[:200])
