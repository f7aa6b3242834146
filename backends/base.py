"""The contract every backend implements, and the one place metrics are measured.

A backend turns a validated :class:`ChatRequest` into a stream of typed events:

    TextDelta | ReasoningDelta | ToolCallEvent ...  then exactly one  Usage  (backend -> base)
    TextDelta | ReasoningDelta | ToolCallEvent ...  then exactly one  Done   (base -> caller)

Subclasses implement ``_stream`` and yield a ``Usage`` last (token counts, finish reason,
what the server reports about itself). :meth:`Backend.chat` wraps that stream, times it on
the client's monotonic clock and replaces ``Usage`` with ``Done(metrics)``. Timing lives
here and nowhere else, so the numbers of an in-process model, vLLM and Ollama compare.

Stopping: the caller closes the async iterator (``aclose`` / breaking out of ``async for``);
each backend frees its resources in ``finally`` (the ONNX engine stops its worker thread).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from backends.errors import BackendResponseError

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "cancelled", "error"]


class SamplingOptions(BaseModel):
    """Decoding settings shared by every backend; invalid values fail before any I/O."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(0.7, ge=0.0, le=2.0, description="0 means greedy decoding.")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0, le=1000, description="0 disables top-k.")
    max_new_tokens: int = Field(512, ge=1, le=32768)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    stop: tuple[str, ...] = Field((), max_length=4)
    json_output: bool = False
    """Constrain the answer to one JSON value (an object unless ``json_schema`` says otherwise)."""
    json_schema: dict[str, Any] | None = None
    """With ``json_output``: the JSON schema the answer must validate against."""

    @model_validator(mode="after")
    def _schema_needs_json_output(self) -> SamplingOptions:
        if self.json_schema is not None and not self.json_output:
            raise ValueError("json_schema is only used with json_output on; turn json_output on")
        return self

    @field_validator("stop")
    @classmethod
    def _non_empty_stops(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not s for s in value):
            raise ValueError("stop strings must not be empty")
        return value

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


class ToolCall(BaseModel):
    """A function call requested by the model. ``arguments`` is the parsed JSON object."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str
    arguments: dict[str, Any]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    """For role "tool": which call this message answers."""
    name: str | None = None
    """For role "tool": the function's name."""


class ToolSpec(BaseModel):
    """A function the model may call, in the OpenAI shape (JSON-schema parameters)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})

    def openai_schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("tool_choice")
    @classmethod
    def _known_tool_choice(cls, value: str, info: Any) -> str:
        tools = info.data.get("tools", ())
        if value in ("auto", "none", "required"):
            return value
        if not any(t.name == value for t in tools):
            raise ValueError(f"tool_choice names {value!r}, which is not among the tools offered")
        return value

    messages: tuple[Message, ...] = Field(min_length=1)
    options: SamplingOptions = SamplingOptions()
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str = "auto"
    """OpenAI semantics: "auto", "none", "required", or the name of one function to call."""
    model: str | None = None
    """Model id for backends that serve several; None means the backend's default."""
    logprobs: int | None = Field(None, ge=0, le=20)
    """None: off. n: each token's log-probability and its n likeliest alternatives, on the
    TextDelta that carries the token (only backends with ``supports_logprobs``)."""
    completion: bool = False
    """Plain text completion: the one user message is the raw prompt, no chat template
    (/v1/completions; only backends with ``supports_completion``)."""


# --- events -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One generated token's log-probability and the likeliest alternatives at that step."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str
    kind: Literal["text"] = "text"
    logprobs: tuple[TokenLogprob, ...] = ()
    """Only when the request asked for logprobs: the tokens whose text this delta releases."""


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str
    kind: Literal["reasoning"] = "reasoning"


@dataclass(frozen=True, slots=True)
class ToolCallEvent:
    call: ToolCall
    kind: Literal["tool_call"] = "tool_call"


@dataclass(frozen=True, slots=True)
class Usage:
    """Last event of a backend's raw stream: what only the backend can know."""

    prompt_tokens: int | None
    completion_tokens: int | None
    finish_reason: FinishReason
    server: dict[str, float] = field(default_factory=dict)
    """Figures the server reports about itself (e.g. Ollama's eval_duration), shown beside ours."""
    model: str | None = None
    kind: Literal["usage"] = "usage"


@dataclass(frozen=True, slots=True)
class Metrics:
    """Client-side measurements, identical in method for every backend."""

    backend: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    ttft_s: float | None
    """Request start to first streamed token (text, reasoning or tool call)."""
    total_s: float
    decode_tokens_per_s: float | None
    """(completion_tokens - 1) / (last token time - first token time)."""
    finish_reason: FinishReason
    server: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        parts = [f"{self.backend} · {self.model}"]
        if self.ttft_s is not None:
            parts.append(f"TTFT {self.ttft_s * 1000:.0f} ms")
        if self.decode_tokens_per_s is not None:
            parts.append(f"{self.decode_tokens_per_s:.1f} tok/s")
        if self.prompt_tokens is not None or self.completion_tokens is not None:
            parts.append(
                f"{self.prompt_tokens or 0} prompt + {self.completion_tokens or 0} completion tokens"
            )
        parts.append(f"{self.total_s:.2f} s")
        if self.finish_reason not in ("stop", "tool_calls"):
            parts.append(f"finish: {self.finish_reason}")
        return " · ".join(parts)


@dataclass(frozen=True, slots=True)
class Done:
    metrics: Metrics
    kind: Literal["done"] = "done"


StreamEvent = TextDelta | ReasoningDelta | ToolCallEvent | Usage
ChatEvent = TextDelta | ReasoningDelta | ToolCallEvent | Done


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    context_length: int | None = None
    details: dict[str, str] = field(default_factory=dict)
    """Format, quantization, family: whatever the backend knows, for display."""


@dataclass(frozen=True, slots=True)
class Health:
    status: Literal["ready", "loading", "unreachable"]
    detail: str = ""


def decode_rate(completion_tokens: int | None, first_s: float | None, last_s: float | None) -> float | None:
    """Tokens per second after the first token; None when there is nothing to divide."""
    if completion_tokens is None or completion_tokens < 2 or first_s is None or last_s is None:
        return None
    span = last_s - first_s
    return (completion_tokens - 1) / span if span > 0 else None


class Backend(ABC):
    """One way of running a model. Subclasses set ``kind`` and implement ``_stream``."""

    kind: ClassVar[str]
    supports_tools: ClassVar[bool] = False
    supports_logprobs: ClassVar[bool] = False
    supports_completion: ClassVar[bool] = False

    def __init__(self, name: str) -> None:
        self.name = name
        """Label the user sees, e.g. "onnx · SmolLM2-135M-Instruct" or "vllm@gpu-box"."""

    @abstractmethod
    def _stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Yield deltas, then one Usage. Raise errors from backends.errors."""

    @abstractmethod
    async def list_models(self) -> list[ModelInfo]: ...

    @abstractmethod
    async def health(self) -> Health: ...

    def default_model(self) -> str:
        return ""

    async def warm_up(self) -> float:
        """Make the backend ready to answer at once (load its model); the seconds spent loading,
        0.0 when it was ready already. Callers time requests after this, so TTFT excludes loading."""
        return 0.0

    async def aclose(self) -> None:  # noqa: B027 - optional hook: most backends hold nothing
        """Release connections or the loaded model."""

    async def chat(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        """Stream a chat and finish with ``Done(metrics)``, timed on the monotonic clock."""
        start = time.perf_counter()
        first: float | None = None
        last: float | None = None
        streamed = 0
        stream = self._stream(request)
        try:
            async for event in stream:
                now = time.perf_counter()
                if isinstance(event, Usage):
                    completion = event.completion_tokens
                    if completion is None and streamed:
                        completion = streamed  # server sent no count: one delta ~ one token
                    yield Done(
                        Metrics(
                            backend=self.name,
                            model=event.model or request.model or self.default_model(),
                            prompt_tokens=event.prompt_tokens,
                            completion_tokens=completion,
                            ttft_s=None if first is None else first - start,
                            total_s=now - start,
                            decode_tokens_per_s=decode_rate(completion, first, last),
                            finish_reason=event.finish_reason,
                            server=dict(event.server),
                        )
                    )
                    return
                if first is None:
                    first = now
                last = now
                streamed += 1
                yield event
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
        raise BackendResponseError(self.name, "the stream ended without a final usage record")
