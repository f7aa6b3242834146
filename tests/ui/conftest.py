"""Launch the real Gradio app on a free port, with scripted (or real) backends."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

from app.server import launch
from app.ui import build_app
from backends.base import Backend
from runtime.registry import BackendRegistry
from runtime.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_app(
    *backends: Backend, registry: BackendRegistry | None = None, **settings: object
) -> Iterator[str]:
    """Yield the URL of the app serving these backends; closes it (and the backends) afterwards."""
    config = Settings(port=free_port()).with_overrides(**settings)
    registry = registry or BackendRegistry.with_backends(config, *backends)
    demo = build_app(config, registry)
    launch(demo, config.with_overrides(host="127.0.0.1"), quiet=True)
    try:
        yield f"http://127.0.0.1:{config.port}/"
    finally:
        demo.close()
