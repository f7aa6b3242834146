"""A stand-in for vLLM's OpenAI-compatible server, byte-faithful to the documented protocol.

Follows /work/shared/reference/backend-protocols.md section B: SSE ``data: <json>\\n\\n`` events,
a role chunk first, content chunks, a finish chunk, the usage chunk (``choices: []``) when
stream_options.include_usage, then ``data: [DONE]``; ``{"error": {...}}`` bodies with the
statuses and messages vLLM uses; the phi4_mini_json tool parser that drops streamed deltas
(vLLM #18257) and answers tools non-streaming; /v1/models with max_model_len; /health.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.remote.standin_http import ServerThread, StandIn


class VLLMStandIn(StandIn):
    def __init__(
        self,
        models: dict[str, int] | None = None,
        *,
        tool_parser: str | None = "phi4_mini_json",
        engine_dead: bool = False,
        api_key: str | None = None,
    ) -> None:
        super().__init__()
        self.models = models or {"microsoft/Phi-4-mini-instruct": 4096}
        """Served model ids and their max_model_len."""
        self.tool_parser = tool_parser
        """None: started without --enable-auto-tool-choice. "hermes" streams tool calls."""
        self.engine_dead = engine_dead
        self.api_key = api_key
        """Like `vllm serve --api-key`: /v1 routes want "Authorization: Bearer <key>"."""
        self.per_request_metrics = False
        """Like `--enable-per-request-metrics`: timings on the response / the final usage chunk."""
        self.running = 0
        """Streams being answered now: /metrics reports them as vllm:num_requests_running."""

    def refuses(self, request: Request) -> Response | None:
        if self.api_key and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return JSONResponse({"error": "Unauthorized"}, status_code=401)
        return None


VERSION = "0.32.0"
RECORDED_METRICS = Path(__file__).parent / "recorded" / "vllm_metrics_after_requests.txt"


def metrics_page(running: int) -> str:
    """vLLM's recorded /metrics page, with the running-requests gauge set to ours."""
    lines = []
    for line in RECORDED_METRICS.read_text().splitlines():
        if line.startswith("vllm:num_requests_running{"):
            line = f"{line.rsplit(' ', 1)[0]} {float(running)}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def request_metrics(started: float, first: float, last: float, tokens: int) -> dict[str, Any]:
    """vLLM's PerRequestMetrics for one request (the stand-in neither queues nor prefills)."""
    decode = last - first
    return {
        "time_to_first_token_ms": (first - started) * 1000,
        "generation_time_ms": decode * 1000,
        "queue_time_ms": 0.0,
        "mean_itl_ms": decode / (tokens - 1) * 1000 if tokens > 1 else None,
        "tokens_per_second": tokens / (last - started) if last > started else None,
        "speculative_decoding": None,
    }


def _json(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def sse(obj: Any) -> bytes:
    return f"data: {obj if isinstance(obj, str) else _json(obj)}\n\n".encode()


def error_response(status: int, message: str, err_type: str, param: str | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": err_type, "param": param, "code": status}}, status_code=status
    )


def chunk(cid: str, model: str, created: int, delta: dict[str, Any], finish: str | None = None) -> dict:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish, "token_ids": None}
            | ({"stop_reason": None} if finish else {})
        ],
    }


def _validate(state: VLLMStandIn, body: dict[str, Any]) -> JSONResponse | None:
    model = body.get("model")
    if model not in state.models:
        aliases = ", ".join(state.models)
        return error_response(
            404, f"The model `{model}` does not exist. Valid aliases: {aliases}.", "NotFoundError", "model"
        )
    if body.get("stream_options") and not body.get("stream"):
        return error_response(
            400, "Stream options can only be defined when `stream=True`.", "BadRequestError"
        )
    max_len = state.models[model]
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, int) and max_tokens > max_len:
        return error_response(
            400,
            f"max_tokens={max_tokens} cannot be greater than max_model_len={max_len}. "
            f"Please request fewer output tokens. (parameter=max_tokens, value={max_tokens})",
            "BadRequestError",
            "max_tokens",
        )
    prompt = state.prompt_tokens(body.get("messages") or [])
    if prompt > max_len:
        counted = max_len + 1  # vLLM 0.32 stops counting one token past the limit
        return error_response(
            400,
            f"This model's maximum context length is {max_len} tokens. However, your prompt contains "
            f"at least {counted} input tokens, which exceeds this limit even without any output tokens. "
            f"Please reduce the length of the input prompt. (parameter=input_tokens, value={counted})",
            "BadRequestError",
            "input_tokens",
        )
    if body.get("tools") and state.tool_parser is None:
        return error_response(
            400,
            '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set',
            "BadRequestError",
        )
    return None


def _tool_call_objects(state: VLLMStandIn) -> list[dict[str, Any]]:
    return [
        {
            "id": f"chatcmpl-tool-{secrets.token_hex(16)}",
            "type": "function",
            "function": {"name": call["name"], "arguments": _json(call["arguments"])},
        }
        for call in state.script.tool_calls
    ]


async def _completion(state: VLLMStandIn, body: dict[str, Any]) -> JSONResponse:
    """stream: false - the only way tool calls survive the phi4_mini_json parser."""
    script = state.script
    if script.hang_before_headers:
        await state.hang()
    tool_calls = _tool_call_objects(state) if body.get("tools") else []
    message: dict[str, Any] = {
        "role": "assistant",
        "content": None if tool_calls else "".join(script.text),
        "tool_calls": tool_calls,
    }
    if script.reasoning:
        message["reasoning"] = "".join(script.reasoning)
    prompt = state.prompt_tokens(body.get("messages") or [])
    completion = len(script.text) + len(tool_calls) * 8
    now = time.monotonic()
    metrics = request_metrics(now, now, now, completion) if state.per_request_metrics else None
    return JSONResponse(
        {
            "id": f"chatcmpl-{secrets.token_hex(16)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if tool_calls else script.finish_reason,
                    "stop_reason": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
            "metrics": metrics,
        }
    )


async def _events(state: VLLMStandIn, body: dict[str, Any]) -> AsyncIterator[bytes]:
    script = state.script
    cid, model, created = f"chatcmpl-{secrets.token_hex(16)}", body["model"], int(time.time())
    finished = False
    generation = state.generation
    started = first = time.monotonic()
    state.running += 1
    try:
        if script.first_delay_s:
            await asyncio.sleep(script.first_delay_s)
        yield sse(chunk(cid, model, created, {"role": "assistant", "content": ""}))
        for piece in script.reasoning:
            yield sse(chunk(cid, model, created, {"reasoning": piece}))
        tools_requested = bool(body.get("tools"))
        drops_deltas = tools_requested and state.tool_parser == "phi4_mini_json"
        sent = 0
        pieces = script.text if not (drops_deltas or script.tool_calls) else []
        for i, piece in enumerate(pieces):
            if script.error_after == i:
                yield sse(
                    {
                        "error": {
                            "message": script.error_message,
                            "type": "InternalServerError",
                            "param": None,
                            "code": 500,
                        }
                    }
                )
                yield sse("[DONE]")
                finished = True
                return
            if script.drop_after == i:
                raise ConnectionAbortedError("stand-in drops the connection mid-stream")
            if script.hang_after == i:
                await state.hang()
            if i and script.delay_s:
                await asyncio.sleep(script.delay_s)
            if i == 0:
                first = time.monotonic()
            last = i == len(pieces) - 1  # vLLM 0.32 puts the finish reason on the last token's chunk
            yield sse(chunk(cid, model, created, {"content": piece}, script.finish_reason if last else None))
            sent += 1
        finish = script.finish_reason
        if tools_requested and script.tool_calls and state.tool_parser == "hermes":
            for index, call in enumerate(_tool_call_objects(state)):
                arguments = call["function"]["arguments"]
                head = {
                    "index": index,
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": ""},
                }
                yield sse(chunk(cid, model, created, {"tool_calls": [head]}))
                for start in range(0, len(arguments), 7):  # arguments arrive in fragments
                    part = {"index": index, "function": {"arguments": arguments[start : start + 7]}}
                    yield sse(chunk(cid, model, created, {"tool_calls": [part]}))
            finish = "tool_calls"
            sent += 8 * len(script.tool_calls)
        if not pieces or finish == "tool_calls":
            yield sse(chunk(cid, model, created, {"content": ""}, finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            prompt = state.prompt_tokens(body.get("messages") or [])
            yield sse(
                {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": prompt,
                        "completion_tokens": sent,
                        "total_tokens": prompt + sent,
                    },
                    "system_fingerprint": f"vllm-{VERSION}-standin",
                }
                | (
                    {"metrics": request_metrics(started, first, time.monotonic(), sent)}
                    if state.per_request_metrics
                    else {}
                )
            )
        yield sse("[DONE]")
        finished = True
    finally:
        state.running -= 1
        if not finished:
            state.note_disconnect(generation)


def build_app(state: VLLMStandIn) -> Starlette:
    async def chat_completions(request: Request) -> Response:
        if (refused := state.refuses(request)) is not None:
            return refused
        body = await request.json()
        state.requests.append(("/v1/chat/completions", body))
        if (refused := _validate(state, body)) is not None:
            return refused
        if state.script.status_error:
            status, message = state.script.status_error
            return error_response(
                status, message, "ServiceUnavailableError" if status == 503 else "InternalServerError"
            )
        if not body.get("stream"):
            return await _completion(state, body)
        if state.script.hang_before_headers:
            await state.hang()
        return StreamingResponse(_events(state, body), media_type="text/event-stream")

    async def models(request: Request) -> Response:
        if (refused := state.refuses(request)) is not None:
            return refused
        state.requests.append(("/v1/models", None))
        created = int(time.time())
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {
                        "id": name,
                        "object": "model",
                        "created": created,
                        "owned_by": "vllm",
                        "root": name,
                        "parent": None,
                        "max_model_len": max_len,
                        "permission": [
                            {
                                "id": f"modelperm-{secrets.token_hex(8)}",
                                "object": "model_permission",
                                "created": created,
                                "allow_sampling": True,
                                "organization": "*",
                            }
                        ],
                    }
                    for name, max_len in state.models.items()
                ],
            }
        )

    async def health(request: Request) -> Response:
        return Response(status_code=503 if state.engine_dead else 200)

    async def version(request: Request) -> Response:
        return JSONResponse({"version": VERSION})

    async def metrics(request: Request) -> Response:
        return Response(metrics_page(state.running), media_type="text/plain; version=0.0.4")

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/models", models),
            Route("/health", health),
            Route("/version", version),
            Route("/metrics", metrics),
        ]
    )


def start_vllm(state: VLLMStandIn | None = None) -> tuple[VLLMStandIn, ServerThread]:
    state = state or VLLMStandIn()
    return state, ServerThread(build_app(state), state).start()
