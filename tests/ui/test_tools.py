"""Built-in tools: exact arithmetic through a whitelist, validated arguments, refusals."""

from __future__ import annotations

import pytest

from app.tools import BUILTIN_TOOLS, ToolArgumentError, evaluate_expression, run_tool_call, tool_specs
from backends.base import ToolCall


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
    ],
)
def test_calculator_answers_the_seed_problems(expression: str, shown: str) -> None:
    assert shown in calc(expression)


def test_results_are_exact() -> None:
    assert evaluate_expression("0.1 + 0.2") == evaluate_expression("3/10")


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
    with pytest.raises(ToolArgumentError):
        evaluate_expression("1 +")
    assert [s.name for s in tool_specs()] == ["calculator", "calculate_circle_area"]
