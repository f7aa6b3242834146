"""The app's own OpenAI-compatible backend using the engine server as a lane (both real)."""

from __future__ import annotations

import asyncio

import pytest

from backends.base import (
    ChatRequest,
    Done,
    Message,
    SamplingOptions,
    TextDelta,
    ToolCall,
    ToolCallEvent,
    ToolSpec,
)
from backends.errors import ModelNotFound
from backends.scripted import ScriptedReply
from tests.serve.conftest import MODEL, Engine

compat = pytest.importorskip("backends.openai_compat")


def lane(engine: Engine, **kwargs) -> object:
    return compat.OpenAICompatBackend("engine", base_url=f"{engine.base_url}/v1", **kwargs)


def ask(text: str, **fields) -> ChatRequest:
    fields.setdefault("options", SamplingOptions(max_new_tokens=64))  # within the test server's cap
    return ChatRequest(messages=(Message(role="user", content=text),), **fields)


async def test_text_streams_through_with_metrics(engine: Engine) -> None:
    engine.backend.enqueue(ScriptedReply(chunks=("Hi", " there")))
    backend = lane(engine)
    try:
        events = [e async for e in backend.chat(ask("hello you", options=SamplingOptions(max_new_tokens=9)))]
    finally:
        await backend.aclose()
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hi there"
    done = events[-1]
    assert isinstance(done, Done)
    assert done.metrics.model == MODEL
    assert (done.metrics.prompt_tokens, done.metrics.completion_tokens) == (2, 2)
    assert engine.backend.requests[-1].options.max_new_tokens == 9


async def test_tool_calls_arrive_as_parsed_arguments(engine: Engine) -> None:
    call = ToolCall(id="call_1", name="get_weather", arguments={"city": "Lviv"})
    engine.backend.enqueue(ScriptedReply(chunks=(), tool_calls=(call,)))
    tool = ToolSpec(
        name="get_weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}}
    )
    backend = lane(engine)
    try:
        events = [e async for e in backend.chat(ask("weather?", tools=(tool,)))]
    finally:
        await backend.aclose()
    calls = [e.call for e in events if isinstance(e, ToolCallEvent)]
    assert [(c.name, c.arguments) for c in calls] == [("get_weather", {"city": "Lviv"})]
    assert events[-1].metrics.finish_reason == "tool_calls"


async def test_unknown_model_is_model_not_found(engine: Engine) -> None:
    backend = lane(engine, model="not-served")
    try:
        with pytest.raises(ModelNotFound) as caught:
            [e async for e in backend.chat(ask("hi"))]
    finally:
        await backend.aclose()
    assert caught.value.available == [MODEL]


async def test_stopping_the_lane_stops_the_engine_generation(engine: Engine) -> None:
    engine.backend.delay_s = 0.05
    engine.backend.enqueue(ScriptedReply(chunks=tuple(f"t{i} " for i in range(200))))
    backend = lane(engine)
    try:
        stream = backend.chat(ask("go"))
        seen = 0
        async for event in stream:
            seen += isinstance(event, TextDelta)
            if seen == 3:
                break
        await stream.aclose()
        for _ in range(250):  # up to 5 s
            if engine.backend.cancelled:
                break
            await asyncio.sleep(0.02)
    finally:
        await backend.aclose()
    assert engine.backend.cancelled == 1


async def test_json_output_setting_survives_the_lane_round_trip(engine: Engine) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    backend = lane(engine)
    try:
        for options in (
            SamplingOptions(max_new_tokens=9, json_output=True),
            SamplingOptions(max_new_tokens=9, json_output=True, json_schema=schema),
        ):
            [e async for e in backend.chat(ask("a number", options=options))]
            received = engine.backend.requests[-1].options
            assert (received.json_output, received.json_schema) == (True, options.json_schema)
    finally:
        await backend.aclose()
