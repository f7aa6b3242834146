"""The OpenAI chat-completions wire format: request validation and response shapes, no I/O.

Incoming JSON is validated by pydantic models (unknown fields are refused, like the OpenAI
API does) and translated into the backend contract's :class:`ChatRequest`. Everything that
goes back out (chunks, completions, error bodies) is built by pure functions here so the
exact bytes can be tested without a server.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from backends.base import ChatRequest, Message, SamplingOptions, ToolCall, ToolSpec


class RequestProblem(Exception):
    """Raised when a request is refused before generation; becomes an OpenAI error body."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        param: str | None = None,
        code: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param
        self.code = code
        self.type = type_


def error_body(message: str, *, type_: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


# --- request models -------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class FunctionCallIn(_Strict):
    name: str
    arguments: str
    """A JSON object serialised as a string, as OpenAI sends it."""


class ToolCallIn(_Strict):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallIn


class ChatMessageIn(_Strict):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    """Text only: images and audio parts are refused with a message saying so."""
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None
    # Assistant turns echoed back by clients may carry these; they are not fed to the model.
    reasoning: str | None = None
    reasoning_content: str | None = None
    refusal: str | None = None

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


class FunctionDef(_Strict):
    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None


class ToolIn(_Strict):
    type: Literal["function"]
    function: FunctionDef


class _FunctionName(_Strict):
    name: str


class NamedToolChoice(_Strict):
    type: Literal["function"]
    function: _FunctionName


class StreamOptions(_Strict):
    include_usage: bool = False
    include_obfuscation: bool | None = None  # sent by newer openai clients; nothing to obfuscate here


class ChatCompletionRequest(_Strict):
    model: str
    messages: list[ChatMessageIn] = Field(min_length=1)
    stream: bool = False
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
    n: int = Field(1, ge=1, le=1, description="Only one choice per request is generated.")
    user: str | None = None

    @model_validator(mode="after")
    def _stream_options_need_stream(self) -> ChatCompletionRequest:
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options can only be set when stream is true")
        return self


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; public deployments lower these."""

    max_prompt_chars: int = 32_000
    max_tokens_cap: int = 4096
    default_max_tokens: int = 512


_TYPE_TAGS = {"str", "int", "float", "bool", "dict", "list", "none"}


def _is_union_tag(part: str) -> bool:
    """pydantic puts the union member it tried into loc ("str", "literal[...]", "NamedToolChoice")."""
    return part in _TYPE_TAGS or part[:1].isupper() or "[" in part or part.startswith("function-")


def _param_of(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _is_union_tag(part):
            out += f".{part}" if out else part
    return out


def problem_from_validation(exc: ValidationError) -> RequestProblem:
    first = exc.errors(include_url=False)[0]
    param = _param_of(tuple(first["loc"]))
    message = first["msg"].removeprefix("Value error, ")
    return RequestProblem(f"{param}: {message}" if param else message, param=param or None)


def parse_request(body: bytes) -> ChatCompletionRequest:
    try:
        raw = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestProblem(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise RequestProblem("the request body must be a JSON object")
    try:
        return ChatCompletionRequest.model_validate(raw)
    except ValidationError as exc:
        raise problem_from_validation(exc) from None


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


def to_chat_request(req: ChatCompletionRequest, limits: Limits) -> ChatRequest:
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
    tools = [ToolSpec(**t.function.model_dump(exclude={"strict"})) for t in req.tools or []]
    if isinstance(req.tool_choice, NamedToolChoice):
        tool_choice = req.tool_choice.function.name
    else:
        tool_choice = req.tool_choice or "auto"
    if tool_choice == "required" and not tools:
        raise RequestProblem('tool_choice "required" needs at least one tool', param="tool_choice")
    option_values: dict[str, Any] = {
        "max_new_tokens": max_tokens or min(limits.default_max_tokens, limits.max_tokens_cap),
        "stop": tuple(stops),
        "seed": req.seed,
    }
    if req.temperature is not None:
        option_values["temperature"] = req.temperature
    if req.top_p is not None:
        option_values["top_p"] = req.top_p
    if req.top_k is not None:
        option_values["top_k"] = max(req.top_k, 0)
    try:
        options = SamplingOptions(**option_values)
        return ChatRequest(
            messages=tuple(messages), options=options, tools=tuple(tools), tool_choice=tool_choice
        )
    except ValidationError as exc:
        problem = problem_from_validation(exc)
        renamed = {"max_new_tokens": "max_tokens", "tool_choice": "tool_choice", "stop": "stop"}
        if problem.param:
            head = problem.param.split(".")[-1].split("[")[0]
            problem.param = renamed.get(head, problem.param)
        raise problem from None


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


@dataclass
class ChunkWriter:
    """Builds the chat.completion.chunk objects of one streamed completion, in order."""

    completion_id: str
    model: str
    created: int

    def chunk(self, delta: dict, finish_reason: str | None = None) -> dict:
        return {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }

    def role(self) -> dict:
        return self.chunk({"role": "assistant", "content": ""})

    def text(self, text: str) -> dict:
        return self.chunk({"content": text})

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
                "logprobs": None,
                "finish_reason": openai_finish_reason(finish_reason),
            }
        ],
        "usage": usage_json(prompt_tokens, completion_tokens),
    }
