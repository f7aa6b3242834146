"""create_app(): any Backend behind an OpenAI-compatible HTTP API (the engine server).

Routes: POST /v1/chat/completions and POST /v1/completions (SSE streaming or one JSON body),
GET /v1/models and /v1/models/{id}, GET /health, GET /metrics. Every error, an unknown route
included, is an OpenAI error body; an unexpected exception is logged with its traceback and
answered 500 in the same shape, so the keep-alive connection stays usable.

The backend's own stream is driven by a separate asyncio task (:class:`Generation`); the
HTTP side only reads from it. A client that goes away cancels that
task exactly once, which closes the backend's iterator (the ONNX engine stops its thread).

Capacity: ``max_concurrency`` requests generate at once and up to ``max_queue`` more wait
for a slot in arrival order; a request beyond that gets 429 with Retry-After straight away,
so no accepted request is ever dropped and an overloaded server says so instead of hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from backends.base import (
    Backend,
    ChatEvent,
    ChatRequest,
    Done,
    ReasoningDelta,
    TextDelta,
    ToolCall,
)
from backends.base import ToolCallEvent as ToolCallEv
from backends.errors import (
    BackendError,
)
from engines.scheduler import CLIENT
from serve.completions import (
    choice_json,
    completion_body,
    completion_logprobs,
    new_id,
    parse_completion_request,
    to_chat_requests,
)
from serve.errors import (
    JsonServerErrors,
    RequestProblem,
    error_body,
    error_response,
    http_error,
    problem_for,
    problem_from_backend,
)
from serve.generation import ClientGone, Generation, SlotQueue, unless_disconnected
from serve.metrics import ServerMetrics, engine_metrics
from serve.protocol import (
    SSE_DONE,
    ChunkWriter,
    RequestLimits,
    completion_json,
    new_completion_id,
    parse_request,
    sse,
    to_chat_request,
    usage_json,
)

log = logging.getLogger("slm_playground.serve")


class EngineServer:
    """The request handlers and their shared state; ``create_app`` wires them to routes."""

    def __init__(
        self,
        backend: Backend,
        *,
        model_id: str,
        max_concurrency: int,
        max_queue: int,
        limits: RequestLimits,
        close_backend: bool,
    ) -> None:
        self.backend = backend
        self.model_id = model_id
        self.limits = limits
        self.metrics = ServerMetrics(model_id)
        self.admission = SlotQueue(max_concurrency, max_queue, self.metrics)
        self.close_backend = close_backend
        self.created = int(time.time())

    # --- routes ---------------------------------------------------------------------------

    async def chat_completions(self, request: Request) -> Response:
        response = await self._chat(request)
        self.metrics.count_request(response.status_code)
        return response

    async def completions(self, request: Request) -> Response:
        response = await self._completions(request)
        self.metrics.count_request(response.status_code)
        return response

    async def _card(self) -> dict[str, Any]:
        context_length: int | None = None
        with contextlib.suppress(Exception):
            infos = await asyncio.wait_for(self.backend.list_models(), 5.0)
            context_length = next((i.context_length for i in infos if i.context_length), None)
        card: dict[str, Any] = {
            "id": self.model_id,
            "object": "model",
            "created": self.created,
            "owned_by": "slm-playground",
            "root": self.model_id,
            "parent": None,
        }
        if context_length:
            card["max_model_len"] = context_length
        return card

    async def models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [await self._card()]})

    async def model(self, request: Request) -> Response:
        wanted = request.path_params["model_id"]
        if wanted != self.model_id:
            return error_response(self._unknown_model(wanted))
        return JSONResponse(await self._card())

    async def health(self, request: Request) -> Response:
        try:
            health = await asyncio.wait_for(self.backend.health(), 10.0)
        except Exception as exc:  # health reports, it never fails the probe with a traceback
            return JSONResponse({"status": "unreachable", "detail": str(exc)}, status_code=503)
        status_code = 200 if health.status == "ready" else 503
        return JSONResponse({"status": health.status, "detail": health.detail}, status_code=status_code)

    async def prometheus(self, request: Request) -> Response:
        stats = getattr(self.backend, "stats", None)
        body = self.metrics.render() + (engine_metrics(self.model_id, stats()) if stats else "")
        return PlainTextResponse(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    # --- shared ---------------------------------------------------------------------------

    def _unknown_model(self, wanted: str) -> RequestProblem:
        return RequestProblem(
            f"The model `{wanted}` does not exist. This server serves `{self.model_id}`.",
            status=404,
            param="model",
            code="model_not_found",
        )

    def _check_capabilities(self, chat_requests: list[ChatRequest]) -> None:
        if any(r.logprobs is not None for r in chat_requests) and not self.backend.supports_logprobs:
            raise RequestProblem(
                f"logprobs is not supported by this server's backend ({self.backend.kind})", param="logprobs"
            )
        if any(r.completion for r in chat_requests) and not self.backend.supports_completion:
            raise RequestProblem(
                f"plain completions are not supported by this server's backend ({self.backend.kind}); "
                "use /v1/chat/completions",
                status=404,
            )

    async def _admit(self, request: Request) -> Response | None:
        """Wait for a generation slot; a response instead when the queue is full or the client left."""
        CLIENT.set(request.client.host if request.client else "")  # the in-process scheduler's fairness key
        if not self.admission.reserve():
            busy = RequestProblem(
                f"the server is at capacity ({self.admission.slots} generating, {self.admission.queue} "
                "queued); retry shortly",
                status=429,
                type_="rate_limit_error",
                code="queue_full",
            )
            return error_response(busy, headers={"Retry-After": "1"})
        try:
            await unless_disconnected(request, self.admission.acquire())
        except ClientGone:
            return Response(status_code=499)
        return None

    def _record(self, completion_id: str, done: Done) -> None:
        m = done.metrics
        self.metrics.record_generation(
            prompt_tokens=m.prompt_tokens,
            completion_tokens=m.completion_tokens,
            ttft_s=m.ttft_s,
            tokens_per_s=m.decode_tokens_per_s,
            total_s=m.total_s,
        )
        log.info("%s: %s", completion_id, m.summary())

    # --- chat -----------------------------------------------------------------------------

    async def _chat(self, request: Request) -> Response:
        try:
            incoming = parse_request(await request.body(), request.headers.get("content-type"))
            if incoming.model != self.model_id:
                raise self._unknown_model(incoming.model)
            chat_request = to_chat_request(incoming, self.limits)
            self._check_capabilities([chat_request])
        except RequestProblem as problem:
            return error_response(problem)
        if (refused := await self._admit(request)) is not None:
            return refused
        completion_id = new_completion_id()
        generation = Generation(self.backend, chat_request)
        handed_over = False
        try:
            if incoming.stream:
                include_usage = bool(incoming.stream_options and incoming.stream_options.include_usage)
                try:
                    first = await unless_disconnected(request, generation.next())
                except BackendError as exc:
                    return error_response(problem_for(exc, chat_request))
                writer = ChunkWriter(completion_id, self.model_id, int(time.time()))
                logprobs = chat_request.logprobs is not None
                body = self._sse_body(generation, first, writer, include_usage, logprobs)
                handed_over = True  # the body's finally closes the generation and frees the slot
                return StreamingResponse(
                    body, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
                )
            try:
                text, reasoning, calls, logprobs_seen, done = await unless_disconnected(
                    request, generation.drain()
                )
            except BackendError as exc:
                return error_response(problem_for(exc, chat_request))
            self._record(completion_id, done)
            payload = completion_json(
                completion_id=completion_id,
                model=self.model_id,
                text="".join(text),
                reasoning="".join(reasoning),
                tool_calls=calls,
                finish_reason=_finish(done, calls),
                prompt_tokens=done.metrics.prompt_tokens,
                completion_tokens=done.metrics.completion_tokens,
                logprobs=logprobs_seen if chat_request.logprobs is not None else None,
            )
            return JSONResponse(payload)
        except ClientGone:
            log.info("%s: client disconnected before the answer started", completion_id)
            return Response(status_code=499)
        finally:
            if not handed_over:
                await generation.close()
                self.admission.release()

    async def _sse_body(
        self,
        generation: Generation,
        first: ChatEvent | None,
        writer: ChunkWriter,
        include_usage: bool,
        logprobs: bool,
    ) -> AsyncIterator[bytes]:
        calls: list[ToolCall] = []
        try:
            yield sse(writer.role())
            event = first
            while event is not None:
                if isinstance(event, TextDelta):
                    yield sse(writer.text(event.text, event.logprobs if logprobs else None))
                elif isinstance(event, ReasoningDelta):
                    yield sse(writer.reasoning(event.text))
                elif isinstance(event, ToolCallEv):
                    yield sse(writer.tool_call(event.call, len(calls)))
                    calls.append(event.call)
                elif isinstance(event, Done):
                    self._record(writer.completion_id, event)
                    yield sse(writer.finish(_finish(event, calls)))
                    if include_usage:
                        yield sse(writer.usage(event.metrics.prompt_tokens, event.metrics.completion_tokens))
                    break
                event = await generation.next()
            yield SSE_DONE
        except Exception as exc:  # mid-stream: vLLM's shape, an error event then [DONE]
            yield self._stream_error(writer.completion_id, exc)
            yield SSE_DONE
        finally:
            await generation.close()
            self.admission.release()

    def _stream_error(self, completion_id: str, exc: Exception) -> bytes:
        if isinstance(exc, BackendError):
            problem = problem_from_backend(exc)
            log.warning("%s: stream failed: %s", completion_id, exc)
        else:
            log.error("%s: stream failed", completion_id, exc_info=exc)
            self.metrics.count_request(500)
            problem = RequestProblem(
                "the server hit an internal error mid-stream", status=500, type_="server_error"
            )
        return sse(error_body(problem.message, type_=problem.type, param=problem.param, code=problem.code))

    # --- completions ----------------------------------------------------------------------

    async def _completions(self, request: Request) -> Response:
        try:
            incoming = parse_completion_request(await request.body(), request.headers.get("content-type"))
            if incoming.model != self.model_id:
                raise self._unknown_model(incoming.model)
            chat_requests = to_chat_requests(incoming, self.limits)
            self._check_capabilities(chat_requests)
        except RequestProblem as problem:
            return error_response(problem)
        if (refused := await self._admit(request)) is not None:
            return refused
        completion_id, created = new_id(), int(time.time())
        echo = [r.messages[-1].content if incoming.echo else "" for r in chat_requests]
        generation = Generation(self.backend, chat_requests[0])
        handed_over = False
        try:
            if incoming.stream:
                try:
                    first = await unless_disconnected(request, generation.next())
                except BackendError as exc:
                    return error_response(problem_from_backend(exc))
                include_usage = bool(incoming.stream_options and incoming.stream_options.include_usage)
                body = self._completion_sse(
                    chat_requests, generation, first, completion_id, created, echo, include_usage
                )
                handed_over = True
                return StreamingResponse(
                    body, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
                )
            try:
                choices, usage = await unless_disconnected(
                    request, self._collect_completions(chat_requests, generation, completion_id, echo)
                )
            except BackendError as exc:
                return error_response(problem_from_backend(exc))
            return JSONResponse(completion_body(completion_id, self.model_id, choices, usage, created))
        except ClientGone:
            log.info("%s: client disconnected before the answer started", completion_id)
            return Response(status_code=499)
        finally:
            if not handed_over:
                await generation.close()
                self.admission.release()

    async def _collect_completions(
        self, chat_requests: list[ChatRequest], generation: Generation, completion_id: str, echo: list[str]
    ) -> tuple[list[dict], dict]:
        """Each prompt in turn, in the one slot this request holds."""
        choices, prompt_tokens, completion_tokens = [], 0, 0
        for index, chat_request in enumerate(chat_requests):
            if index:
                await generation.close()
                generation = Generation(self.backend, chat_request)
            try:
                text, _, _, logprobs, done = await generation.drain()
            finally:
                await generation.close()
            self._record(completion_id, done)
            prompt_tokens += done.metrics.prompt_tokens or 0
            completion_tokens += done.metrics.completion_tokens or 0
            entries = completion_logprobs(logprobs) if chat_request.logprobs is not None else None
            choices.append(
                choice_json(index, echo[index] + "".join(text), done.metrics.finish_reason, entries)
            )
        return choices, usage_json(prompt_tokens, completion_tokens)

    async def _completion_sse(
        self,
        chat_requests: list[ChatRequest],
        generation: Generation,
        first: ChatEvent | None,
        completion_id: str,
        created: int,
        echo: list[str],
        include_usage: bool,
    ) -> AsyncIterator[bytes]:
        def chunk(choice: dict) -> bytes:
            return sse(completion_body(completion_id, self.model_id, [choice], None, created))

        prompt_tokens = completion_tokens = 0
        try:
            for index, chat_request in enumerate(chat_requests):
                if index:
                    await generation.close()
                    generation = Generation(self.backend, chat_request)
                    first = await generation.next()
                if echo[index]:
                    yield chunk(choice_json(index, echo[index], None))
                event, offset = first, 0
                while event is not None:
                    if isinstance(event, TextDelta) and event.text:
                        entries = None
                        if chat_request.logprobs is not None:
                            entries = completion_logprobs(event.logprobs, offset)
                        offset += len(event.text)
                        yield chunk(choice_json(index, event.text, None, entries))
                    elif isinstance(event, Done):
                        self._record(completion_id, event)
                        prompt_tokens += event.metrics.prompt_tokens or 0
                        completion_tokens += event.metrics.completion_tokens or 0
                        yield chunk(choice_json(index, "", event.metrics.finish_reason))
                        break
                    event = await generation.next()
            if include_usage:
                usage = usage_json(prompt_tokens, completion_tokens)
                yield sse(completion_body(completion_id, self.model_id, [], usage, created))
            yield SSE_DONE
        except Exception as exc:
            yield self._stream_error(completion_id, exc)
            yield SSE_DONE
        finally:
            await generation.close()
            self.admission.release()


def _finish(done: Done, calls: list[ToolCall]) -> str:
    return "tool_calls" if calls else done.metrics.finish_reason


def create_app(
    backend: Backend,
    *,
    model_id: str,
    max_concurrency: int = 1,
    max_queue: int = 64,
    limits: RequestLimits | None = None,
    close_backend: bool = False,
) -> Starlette:
    """An ASGI app serving ``backend`` as ``model_id``; ``close_backend`` closes it at shutdown."""
    server = EngineServer(
        backend,
        model_id=model_id,
        max_concurrency=max_concurrency,
        max_queue=max_queue,
        limits=limits or RequestLimits(),
        close_backend=close_backend,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # a health check starts loading a lazy backend (the ONNX model) before the first request
        with contextlib.suppress(Exception):
            await asyncio.wait_for(backend.health(), 5.0)
        yield
        if server.close_backend:
            await backend.aclose()

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", server.chat_completions, methods=["POST"]),
            Route("/v1/completions", server.completions, methods=["POST"]),
            Route("/v1/models", server.models, methods=["GET"]),
            Route("/v1/models/{model_id:path}", server.model, methods=["GET"]),
            Route("/health", server.health, methods=["GET"]),
            Route("/metrics", server.prometheus, methods=["GET"]),
        ],
        lifespan=lifespan,
        middleware=[Middleware(JsonServerErrors, metrics=server.metrics)],
        exception_handlers={HTTPException: http_error},
    )
    app.state.engine = server
    return app
