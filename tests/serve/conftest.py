"""Fixtures: the engine server on a free loopback port, in front of a ScriptedBackend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

from backends.scripted import ScriptedBackend
from serve.protocol import RequestLimits
from serve.server import create_app
from serve.threaded import ServerThread

MODEL = "scripted-model"


class Engine:
    def __init__(self, backend: ScriptedBackend, server: ServerThread) -> None:
        self.backend = backend
        self.server = server
        self.base_url = server.base_url
        self.client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0)

    def async_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=f"{self.base_url}/v1", api_key="unused", max_retries=0)


@pytest.fixture
def start_engine() -> Iterator[Callable[..., Engine]]:
    """Start a server around a ScriptedBackend; keyword arguments go to create_app."""
    started: list[Engine] = []

    def start(backend: ScriptedBackend | None = None, **app_options: Any) -> Engine:
        backend = backend or ScriptedBackend()
        app_options.setdefault("limits", RequestLimits(max_prompt_chars=2000, max_tokens_cap=256))
        server = ServerThread(create_app(backend, model_id=MODEL, **app_options)).start()
        engine = Engine(backend, server)
        started.append(engine)
        return engine

    yield start
    for engine in started:
        engine.client.close()
        engine.server.stop()


@pytest.fixture
def engine(start_engine: Callable[..., Engine]) -> Engine:
    return start_engine()
