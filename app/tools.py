"""Built-in tools the model may call: an exact calculator and ``calculate_circle_area``.

Arguments come from a model, so they are untrusted text. Each tool validates its arguments with
a pydantic model first; the arithmetic is then mathcheck's (:func:`mathcheck.calculate`): its
one whitelisted parser (never ``eval`` or ``sympify``, sizes capped), run in the sympy worker
process under a time budget, so a slow simplification never stalls the app. A call that fails
validation or evaluation is reported back to the model and the user, never executed.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from backends.base import ToolCall, ToolSpec
from mathcheck.calculator import MAX_EXPRESSION_CHARS, CalculationError


class CalculatorArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expression: str = Field(min_length=1, max_length=MAX_EXPRESSION_CHARS)


class CircleAreaArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    radius: float = Field(ge=0, le=1e12)

    @field_validator("radius")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("radius must be a finite number")
        return value


def _calculator(args: CalculatorArgs) -> str:
    from mathcheck import calculate

    return calculate(args.expression)


def _circle_area(args: CircleAreaArgs) -> str:
    from mathcheck import calculate

    radius = format(Decimal(repr(args.radius)), "f")  # exact digits, no exponent (1e-05)
    return calculate(f"pi*({radius})^2")


@dataclass(frozen=True)
class Tool:
    spec: ToolSpec
    arguments: type[BaseModel]
    run: Callable[[Any], str]


BUILTIN_TOOLS: dict[str, Tool] = {
    "calculator": Tool(
        ToolSpec(
            name="calculator",
            description="Evaluate an arithmetic expression exactly, e.g. '5000*(1+0.06)**3' or 'sqrt(2)*pi'.",
            parameters={
                "type": "object",
                "properties": {
                    "expression": {
                        "type": "string",
                        "description": "Arithmetic: + - * / ^ ( ) 15% n! pi e sqrt ln log (base 10) sin",
                    }
                },
                "required": ["expression"],
            },
        ),
        CalculatorArgs,
        _calculator,
    ),
    "calculate_circle_area": Tool(
        ToolSpec(
            name="calculate_circle_area",
            description="Calculate the area of a circle given its radius",
            parameters={
                "type": "object",
                "properties": {"radius": {"type": "number", "description": "The radius of the circle"}},
                "required": ["radius"],
            },
        ),
        CircleAreaArgs,
        _circle_area,
    ),
}


def tool_specs() -> tuple[ToolSpec, ...]:
    return tuple(tool.spec for tool in BUILTIN_TOOLS.values())


@dataclass(frozen=True)
class ToolOutcome:
    call: ToolCall
    ok: bool
    output: str
    """The result, or why the call was refused; sent back to the model either way."""


def run_tool_call(call: ToolCall) -> ToolOutcome:
    """Validate and run one call. Never raises: a bad call becomes a refused outcome.
    Blocks up to the calculator's budget: on an event loop, await :func:`run_tool`."""
    tool = BUILTIN_TOOLS.get(call.name)
    if tool is None:
        known = ", ".join(BUILTIN_TOOLS)
        return ToolOutcome(call, False, f"unknown tool {call.name!r}; available: {known}")
    try:
        arguments = tool.arguments.model_validate(call.arguments)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors()
        )
        return ToolOutcome(call, False, f"invalid arguments {json.dumps(call.arguments)}: {problems}")
    try:
        return ToolOutcome(call, True, tool.run(arguments))
    except CalculationError as exc:
        return ToolOutcome(call, False, str(exc))


async def run_tool(call: ToolCall) -> ToolOutcome:
    """:func:`run_tool_call` off the event loop (the calculation waits on the sympy worker)."""
    return await asyncio.to_thread(run_tool_call, call)
