"""The OpenAI chat-completions wire format: request validation and response shapes, no I/O.

Incoming JSON (checked by serve.params first) is validated by pydantic models (unknown
top-level fields are refused, like the OpenAI API does; inside messages they are ignored, as
OpenAI does) and translated into the backend contract's :class:`ChatRequest`. Everything that
goes back out (chunks, completions, error bodies) is built by pure functions here so the
exact bytes can be tested without a server.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from backends.base import ChatRequest, Message, SamplingOptions, TokenLogprob, ToolCall, ToolSpec
from serve.errors import RequestProblem, error_body
from serve.params import (
    CHAT_DEFAULTS,
    Lenient,
    Strict,
    load_body,
    problem_from_validation,
    refuse_unsupported,
)

__all__ = ["RequestLimits", "RequestProblem", "error_body", "parse_request", "to_chat_request"]


# --- request models -------------------------------------------------------------------------


class TextPart(Lenient):
    type: Literal["text"]
    text: str


class FunctionCallIn(Lenient):
    name: str
    arguments: str
    """A JSON object serialised as a string, as OpenAI sends it."""


class ToolCallIn(Lenient):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallIn


class ChatMessageIn(Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    """Text only: images and audio parts are refused with a message saying so."""
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _text_parts_only(cls, value: Any) -> Any:
        if isinstance(value, list):
            for part in value:
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                if kind != "text":
                    raise ValueError(f"only text content parts are supported here, not {kind!r}")
        return value

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


TOOL_NAME = r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$"


class FunctionDef(Strict):
    name: str = Field(pattern=TOOL_NAME)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolIn(Strict):
    type: Literal["function"]
    function: FunctionDef


class _FunctionName(Strict):
    name: str


class NamedToolChoice(Strict):
    type: Literal["function"]
    function: _FunctionName


class StreamOptions(Strict):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None  # sent by newer openai clients; nothing to obfuscate here
    continuous_usage_stats: bool | None = None  # vLLM's; usage comes once, at the end


class TextFormat(Strict):
    type: Literal["text"]


class JsonObjectFormat(Strict):
    type: Literal["json_object"]


class JsonSchemaSpec(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None
    """The answer always follows the schema here (constrained decoding), strict or not."""


class JsonSchemaFormat(Strict):
    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


ResponseFormat = Annotated[TextFormat | JsonObjectFormat | JsonSchemaFormat, Field(discriminator="type")]


class ChatCompletionRequest(Strict):
    model: str
    messages: list[ChatMessageIn] = Field(min_length=1)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=-1, le=1000)
    """vLLM extension; -1 or 0 disables it."""
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    stop: str | list[str] | None = None
    tools: list[ToolIn] | None = None
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    user: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ChatCompletionRequest:
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options can only be set when stream is true")
        return self

    def check(self) -> ChatCompletionRequest:
        """Rules across fields, each refused with the parameter it is about."""
        if self.tools is not None and not self.tools:
            raise RequestProblem(
                "tools: [] offers no tools; give at least one, or leave tools out", param="tools"
            )
        if self.tool_choice not in (None, "none") and not self.tools:
            raise RequestProblem(
                "tool_choice needs tools: offer at least one tool, or leave tool_choice out",
                param="tool_choice",
            )
        names = [t.function.name for t in self.tools or ()]
        if len(set(names)) < len(names):
            raise RequestProblem("tools: two tools have the same name", param="tools")
        if self.top_logprobs and not self.logprobs:
            raise RequestProblem("top_logprobs needs logprobs: true", param="top_logprobs")
        return self


@dataclass(frozen=True)
class RequestLimits:
    """What one request may ask for; public deployments lower these."""

    max_prompt_chars: int = 32_000
    max_tokens_cap: int = 4096
    default_max_tokens: int = 512


def parse_request(body: bytes, content_type: str | None = None) -> ChatCompletionRequest:
    raw = refuse_unsupported(load_body(body, content_type), CHAT_DEFAULTS)
    try:
        return ChatCompletionRequest.model_validate(raw).check()
    except ValidationError as exc:
        raise problem_from_validation(exc) from None


def json_options(response_format: TextFormat | JsonObjectFormat | JsonSchemaFormat | None) -> dict[str, Any]:
    """response_format as the contract's JSON output settings."""
    if isinstance(response_format, JsonObjectFormat):
        return {"json_output": True}
    if isinstance(response_format, JsonSchemaFormat):
        return {"json_output": True, "json_schema": response_format.json_schema.schema_}
    return {}


def _messages(incoming: list[ChatMessageIn]) -> list[Message]:
    names_by_call: dict[str, str] = {}
    out: list[Message] = []
    for i, msg in enumerate(incoming):
        calls: list[ToolCall] = []
        for j, call in enumerate(msg.tool_calls or ()):
            try:
                arguments = json.loads(call.function.arguments or "{}")
            except json.JSONDecodeError:
                arguments = None
            if not isinstance(arguments, dict):
                raise RequestProblem(
                    "tool call arguments must be a JSON object serialised as a string",
                    param=f"messages[{i}].tool_calls[{j}].function.arguments",
                )
            calls.append(ToolCall(id=call.id, name=call.function.name, arguments=arguments))
            names_by_call[call.id] = call.function.name
        role = "system" if msg.role == "developer" else msg.role
        if role == "tool" and not msg.tool_call_id:
            raise RequestProblem("a tool message needs tool_call_id", param=f"messages[{i}].tool_call_id")
        name = msg.name or (names_by_call.get(msg.tool_call_id or "") if role == "tool" else None)
        out.append(
            Message(
                role=role,
                content=msg.text(),
                tool_calls=tuple(calls),
                tool_call_id=msg.tool_call_id if role == "tool" else None,
                name=name if role == "tool" else None,
            )
        )
    return out


def to_chat_request(req: ChatCompletionRequest, limits: RequestLimits) -> ChatRequest:
    """Translate a validated OpenAI request into the backend contract, enforcing the limits."""
    messages = _messages(req.messages)
    chars = sum(len(m.content) for m in messages)
    if chars > limits.max_prompt_chars:
        raise RequestProblem(
            f"the messages hold {chars} characters; this server accepts at most {limits.max_prompt_chars}",
            param="messages",
            code="context_length_exceeded",
        )
    both = req.max_tokens is not None and req.max_completion_tokens is not None
    if both and req.max_tokens != req.max_completion_tokens:
        raise RequestProblem("set max_tokens or max_completion_tokens, not both", param="max_tokens")
    max_tokens = req.max_completion_tokens or req.max_tokens
    if max_tokens is not None and max_tokens > limits.max_tokens_cap:
        raise RequestProblem(
            f"max_tokens={max_tokens} cannot be greater than this server's cap of {limits.max_tokens_cap}",
            param="max_tokens",
        )
    stops = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    if isinstance(req.tool_choice, NamedToolChoice):
        tool_choice = req.tool_choice.function.name
    else:
        tool_choice = req.tool_choice or "auto"
    option_values: dict[str, Any] = {
        "max_new_tokens": max_tokens or min(limits.default_max_tokens, limits.max_tokens_cap),
        "stop": tuple(stops),
        "seed": req.seed,
        **json_options(req.response_format),
    }
    if req.temperature is not None:
        option_values["temperature"] = req.temperature
    if req.top_p is not None:
        option_values["top_p"] = req.top_p
    if req.top_k is not None:
        option_values["top_k"] = max(req.top_k, 0)
    try:
        tools = [_tool_spec(t.function) for t in req.tools or []]
        options = SamplingOptions(**option_values)
        return ChatRequest(
            messages=tuple(messages),
            options=options,
            tools=tuple(tools),
            tool_choice=tool_choice,
            logprobs=(req.top_logprobs or 0) if req.logprobs else None,
        )
    except ValidationError as exc:
        problem = problem_from_validation(exc)
        renamed = {
            "max_new_tokens": "max_tokens",
            "tool_choice": "tool_choice",
            "stop": "stop",
            "json_schema": "response_format",
        }
        if problem.param:
            head = problem.param.split(".")[-1].split("[")[0]
            problem.param = renamed.get(head, problem.param)
        raise problem from None


def _tool_spec(function: FunctionDef) -> ToolSpec:
    values = function.model_dump(exclude={"strict"}, exclude_none=True)
    return ToolSpec(**values)


# --- response shapes ----------------------------------------------------------------------------

OPENAI_FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls"}


def openai_finish_reason(reason: str) -> str:
    """The contract's cancelled/error have no OpenAI spelling; the client sees a plain stop."""
    return OPENAI_FINISH.get(reason, "stop")


def new_completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def tool_call_json(call: ToolCall, index: int | None = None) -> dict:
    out: dict[str, Any] = {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)},
    }
    if index is not None:
        out = {"index": index, **out}
    return out


def usage_json(prompt_tokens: int | None, completion_tokens: int | None) -> dict:
    prompt, completion = prompt_tokens or 0, completion_tokens or 0
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


LOGPROB_FLOOR = -9999.0
"""OpenAI's stand-in for an impossible token (JSON has no -Infinity)."""


def _logprob_item(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": max(logprob, LOGPROB_FLOOR), "bytes": list(token.encode("utf-8"))}


def chat_logprobs(entries: Sequence[TokenLogprob]) -> dict[str, Any]:
    """The chat ``logprobs`` object: one item per token, with its alternatives."""
    content = [
        {**_logprob_item(e.token, e.logprob), "top_logprobs": [_logprob_item(t, lp) for t, lp in e.top]}
        for e in entries
    ]
    return {"content": content, "refusal": None}


@dataclass
class ChunkWriter:
    """Builds the chat.completion.chunk objects of one streamed completion, in order."""

    completion_id: str
    model: str
    created: int

    def chunk(self, delta: dict, finish_reason: str | None = None, logprobs: dict | None = None) -> dict:
        return {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}],
        }

    def role(self) -> dict:
        return self.chunk({"role": "assistant", "content": ""})

    def text(self, text: str, logprobs: Sequence[TokenLogprob] | None = None) -> dict:
        return self.chunk({"content": text}, logprobs=None if logprobs is None else chat_logprobs(logprobs))

    def reasoning(self, text: str) -> dict:
        return self.chunk({"reasoning": text})

    def tool_call(self, call: ToolCall, index: int) -> dict:
        return self.chunk({"tool_calls": [tool_call_json(call, index)]})

    def finish(self, reason: str) -> dict:
        return self.chunk({}, openai_finish_reason(reason))

    def usage(self, prompt_tokens: int | None, completion_tokens: int | None) -> dict:
        return {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage_json(prompt_tokens, completion_tokens),
        }


def sse(data: dict | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"data: {payload}\n\n".encode()


SSE_DONE = sse("[DONE]")


def completion_json(
    *,
    completion_id: str,
    model: str,
    text: str,
    reasoning: str,
    tool_calls: list[ToolCall],
    finish_reason: str,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    logprobs: Sequence[TokenLogprob] | None = None,
) -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": text if (text or not tool_calls) else None}
    if reasoning:
        message["reasoning"] = reasoning
    if tool_calls:
        message["tool_calls"] = [tool_call_json(c) for c in tool_calls]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None if logprobs is None else chat_logprobs(logprobs),
                "finish_reason": openai_finish_reason(finish_reason),
            }
        ],
        "usage": usage_json(prompt_tokens, completion_tokens),
    }
