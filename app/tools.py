"""Built-in tools the model may call: a sympy-backed calculator and ``calculate_circle_area``.

Arguments come from a model, so they are untrusted text. Each tool validates its arguments with
a pydantic model first; the calculator then parses the expression with :mod:`ast` against a
whitelist (numbers, + - * / // % ** ^, parentheses, pi/e, a few functions) and builds the sympy
expression node by node. Nothing is ever passed to ``eval`` or ``sympify``. A call that fails
validation is reported back to the model and the user, never executed.
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sympy
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from backends.base import ToolCall, ToolSpec

MAX_EXPRESSION_CHARS = 200
MAX_EXPONENT = 1000
MAX_FACTORIAL = 500
MAX_DEPTH = 30
MAX_RESULT_DIGITS = 10_000


class ToolArgumentError(ValueError):
    """Raised when a tool call's arguments are invalid or the expression is not allowed."""


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: sympy.floor(a / b),
    ast.Mod: lambda a, b: sympy.Mod(a, b),
    ast.Pow: lambda a, b: a**b,
    ast.BitXor: lambda a, b: a**b,  # "2^3" as people (and models) write it
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": sympy.sqrt,
    "abs": sympy.Abs,
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "asin": sympy.asin,
    "acos": sympy.acos,
    "atan": sympy.atan,
    "exp": sympy.exp,
    "log": sympy.log,
    "ln": sympy.log,
    "floor": sympy.floor,
    "ceil": sympy.ceiling,
    "round": lambda x, n=0: sympy.Float(round(float(x), int(n))),
    "factorial": sympy.factorial,
}
_NAMES = {"pi": sympy.pi, "e": sympy.E}


def _build(node: ast.AST, depth: int = 0) -> sympy.Expr:
    if depth > MAX_DEPTH:
        raise ToolArgumentError("expression is nested too deeply")
    if isinstance(node, ast.Expression):
        return _build(node.body, depth + 1)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        if isinstance(node.value, float) and not math.isfinite(node.value):
            raise ToolArgumentError("numbers must be finite")
        return sympy.Rational(str(node.value))  # exact: 0.06 stays 6/100
    if isinstance(node, ast.Name) and node.id in _NAMES:
        return _NAMES[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _build(node.operand, depth + 1)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _build(node.left, depth + 1), _build(node.right, depth + 1)
        if isinstance(node.op, ast.Pow | ast.BitXor) and (
            not right.is_number or abs(sympy.N(right)) > MAX_EXPONENT
        ):
            raise ToolArgumentError(f"exponents are limited to ±{MAX_EXPONENT}")
        if isinstance(node.op, ast.Pow | ast.BitXor) and left.is_number and left != 0:
            digits = abs(float(sympy.log(abs(sympy.N(left)), 10))) * abs(float(sympy.N(right)))
            if digits > MAX_RESULT_DIGITS:
                raise ToolArgumentError(f"the result would have more than {MAX_RESULT_DIGITS} digits")
        if isinstance(node.op, ast.Div | ast.FloorDiv | ast.Mod) and right == 0:
            raise ToolArgumentError("division by zero")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
        if node.keywords or not 1 <= len(node.args) <= 2:
            raise ToolArgumentError(f"{node.func.id}() takes one or two positional arguments")
        args = [_build(a, depth + 1) for a in node.args]
        if node.func.id == "factorial" and (not args[0].is_integer or abs(args[0]) > MAX_FACTORIAL):
            raise ToolArgumentError(f"factorial() takes an integer up to {MAX_FACTORIAL}")
        return _FUNCTIONS[node.func.id](*args)
    shown = ast.unparse(node) if isinstance(node, ast.expr) else type(node).__name__
    raise ToolArgumentError(f"not allowed in an expression: {shown!r}")


def evaluate_expression(expression: str) -> sympy.Expr:
    """Parse a whitelisted arithmetic expression into an exact sympy expression."""
    text = expression.strip().replace("×", "*").replace("÷", "/")
    if not text:
        raise ToolArgumentError("the expression is empty")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ToolArgumentError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise ToolArgumentError(f"cannot parse {text!r} as arithmetic") from None
    return sympy.simplify(_build(tree))


def format_value(value: sympy.Expr) -> str:
    """Exact form, plus a decimal when the exact form is not already one."""
    if value.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        raise ToolArgumentError("the result is not a finite number")
    if value.is_Integer:
        return str(value)
    decimal = sympy.N(value, 12)
    if not decimal.is_number:
        raise ToolArgumentError("the result is not a number")
    shown = f"{float(decimal):.10g}" if decimal.is_real else str(decimal)
    return shown if value.is_Float else f"{value} ≈ {shown}"


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
    return format_value(evaluate_expression(args.expression))


def _circle_area(args: CircleAreaArgs) -> str:
    radius = sympy.Rational(str(args.radius))
    return format_value(sympy.pi * radius**2)


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
                    "expression": {"type": "string", "description": "Arithmetic: + - * / ** ( ) pi e sqrt"}
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
    """Validate and run one call. Never raises: a bad call becomes a refused outcome."""
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
    except ToolArgumentError as exc:
        return ToolOutcome(call, False, str(exc))
