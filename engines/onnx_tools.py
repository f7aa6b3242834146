"""Tool calling and JSON output for the in-process model: prompt text, constrained decoding,
output parsing.

tool_choice "required" or a named function: decoding is constrained with onnxruntime-genai
guidance to a JSON schema (one of the offered functions with its parameter schema), so the
call is always valid JSON. "auto": the model may answer in prose or write
<tool_call>{...}</tool_call>; a call whose JSON does not parse stays visible as text and is
never executed.

JSON output (SamplingOptions.json_output, OpenAI's response_format): decoding is constrained
to the given schema, or to any JSON object, with the same guidance; a forced tool call takes
precedence, since then the answer is the call.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from backends.base import ChatRequest, SamplingOptions, ToolCall, ToolSpec
from backends.errors import InvalidRequest

OPEN, CLOSE = "<tool_call>", "</tool_call>"


def tools_system_text(tools: Sequence[ToolSpec], tool_choice: str) -> str:
    listing = json.dumps([t.openai_schema()["function"] for t in tools])
    if tool_choice == "auto":
        how = (
            f'If a function helps, reply with {OPEN}{{"name": ..., "arguments": {{...}}}}{CLOSE} '
            "and nothing else; otherwise answer normally."
        )
    elif tool_choice == "required":
        how = 'Reply with one JSON object {"name": ..., "arguments": {...}} calling one of them.'
    else:
        how = f'Reply with one JSON object {{"name": "{tool_choice}", "arguments": {{...}}}}.'
    return f"You can call these functions: {listing}\n{how}"


def _call_schema(tool: ToolSpec) -> dict[str, Any]:
    # A small model given an open schema keeps inventing keys; closed objects end the call.
    arguments = {"additionalProperties": False, **tool.parameters}
    return {
        "type": "object",
        "properties": {"name": {"const": tool.name}, "arguments": arguments},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def tool_guidance(tools: Sequence[ToolSpec], tool_choice: str) -> tuple[str, str] | None:
    """(guidance type, data) for GeneratorParams.set_guidance, or None for free text."""
    if tool_choice in ("auto", "none") or not tools:
        return None
    chosen = [t for t in tools if tool_choice == "required" or t.name == tool_choice]
    schema = _call_schema(chosen[0]) if len(chosen) == 1 else {"anyOf": [_call_schema(t) for t in chosen]}
    return "json_schema", json.dumps(schema)


ANY_OBJECT: dict[str, Any] = {"type": "object"}
MAX_SCHEMA_DEPTH = 64
"""JSON levels a schema may nest; deeper ones are refused before anything recurses over them."""
_COMBINATORS = ("allOf", "anyOf", "oneOf")


class SchemaError(InvalidRequest):
    """A schema no answer can follow (the client's mistake, told before generating)."""


def schema_problem(schema: Any) -> str | None:
    """What makes ``schema`` unusable for guidance that the grammar builder would not say:
    too deep, a $ref outside the document, or a $ref loop (llguidance compiles a loop into a
    grammar that matches nothing, and the answer would be empty)."""
    if schema is False or not isinstance(schema, dict | bool):
        return "the schema accepts no value" if schema is False else "a JSON schema must be an object"
    nodes: dict[str, dict[str, Any]] = {}
    stack: list[tuple[Any, str, int]] = [(schema, "", 0)]
    while stack:
        node, pointer, depth = stack.pop()
        if depth > MAX_SCHEMA_DEPTH:
            return f"the schema is nested more than {MAX_SCHEMA_DEPTH} levels deep"
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        if isinstance(node, dict):
            nodes[pointer] = node
        for key, value in items:
            key_text = str(key).replace("~", "~0").replace("/", "~1")
            stack.append((value, f"{pointer}/{key_text}", depth + 1))
    for pointer, node in nodes.items():
        ref = node.get("$ref")
        if ref is not None and not (isinstance(ref, str) and ref.startswith("#")):
            return f"$ref {ref!r} at '#{pointer}': only references inside the schema (#/...) are supported"
    productive = {p for p, n in nodes.items() if "$ref" not in n and not any(k in n for k in _COMBINATORS)}
    changed = True
    while changed:  # a fixed point: which nodes describe at least one value
        changed = False
        for pointer, node in nodes.items():
            if pointer not in productive and _produces(pointer, node, productive, nodes):
                productive.add(pointer)
                changed = True
    for pointer in nodes:
        if pointer not in productive:
            return f"the $ref at '#{pointer}' loops back to itself without describing any value"
    return None


def _produces(pointer: str, node: dict[str, Any], productive: set[str], nodes: dict[str, Any]) -> bool:
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = ref[1:]
        if target in nodes and target not in productive:
            return False  # (a missing target is the grammar builder's to report)
    for key in _COMBINATORS:
        members = node.get(key)
        if not isinstance(members, list) or not members:
            continue
        ok = [f"{pointer}/{key}/{i}" in productive for i in range(len(members))]
        if not (all(ok) if key == "allOf" else any(ok)):
            return False
    return True


def _checked(schema: Any, what: str) -> Any:
    if (problem := schema_problem(schema)) is not None:
        raise SchemaError("guidance", f"{what}: {problem}", hint="fix the JSON schema")
    return schema


def json_guidance(options: SamplingOptions) -> tuple[str, str] | None:
    """(guidance type, data) constraining the answer to JSON, or None when json_output is off."""
    if not options.json_output:
        return None
    schema = ANY_OBJECT if options.json_schema is None else _checked(options.json_schema, "response_format")
    return "json_schema", json.dumps(schema)


def request_guidance(request: ChatRequest) -> tuple[str, str] | None:
    """The one constraint a request decodes under: a forced tool call, else JSON output.
    Raises SchemaError for a schema no answer could follow."""
    forced = tool_guidance(request.tools, request.tool_choice)  # None for "auto", "none", no tools
    if forced is not None:
        for tool in request.tools:
            _checked(tool.parameters, f"tool {tool.name!r} parameters")
        return forced
    return json_guidance(request.options)


def is_grammar_error(error: Exception) -> bool:
    """A SchemaError, or onnxruntime-genai's words when llguidance refuses a schema."""
    return isinstance(error, SchemaError) or "Error creating grammar" in str(error)


class ToolCallParser:
    """Separates tool calls from the text stream (pure: fed decoded pieces, no I/O)."""

    def __init__(self, tools: Sequence[ToolSpec], tool_choice: str) -> None:
        self.names = {t.name for t in tools}
        self.whole_json = tool_choice not in ("auto", "none")
        self._buffer = ""
        self._in_call = False
        self._calls: list[ToolCall] = []

    def feed(self, piece: str) -> str:
        """Return the text to show; tool-call text is held until it can be parsed."""
        if self.whole_json:
            self._buffer += piece
            return ""
        self._buffer += piece
        shown = ""
        while True:
            if not self._in_call:
                at = self._buffer.find(OPEN)
                if at < 0:
                    keep = _partial_suffix(self._buffer, OPEN)
                    shown += self._buffer[: len(self._buffer) - keep]
                    self._buffer = self._buffer[len(self._buffer) - keep :]
                    return shown
                shown += self._buffer[:at]
                self._buffer = self._buffer[at + len(OPEN) :]
                self._in_call = True
            end = self._buffer.find(CLOSE)
            if end < 0:
                return shown
            body, self._buffer = self._buffer[:end], self._buffer[end + len(CLOSE) :]
            self._in_call = False
            if not self._parse(body):
                shown += OPEN + body + CLOSE

    def flush(self) -> str:
        body, self._buffer = self._buffer, ""
        if self.whole_json or self._in_call:
            self._in_call = False
            if self._parse(body):
                return ""
            return body if self.whole_json else OPEN + body
        return body

    def calls(self) -> list[ToolCall]:
        return list(self._calls)

    def _parse(self, body: str) -> bool:
        try:
            data = json.loads(body.strip())
        except ValueError:
            return False
        items = data if isinstance(data, list) else [data]
        parsed = []
        for item in items:
            if not (
                isinstance(item, dict)
                and item.get("name") in self.names
                and isinstance(item.get("arguments", {}), dict)
            ):
                return False
            parsed.append(
                ToolCall(
                    id=f"call_{uuid.uuid4().hex[:12]}", name=item["name"], arguments=item.get("arguments", {})
                )
            )
        self._calls.extend(parsed)
        return bool(parsed)


def _partial_suffix(text: str, marker: str) -> int:
    for n in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:n]):
            return n
    return 0
