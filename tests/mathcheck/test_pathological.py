"""Pathological input returns within the wall limit through the public API, from any thread."""

from __future__ import annotations

import threading
import time

import pytest

from mathcheck import verify_response, warm_up
from mathcheck.sandbox import shutdown, wall_limit

BUDGET_S = 1.5
SLACK_S = 0.5
"""Pipes and pickling around the worker's own limit."""


@pytest.fixture(scope="module", autouse=True)
def _workers() -> object:
    warm_up()
    yield
    shutdown()


FRAC_BOMB = "\\frac{" * 300 + "1" + "}{2}" * 300
CASES = {
    "power tower answer": (r"So the answer is $\boxed{9^{9^{9^{9}}}}$.", "9^{9^{9^{9}}}"),
    "power tower claims": ("Then 9^9^9 = 5 and 2^2^2^2^2^2 = 4. " * 20 + "The answer is 5.", "5"),
    "10000!": ("We get 10000! = 5, so the answer is \\boxed{10000!}", "10000!"),
    "(10^100)!": ("The answer is $\\boxed{(10^{100})!}$", "5"),
    "exponent of a million": ("The answer is $\\boxed{2^{10^{6}}}$", "2^{1000000}"),
    "1 MB of working": ("1 + 1 = 2. " * 95_000 + "Final answer: 2", "2"),
    "1 MB box": ("\\boxed{" + "1+" * 500_000 + "1}", "2"),
    "fraction bomb": (f"The answer is $\\boxed{{{FRAC_BOMB}}}$", FRAC_BOMB),
    "brace bomb": ("\\boxed{" + "{" * 100_000 + "}" * 100_000 + "}", "1"),
    "nested roots": ("Final answer: $" + "\\sqrt{" * 500 + "2" + "}" * 500 + "$", "2"),
    "huge matrix": (
        "\\boxed{\\begin{pmatrix}" + "\\\\".join("&".join(["1"] * 80) for _ in range(80)) + "\\end{pmatrix}}",
        "1",
    ),
    "huge interval bound": ("The answer is $\\boxed{[1, 10^{10^{10}})}$", "[1,2)"),
    "5000-digit number": ("The answer is " + "9" * 5000, "9" * 5000),
}


READABLE = {"power tower claims", "1 MB of working"}
"""Only these have a final answer that can be read; the rest are unverifiable, with the reason."""


@pytest.mark.parametrize("name", list(CASES))
def test_pathological_input_returns_within_the_budget(name: str) -> None:
    response, gold = CASES[name]
    start = time.monotonic()
    result = verify_response(response, gold=gold, budget_s=BUDGET_S)
    assert time.monotonic() - start < wall_limit(BUDGET_S) + SLACK_S, name
    assert result.final == ("correct" if name in READABLE else "unverifiable"), result.notes
    assert result.notes or name in READABLE
    assert not result.wrong_claims  # refused sizes are "unchecked", never a false "wrong"


def test_pathological_input_from_a_thread_keeps_the_budget() -> None:
    box: dict[str, float] = {}

    def call() -> None:
        start = time.monotonic()
        verify_response(
            CASES["fraction bomb"][0] + " " + CASES["power tower claims"][0], gold="1", budget_s=BUDGET_S
        )
        box["elapsed"] = time.monotonic() - start

    thread = threading.Thread(target=call)
    thread.start()
    thread.join(10)
    assert box["elapsed"] < wall_limit(BUDGET_S) + SLACK_S
