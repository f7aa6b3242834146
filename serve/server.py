"""create_app(): any Backend behind an OpenAI-compatible HTTP API (the engine server).

Routes: POST /v1/chat/completions (SSE streaming or one JSON body), GET /v1/models,
GET /health, GET /metrics. The backend's own stream is driven by a separate asyncio task
(:class:`Generation`); the HTTP side only reads from it. A client that goes away cancels that
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
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from backends.base import Backend, ChatEvent, ChatRequest, Done, ReasoningDelta, TextDelta, ToolCall
from backends.base import ToolCallEvent as ToolCallEv
from backends.errors import (
    BackendError,
    BackendResponseError,
    BackendUnavailable,
    ContextOverflow,
    InvalidRequest,
    ModelNotFound,
)
from backends.scheduler import CLIENT, QueueFull
from serve.metrics import ServerMetrics, engine_gauges
from serve.protocol import (
    SSE_DONE,
    ChunkWriter,
    Limits,
    RequestProblem,
    completion_json,
    error_body,
    new_completion_id,
    parse_request,
    sse,
    to_chat_request,
)

log = logging.getLogger("slm_playground.serve")
T = TypeVar("T")
_END = object()


class ClientGone(Exception):
    """Raised when the client disconnected before its answer started."""


def problem_from_backend(exc: BackendError) -> RequestProblem:
    message = exc.message + (f" ({exc.hint})" if exc.hint else "")
    if isinstance(exc, QueueFull):
        return RequestProblem(message, status=429, type_="rate_limit_error", code="queue_full")
    if isinstance(exc, ContextOverflow):
        return RequestProblem(message, param="messages", code="context_length_exceeded")
    if isinstance(exc, ModelNotFound):
        return RequestProblem(message, status=404, param="model", code="model_not_found")
    if isinstance(exc, InvalidRequest):
        return RequestProblem(message)
    if isinstance(exc, BackendUnavailable):
        return RequestProblem(message, status=503, type_="server_error", code="backend_unavailable")
    if isinstance(exc, BackendResponseError) and exc.status and 400 <= exc.status < 600:
        kind = "invalid_request_error" if exc.status < 500 else "server_error"
        return RequestProblem(message, status=exc.status, type_=kind)
    return RequestProblem(message, status=500, type_="server_error")


def backend_error_response(exc: BackendError) -> JSONResponse:
    """The HTTP error for a backend's refusal; a full queue says when to retry."""
    retry = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, QueueFull) else None
    return error_response(problem_from_backend(exc), headers=retry)


def error_response(problem: RequestProblem, headers: dict[str, str] | None = None) -> JSONResponse:
    body = error_body(problem.message, type_=problem.type, param=problem.param, code=problem.code)
    return JSONResponse(body, status_code=problem.status, headers=headers)


class Admission:
    """A bounded queue in front of ``slots`` generation slots (counts feed /metrics)."""

    def __init__(self, slots: int, queue: int, metrics: ServerMetrics) -> None:
        if slots < 1 or queue < 0:
            raise ValueError("max_concurrency must be >= 1 and max_queue >= 0")
        self.slots, self.queue = slots, queue
        self._metrics = metrics
        self._semaphore = asyncio.Semaphore(slots)

    def reserve(self) -> bool:
        """Take a place in the queue, or say no when the queue is full."""
        if self._metrics.running + self._metrics.waiting >= self.slots + self.queue:
            return False
        self._metrics.waiting += 1
        return True

    async def acquire(self) -> None:
        try:
            await self._semaphore.acquire()
        finally:
            self._metrics.waiting -= 1
        self._metrics.running += 1

    def release(self) -> None:
        self._metrics.running -= 1
        self._semaphore.release()


class Generation:
    """One backend stream pumped by its own task into a queue the HTTP side reads."""

    def __init__(self, backend: Backend, request: ChatRequest) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._task = asyncio.create_task(self._pump(backend, request))

    async def _pump(self, backend: Backend, request: ChatRequest) -> None:
        try:
            async for event in backend.chat(request):
                self._queue.put_nowait(event)
            self._queue.put_nowait(_END)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # handed to the reader, who maps it to an HTTP error
            self._queue.put_nowait(exc)

    async def next(self) -> ChatEvent | None:
        """The next event; None after the last one; re-raises the backend's error."""
        item = await self._queue.get()
        if item is _END:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    async def close(self) -> None:
        """Stop the backend (closing its iterator) and wait until it has let go."""
        if not self._task.done():
            self._task.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.wait([self._task])


async def _wait_for_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await ``work`` but give up (raising ClientGone) as soon as the client disconnects."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_wait_for_disconnect(request))
    try:
        await asyncio.wait([task, watcher], return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    raise ClientGone


class EngineServer:
    """The request handlers and their shared state; ``create_app`` wires them to routes."""

    def __init__(
        self,
        backend: Backend,
        *,
        model_id: str,
        max_concurrency: int,
        max_queue: int,
        limits: Limits,
        close_backend: bool,
    ) -> None:
        self.backend = backend
        self.model_id = model_id
        self.limits = limits
        self.metrics = ServerMetrics(model_id)
        self.admission = Admission(max_concurrency, max_queue, self.metrics)
        self.close_backend = close_backend
        self.created = int(time.time())

    # --- routes ---------------------------------------------------------------------------

    async def chat_completions(self, request: Request) -> Response:
        response = await self._chat(request)
        self.metrics.count_request(response.status_code)
        return response

    async def models(self, request: Request) -> Response:
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
        return JSONResponse({"object": "list", "data": [card]})

    async def health(self, request: Request) -> Response:
        try:
            health = await asyncio.wait_for(self.backend.health(), 10.0)
        except Exception as exc:  # health reports, it never fails the probe with a traceback
            return JSONResponse({"status": "unreachable", "detail": str(exc)}, status_code=503)
        status_code = 200 if health.status == "ready" else 503
        return JSONResponse({"status": health.status, "detail": health.detail}, status_code=status_code)

    async def prometheus(self, request: Request) -> Response:
        stats = getattr(self.backend, "stats", None)
        body = self.metrics.render() + (engine_gauges(self.model_id, stats()) if stats else "")
        return PlainTextResponse(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    # --- chat -----------------------------------------------------------------------------

    async def _chat(self, request: Request) -> Response:
        try:
            incoming = parse_request(await request.body())
            if incoming.model != self.model_id:
                raise RequestProblem(
                    f"The model `{incoming.model}` does not exist. This server serves `{self.model_id}`.",
                    status=404,
                    param="model",
                    code="model_not_found",
                )
            chat_request = to_chat_request(incoming, self.limits)
        except RequestProblem as problem:
            return error_response(problem)
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
        completion_id = new_completion_id()
        CLIENT.set(request.client.host if request.client else "")  # the in-process scheduler's fairness key
        generation = Generation(self.backend, chat_request)
        handed_over = False
        try:
            if incoming.stream:
                include_usage = bool(incoming.stream_options and incoming.stream_options.include_usage)
                try:
                    first = await unless_disconnected(request, generation.next())
                except BackendError as exc:
                    return backend_error_response(exc)
                writer = ChunkWriter(completion_id, self.model_id, int(time.time()))
                body = self._sse_body(generation, first, writer, include_usage)
                handed_over = True  # the body's finally closes the generation and frees the slot
                return StreamingResponse(
                    body, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
                )
            try:
                payload = await unless_disconnected(request, self._collect(generation, completion_id))
                return JSONResponse(payload)
            except BackendError as exc:
                return backend_error_response(exc)
        except ClientGone:
            log.info("%s: client disconnected before the answer started", completion_id)
            return Response(status_code=499)
        finally:
            if not handed_over:
                await generation.close()
                self.admission.release()

    async def _collect(self, generation: Generation, completion_id: str) -> dict:
        text, reasoning, calls = [], [], []
        while (event := await generation.next()) is not None:
            if isinstance(event, TextDelta):
                text.append(event.text)
            elif isinstance(event, ReasoningDelta):
                reasoning.append(event.text)
            elif isinstance(event, ToolCallEv):
                calls.append(event.call)
            elif isinstance(event, Done):
                self._record(completion_id, event)
                return completion_json(
                    completion_id=completion_id,
                    model=self.model_id,
                    text="".join(text),
                    reasoning="".join(reasoning),
                    tool_calls=calls,
                    finish_reason=_finish(event, calls),
                    prompt_tokens=event.metrics.prompt_tokens,
                    completion_tokens=event.metrics.completion_tokens,
                )
        raise BackendResponseError(self.backend.name, "the stream ended without a final usage record")

    async def _sse_body(
        self, generation: Generation, first: ChatEvent | None, writer: ChunkWriter, include_usage: bool
    ) -> AsyncIterator[bytes]:
        calls: list[ToolCall] = []
        try:
            yield sse(writer.role())
            event = first
            while event is not None:
                if isinstance(event, TextDelta):
                    yield sse(writer.text(event.text))
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
        except BackendError as exc:  # mid-stream: vLLM's shape, an error event then [DONE]
            problem = problem_from_backend(exc)
            log.warning("%s: stream failed: %s", writer.completion_id, exc)
            yield sse(error_body(problem.message, type_=problem.type, param=problem.param, code=problem.code))
            yield SSE_DONE
        finally:
            await generation.close()
            self.admission.release()

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


def _finish(done: Done, calls: list[ToolCall]) -> str:
    return "tool_calls" if calls else done.metrics.finish_reason


def create_app(
    backend: Backend,
    *,
    model_id: str,
    max_concurrency: int = 1,
    max_queue: int = 64,
    limits: Limits | None = None,
    close_backend: bool = False,
) -> Starlette:
    """An ASGI app serving ``backend`` as ``model_id``; ``close_backend`` closes it at shutdown."""
    server = EngineServer(
        backend,
        model_id=model_id,
        max_concurrency=max_concurrency,
        max_queue=max_queue,
        limits=limits or Limits(),
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
            Route("/v1/models", server.models, methods=["GET"]),
            Route("/health", server.health, methods=["GET"]),
            Route("/metrics", server.prometheus, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.engine = server
    return app
