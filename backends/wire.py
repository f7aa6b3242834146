"""Pure wire parsing for the remote backends: SSE and NDJSON lines in, typed events out.

No I/O happens here, so every function is tested on recorded lines (tests/remote/recorded/).
The backends feed these functions the dicts their HTTP clients decoded; the stand-in servers
and the tests feed them raw lines.

    SSE (OpenAI-compatible):  lines -> sse_chunks() -> chunk dicts -> OpenAIStreamState -> events
    non-streaming completion: response dict -> completion_events() -> events
    NDJSON (Ollama):          line -> ndjson_chunk() -> chunk dict -> OllamaStreamState -> events
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from backends.base import (
    FinishReason,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallEvent,
    Usage,
)


class WireError(Exception):
    """The stream carried an error record, broke its framing, or ended before it was finished."""


_FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "eos": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "abort": "cancelled",
    "cancelled": "cancelled",
}


def finish_reason(raw: str | None, *, had_tool_calls: bool = False) -> FinishReason:
    """Server finish reason -> ours; Ollama says "stop" even when it called a tool."""
    if had_tool_calls:
        return "tool_calls"
    return _FINISH_REASONS.get(raw or "stop", "stop")


def server_message(body: object, fallback: str = "") -> str:
    """The human-readable message inside an error body of any of the shapes servers use.

    vLLM/OpenAI: {"message", "type", ...} (the client already unwrapped "error"); Ollama:
    {"error": "text"}; FastAPI validation: {"detail": [{"loc", "msg"}]}; or plain text.
    """
    if isinstance(body, Mapping):
        for key in ("message", "error", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, Mapping):
                return server_message(value, fallback)
            if isinstance(value, list) and value:
                return "; ".join(_validation_item(item) for item in value)
    if isinstance(body, str) and body.strip():
        return body.strip()
    return fallback


def _validation_item(item: object) -> str:
    if isinstance(item, Mapping):
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
        return f"{where}: {item.get('msg', '')}" if where else str(item.get("msg", item))
    return str(item)


# --- errors whose numbers we can read -----------------------------------------------------

_CONTEXT_LIMIT = re.compile(r"maximum context length is (\d+)")
_PROMPT_ONLY = re.compile(r"prompt contains (?:at least )?(\d+) input tokens")
_MESSAGES_AND_COMPLETION = re.compile(r"\((\d+) in the messages, (\d+) in the completion\)")
_REQUESTED = re.compile(r"you requested (\d+) tokens", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ContextNumbers:
    prompt_tokens: int
    context_length: int
    reserved: int = 0


def parse_context_overflow(message: str, body: object = None) -> ContextNumbers | None:
    """Numbers from a "context too long" error (vLLM, llama-cpp-python, llama.cpp's server)."""
    if isinstance(body, Mapping) and isinstance(body.get("n_ctx"), int):
        prompt = body.get("n_prompt_tokens")  # llama.cpp server: exceed_context_size_error
        if isinstance(prompt, int):
            return ContextNumbers(prompt, body["n_ctx"])
    limit = _CONTEXT_LIMIT.search(message)
    if limit is None:
        return None
    context = int(limit.group(1))
    if both := _MESSAGES_AND_COMPLETION.search(message):
        return ContextNumbers(int(both.group(1)), context, int(both.group(2)))
    if prompt := _PROMPT_ONLY.search(message):
        return ContextNumbers(int(prompt.group(1)), context)
    if requested := _REQUESTED.search(message):
        return ContextNumbers(int(requested.group(1)), context)
    return None


# --- SSE framing ---------------------------------------------------------------------------


def sse_data(lines: Iterable[str]) -> Iterator[str]:
    """The data of each SSE event: joins multi-line data, skips comments (": ping") and fields
    other than data, and stops at ``[DONE]``."""
    data: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                payload = "\n".join(data)
                data = []
                if payload.strip() == "[DONE]":
                    return
                yield payload
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        raise WireError("the stream ended in the middle of an event (no blank line after it)")


def sse_chunks(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Chunk dicts from SSE lines; an ``{"error": ...}`` event raises WireError."""
    for payload in sse_data(lines):
        try:
            chunk = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise WireError(f"an event is not JSON: {payload[:200]!r}") from exc
        if isinstance(chunk, dict) and chunk.get("error"):
            raise WireError(server_message(chunk["error"], "the server reported an error mid-stream"))
        yield chunk


def vllm_request_metrics(metrics: object) -> dict[str, float]:
    """vLLM's own timings of one request (``--enable-per-request-metrics``: a ``metrics``
    object on the response, or on the final usage chunk of a stream), milliseconds as seconds."""
    if not isinstance(metrics, Mapping):
        return {}
    figures: dict[str, float] = {}
    for key, name, scale in (
        ("time_to_first_token_ms", "server_ttft_s", 1e-3),
        ("generation_time_ms", "server_generation_s", 1e-3),
        ("queue_time_ms", "server_queue_s", 1e-3),
        ("mean_itl_ms", "server_itl_s", 1e-3),
        ("tokens_per_second", "server_tokens_per_s", 1.0),
    ):
        value = metrics.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            figures[name] = value * scale
    return figures


# --- OpenAI-compatible chunks -> events ------------------------------------------------------


def object_arguments(raw: object) -> dict[str, Any] | None:
    """Tool-call arguments as a dict: OpenAI sends a JSON string, Ollama an object; an object
    JSON-encoded twice is unwrapped. None: the arguments are not a JSON object at all."""
    if isinstance(raw, Mapping):
        return dict(raw)
    if not isinstance(raw, str):
        return None
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
        if isinstance(value, str) and value.lstrip().startswith("{"):
            value = json.loads(value)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def tool_call_event(call_id: str, name: str, raw: object) -> ToolCallEvent | TextDelta:
    """One tool call the server reported, as the same event on every path (streamed,
    non-streamed, Ollama).

    Arguments that are not a JSON object cannot be run. vLLM sends such calls for a model whose
    chat template has no tools (SmolLM2: ``"arguments": "\"5 + 7 = 12\""``), and leaves a call
    its parser cannot read in the text as ``<tool_call>...</tool_call>``: so such a call is shown
    as that text and never executed, as the in-process model does with calls it cannot read.
    """
    arguments = object_arguments(raw)
    if arguments is not None:
        return ToolCallEvent(ToolCall(id=call_id, name=name, arguments=arguments))
    shown: object = raw
    if isinstance(raw, str):
        try:
            shown = json.loads(raw)
        except json.JSONDecodeError:
            shown = raw
    return TextDelta(f"<tool_call>\n{json.dumps({'name': name, 'arguments': shown})}\n</tool_call>")


def _calls_made(events: list[StreamEvent]) -> bool:
    return any(isinstance(event, ToolCallEvent) for event in events)


@dataclass
class _ToolFragments:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


def _reasoning_of(delta: Mapping[str, Any]) -> str:
    return delta.get("reasoning") or delta.get("reasoning_content") or ""


@dataclass
class OpenAIStreamState:
    """Turns chat.completion.chunk dicts into events; tool-call fragments are joined by index
    and emitted whole when the stream finishes (like openai's ChatCompletionStreamState)."""

    tools: dict[int, _ToolFragments] = field(default_factory=dict)
    finish: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    model: str | None = None
    chunks: int = 0
    server: dict[str, float] = field(default_factory=dict)

    def handle_chunk(self, chunk: Mapping[str, Any]) -> list[StreamEvent]:
        if chunk.get("error"):
            raise WireError(server_message(chunk["error"], "the server reported an error mid-stream"))
        self.chunks += 1
        self.model = chunk.get("model") or self.model
        if metrics := chunk.get("metrics"):
            self.server = vllm_request_metrics(metrics)
        if usage := chunk.get("usage"):
            self.prompt_tokens = usage.get("prompt_tokens", self.prompt_tokens)
            self.completion_tokens = usage.get("completion_tokens", self.completion_tokens)
        events: list[StreamEvent] = []
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # we ask for one choice
            delta = choice.get("delta") or {}
            if reasoning := _reasoning_of(delta):
                events.append(ReasoningDelta(reasoning))
            if content := delta.get("content"):
                events.append(TextDelta(content))
            for fragment in delta.get("tool_calls") or ():
                slot = self.tools.setdefault(fragment.get("index", len(self.tools)), _ToolFragments())
                slot.id = slot.id or fragment.get("id") or ""
                function = fragment.get("function") or {}
                slot.name += function.get("name") or ""
                slot.arguments.append(function.get("arguments") or "")
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
        return events

    def finish_events(self) -> list[StreamEvent]:
        """Tool calls, then Usage. Raises WireError if the server never said it was done."""
        if self.chunks == 0:  # llama-cpp-python does this when the prompt exceeds its context
            raise WireError(
                "the server closed the stream without sending anything "
                "(see its log; a prompt longer than the model's context can cause this)"
            )
        if self.finish is None:
            raise WireError("the stream ended before the server finished the answer")
        events: list[StreamEvent] = [
            tool_call_event(slot.id or f"call_{index}", slot.name, "".join(slot.arguments))
            for index, slot in sorted(self.tools.items())
        ]
        finish = "stop" if self.tools and not _calls_made(events) else self.finish
        events.append(
            Usage(
                prompt_tokens=self.prompt_tokens,
                completion_tokens=self.completion_tokens,
                finish_reason=finish_reason(finish, had_tool_calls=_calls_made(events)),
                server=self.server,
                model=self.model,
            )
        )
        return events


def completion_events(response: Mapping[str, Any]) -> list[StreamEvent]:
    """A non-streaming chat.completion as the same events a stream would give."""
    choices = response.get("choices") or []
    if not choices:
        raise WireError("the server answered without any choices")
    choice = choices[0]
    message = choice.get("message") or {}
    events: list[StreamEvent] = []
    if reasoning := _reasoning_of(message):
        events.append(ReasoningDelta(reasoning))
    if content := message.get("content"):
        events.append(TextDelta(content))
    calls = message.get("tool_calls") or []
    for index, call in enumerate(calls):
        function = call.get("function") or {}
        events.append(
            tool_call_event(
                call.get("id") or f"call_{index}", function.get("name") or "", function.get("arguments")
            )
        )
    usage = response.get("usage") or {}
    made = _calls_made(events)
    finish = "stop" if calls and not made else choice.get("finish_reason")
    events.append(
        Usage(
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            finish_reason=finish_reason(finish, had_tool_calls=made),
            server=vllm_request_metrics(response.get("metrics")),
            model=response.get("model"),
        )
    )
    return events


# --- Ollama NDJSON ---------------------------------------------------------------------------


def ndjson_chunk(line: str) -> dict[str, Any] | None:
    """One NDJSON line -> dict (None for a blank line); ``{"error": ...}`` raises WireError."""
    if not line.strip():
        return None
    try:
        chunk = json.loads(line)
    except json.JSONDecodeError as exc:
        raise WireError(f"a line is not JSON: {line[:200]!r}") from exc
    if not isinstance(chunk, dict):
        raise WireError(f"a line is not a JSON object: {line[:200]!r}")
    if chunk.get("error"):
        raise WireError(server_message(chunk, "the server reported an error mid-stream"))
    return chunk


_NS = 1e-9


def ollama_server_metrics(final: Mapping[str, Any]) -> dict[str, float]:
    """Ollama's own timings from the final chunk (nanoseconds) as seconds and tokens/s."""
    metrics: dict[str, float] = {}
    for key, name in (
        ("total_duration", "server_total_s"),
        ("load_duration", "server_load_s"),
        ("prompt_eval_duration", "server_prompt_eval_s"),
        ("eval_duration", "server_eval_s"),
    ):
        if isinstance(final.get(key), int | float):
            metrics[name] = final[key] * _NS
    if metrics.get("server_eval_s") and isinstance(final.get("eval_count"), int):
        metrics["server_tokens_per_s"] = final["eval_count"] / metrics["server_eval_s"]
    if metrics.get("server_prompt_eval_s") and isinstance(final.get("prompt_eval_count"), int):
        metrics["server_prompt_tokens_per_s"] = final["prompt_eval_count"] / metrics["server_prompt_eval_s"]
    return metrics


@dataclass
class OllamaStreamState:
    """Turns /api/chat chunks into events; the ``done`` chunk becomes Usage."""

    tool_calls: int = 0
    finished: bool = False

    def handle_chunk(self, chunk: Mapping[str, Any]) -> list[StreamEvent]:
        if chunk.get("error"):
            raise WireError(server_message(chunk, "the server reported an error mid-stream"))
        message = chunk.get("message") or {}
        events: list[StreamEvent] = []
        if thinking := message.get("thinking"):
            events.append(ReasoningDelta(thinking))
        if content := message.get("content"):
            events.append(TextDelta(content))
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            event = tool_call_event(
                call.get("id") or f"call_{self.tool_calls}",
                function.get("name") or "",
                function.get("arguments"),
            )
            events.append(event)
            self.tool_calls += isinstance(event, ToolCallEvent)
        if chunk.get("done"):
            self.finished = True
            events.append(
                Usage(
                    prompt_tokens=chunk.get("prompt_eval_count"),
                    completion_tokens=chunk.get("eval_count"),
                    finish_reason=finish_reason(
                        chunk.get("done_reason"), had_tool_calls=bool(self.tool_calls)
                    ),
                    server=ollama_server_metrics(chunk),
                    model=chunk.get("model"),
                )
            )
        return events

    def check_finished(self) -> None:
        if not self.finished:
            raise WireError("the stream ended before the server finished the answer")
