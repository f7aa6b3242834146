"""Ollama backend on the official ``ollama`` AsyncClient: /api/chat NDJSON streaming.

Ollama reports its own timings in the final chunk (nanoseconds); they travel in Usage.server
and are shown beside the client-side metrics Backend.chat measures. Besides chatting, this
module pulls models (with progress) and creates the seed's preset models via /api/create.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx
import ollama

from backends.base import Backend, ChatRequest, Health, Message, ModelInfo, SamplingOptions, StreamEvent
from backends.errors import (
    BackendError,
    BackendResponseError,
    BackendUnavailable,
    InvalidRequest,
    ModelNotFound,
)
from backends.wire import OllamaStreamState, WireError

START_HINT = "start Ollama with `ollama serve` (or the ollama/ollama container) and check OLLAMA_HOST"


@dataclass(frozen=True, slots=True)
class PullProgress:
    status: str
    completed: int | None = None
    total: int | None = None
    digest: str | None = None

    @property
    def fraction(self) -> float | None:
        return self.completed / self.total if self.completed is not None and self.total else None


@dataclass(frozen=True, slots=True)
class PresetModel:
    """An Ollama model derived from a base with its own system prompt and parameters."""

    name: str
    base: str
    system: str
    parameters: Mapping[str, Any]


SEED_PRESET_MODELS: tuple[PresetModel, ...] = (
    PresetModel(
        "phi4-mini-reasoning",
        base="phi4-mini",
        system=(
            "You are an expert reasoning assistant specialized in mathematics, logic, and code analysis.\n"
            "Always think step by step and show your work clearly.\n"
            "For mathematical problems, break down each calculation.\n"
            "For coding problems, explain your approach and include comments."
        ),
        parameters={"temperature": 0.3, "top_p": 0.8},
    ),
    PresetModel(
        "phi4-mini-coder",
        base="phi4-mini",
        system=(
            "You are a coding assistant specialized in writing clean, efficient, and well-documented code.\n"
            "Always include detailed comments explaining your approach.\n"
            "Follow best practices for the target programming language.\n"
            "Provide examples and test cases when helpful."
        ),
        parameters={"temperature": 0.5, "top_p": 0.9},
    ),
)
"""The two variants the seed document builds with Modelfiles, as /api/create fields."""


def ollama_base_url(host: str) -> str:
    """``localhost`` / ``0.0.0.0:11434`` / ``http://box`` -> ``http://host:port`` (11434 by default)."""
    url = host.strip().rstrip("/") or "http://127.0.0.1:11434"
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    hostname = parts.hostname or "127.0.0.1"
    if hostname == "0.0.0.0":
        hostname = "127.0.0.1"  # a bind address, not somewhere to connect to
    port = parts.port or (443 if parts.scheme == "https" else 11434)
    netloc = f"[{hostname}]:{port}" if ":" in hostname else f"{hostname}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def ollama_messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in messages:
        item: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.tool_calls:
            item["tool_calls"] = [
                {"function": {"name": call.name, "arguments": dict(call.arguments)}}
                for call in message.tool_calls
            ]
        if message.role == "tool" and message.name:
            item["tool_name"] = message.name
        out.append(item)
    return out


def ollama_options(options: SamplingOptions, num_ctx: int | None = None) -> dict[str, Any]:
    """Our sampling options as Ollama ``options``; unset ones keep the server's defaults."""
    mapped: dict[str, Any] = {
        "temperature": options.temperature,
        "top_p": options.top_p,
        "num_predict": options.max_new_tokens,
    }
    if options.top_k:
        mapped["top_k"] = options.top_k
    if options.seed is not None:
        mapped["seed"] = options.seed
    if options.stop:
        mapped["stop"] = list(options.stop)
    if num_ctx:
        mapped["num_ctx"] = num_ctx
    return mapped


def ollama_format(options: SamplingOptions) -> Literal["json"] | dict[str, Any] | None:
    """The JSON output setting as Ollama's ``format``: "json", or the schema itself."""
    if not options.json_output:
        return None
    return "json" if options.json_schema is None else dict(options.json_schema)


def map_ollama_error(
    backend: str,
    exc: Exception,
    *,
    model: str,
    host: str,
    available: list[str] | None = None,
    started: bool = False,
    read_timeout_s: float | None = None,
) -> BackendError:
    """The one place an ollama/transport failure becomes a typed error with a hint."""
    if isinstance(exc, WireError | json.JSONDecodeError):
        return BackendResponseError(backend, f"broken stream: {exc}", hint="the text received so far is kept")
    if isinstance(exc, ConnectionError | httpx.ConnectError):
        return BackendUnavailable(backend, f"cannot reach Ollama at {host}", hint=START_HINT)
    if isinstance(exc, httpx.ConnectTimeout):
        return BackendUnavailable(backend, f"could not connect to Ollama at {host} in time", hint=START_HINT)
    if isinstance(exc, httpx.TimeoutException):
        waited = f"{read_timeout_s:g} s" if read_timeout_s else "the read timeout"
        if started:
            return BackendResponseError(
                backend,
                f"Ollama stopped sending mid-answer (nothing for {waited})",
                hint="text so far is kept",
            )
        return BackendUnavailable(
            backend,
            f"Ollama accepted the request but sent nothing for {waited}",
            hint="it may still be loading the model; raise the read timeout or try again",
        )
    if isinstance(exc, httpx.HTTPError):
        where = "mid-answer" if started else "before answering"
        return BackendResponseError(
            backend,
            f"the connection to Ollama broke {where} ({type(exc).__name__})",
            hint="text so far is kept",
        )
    if not isinstance(exc, ollama.ResponseError):
        return BackendResponseError(backend, str(exc))
    # the client already unwrapped {"error": "..."} into .error
    message = exc.error if isinstance(exc.error, str) and exc.error else str(exc)
    status = exc.status_code
    if status == 404 and "not found" in message:
        return ModelNotFound(backend, model, available or [], hint=f"run `ollama pull {model}`")
    if status == -1:  # an {"error": ...} line mid-stream (HTTP status was 200)
        return BackendResponseError(backend, message, hint="the text received so far is kept")
    if status == 400:
        hint = (
            "choose a model with tool support or send no tools" if "does not support tools" in message else ""
        )
        return InvalidRequest(backend, message, hint=hint)
    return BackendResponseError(backend, message, status=status)


class OllamaBackend(Backend):
    kind = "ollama"
    supports_tools = True

    def __init__(
        self,
        name: str,
        *,
        host: str,
        model: str | None = None,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 120.0,
        num_ctx: int | None = None,
        keep_alive: str | float | None = None,
    ) -> None:
        super().__init__(name)
        self.host = ollama_base_url(host)
        self.model = model
        self.num_ctx = num_ctx
        """Context window to request; None keeps the model's default (often 2048 or 4096)."""
        self.keep_alive = keep_alive
        self.read_timeout_s = read_timeout_s
        self._models: list[ModelInfo] | None = None
        self._timeout = httpx.Timeout(read_timeout_s, connect=connect_timeout_s)
        self._client = ollama.AsyncClient(host=self.host, timeout=self._timeout)

    def default_model(self) -> str:
        if self.model:
            return self.model
        return self._models[0].id if self._models else ""

    def _error(self, exc: Exception, model: str = "", **kwargs: Any) -> BackendError:
        return map_ollama_error(
            self.name, exc, model=model, host=self.host, read_timeout_s=self.read_timeout_s, **kwargs
        )

    async def list_models(self) -> list[ModelInfo]:
        try:
            listing = await self._client.list()
        except (ollama.ResponseError, ConnectionError, httpx.HTTPError) as exc:
            raise self._error(exc) from exc
        models = []
        for item in listing.models:
            details = item.details.model_dump(exclude_none=True) if item.details else {}
            shown = {
                k: str(details[k])
                for k in ("format", "family", "parameter_size", "quantization_level")
                if details.get(k)
            }
            models.append(ModelInfo(item.model or "", details=shown))
        self._models = models
        return models

    async def show_model(self, model: str) -> ModelInfo:
        """Details of one model from /api/show, with its context length when reported."""
        try:
            shown = await self._client.show(model)
        except (ollama.ResponseError, ConnectionError, httpx.HTTPError) as exc:
            raise self._error(exc, model, available=await self._available()) from exc
        info = shown.modelinfo or {}
        context = next((v for k, v in info.items() if k.endswith(".context_length")), None)
        details = shown.details.model_dump(exclude_none=True) if shown.details else {}
        shown_details = {k: str(v) for k, v in details.items() if isinstance(v, str)}
        if shown.capabilities:
            shown_details["capabilities"] = ", ".join(shown.capabilities)
        return ModelInfo(
            model, context_length=context if isinstance(context, int) else None, details=shown_details
        )

    async def _available(self) -> list[str]:
        try:
            return [m.id for m in await self.list_models()]
        except BackendError:
            return []

    async def _resolve_model(self, requested: str | None) -> str:
        if requested or self.model:
            return requested or self.model or ""
        models = self._models if self._models else await self.list_models()
        if not models:
            raise ModelNotFound(self.name, "(default)", [], hint="run `ollama pull phi4-mini` first")
        return models[0].id

    async def _stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        model = await self._resolve_model(request.model)
        state = OllamaStreamState()
        started = False
        try:
            stream = await self._client.chat(
                model=model,
                messages=ollama_messages(request.messages),
                tools=[tool.openai_schema() for tool in request.tools] or None,
                options=ollama_options(request.options, self.num_ctx),
                format=ollama_format(request.options),
                keep_alive=self.keep_alive,
                stream=True,
            )
            try:
                async for chunk in stream:
                    for event in state.handle_chunk(chunk.model_dump(exclude_none=True)):
                        started = True
                        yield event
            finally:
                await stream.aclose()  # type: ignore[attr-defined]  # closes the HTTP response
            state.check_finished()
        except (
            ollama.ResponseError,
            ConnectionError,
            httpx.HTTPError,
            WireError,
            json.JSONDecodeError,
        ) as exc:
            not_found = isinstance(exc, ollama.ResponseError) and exc.status_code == 404
            available = await self._available() if not_found else None
            raise self._error(exc, model, available=available, started=started) from exc

    async def warm_up(self) -> float:
        """Load the model into Ollama's memory before the clock starts: a chat with no messages,
        as Ollama documents for loading one (it answers done_reason "load"). The seconds are the
        call's: Ollama's load reply carries no durations."""
        model = await self._resolve_model(None)
        started = time.perf_counter()
        try:
            await self._client.chat(model=model, messages=[], keep_alive=self.keep_alive, stream=False)
        except (ollama.ResponseError, ConnectionError, httpx.HTTPError, json.JSONDecodeError) as exc:
            not_found = isinstance(exc, ollama.ResponseError) and exc.status_code == 404
            raise self._error(exc, model, available=await self._available() if not_found else None) from exc
        return time.perf_counter() - started

    async def health(self) -> Health:
        """GET /api/version (the ollama client has no call for it)."""
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                response = await client.get(self.host + "/api/version")
            response.raise_for_status()
            version = response.json().get("version", "?")
        except httpx.HTTPError as exc:
            return Health("unreachable", str(self._error(exc)))
        except ValueError:
            return Health(
                "unreachable", f"{self.host} answered /api/version with something that is not Ollama's"
            )
        return Health("ready", f"Ollama {version}")

    async def pull(self, model: str) -> AsyncIterator[PullProgress]:
        """Download a model; yields progress lines until "success"."""
        try:
            stream = await self._client.pull(model, stream=True)
            try:
                async for part in stream:
                    yield PullProgress(part.status or "", part.completed, part.total, part.digest)
            finally:
                await stream.aclose()  # type: ignore[attr-defined]
        except (ollama.ResponseError, ConnectionError, httpx.HTTPError, json.JSONDecodeError) as exc:
            raise self._error(exc, model) from exc

    async def create_preset_model(
        self, name: str, *, base: str, system: str, parameters: Mapping[str, Any]
    ) -> AsyncIterator[str]:
        """Create ``name`` from ``base`` with a system prompt and parameters; yields statuses."""
        try:
            stream = await self._client.create(
                name, from_=base, system=system, parameters=dict(parameters), stream=True
            )
            try:
                async for part in stream:
                    yield part.status or ""
            finally:
                await stream.aclose()  # type: ignore[attr-defined]
        except (ollama.ResponseError, ConnectionError, httpx.HTTPError, json.JSONDecodeError) as exc:
            raise self._error(exc, base, available=await self._available()) from exc

    async def aclose(self) -> None:
        await self._client.close()
