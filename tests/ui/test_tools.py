"""Built-in tools: exact arithmetic through mathcheck's one whitelist, in the sympy worker under a
time budget, validated arguments, refusals."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from app.tools import BUILTIN_TOOLS, run_tool, run_tool_call, tool_specs
from backends.base import ToolCall
from mathcheck import CalculationError, calculate
from mathcheck.calculator import calculate_inprocess, evaluate


def calc(expression: str) -> str:
    outcome = run_tool_call(ToolCall(id="c1", name="calculator", arguments={"expression": expression}))
    assert outcome.ok, outcome.output
    return outcome.output


@pytest.mark.parametrize(
    ("expression", "shown"),
    [
        ("5000*(1+0.06)**3", "5955.08"),
        ("240/(240/3+20)", "2.4"),
        ("(1.2*1.2-1)*100", "44"),
        ("60*2.5 + 80*1.5", "270"),
        ("2^10", "1024"),
        ("sqrt(16) + factorial(4)", "28"),
        ("4! + 15% * 80", "36"),
        ("round(2.5) + floor(-0.5) + ceil(0.2)", "3"),
        ("\\frac{3}{4} \\times 8", "6"),  # the LaTeX a model writes, too
    ],
)
def test_calculator_answers_the_seed_problems(expression: str, shown: str) -> None:
    assert shown in calc(expression)


def test_results_are_exact() -> None:
    assert evaluate("0.1 + 0.2") == evaluate("3/10")
    assert calc("0.1 + 0.2") == "3/10 ≈ 0.3"


def test_circle_area_matches_the_seed_tool() -> None:
    outcome = run_tool_call(ToolCall(id="a", name="calculate_circle_area", arguments={"radius": 5}))
    assert outcome.ok
    assert outcome.output.startswith("25*pi")
    assert "78.5398" in outcome.output
    spec = BUILTIN_TOOLS["calculate_circle_area"].spec
    assert spec.parameters["required"] == ["radius"]


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('true')",
        "open('/etc/passwd')",
        "x + 1",
        "(lambda: 1)()",
        "[1, 2][0]",
        "sqrt(x=4)",
        "10**100000",
        "(10**1000)**1000",
        "1/0",
        "'a' * 3",
        "",
        "1" * 300,
    ],
)
def test_calculator_refuses_anything_outside_the_whitelist(expression: str) -> None:
    outcome = run_tool_call(ToolCall(id="c", name="calculator", arguments={"expression": expression}))
    assert not outcome.ok
    assert outcome.output


@pytest.mark.parametrize(
    ("name", "arguments", "reason"),
    [
        ("calculate_circle_area", {"radius": "five"}, "valid number"),
        ("calculate_circle_area", {"radius": -1}, "greater than or equal"),
        ("calculate_circle_area", {"r": 2}, "radius"),
        ("calculator", {"expression": 4}, "string"),
        ("rm_rf", {}, "unknown tool"),
    ],
)
def test_bad_calls_are_refused_with_the_reason(name: str, arguments: dict, reason: str) -> None:
    outcome = run_tool_call(ToolCall(id="x", name=name, arguments=arguments))
    assert not outcome.ok
    assert reason in outcome.output


def test_error_type_is_a_value_error() -> None:
    with pytest.raises(CalculationError):
        evaluate("1 +")
    assert issubclass(CalculationError, ValueError)
    assert [s.name for s in tool_specs()] == ["calculator", "calculate_circle_area"]


def test_the_calculation_runs_in_the_worker_and_stops_at_its_budget() -> None:
    def limiter(seconds: float):  # what the worker's alarm does when the budget is spent
        from mathcheck.final import StepTimeout

        class Expired:
            def __enter__(self) -> None:
                raise StepTimeout

            def __exit__(self, *exc: object) -> None:
                return None

        return Expired()

    with pytest.raises(CalculationError, match="took too long"):
        calculate_inprocess("2+2", budget_s=0.5, limiter=limiter)
    assert calculate("2^10") == "1024"  # through the worker process
    slow = "(sqrt(2)+sqrt(3)+sqrt(5)+sqrt(7))^30"  # ~0.5 s of sympy.simplify on one core
    with pytest.raises(CalculationError, match=r"too long|stopped"):
        calculate(slow, budget_s=0.2)
    assert calculate("6*7") == "42"  # the worker is still (or again) there
    with pytest.raises(CalculationError, match="numbers only"):
        calculate("x + 1")


async def test_run_tool_keeps_the_event_loop_free(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[int] = []
    tool = BUILTIN_TOOLS["calculator"]

    def spy(args: object) -> str:
        threads.append(threading.get_ident())
        return tool.run(args)

    monkeypatch.setitem(BUILTIN_TOOLS, "calculator", dataclasses.replace(tool, run=spy))
    outcome = await run_tool(ToolCall(id="c", name="calculator", arguments={"expression": "6*7"}))
    assert outcome.ok and outcome.output == "42"
    assert threads and threads[0] != threading.get_ident()  # not the event loop's thread
