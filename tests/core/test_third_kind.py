"""A third in-process kind (tests/support/scripted_engine.py: one module, one ``register``) gets
everything the onnx and llamacpp kinds get, with no change anywhere else: the batching queue
and its place in line, fairness between clients from the app's entry points, a Compare lane
and its run card, and the engine server answering the OpenAI client."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from app.turns import ChatService, PanelValues
from compare.lanes import backend_for_lane, parse_lane
from compare.service import run_card_for
from compare.share import ComparisonSetup
from presets import load_catalog
from runtime.kinds import available_kinds, kind_of, lane_help, queue_of
from runtime.registry import BackendRegistry
from runtime.settings import Settings
from tests.remote.helpers import ask, collect, text_of
from tests.support.scripted_engine import KIND, VERSION, ScriptedEngineBackend, registered

PANEL = PanelValues("", 0.0, 1.0, 0, 16, None, tools=False)


@pytest.fixture
def scripted_kind() -> Iterator[None]:
    with registered():
        yield


def wait_until(condition: Any, timeout_s: float = 10.0) -> None:
    """Poll a condition the scheduler thread makes true."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


async def answer(backend: ScriptedEngineBackend, text: str) -> tuple[str, Any]:
    events, done = await collect(backend, ask(text, temperature=0.0))
    return text_of(events), done.metrics


async def test_it_batches_queues_and_tells_its_place_in_line(scripted_kind: None) -> None:
    assert KIND in available_kinds(in_process=True) and f"{KIND}[:ROWS]" in lane_help()
    backend = BackendRegistry(Settings(), defaults=True).get(KIND)  # offered by the table, built on use
    assert isinstance(backend, ScriptedEngineBackend) and queue_of(backend) is backend
    assert await backend.warm_up() >= 0.0 and await backend.warm_up() == 0.0  # loaded once
    backend.hold.clear()
    asked = [asyncio.create_task(answer(backend, f"q{i}")) for i in range(3)]
    await asyncio.to_thread(wait_until, lambda: backend.stats()["running"] == 2 and backend.waiting() == 1)
    # two rows run, the third waits
    assert backend.ahead() == 2  # a fourth would wait behind the third and one row to free
    backend.hold.set()
    results = await asyncio.gather(*asked)
    assert [text for text, _ in results] == ["The answer is 42."] * 3
    assert max(m.server["mean_batch"] for _, m in results) == 2.0  # two shared every step
    assert backend.stats()["queued"] == 0 and not backend.busy()
    await backend.aclose()


async def test_a_client_with_many_requests_does_not_starve_another(scripted_kind: None) -> None:
    """Fairness per client, the key carried from the app's entry point (a browser session)."""
    local = ScriptedEngineBackend("local", rows=1)
    config = Settings()
    service = ChatService(config, BackendRegistry.with_backends(config, local), load_catalog())
    await local.warm_up()
    local.hold.clear()

    async def turn(prompt: str, session: str) -> None:
        async for _ in service.respond(prompt, [], "local", PANEL, client="10.0.0.1", session=session):
            pass

    greedy = [asyncio.create_task(turn(f"a{i}", "tab-a")) for i in range(5)]
    await asyncio.to_thread(wait_until, lambda: local.waiting() == 4)
    polite = asyncio.create_task(turn("b", "tab-b"))  # same address, another browser session
    await asyncio.to_thread(wait_until, lambda: local.waiting() == 5)
    local.hold.set()
    await asyncio.gather(*greedy, polite)
    assert local.engine is not None
    order = local.engine.admitted
    assert order[1] == "10.0.0.1#tab-b", order  # next after the one running, ahead of a1..a4
    assert order.count("10.0.0.1#tab-a") == 5
    await local.aclose()


async def test_it_is_a_compare_lane_and_its_run_card_names_its_runtime(scripted_kind: None) -> None:
    registry = BackendRegistry(Settings(), defaults=True)
    backend, model = backend_for_lane(parse_lane(f"{KIND}:3", known_labels=registry.labels()), registry)
    assert isinstance(backend, ScriptedEngineBackend) and backend.rows == 3 and model is None
    assert kind_of(backend) is not None
    setup = ComparisonSetup([KIND, KIND], "hi", options={"temperature": 0.0, "max_new_tokens": 8})
    try:
        card = await run_card_for(setup, registry)
    finally:
        await registry.aclose()
    assert [lane.status for lane in card.lanes] == ["done", "done"]
    assert all(lane.answer == "The answer is 42." for lane in card.lanes)
    assert all(lane.model_details["runtime_version"] == VERSION for lane in card.lanes)


def test_the_engine_server_serves_it_to_the_openai_client(scripted_kind: None) -> None:
    from serve.cli import add_arguments, build_engine
    from serve.threaded import ServerThread

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert KIND in parser.format_help()  # offered in --lane's help
    engine = build_engine(parser.parse_args(["--lane", f"{KIND}:2"]), Settings())
    assert isinstance(engine.backend, ScriptedEngineBackend) and engine.model_id == "scripted-model"
    with ServerThread(engine.app) as server:
        client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0, timeout=30)
        result = client.chat.completions.create(
            model="scripted-model", messages=[{"role": "user", "content": "hi"}], temperature=0
        )
        streamed = client.chat.completions.create(
            model="scripted-model", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        pieces = [c.choices[0].delta.content or "" for c in streamed if c.choices]
        client.close()
    assert result.choices[0].message.content == "The answer is 42."
    assert result.choices[0].finish_reason == "stop"
    assert "".join(pieces) == "The answer is 42."


def test_an_unknown_or_remote_lane_is_refused_with_the_kinds_to_choose_from(scripted_kind: None) -> None:
    from serve.cli import LaneError, add_arguments, build_engine

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    for lane, words in (("nosuch", "unknown backend kind"), ("vllm", "not an in-process kind")):
        with pytest.raises(LaneError, match=words) as refused:
            build_engine(parser.parse_args(["--lane", lane]), Settings())
        assert KIND in str(refused.value) or words == "unknown backend kind"
