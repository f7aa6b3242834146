"""A stand-in for the Ollama server, faithful to the documented REST API.

Follows /work/shared/reference/backend-protocols.md section A: application/x-ndjson, one JSON
object per line and no blank lines; intermediate chunks without metrics; a final chunk with
``done: true``, ``done_reason`` and durations in NANOSECONDS (really measured here); tool calls
as one complete chunk with object arguments; ``{"error": "..."}`` bodies (404 unknown model,
400 model is required / does not support tools) and as the last line mid-stream with HTTP 200.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.remote.standin_http import ServerThread, StandIn

NDJSON = "application/x-ndjson"
LOAD_NS = 1_234_567
"""load_duration the stand-in reports, so tests can check the ns -> s conversion exactly."""


class OllamaStandIn(StandIn):
    def __init__(self, models: dict[str, list[str]] | None = None, pullable: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.models = models or {"phi4-mini:latest": ["completion", "tools"], "smollm2:135m": ["completion"]}
        """Installed models and their capabilities."""
        self.pullable = set(pullable) or {"phi4-mini", "qwen3:0.6b"}
        self.load_s = 0.0
        """How long loading a model takes (the first request for it waits this long)."""
        self.loaded: set[str] = set()

    def reset(self) -> None:
        super().reset()
        self.load_s = 0.0
        self.loaded = set()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _installed(state: OllamaStandIn, name: str | None) -> str | None:
    if not name:
        return None
    full = name if ":" in name else f"{name}:latest"
    return full if full in state.models else None


def _details(name: str) -> dict[str, Any]:
    family = name.split(":")[0].split("-")[0]
    return {
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family],
        "parameter_size": "3.8B" if "phi4" in name else "134.52M",
        "quantization_level": "Q4_K_M",
    }


async def _chat_lines(state: OllamaStandIn, body: dict[str, Any], model: str) -> AsyncIterator[bytes]:
    script = state.script
    started_ns = time.monotonic_ns()
    finished = False
    generation = state.generation
    try:
        if script.first_delay_s:
            await asyncio.sleep(script.first_delay_s)
        prompt_done_ns = time.monotonic_ns()
        base = {"model": body["model"]}
        for piece in script.reasoning:
            yield line(
                {
                    **base,
                    "created_at": _now(),
                    "message": {"role": "assistant", "content": "", "thinking": piece},
                    "done": False,
                }
            )
        texts = [] if script.tool_calls and body.get("tools") else script.text
        for i, piece in enumerate(texts):
            if script.error_after == i:
                yield line({"error": script.error_message})
                finished = True
                return
            if script.drop_after == i:
                raise ConnectionAbortedError("stand-in drops the connection mid-stream")
            if script.hang_after == i:
                await state.hang()
            if i and script.delay_s:
                await asyncio.sleep(script.delay_s)
            yield line(
                {
                    **base,
                    "created_at": _now(),
                    "message": {"role": "assistant", "content": piece},
                    "done": False,
                }
            )
        eval_count = len(texts)
        if body.get("tools") and script.tool_calls:
            calls = [
                {
                    "id": f"call_{secrets.token_hex(4)}",
                    "function": {"index": i, "name": c["name"], "arguments": c["arguments"]},
                }
                for i, c in enumerate(script.tool_calls)
            ]
            yield line(
                {
                    **base,
                    "created_at": _now(),
                    "message": {"role": "assistant", "content": "", "tool_calls": calls},
                    "done": False,
                }
            )
            eval_count += 10 * len(calls)
        end_ns = time.monotonic_ns()
        eval_ns = max(end_ns - prompt_done_ns, 1)
        yield line(
            {
                **base,
                "created_at": _now(),
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": script.finish_reason,
                "total_duration": end_ns - started_ns + LOAD_NS,
                "load_duration": LOAD_NS,
                "prompt_eval_count": state.prompt_tokens(body.get("messages") or []),
                "prompt_eval_duration": max(prompt_done_ns - started_ns, 1),
                "eval_count": eval_count,
                "eval_duration": eval_ns,
            }
        )
        finished = True
    finally:
        if not finished:
            state.note_disconnect(generation)


async def _progress(lines: list[dict[str, Any]], delay_s: float) -> AsyncIterator[bytes]:
    for obj in lines:
        if delay_s:
            await asyncio.sleep(delay_s)
        yield line(obj)


def build_app(state: OllamaStandIn) -> Starlette:
    async def chat(request: Request) -> Response:
        raw = await request.body()
        if not raw:
            return error(400, "missing request body")
        body = json.loads(raw)
        state.requests.append(("/api/chat", body))
        if not body.get("model"):
            return error(400, "model is required")
        model = _installed(state, body["model"])
        if model is None:
            return error(404, f"model '{body['model']}' not found")
        if body.get("tools") and "tools" not in state.models[model]:
            return error(400, f"registry.ollama.ai/library/{body['model']} does not support tools")
        if state.script.status_error:
            return error(*state.script.status_error)
        if state.script.hang_before_headers:
            await state.hang()
        if model not in state.loaded:  # Ollama loads a model on its first request
            await asyncio.sleep(state.load_s)
            state.loaded.add(model)
        if not body.get("messages"):  # "load a model": one JSON object, whatever "stream" says
            return JSONResponse(
                {
                    "model": body["model"],
                    "created_at": _now(),
                    "message": {"role": "assistant", "content": ""},
                    "done": True,
                    "done_reason": "load",
                }
            )
        return StreamingResponse(_chat_lines(state, body, model), media_type=NDJSON)

    async def tags(request: Request) -> Response:
        return JSONResponse(
            {
                "models": [
                    {
                        "name": name,
                        "model": name,
                        "modified_at": "2025-06-01T10:00:00.123456789Z",
                        "size": 2_491_876_774,
                        "digest": secrets.token_hex(32),
                        "details": _details(name),
                    }
                    for name in state.models
                ]
            }
        )

    async def version(request: Request) -> Response:
        return JSONResponse({"version": "0.12.6"})

    async def root(request: Request) -> Response:
        return PlainTextResponse("Ollama is running")

    async def show(request: Request) -> Response:
        body = await request.json()
        state.requests.append(("/api/show", body))
        model = _installed(state, body.get("model"))
        if model is None:
            return error(404, f"model '{body.get('model')}' not found")
        family = _details(model)["family"]
        return JSONResponse(
            {
                "modelfile": f"FROM {model}\n",
                "parameters": 'stop "<|end|>"',
                "template": "{{ .Prompt }}",
                "details": _details(model),
                "model_info": {"general.architecture": family, f"{family}.context_length": 131072},
                "capabilities": state.models[model],
                "modified_at": "2025-06-01T10:00:00.123456789Z",
            }
        )

    async def pull(request: Request) -> Response:
        body = await request.json()
        state.requests.append(("/api/pull", body))
        name = body.get("model", "")
        if name not in state.pullable:
            lines = [{"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}]
            return StreamingResponse(_progress(lines, 0), media_type=NDJSON)
        digest = "sha256:" + secrets.token_hex(32)
        total = 2_491_876_774
        lines = [{"status": "pulling manifest"}]
        lines += [
            {"status": f"pulling {digest[7:19]}", "digest": digest, "total": total, "completed": part}
            for part in (0, total // 3, 2 * total // 3, total)
        ]
        lines += [
            {"status": s}
            for s in ("verifying sha256 digest", "writing manifest", "removing any unused layers", "success")
        ]
        state.models[name if ":" in name else f"{name}:latest"] = ["completion", "tools"]
        return StreamingResponse(_progress(lines, state.script.delay_s), media_type=NDJSON)

    async def create(request: Request) -> Response:
        body = await request.json()
        state.requests.append(("/api/create", body))
        if not body.get("model"):
            return error(400, "model is required")
        base = _installed(state, body.get("from"))
        if base is None:
            lines = [{"error": f"model '{body.get('from')}' not found"}]
            return StreamingResponse(_progress(lines, 0), media_type=NDJSON)
        lines = [
            {"status": f"using existing layer sha256:{secrets.token_hex(32)}"},
            {"status": f"creating new layer sha256:{secrets.token_hex(32)}"},
            {"status": "writing manifest"},
            {"status": "success"},
        ]
        state.models[f"{body['model']}:latest"] = list(state.models[base])
        return StreamingResponse(_progress(lines, 0), media_type=NDJSON)

    return Starlette(
        routes=[
            Route("/api/chat", chat, methods=["POST"]),
            Route("/api/tags", tags),
            Route("/api/version", version, methods=["GET", "HEAD"]),
            Route("/", root),
            Route("/api/show", show, methods=["POST"]),
            Route("/api/pull", pull, methods=["POST"]),
            Route("/api/create", create, methods=["POST"]),
        ]
    )


def start_ollama(state: OllamaStandIn | None = None) -> tuple[OllamaStandIn, ServerThread]:
    state = state or OllamaStandIn()
    return state, ServerThread(build_app(state), state).start()
