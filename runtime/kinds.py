"""The table of backend kinds: every place that needs to know which kinds exist reads it.

A kind declares its name, how a lane names it (``ollama:MODEL@HOST``), the environment
variables that configure an endpoint of it, the fields of the Backends tab's form, what it can
do, and a factory that imports its backend's module only when it builds one (so start-up
stays fast). The UI's kind dropdown, the lane parser, env parsing and CLI help all
read :data:`KINDS`. Adding a kind is one backend module plus one :func:`register` call below.

In-process kinds also answer, through :class:`InProcessQueue` (engines/in_process.py's base
implements it), how many requests run at once, how many wait, their stats and how to load
before timing; :func:`default_in_process` names the kind the app offers first. So the app,
Compare, the engine server and the benchmarks ask the table, never a kind by name.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from backends.base import Backend
    from runtime.settings import Endpoint, Settings


@dataclass(frozen=True)
class Target:
    """What a lane or endpoint points a kind at."""

    path: str = ""
    """In-process kinds: a model folder, file or hub id ("" = the kind's default)."""
    url: str = ""
    """Remote kinds: the server's base URL."""
    model: str = ""
    """Remote kinds: the model id to request ("" = the server's default)."""
    api_key: str = ""


Factory = Callable[[str, Target, "Settings"], "Backend"]


@dataclass(frozen=True)
class BackendKind:
    name: str
    summary: str
    in_process: bool
    lane_syntax: str
    """How a lane spec names it, e.g. ``ollama:MODEL@HOST``."""
    factory: Factory
    """Builds a backend; imports the backend's module inside, so start-up stays fast."""
    url_env: str = ""
    """Environment variable whose value adds an endpoint of this kind (remote kinds)."""
    key_env: str = ""
    form_fields: tuple[str, ...] = ()
    """Fields the Backends tab asks for when adding an endpoint of this kind."""
    supports_tools: bool = True
    requires: str = ""
    """A module that must be importable for the kind to be offered (an optional extra)."""
    default_scheme: str = "http://"
    has_default: Callable[[], bool] | None = None
    """In-process kinds: whether a default model is at hand (then the app offers a backend
    labelled with the kind's name, built on first use); None: the kind has no default."""
    default: bool = False
    """The in-process kind the app offers first (the chat's default backend, a bare lane)."""
    version: Callable[[], str] | None = None
    """In-process kinds: their runtime package's version, for run cards."""
    threads_setting: str = ""
    """In-process kinds: the Settings field holding the kind's CPU threads (0: every core)."""
    grammar_errors: Callable[[Exception], bool] | None = None
    """Whether an error is the kind's grammar builder refusing a JSON schema (a bad request)."""

    @property
    def available(self) -> bool:
        return not self.requires or _importable(self.requires)

    @property
    def offers_default(self) -> bool:
        return self.in_process and self.available and self.has_default is not None and self.has_default()

    def build(self, label: str, target: Target, settings: Settings) -> Backend:
        return self.factory(label, target, settings)


@functools.cache  # asked on every lane parse; a module search walks sys.path
def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@runtime_checkable
class InProcessQueue(Protocol):
    """What an in-process backend tells about its queue (engines.in_process.InProcessBackend)."""

    def capacity(self) -> int:
        """Requests that run at once."""
        ...

    def waiting(self) -> int:
        """Requests queued for a place."""
        ...

    def ahead(self) -> int:
        """How many requests a new one would wait behind (0: it starts at once)."""
        ...

    def busy(self) -> bool:
        """Whether a new request would wait in line."""
        ...

    def stats(self) -> dict[str, float]: ...

    async def warm_up(self) -> float: ...


def queue_of(backend: Any) -> InProcessQueue | None:
    """The backend's queue, when it runs in this process."""
    return backend if isinstance(backend, InProcessQueue) else None


KINDS: dict[str, BackendKind] = {}


def register(kind: BackendKind) -> BackendKind:
    if kind.name in KINDS:
        raise ValueError(f"backend kind {kind.name!r} is registered twice")
    KINDS[kind.name] = kind
    return kind


def kind(name: str) -> BackendKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown backend kind {name!r}; known: {', '.join(available_kinds())}") from None


def build_in_process(
    name: str, settings: Settings, *, path: str = "", threads: int = 0, label: str = ""
) -> Backend:
    """A backend of in-process kind ``name`` (benchmarks, the engine server), with ``threads``
    CPU threads through the kind's own setting (0: the settings' value)."""
    spec = kind(name)
    if not spec.in_process:
        raise ValueError(f"{name} is not an in-process kind")
    if threads and spec.threads_setting:
        settings = settings.with_overrides(**{spec.threads_setting: threads})
    return spec.build(label or name, Target(path=path), settings)


def kind_of(backend: Backend) -> BackendKind | None:
    """The table's entry for a backend (by its class's ``kind``), None for one not registered."""
    return KINDS.get(getattr(type(backend), "kind", ""))


def default_in_process() -> str:
    """The name of the in-process kind the app offers first."""
    found = [k.name for k in KINDS.values() if k.in_process and k.default]
    return found[0] if found else next(k.name for k in KINDS.values() if k.in_process)


def runtime_version(backend: Backend) -> str | None:
    """The in-process runtime's name and version for a run card; None for remote backends."""
    spec = kind_of(backend)
    return spec.version() if spec is not None and spec.version is not None else None


def is_grammar_error(exc: Exception) -> bool:
    """Whether any kind recognises ``exc`` as its grammar builder refusing a schema."""
    return any(k.grammar_errors(exc) for k in KINDS.values() if k.grammar_errors is not None)


def available_kinds(*, in_process: bool | None = None) -> list[str]:
    return [
        k.name for k in KINDS.values() if k.available and (in_process is None or k.in_process == in_process)
    ]


def endpoints_from_env(env: Mapping[str, str]) -> tuple[Endpoint, ...]:
    """One endpoint per remote kind whose URL variable is set, named after the kind."""
    from runtime.settings import Endpoint
    from runtime.urls import normalise_base_url

    found = []
    for k in KINDS.values():
        if k.in_process or not k.url_env or not (url := env.get(k.url_env, "").strip()):
            continue
        url = normalise_base_url(url, default_scheme=k.default_scheme)
        found.append(Endpoint(k.name, url, name=k.name, api_key=env.get(k.key_env, "") if k.key_env else ""))
    return tuple(found)


def lane_help() -> str:
    return ", ".join(k.lane_syntax for k in KINDS.values() if k.available)


# --- the registrations ----------------------------------------------------------------------------


def _onnx(label: str, target: Target, settings: Settings) -> Backend:
    from engines.onnx_engine import OnnxBackend
    from models.model_store import resolve_model_dir

    model_dir = resolve_model_dir(target.path or settings.model, home=settings.model_home)
    return OnnxBackend(
        label,
        model_dir,
        concurrency=settings.onnx_concurrency,
        threads=settings.onnx_threads,
        max_queue=settings.queue_size,
        batching=settings.onnx_batching,
    )


def _llamacpp(label: str, target: Target, settings: Settings) -> Backend:
    from engines.llamacpp_engine import LlamaCppBackend
    from models.convert import find_default_gguf

    return LlamaCppBackend(
        label,
        Path(target.path) if target.path else find_default_gguf(),
        threads=settings.llamacpp_threads,
        max_queue=settings.queue_size,
    )


def _package_version(package: str) -> Callable[[], str]:
    def version() -> str:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as installed

        try:
            return installed(package)
        except PackageNotFoundError:
            return "not installed"

    return version


def _onnx_grammar_error(exc: Exception) -> bool:
    from engines.onnx_tools import is_grammar_error as onnx_grammar_error

    return onnx_grammar_error(exc)


def _embedded_gguf() -> bool:
    from models.convert import ConversionError, find_default_gguf

    try:
        find_default_gguf()
    except ConversionError:
        return False
    return True


def _openai(label: str, target: Target, settings: Settings, *, vllm: bool = False) -> Backend:
    from backends.openai_compat import OpenAICompatBackend
    from backends.vllm import VllmBackend

    return (VllmBackend if vllm else OpenAICompatBackend)(
        label,
        base_url=target.url,
        api_key=target.api_key or None,
        model=target.model or None,
        connect_timeout_s=settings.connect_timeout_s,
        read_timeout_s=settings.read_timeout_s,
    )


def _vllm(label: str, target: Target, settings: Settings) -> Backend:
    return _openai(label, target, settings, vllm=True)


def _ollama(label: str, target: Target, settings: Settings) -> Backend:
    from backends.ollama import OllamaBackend

    return OllamaBackend(
        label,
        host=target.url,
        model=target.model or None,
        connect_timeout_s=settings.connect_timeout_s,
        read_timeout_s=settings.read_timeout_s,
    )


register(
    BackendKind(
        "onnx",
        "ONNX Runtime GenAI in this process (the embedded default model, or any onnxruntime-genai folder)",
        in_process=True,
        lane_syntax="onnx[:FOLDER]",
        factory=_onnx,
        has_default=lambda: True,
        default=True,
        version=_package_version("onnxruntime-genai"),
        threads_setting="onnx_threads",
        grammar_errors=_onnx_grammar_error,
    )
)
register(
    BackendKind(
        "llamacpp",
        "llama.cpp in this process (llama-cpp-python): the embedded default GGUF, or any .gguf file",
        in_process=True,
        lane_syntax="llamacpp[:FILE.gguf]",
        factory=_llamacpp,
        requires="llama_cpp",
        has_default=_embedded_gguf,
        version=_package_version("llama-cpp-python"),
        threads_setting="llamacpp_threads",
    )
)
register(
    BackendKind(
        "openai",
        "any OpenAI-compatible server (llama.cpp server, TGI, LM Studio, ...)",
        in_process=False,
        lane_syntax="openai:MODEL@URL",
        factory=_openai,
        url_env="OPENAI_BASE_URL",
        key_env="OPENAI_API_KEY",
        form_fields=("url", "name", "api_key", "model"),
    )
)
register(
    BackendKind(
        "vllm",
        "vLLM's OpenAI-compatible server (plus its version, max_model_len and /metrics figures)",
        in_process=False,
        lane_syntax="vllm:MODEL@URL",
        factory=_vllm,
        url_env="VLLM_BASE_URL",
        key_env="VLLM_API_KEY",
        form_fields=("url", "name", "api_key", "model"),
    )
)
register(
    BackendKind(
        "ollama",
        "an Ollama server (native /api/chat)",
        in_process=False,
        lane_syntax="ollama:MODEL@HOST",
        factory=_ollama,
        url_env="OLLAMA_HOST",
        form_fields=("url", "name", "model"),
    )
)
