"""app/server.launch's patience with its own page: Gradio asks once whether localhost answers
(3 s timeout) and refuses to start when not, which a loaded 2-core machine hit in a full run."""

from __future__ import annotations

from app.server import patient


def test_a_page_that_answers_late_is_waited_for() -> None:
    answers = iter([False, False, True])
    asked: list[str] = []

    def check(url: str) -> bool:
        asked.append(url)
        return next(answers)

    assert patient(check, patience_s=5.0, wait_s=0.0)("http://127.0.0.1:7860/")
    assert asked == ["http://127.0.0.1:7860/"] * 3


def test_a_page_that_never_answers_still_fails_once_the_patience_is_spent() -> None:
    calls = []

    def check(url: str) -> bool:
        calls.append(url)
        return False

    assert not patient(check, patience_s=0.05, wait_s=0.01)("http://127.0.0.1:7860/")
    assert len(calls) >= 2
