"""OpenAI-compatible HTTP backend: vLLM first, also llama.cpp's server or any /v1 server.

Transport is the official ``openai`` AsyncOpenAI client (no retries: a retry would hide a dead
server behind minutes of waiting); parsing is backends.wire. vLLM with the phi4_mini_json
tool parser drops deltas when streaming (vLLM #18257), so ``flavor="vllm"`` requests that carry
tools are sent without streaming and replayed as events.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx
import openai

from backends.base import Backend, ChatRequest, Health, Message, ModelInfo, SamplingOptions, StreamEvent
from backends.errors import (
    BackendError,
    BackendResponseError,
    BackendUnavailable,
    ContextOverflow,
    InvalidRequest,
    ModelNotFound,
)
from backends.wire import (
    OpenAIStreamState,
    WireError,
    completion_events,
    parse_context_overflow,
    server_message,
)

Flavor = Literal["openai", "vllm"]
TOOL_FLAGS_HINT = (
    "start vLLM with --enable-auto-tool-choice --tool-call-parser phi4_mini_json, or send no tools"
)


def normalize_base_url(base_url: str) -> str:
    """``http://host:8000`` -> ``http://host:8000/v1``; a URL with a path is kept as given."""
    url = base_url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if parts.path in ("", "/"):
        url = urlunsplit(parts._replace(path="/v1"))
    return url


def server_root(base_url: str) -> str:
    """Where /health lives: the base URL without its trailing /v1."""
    return base_url[: -len("/v1")] if base_url.endswith("/v1") else base_url


def openai_messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in messages:
        item: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.tool_calls:
            item["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for call in message.tool_calls
            ]
        if message.role == "tool":
            item["tool_call_id"] = message.tool_call_id or ""
            if message.name:
                item["name"] = message.name
        out.append(item)
    return out


def sampling_params(options: SamplingOptions) -> tuple[dict[str, Any], dict[str, Any]]:
    """(create() keyword arguments, extra_body): top_k is not an OpenAI field, vLLM and
    llama.cpp read it from the body."""
    params: dict[str, Any] = {
        "temperature": options.temperature,
        "top_p": options.top_p,
        "max_tokens": options.max_new_tokens,
    }
    if options.seed is not None:
        params["seed"] = options.seed
    if options.stop:
        params["stop"] = list(options.stop)
    if (response_format := openai_response_format(options)) is not None:
        params["response_format"] = response_format
    extra = {"top_k": options.top_k} if options.top_k else {}
    return params, extra


def openai_response_format(options: SamplingOptions) -> dict[str, Any] | None:
    """The JSON output setting as OpenAI's response_format (None: free text, the default)."""
    if not options.json_output:
        return None
    if options.json_schema is None:
        return {"type": "json_object"}
    return {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": options.json_schema, "strict": True},
    }


def map_openai_error(
    backend: str,
    exc: Exception,
    *,
    model: str,
    base_url: str,
    flavor: Flavor,
    available: list[str] | None = None,
    started: bool = False,
    responded: bool = False,
    read_timeout_s: float | None = None,
) -> BackendError:
    """The one place an openai/transport failure becomes a typed error with a hint.

    ``responded``: the server sent its headers; ``started``: some of the answer arrived.
    """
    start_hint = (
        f"is the server running? start it with `vllm serve <model>` or check VLLM_BASE_URL (now {base_url})"
        if flavor == "vllm"
        else f"is the server running at {base_url}? check the endpoint URL"
    )
    if isinstance(exc, WireError):
        return BackendResponseError(backend, str(exc), hint="the text received so far is kept; try again")
    if isinstance(exc, openai.APITimeoutError):
        cause = type(exc.__cause__).__name__ if exc.__cause__ else ""
        if "Connect" in cause:
            return BackendUnavailable(backend, f"could not connect to {base_url} in time", hint=start_hint)
        waited = f"{read_timeout_s:g} s" if read_timeout_s else "the read timeout"
        if started:
            return BackendResponseError(
                backend,
                f"the server stopped sending mid-answer (nothing for {waited})",
                hint="text so far is kept",
            )
        return BackendUnavailable(
            backend,
            f"the server accepted the request but sent nothing for {waited}",
            hint="it may be overloaded or still loading the model; raise the read timeout or try again",
        )
    if isinstance(exc, openai.APIConnectionError):
        if started:
            return BackendResponseError(
                backend, "the connection dropped mid-answer", hint="the text received so far is kept"
            )
        if responded:
            return BackendResponseError(
                backend,
                "the server accepted the request, then closed the stream without answering",
                hint="see the server's log; a prompt longer than its context can do this",
            )
        return BackendUnavailable(backend, f"cannot reach {base_url}", hint=start_hint)
    if not isinstance(exc, openai.APIStatusError):
        message = server_message(getattr(exc, "body", None), str(exc))
        where = "mid-answer" if started else "mid-stream"
        return BackendResponseError(
            backend,
            f"the server reported an error {where}: {message}",
            hint="the text received so far is kept",
        )
    status = exc.status_code
    body = exc.body
    message = server_message(body, exc.message)
    code = body.get("code") if isinstance(body, Mapping) else None
    if status == 404 and ("model" in message.lower() or code == "model_not_found"):
        return _model_not_found(backend, model, available)
    if code == "model_not_found":  # llama-cpp-python answers 400
        return _model_not_found(backend, model, available)
    if "validation error" in message.lower():  # llama-cpp-python: 500 + pydantic text + traceback
        return InvalidRequest(backend, message.split("\n\n")[0].strip(), hint="check the request's fields")
    if status in (400, 413, 422):
        if numbers := parse_context_overflow(message, body):
            return ContextOverflow(
                backend,
                prompt_tokens=numbers.prompt_tokens,
                context_length=numbers.context_length,
                reserved=numbers.reserved,
            )
        if "enable-auto-tool-choice" in message:
            return InvalidRequest(backend, message, hint=TOOL_FLAGS_HINT)
        if "max_model_len" in message:
            return InvalidRequest(backend, message, hint="lower max new tokens")
        return InvalidRequest(backend, message, hint="check the sampling settings")
    if status in (401, 403):
        return BackendResponseError(backend, message, status=status, hint="check the endpoint's API key")
    if status == 404:
        return BackendResponseError(
            backend, message, status=status, hint=f"is {base_url} the right base URL? it usually ends in /v1"
        )
    return BackendResponseError(backend, message, status=status)


def _model_not_found(backend: str, model: str, available: list[str] | None) -> ModelNotFound:
    return ModelNotFound(backend, model, available or [], hint="pick one of the listed models")


class OpenAICompatBackend(Backend):
    kind = "openai"
    supports_tools = True

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        api_key: str | None = None,
        model: str | None = None,
        flavor: str = "openai",
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 120.0,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(name)
        if flavor not in ("openai", "vllm"):
            raise ValueError(f"unknown flavor {flavor!r}: use openai or vllm")
        self.flavor: Flavor = flavor  # type: ignore[assignment]
        self.base_url = normalize_base_url(base_url)
        self.model = model
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.extra_body = dict(extra_body or {})
        """Server-specific request fields, e.g. {"min_p": 0.05} or llama.cpp's {"repeat_penalty": 1.1}."""
        self._api_key = api_key
        self._models: list[ModelInfo] | None = None
        self._client = openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key=api_key or "EMPTY",  # vLLM without --api-key accepts anything
            timeout=openai.Timeout(read_timeout_s, connect=connect_timeout_s),
            max_retries=0,
        )

    def default_model(self) -> str:
        if self.model:
            return self.model
        return self._models[0].id if self._models else ""

    def _error(self, exc: Exception, model: str, **progress: Any) -> BackendError:
        return map_openai_error(
            self.name,
            exc,
            model=model,
            base_url=self.base_url,
            flavor=self.flavor,
            read_timeout_s=self.read_timeout_s,
            **progress,
        )

    async def list_models(self) -> list[ModelInfo]:
        try:
            page = await self._client.models.list()
        except openai.OpenAIError as exc:
            raise self._error(exc, self.model or "") from exc
        models = []
        for item in page.data:
            raw = item.to_dict()
            context = raw.get("max_model_len")
            details = {k: str(raw[k]) for k in ("owned_by", "root") if raw.get(k)}
            models.append(
                ModelInfo(
                    item.id, context_length=context if isinstance(context, int) else None, details=details
                )
            )
        self._models = models
        return models

    async def _resolve_model(self, requested: str | None) -> str:
        """The model to ask for: the request's, ours, or the server's first; checked against
        the listing because some servers (llama-cpp-python) silently answer with another."""
        wanted = requested or self.model
        if self._models is None or (wanted and wanted not in {m.id for m in self._models}):
            try:
                await self.list_models()
            except BackendUnavailable:
                raise
            except BackendError:
                if wanted:
                    return wanted  # server without a usable /v1/models: trust the caller
                raise
        ids = [m.id for m in self._models or ()]
        if not wanted:
            if not ids:
                raise BackendResponseError(
                    self.name, "the server lists no models", hint="load a model into it"
                )
            return ids[0]
        if ids and wanted not in ids:
            raise _model_not_found(self.name, wanted, ids)
        return wanted

    async def _available(self) -> list[str]:
        try:
            return [m.id for m in await self.list_models()]
        except BackendError:
            return []

    def _request_params(self, request: ChatRequest, model: str) -> dict[str, Any]:
        params, extra = sampling_params(request.options)
        params.update(model=model, messages=openai_messages(request.messages))
        if request.tools:
            params["tools"] = [tool.openai_schema() for tool in request.tools]
            params["tool_choice"] = (
                request.tool_choice
                if request.tool_choice in ("auto", "none", "required")
                else {"type": "function", "function": {"name": request.tool_choice}}
            )
        extra_body = {**extra, **self.extra_body}
        if extra_body:
            params["extra_body"] = extra_body
        return params

    async def _stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        model = await self._resolve_model(request.model)
        params = self._request_params(request, model)
        responded = started = False
        try:
            if request.tools and self.flavor == "vllm":
                response = await self._client.chat.completions.create(**params, stream=False)
                for event in completion_events(response.to_dict()):
                    yield event
                return
            stream = await self._client.chat.completions.create(
                **params, stream=True, stream_options={"include_usage": True}
            )
            responded = True
            state = OpenAIStreamState()
            try:
                async for chunk in stream:
                    for event in state.handle_chunk(chunk.to_dict()):
                        started = True
                        yield event
            finally:
                await stream.close()  # also when the caller stops early: frees the connection
            for event in state.finish_events():
                yield event
        except (openai.OpenAIError, WireError) as exc:
            available = await self._available() if isinstance(exc, openai.NotFoundError) else None
            raise self._error(exc, model, started=started, responded=responded, available=available) from exc

    async def health(self) -> Health:
        """GET /health where the server has it (vLLM, llama.cpp), else list the models."""
        timeout = httpx.Timeout(self.connect_timeout_s)
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        try:
            async with httpx.AsyncClient(timeout=timeout, headers=headers) as client:
                response = await client.get(server_root(self.base_url) + "/health")
        except httpx.HTTPError as exc:
            return Health("unreachable", f"cannot reach {self.base_url}: {type(exc).__name__}")
        if response.status_code == 503:
            return Health("loading", "the server is up but its engine is not ready (503 from /health)")
        try:
            models = await self.list_models()
        except BackendError as exc:
            if response.status_code == 200:
                return Health("ready", "/health ok; model list unavailable")
            return Health("unreachable", str(exc))
        names = ", ".join(m.id for m in models) or "no models"
        return Health("ready", f"serving {names}")

    async def aclose(self) -> None:
        await self._client.close()
