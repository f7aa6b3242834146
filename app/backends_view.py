"""The Backends tab's helpers: the health strip, the add-endpoint form, a connection check, the
overview table of every backend (kind, URL with secrets masked, health, models, server)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from backends.base import ModelInfo
from runtime.kinds import available_kinds
from runtime.registry import BackendRegistry
from runtime.settings import Endpoint
from runtime.urls import normalise_base_url


def mark(status: str) -> str:
    """A coloured dot drawn by CSS (``.health-dot``), so no emoji font is needed; the status word
    beside it says the same for screen readers and text copies."""
    known = status if status in ("ready", "loading", "unreachable") else "unknown"
    return f'<span class="health-dot {known}" aria-hidden="true"></span>'


async def health_strip(registry: BackendRegistry, session: str | None = None) -> str:
    """One markdown line with every backend's state; never blocks longer than the timeout."""
    results = await registry.health_all(timeout_s=2.0, session=session)
    if not results:
        return "**Backends:** none configured"
    parts = []
    for label, health in results.items():
        detail = f" ({health.detail[:80]})" if health.detail and health.status != "ready" else ""
        parts.append(f"{mark(health.status)}`{label}` {health.status}{detail}")
    return "**Backends:** " + " · ".join(parts)


def endpoint_from_form(
    kind: str, url: str, name: str, api_key: str, model: str, taken: list[str]
) -> Endpoint:
    """Validate the add-endpoint form into an Endpoint; raises ValueError with what to fix."""
    remote = available_kinds(in_process=False)
    if kind not in remote:
        raise ValueError(f"choose the kind of server: {', '.join(remote)}")
    url = normalise_base_url(url, default_scheme=None)
    endpoint = Endpoint(
        kind, url, name=(name or "").strip(), api_key=(api_key or "").strip(), model=model or ""
    )
    if endpoint.label in taken:
        raise ValueError(f"a backend named {endpoint.label!r} already exists; pick another name")
    return endpoint


async def check_connection(registry: BackendRegistry, label: str, session: str | None = None) -> str:
    if not label:
        return "Choose a backend to test."
    health = await registry.health(label, timeout_s=registry.settings.connect_timeout_s, session=session)
    icon = mark(health.status)
    line = f"{icon} `{label}`: {health.status}" + (f" — {health.detail}" if health.detail else "")
    if health.status != "ready":
        return line
    try:
        models = await asyncio.wait_for(registry.get(label, session).list_models(), 5.0)
    except Exception as exc:  # listing is a courtesy; say why it failed
        return f"{line}\n\nCould not list models: {exc}"
    names = ", ".join(f"`{m.id}`" for m in models[:10]) or "none"
    return f"{line}\n\nModels: {names}"


# --- the overview table ------------------------------------------------------------------------

OVERVIEW_HEADERS = [
    "Backend",
    "Kind",
    "URL",
    "Health",
    "Check ms",
    "Server",
    "Server's own figures",
    "Models (format, quantization)",
]


def masked_url(url: str) -> str:
    """The URL without secrets: user:password@ and key-like query values are masked."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "•••@" + netloc.rsplit("@", 1)[1]
    query = "&".join(
        f"{k}=•••" if any(w in k.lower() for w in ("key", "token", "secret", "password")) else f"{k}={v}"
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def where(backend: Any) -> str:
    for attribute in ("base_url", "host"):
        if value := getattr(backend, attribute, None):
            return masked_url(str(value))
    folder = getattr(backend, "model_dir", None)
    return f"in process: {Path(folder).name}" if folder else "in process"


def model_line(model: ModelInfo) -> str:
    shown = [
        model.details[k]
        for k in ("format", "quantization", "quantization_level", "parameter_size")
        if model.details.get(k)
    ]
    return model.id + (f" ({', '.join(shown)})" if shown else "")


async def overview_row(
    registry: BackendRegistry, label: str, session: str | None, timeout_s: float
) -> list[str]:
    """One row: health is checked now (its latency shown); models are listed when it is up."""
    started = time.perf_counter()
    health = await registry.health(label, timeout_s=timeout_s, session=session)
    latency = f"{(time.perf_counter() - started) * 1000:.0f}"
    backend = registry.get(label, session)
    models = "-"
    if health.status == "ready":
        try:
            listed = await asyncio.wait_for(backend.list_models(), timeout_s)
            models = (
                "; ".join(model_line(m) for m in listed[:8]) + (" …" if len(listed) > 8 else "") or "none"
            )
        except Exception as exc:  # listing is a courtesy; say why it failed
            models = f"could not list: {str(exc)[:80]}"
    server = health.detail if health.status == "ready" else f"{health.detail[:80]}"
    kind = getattr(backend, "kind", "?")
    figures = await server_figures_cell(backend, timeout_s) if health.status == "ready" else "-"
    return [label, kind, where(backend), health.status, latency, server or "-", figures, models]


async def server_figures_cell(backend: Any, timeout_s: float) -> str:
    """What the server measures itself (vLLM's /metrics), beside the check time we measured."""
    read = getattr(backend, "server_metrics", None)
    if read is None:
        return "-"
    from backends.vllm import figures_line

    try:
        figures = await asyncio.wait_for(read(), timeout_s)
    except TimeoutError:
        return f"no /metrics answer in {timeout_s:g} s"
    return figures_line(figures) or "none reported"


async def overview(
    registry: BackendRegistry, session: str | None = None, timeout_s: float = 3.0
) -> list[list[str]]:
    """Every backend this session sees (the operator's and the ones it added), checked at once."""
    labels = registry.labels(session)
    return list(
        await asyncio.gather(*(overview_row(registry, label, session, timeout_s) for label in labels))
    )


def ollama_of(registry: BackendRegistry, label: str, session: str | None) -> Any:
    """The Ollama backend behind ``label``; ValueError when it is not one."""
    try:
        backend = registry.get(label, session)
    except KeyError:
        raise ValueError("choose a backend first") from None
    if getattr(backend, "kind", "") != "ollama":
        raise ValueError(f"{label!r} is not an Ollama endpoint: pulling and creating models is Ollama's")
    return backend
