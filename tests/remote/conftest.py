"""Fixtures: stand-in vLLM and Ollama servers (one each per session, script reset per test)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from backends.ollama import OllamaBackend
from backends.vllm import VllmBackend
from tests.remote.ollama_standin import OllamaStandIn, start_ollama
from tests.remote.standin_http import ServerThread
from tests.remote.vllm_standin import VLLMStandIn, start_vllm


@pytest.fixture(scope="session")
def vllm_server() -> Iterator[tuple[VLLMStandIn, ServerThread]]:
    state, server = start_vllm()
    yield state, server
    server.stop()


@pytest.fixture
def vllm(vllm_server: tuple[VLLMStandIn, ServerThread]) -> VLLMStandIn:
    state, _ = vllm_server
    state.reset()
    state.tool_parser = "phi4_mini_json"
    state.engine_dead = False
    state.api_key = None
    state.per_request_metrics = False
    return state


@pytest.fixture
async def vllm_backend(vllm: VLLMStandIn) -> AsyncIterator[VllmBackend]:
    backend = VllmBackend("vllm-standin", base_url=vllm.url + "/v1", read_timeout_s=10)
    yield backend
    await backend.aclose()


@pytest.fixture(scope="session")
def ollama_server() -> Iterator[tuple[OllamaStandIn, ServerThread]]:
    state, server = start_ollama()
    yield state, server
    server.stop()


@pytest.fixture
def ollama_standin(ollama_server: tuple[OllamaStandIn, ServerThread]) -> OllamaStandIn:
    state, _ = ollama_server
    state.reset()
    state.models = {"phi4-mini:latest": ["completion", "tools"], "smollm2:135m": ["completion"]}
    return state


@pytest.fixture
async def ollama_backend(ollama_standin: OllamaStandIn) -> AsyncIterator[OllamaBackend]:
    backend = OllamaBackend("ollama-standin", host=ollama_standin.url, model="phi4-mini", read_timeout_s=10)
    yield backend
    await backend.aclose()
