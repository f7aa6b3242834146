"""Errors in OpenAI's shape: the problem a request has, its JSON body, and the ASGI pieces that
answer every failure (unknown routes, unexpected exceptions) with such a body."""

from __future__ import annotations

import logging
import math

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backends.base import ChatRequest
from backends.errors import (
    BackendError,
    BackendResponseError,
    BackendUnavailable,
    ContextOverflow,
    InvalidRequest,
    ModelNotFound,
)
from engines.onnx_tools import tool_guidance
from engines.scheduler import QueueFull
from runtime.kinds import is_grammar_error
from serve.metrics import ServerMetrics

log = logging.getLogger("slm_playground.serve")


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
        self.retry_after_s: float | None = None
        """Set for a 429: the Retry-After header's seconds."""


def error_body(message: str, *, type_: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def problem_from_backend(exc: BackendError) -> RequestProblem:
    message = exc.message + (f" ({exc.hint})" if exc.hint else "")
    if isinstance(exc, QueueFull):  # the in-process scheduler's queue: say when to come back
        problem = RequestProblem(message, status=429, type_="rate_limit_error", code="queue_full")
        problem.retry_after_s = exc.retry_after_s
        return problem
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


def problem_for(exc: BackendError, request: ChatRequest) -> RequestProblem:
    """problem_from_backend, naming the parameter whose schema the grammar builder refused."""
    problem = problem_from_backend(exc)
    if isinstance(exc, InvalidRequest) and is_grammar_error(exc):
        forced = tool_guidance(request.tools, request.tool_choice) is not None
        problem.param = "tools" if forced else "response_format"
    return problem


def error_response(problem: RequestProblem, headers: dict[str, str] | None = None) -> JSONResponse:
    body = error_body(problem.message, type_=problem.type, param=problem.param, code=problem.code)
    if problem.retry_after_s is not None:
        headers = {**(headers or {}), "Retry-After": str(max(1, math.ceil(problem.retry_after_s)))}
    return JSONResponse(body, status_code=problem.status, headers=headers)


def internal_error() -> JSONResponse:
    problem = RequestProblem(
        "the server hit an internal error; it is logged, please report it", status=500, type_="server_error"
    )
    return error_response(problem)


class JsonServerErrors:
    """Catches what the handlers did not: logs the traceback, answers an OpenAI-shaped 500 and
    counts it, and returns normally so uvicorn keeps the connection open."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            self.metrics.count_request(500)
            if not started:
                await internal_error()(scope, receive, send)


async def http_error(request: Request, exc: Exception) -> Response:
    """Unknown routes and wrong methods, in OpenAI's shape (it says "Invalid URL")."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        message = f"Invalid URL ({request.method} {request.url.path})"
    elif status == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = exc.detail if isinstance(exc, HTTPException) else "error"
    kind = "invalid_request_error" if status < 500 else "server_error"
    headers = getattr(exc, "headers", None)
    return JSONResponse(error_body(message, type_=kind), status_code=status, headers=headers)
