"""Real HTTP lanes: the OpenAI-compatible and Ollama backends against the protocol stand-ins.

The stand-ins (tests/remote) are real servers on loopback sockets speaking vLLM's and Ollama's
wire protocols, so these lanes do real I/O: parallelism, Stop and failures are measured, not mocked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from compare.lanes import backend_for_lane, parse_lane
from compare.runner import Comparison, Lane
from compare.service import prepare, run_card_for
from compare.share import ComparisonSetup
from runtime.registry import BackendRegistry
from runtime.settings import Settings
from tests.remote.ollama_standin import OllamaStandIn, start_ollama
from tests.remote.vllm_standin import VLLMStandIn, start_vllm


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[VLLMStandIn, OllamaStandIn]]:
    (vllm_state, vllm_thread), (ollama_state, ollama_thread) = start_vllm(), start_ollama()
    yield vllm_state, ollama_state
    vllm_thread.stop()
    ollama_thread.stop()


@pytest.fixture
def vllm(servers: tuple[VLLMStandIn, OllamaStandIn]) -> VLLMStandIn:
    servers[0].reset()
    return servers[0]


@pytest.fixture
def ollama_standin(servers: tuple[VLLMStandIn, OllamaStandIn]) -> OllamaStandIn:
    servers[1].reset()
    servers[1].models = {"phi4-mini:latest": ["completion", "tools"]}
    return servers[1]


@pytest.fixture
async def http_registry():
    registry = BackendRegistry(Settings(read_timeout_s=10))
    yield registry
    await registry.aclose()


def _lanes(vllm: VLLMStandIn, ollama: OllamaStandIn) -> list[str]:
    return [f"vllm:microsoft/Phi-4-mini-instruct@{vllm.url}/v1", f"ollama:phi4-mini@{ollama.url}"]


async def _wall(registry: BackendRegistry, specs: list[str]) -> tuple[float, list[str]]:
    lanes = [Lane(*backend_for_lane(parse_lane(spec), registry)) for spec in specs]
    comparison = Comparison(lanes, prompt="Say hello")
    start = time.perf_counter()
    result = await comparison.run()
    return time.perf_counter() - start, [lane.status for lane in result.lanes]


async def test_two_http_lanes_run_in_parallel(
    vllm: VLLMStandIn, ollama_standin: OllamaStandIn, http_registry: BackendRegistry
) -> None:
    vllm.script.text, vllm.script.delay_s = ["v"] * 12, 0.05  # ~0.55 s
    ollama_standin.script.text, ollama_standin.script.delay_s = ["o"] * 12, 0.04  # ~0.45 s
    lanes = _lanes(vllm, ollama_standin)
    alone = [(await _wall(http_registry, [spec]))[0] for spec in lanes]
    wall, statuses = await _wall(http_registry, lanes)
    assert statuses == ["done", "done"]
    assert wall < 0.75 * sum(alone), (wall, alone)
    assert wall < 1.3 * max(alone), (wall, alone)


async def test_stop_one_http_lane_closes_its_connection(
    vllm: VLLMStandIn, ollama_standin: OllamaStandIn, http_registry: BackendRegistry
) -> None:
    vllm.script.text, vllm.script.delay_s = ["v"] * 200, 0.02
    ollama_standin.script.text, ollama_standin.script.delay_s = ["o"] * 10, 0.02
    comparison = prepare(ComparisonSetup(_lanes(vllm, ollama_standin), "hi"), http_registry).comparison()
    async for update in comparison.stream():
        if update.lane == 0 and update.tokens == 5 and not update.finished:
            comparison.stop(0)
    stopped, finished = comparison.result().lanes
    assert stopped.status == "stopped"
    assert stopped.text.startswith("vvvvv")
    assert len(stopped.text) < 200
    assert finished.status == "done"
    assert finished.text == "o" * 10
    deadline = time.monotonic() + 3
    while vllm.disconnects == 0 and time.monotonic() < deadline:  # noqa: ASYNC110 (another thread's counter)
        await asyncio.sleep(0.02)
    assert vllm.disconnects == 1, "the stopped lane's HTTP stream must be closed"


async def test_a_failing_and_a_hanging_http_lane_leave_the_other_to_finish(
    vllm: VLLMStandIn, ollama_standin: OllamaStandIn, http_registry: BackendRegistry
) -> None:
    vllm.script.status_error = (500, "engine exploded")
    card = await run_card_for(ComparisonSetup(_lanes(vllm, ollama_standin), "hi"), http_registry)
    assert [lane.status for lane in card.lanes] == ["error", "done"]
    assert "engine exploded" in (card.lanes[0].error or "")
    assert card.lanes[1].answer == "Hello, world!"
    assert card.lanes[1].model_details["server"] == "Ollama 0.12.6"
    assert card.lanes[1].metrics is not None
    assert card.lanes[1].metrics.server, "Ollama's own figures belong beside ours"

    vllm.script.status_error = None
    vllm.script.hang_after = 2
    start = time.perf_counter()
    card = await run_card_for(
        ComparisonSetup(_lanes(vllm, ollama_standin), "hi"), http_registry, timeout_s=0.6
    )
    assert time.perf_counter() - start < 3
    assert [lane.status for lane in card.lanes] == ["timeout", "done"]
    assert card.lanes[0].answer == "Hello,"
