"""The Backends tab's helpers: the health strip, the add-endpoint form, a connection check."""

from __future__ import annotations

import asyncio

from runtime.kinds import available_kinds
from runtime.registry import BackendRegistry
from runtime.settings import Endpoint


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
    url = (url or "").strip().rstrip("/")
    remote = available_kinds(in_process=False)
    if kind not in remote:
        raise ValueError(f"choose the kind of server: {', '.join(remote)}")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"the URL must start with http:// or https:// (got {url!r})")
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
