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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from backends.base import ChatRequest, Message, SamplingOptions, TokenLogprob, ToolCall, ToolSpec


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


# --- the body: JSON, sane depth, valid text -------------------------------------------------

MAX_DEPTH = 48
"""Nesting a request may have (messages, tool schemas, response schemas): deeper is refused
before anything recurses over it."""


def _loc(path: tuple[int | str, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def check_values(raw: Any) -> None:
    """Refuse JSON nested deeper than MAX_DEPTH and text that is not valid Unicode (a lone
    surrogate such as \\ud800 parses as JSON but cannot be encoded), naming where."""
    stack: list[tuple[Any, tuple[int | str, ...]]] = [(raw, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > MAX_DEPTH:
            raise RequestProblem(
                f"{_loc(path[:3])}: nested more than {MAX_DEPTH} levels deep", param=_loc(path[:1])
            )
        if isinstance(value, str):
            _check_text(value, path)
        elif isinstance(value, dict):
            for key, item in value.items():
                _check_text(key, path)
                stack.append((item, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, (*path, i)) for i, item in enumerate(value))


def _check_text(text: str, path: tuple[int | str, ...]) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        where = _loc(path) or "the request"
        raise RequestProblem(
            f"{where}: not valid Unicode text ({exc.reason} at character {exc.start})",
            param=_loc(path) or None,
        ) from None


def load_body(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The JSON object a request sent, or a RequestProblem (415 for another content type)."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        raise RequestProblem(
            f"Content-Type {media!r} is not supported: send the body as application/json",
            status=415,
            code="unsupported_media_type",
        )
    try:
        raw = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestProblem(f"the request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise RequestProblem(f"the request body is nested more than {MAX_DEPTH} levels deep") from None
    if not isinstance(raw, dict):
        raise RequestProblem("the request body must be a JSON object")
    check_values(raw)
    return raw


NOTHING = object()
"""Marks a parameter that is accepted whatever its value (it changes nothing here)."""


def refuse_unsupported(raw: dict[str, Any], accepted: dict[str, tuple[Any, ...]]) -> dict[str, Any]:
    """Drop the parameters this server does not implement when they ask for nothing (their
    defaults, zeros, nulls); refuse them, by name, when they ask for something."""
    out = dict(raw)
    for name, values in accepted.items():
        if name not in out:
            continue
        value = out.pop(name)
        if value is None or NOTHING in values:
            continue
        if not any(type(value) is type(v) and value == v for v in values) and not (
            isinstance(value, int | float) and not isinstance(value, bool) and value in values
        ):
            allowed = " or ".join(json.dumps(v) for v in values)
            raise RequestProblem(
                f"Unsupported parameter: {name}={json.dumps(value)[:80]} is not supported by this server "
                f"(it accepts only {allowed}, or leave it out)",
                param=name,
                code="unsupported_parameter",
            )
    return out


VLLM_DEFAULTS: dict[str, tuple[Any, ...]] = {
    "repetition_penalty": (1,),
    "min_p": (0,),
    "min_tokens": (0,),
    "ignore_eos": (False,),
    "best_of": (1,),
    "use_beam_search": (False,),
    "length_penalty": (1,),
    "stop_token_ids": ([],),
    "skip_special_tokens": (True,),
    "spaces_between_special_tokens": (True,),
    "include_stop_str_in_output": (False,),
}
"""vLLM's sampling extensions that clients written for vLLM send with their default values."""

CHAT_DEFAULTS: dict[str, tuple[Any, ...]] = {
    "n": (1,),
    "frequency_penalty": (0,),
    "presence_penalty": (0,),
    "logit_bias": ({},),
    "store": (False,),
    "metadata": (NOTHING,),
    "service_tier": ("auto", "default"),
    "modalities": (["text"],),
    "audio": (),
    "prediction": (),
    "reasoning_effort": (),
    "verbosity": (),
    "web_search_options": (),
    "functions": (),
    "function_call": (),
    "safety_identifier": (NOTHING,),
    "prompt_cache_key": (NOTHING,),
    "echo": (False,),
    "add_generation_prompt": (True,),
    "continue_final_message": (False,),
    **VLLM_DEFAULTS,
}
"""OpenAI chat parameters this server does not implement, with the values that ask for nothing."""


# --- request models -------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Lenient(BaseModel):
    """Inside messages unknown fields are ignored, as OpenAI does (clients echo extras back)."""

    model_config = ConfigDict(extra="ignore")


class TextPart(_Lenient):
    type: Literal["text"]
    text: str


class FunctionCallIn(_Lenient):
    name: str
    arguments: str
    """A JSON object serialised as a string, as OpenAI sends it."""


class ToolCallIn(_Lenient):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallIn


class ChatMessageIn(_Lenient):
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


class FunctionDef(_Strict):
    name: str = Field(pattern=TOOL_NAME)
    description: str | None = None
    parameters: dict[str, Any] | None = None
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
    include_usage: bool | None = None
    include_obfuscation: bool | None = None  # sent by newer openai clients; nothing to obfuscate here
    continuous_usage_stats: bool | None = None  # vLLM's; usage comes once, at the end


class TextFormat(_Strict):
    type: Literal["text"]


class JsonObjectFormat(_Strict):
    type: Literal["json_object"]


class JsonSchemaSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None
    """The answer always follows the schema here (constrained decoding), strict or not."""


class JsonSchemaFormat(_Strict):
    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


ResponseFormat = Annotated[TextFormat | JsonObjectFormat | JsonSchemaFormat, Field(discriminator="type")]


class ChatCompletionRequest(_Strict):
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
class Limits:
    """What one request may ask for; public deployments lower these."""

    max_prompt_chars: int = 32_000
    max_tokens_cap: int = 4096
    default_max_tokens: int = 512


_TYPE_TAGS = {"str", "int", "float", "bool", "dict", "list", "none"}


_FORMAT_TAGS = {"text", "json_object", "json_schema"}


def _is_union_tag(part: str, before: int | str | None) -> bool:
    """pydantic puts the union member it tried into loc ("str", "literal[...]", "NamedToolChoice",
    a discriminator value after "response_format")."""
    if before == "response_format" and part in _FORMAT_TAGS:
        return True
    return part in _TYPE_TAGS or part[:1].isupper() or "[" in part or part.startswith("function-")


def _param_of(loc: tuple[int | str, ...]) -> str:
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _is_union_tag(part, loc[i - 1] if i else None):
            out += f".{part}" if out else part
    return out


def problem_from_validation(exc: ValidationError) -> RequestProblem:
    first = exc.errors(include_url=False)[0]
    param = _param_of(tuple(first["loc"]))
    message = first["msg"].removeprefix("Value error, ")
    return RequestProblem(f"{param}: {message}" if param else message, param=param or None)


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
