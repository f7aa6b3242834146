"""The backends this app instance knows about, by label: the in-process model plus endpoints.

The UI's backend selector, the compare tab's lanes and the CLI all go through one registry so
a label means the same backend everywhere. Health checks run concurrently with a short
timeout and never raise, so a dead endpoint cannot block the page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from app.settings import Endpoint, Settings
from backends.base import Backend, Health

IN_PROCESS = "onnx"
"""Label of the in-process ONNX Runtime GenAI backend."""


def backend_for_endpoint(endpoint: Endpoint, settings: Settings) -> Backend:
    """Build the remote backend an endpoint describes (imports stay lazy: start-up is fast)."""
    if endpoint.kind == "ollama":
        from backends.ollama import OllamaBackend

        return OllamaBackend(
            endpoint.label,
            host=endpoint.url,
            model=endpoint.model or None,
            connect_timeout_s=settings.connect_timeout_s,
            read_timeout_s=settings.read_timeout_s,
        )
    if endpoint.kind in ("openai", "vllm"):
        from backends.openai_compat import OpenAICompatBackend

        return OpenAICompatBackend(
            endpoint.label,
            base_url=endpoint.url,
            api_key=endpoint.api_key or None,
            model=endpoint.model or None,
            flavor=endpoint.kind,
            connect_timeout_s=settings.connect_timeout_s,
            read_timeout_s=settings.read_timeout_s,
        )
    raise ValueError(f"unknown endpoint kind {endpoint.kind!r}: use openai, vllm or ollama")


class BackendRegistry:
    def __init__(self, settings: Settings, *, in_process: Callable[[], Backend] | None = None) -> None:
        self.settings = settings
        self._backends: dict[str, Backend] = {}
        self._in_process_factory = in_process
        for endpoint in settings.endpoints:
            self.add_endpoint(endpoint)

    @classmethod
    def with_backends(cls, settings: Settings, *backends: Backend) -> BackendRegistry:
        """A registry holding exactly these backends (tests, scripted demos)."""
        registry = cls(settings.with_overrides(endpoints=()))
        for backend in backends:
            registry.add(backend)
        return registry

    def add(self, backend: Backend) -> str:
        self._backends[backend.name] = backend
        return backend.name

    def add_endpoint(self, endpoint: Endpoint) -> str:
        return self.add(backend_for_endpoint(endpoint, self.settings))

    async def remove(self, label: str) -> None:
        backend = self._backends.pop(label, None)
        if backend is not None:
            await backend.aclose()

    def labels(self) -> list[str]:
        if self._in_process_factory is not None and IN_PROCESS not in self._backends:
            return [IN_PROCESS, *self._backends]
        return list(self._backends)

    def get(self, label: str) -> Backend:
        if label == IN_PROCESS and IN_PROCESS not in self._backends and self._in_process_factory:
            backend = self._in_process_factory()
            backend.name = IN_PROCESS
            self._backends = {IN_PROCESS: backend, **self._backends}
        try:
            return self._backends[label]
        except KeyError:
            raise KeyError(f"no backend named {label!r}; configured: {', '.join(self.labels())}") from None

    async def health(self, label: str, timeout_s: float = 3.0) -> Health:
        try:
            return await asyncio.wait_for(self.get(label).health(), timeout_s)
        except TimeoutError:
            return Health("unreachable", f"no answer in {timeout_s:.0f} s")
        except Exception as exc:  # health is advisory: report, never raise
            return Health("unreachable", str(exc))

    async def health_all(self, timeout_s: float = 3.0) -> dict[str, Health]:
        labels = self.labels()
        results = await asyncio.gather(*(self.health(label, timeout_s) for label in labels))
        return dict(zip(labels, results, strict=True))

    async def aclose(self) -> None:
        for backend in list(self._backends.values()):
            await backend.aclose()
        self._backends.clear()
