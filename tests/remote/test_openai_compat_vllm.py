"""OpenAICompatBackend against the vLLM stand-in: a real HTTP server on loopback."""

from __future__ import annotations

import asyncio

import pytest

from backends.base import ChatRequest, Message, ReasoningDelta, TextDelta, ToolCall, ToolCallEvent, ToolSpec
from backends.errors import (
    BackendResponseError,
    BackendUnavailable,
    ContextOverflow,
    InvalidRequest,
    ModelNotFound,
)
from backends.openai_compat import OpenAICompatBackend, normalize_base_url, server_root
from tests.remote.helpers import ask, collect, drain, text_of
from tests.remote.standin_http import free_port

MODEL = "microsoft/Phi-4-mini-instruct"
WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather in a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def with_tools(text: str = "Weather in Kyiv?") -> ChatRequest:
    return ChatRequest(messages=(Message(role="user", content=text),), tools=(WEATHER,))


async def test_streams_text_and_takes_usage_from_the_usage_chunk(vllm, vllm_backend):
    vllm.script.text = ["The", " answer", " is", " 4."]
    vllm.script.prompt_tokens = 21
    events, done = await collect(vllm_backend, ask("What is 2+2?"))
    assert text_of(events) == "The answer is 4."
    assert [type(e) for e in events] == [TextDelta] * 4
    m = done.metrics
    assert (m.prompt_tokens, m.completion_tokens, m.finish_reason, m.model) == (21, 4, "stop", MODEL)
    assert m.ttft_s is not None
    assert m.ttft_s <= m.total_s


async def test_request_carries_streaming_usage_and_every_sampling_option(vllm, vllm_backend):
    await collect(
        vllm_backend, ask(temperature=0.2, top_p=0.9, top_k=40, max_new_tokens=64, seed=7, stop=["\n\n"])
    )
    body = vllm.bodies("/v1/chat/completions")[0]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["model"] == MODEL  # none configured: the first listed model
    assert (body["temperature"], body["top_p"], body["top_k"], body["max_tokens"], body["seed"]) == (
        0.2,
        0.9,
        40,
        64,
        7,
    )
    assert body["stop"] == ["\n\n"]
    assert body["messages"] == [{"role": "user", "content": "Say hello"}]


async def test_top_k_zero_and_no_seed_are_left_to_the_server(vllm, vllm_backend):
    await collect(vllm_backend, ask(top_k=0))
    body = vllm.bodies("/v1/chat/completions")[0]
    assert "top_k" not in body
    assert "seed" not in body
    assert "stop" not in body


async def test_history_with_tool_calls_and_tool_results_is_sent_in_openai_shape(vllm, vllm_backend):
    call = ToolCall(id="call_1", name="get_weather", arguments={"city": "Kyiv"})
    request = ChatRequest(
        messages=(
            Message(role="system", content="Be brief."),
            Message(role="user", content="Weather?"),
            Message(role="assistant", content="", tool_calls=(call,)),
            Message(role="tool", content='{"temp": 21}', tool_call_id="call_1", name="get_weather"),
        )
    )
    await collect(vllm_backend, request)
    sent = vllm.bodies("/v1/chat/completions")[0]["messages"]
    assert sent[2]["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Kyiv"}'},
        }
    ]
    assert sent[3] == {
        "role": "tool",
        "content": '{"temp": 21}',
        "tool_call_id": "call_1",
        "name": "get_weather",
    }


async def test_reasoning_deltas_come_before_the_answer(vllm, vllm_backend):
    vllm.script.reasoning = ["Two", " plus two."]
    vllm.script.text = ["4"]
    events, _ = await collect(vllm_backend, ask())
    assert [type(e) for e in events] == [ReasoningDelta, ReasoningDelta, TextDelta]
    assert "".join(e.text for e in events[:2]) == "Two plus two."


async def test_list_models_reports_max_model_len_as_context_length(vllm, vllm_backend):
    models = await vllm_backend.list_models()
    assert [(m.id, m.context_length) for m in models] == [(MODEL, 4096)]
    assert models[0].details["owned_by"] == "vllm"
    assert vllm_backend.default_model() == MODEL


async def test_health_uses_the_health_endpoint_and_reports_a_dead_engine(vllm, vllm_backend):
    assert (await vllm_backend.health()).status == "ready"
    vllm.engine_dead = True
    health = await vllm_backend.health()
    assert health.status == "loading"
    assert "503" in health.detail


async def test_health_of_a_server_that_is_not_there():
    backend = OpenAICompatBackend("gone", base_url=f"http://127.0.0.1:{free_port()}/v1", flavor="vllm")
    try:
        assert (await backend.health()).status == "unreachable"
    finally:
        await backend.aclose()


async def test_tools_on_vllm_go_non_streaming_and_come_back_as_tool_call_events(vllm, vllm_backend):
    vllm.script.tool_calls = [{"name": "get_weather", "arguments": {"city": "Kyiv"}}]
    events, done = await collect(vllm_backend, with_tools())
    body = vllm.bodies("/v1/chat/completions")[0]
    assert body.get("stream") in (None, False)
    assert "stream_options" not in body
    assert body["tools"] == [WEATHER.openai_schema()]
    calls = [e.call for e in events if isinstance(e, ToolCallEvent)]
    assert [(c.name, c.arguments) for c in calls] == [("get_weather", {"city": "Kyiv"})]
    assert calls[0].id.startswith("chatcmpl-tool-")
    assert done.metrics.finish_reason == "tool_calls"
    assert done.metrics.prompt_tokens is not None


async def test_why_vllm_tools_are_not_streamed_the_phi4_parser_drops_the_call(vllm):
    """The same request streamed (generic flavor) loses the call on the phi4_mini_json parser."""
    vllm.script.tool_calls = [{"name": "get_weather", "arguments": {"city": "Kyiv"}}]
    backend = OpenAICompatBackend("generic", base_url=vllm.url + "/v1", flavor="openai")
    try:
        events, _ = await collect(backend, with_tools())
    finally:
        await backend.aclose()
    assert not any(isinstance(e, ToolCallEvent) for e in events)


async def test_streamed_tool_call_fragments_from_a_streaming_parser(vllm):
    vllm.tool_parser = "hermes"
    vllm.script.tool_calls = [
        {"name": "get_weather", "arguments": {"city": "Kyiv", "unit": "celsius"}},
        {"name": "get_weather", "arguments": {"city": "Lviv"}},
    ]
    backend = OpenAICompatBackend("generic", base_url=vllm.url + "/v1", flavor="openai")
    try:
        events, done = await collect(backend, with_tools())
    finally:
        await backend.aclose()
    calls = [e.call for e in events if isinstance(e, ToolCallEvent)]
    assert [c.arguments for c in calls] == [{"city": "Kyiv", "unit": "celsius"}, {"city": "Lviv"}]
    assert len({c.id for c in calls}) == 2
    assert done.metrics.finish_reason == "tool_calls"


async def test_tools_on_a_server_without_auto_tool_choice_say_which_flags_to_add(vllm, vllm_backend):
    vllm.tool_parser = None
    with pytest.raises(InvalidRequest) as caught:
        await collect(vllm_backend, with_tools())
    assert "enable-auto-tool-choice" in caught.value.message
    assert "--tool-call-parser phi4_mini_json" in caught.value.hint


async def test_unknown_model_lists_the_served_ones(vllm, vllm_backend):
    with pytest.raises(ModelNotFound) as caught:
        await collect(
            vllm_backend, ChatRequest(messages=(Message(role="user", content="hi"),), model="llama-3")
        )
    assert caught.value.available == [MODEL]
    assert "llama-3" in str(caught.value)
    assert vllm.bodies("/v1/chat/completions") == []  # refused before sending


async def test_server_404_for_a_model_that_went_away_is_model_not_found(vllm, vllm_backend):
    await vllm_backend.list_models()  # cached listing still names the model
    vllm.models = {"other/model": 2048}
    try:
        with pytest.raises(ModelNotFound) as caught:
            await collect(vllm_backend, ask())
    finally:
        vllm.models = {MODEL: 4096}
    assert caught.value.model == MODEL
    assert caught.value.available == ["other/model"]  # listed again when the server said 404


async def test_prompt_longer_than_the_context_is_context_overflow_with_numbers(vllm, vllm_backend):
    vllm.script.prompt_tokens = 5000
    with pytest.raises(ContextOverflow) as caught:
        await collect(vllm_backend, ask())
    # vLLM 0.32 counts one token past the limit: "your prompt contains at least 4097 input tokens"
    assert (caught.value.prompt_tokens, caught.value.context_length) == (4097, 4096)
    assert "4096" in str(caught.value)
    assert "shorten the prompt" in caught.value.hint


async def test_max_tokens_over_max_model_len_says_to_lower_it(vllm, vllm_backend):
    with pytest.raises(InvalidRequest) as caught:
        await collect(vllm_backend, ask(max_new_tokens=9000))
    assert "max_model_len=4096" in caught.value.message
    assert "max new tokens" in caught.value.hint


async def test_server_error_status_is_a_response_error_with_the_servers_message(vllm, vllm_backend):
    vllm.script.status_error = (500, "EngineDeadError: the engine loop has died")
    with pytest.raises(BackendResponseError) as caught:
        await collect(vllm_backend, ask())
    assert caught.value.status == 500
    assert "engine loop has died" in str(caught.value)


async def test_error_event_mid_stream_keeps_the_text_and_raises(vllm, vllm_backend):
    vllm.script.text = ["Partial", " answer", " never", " finished"]
    vllm.script.error_after = 2
    received: list = []
    with pytest.raises(BackendResponseError) as caught:
        await drain(vllm_backend, ask(), received)
    assert text_of(received) == "Partial answer"
    assert "illegal memory access" in str(caught.value)
    assert caught.value.status is None


async def test_connection_refused_says_how_to_start_vllm():
    url = f"http://127.0.0.1:{free_port()}/v1"
    backend = OpenAICompatBackend("vllm", base_url=url, model=MODEL, flavor="vllm", connect_timeout_s=1)
    try:
        with pytest.raises(BackendUnavailable) as caught:
            await collect(backend, ask())
    finally:
        await backend.aclose()
    assert "vllm serve" in caught.value.hint
    assert "VLLM_BASE_URL" in caught.value.hint
    assert url in str(caught.value)


async def test_closing_the_stream_early_closes_the_http_response(vllm, vllm_backend):
    vllm.script.text = ["tok"] * 200
    vllm.script.delay_s = 0.02
    stream = vllm_backend.chat(ask())
    first = [await anext(stream), await anext(stream)]
    await stream.aclose()
    assert text_of(first) == "toktok"
    for _ in range(100):  # the server notices the closed connection at its next write
        if vllm.disconnects:
            break
        await asyncio.sleep(0.02)
    assert vllm.disconnects == 1


def test_base_url_forms():
    assert normalize_base_url("http://box:8000") == "http://box:8000/v1"
    assert normalize_base_url("box:8000/") == "http://box:8000/v1"
    assert normalize_base_url("https://api.example.com/openai/v1") == "https://api.example.com/openai/v1"
    assert server_root("http://box:8000/v1") == "http://box:8000"


async def test_base_url_without_v1_reaches_the_same_server(vllm):
    backend = OpenAICompatBackend("bare", base_url=vllm.url, flavor="vllm")
    try:
        events, _ = await collect(backend, ask())
    finally:
        await backend.aclose()
    assert text_of(events) == "Hello, world!"


def test_unknown_flavor_is_refused():
    with pytest.raises(ValueError, match="flavor"):
        OpenAICompatBackend("x", base_url="http://127.0.0.1:1", flavor="tgi")


async def test_models_listing_and_request_model_override(vllm):
    vllm.models = {MODEL: 4096, "phi-4-mini-lora": 4096}
    backend = OpenAICompatBackend("v", base_url=vllm.url, flavor="vllm", model="phi-4-mini-lora")
    try:
        await collect(backend, ask())
        await collect(backend, ChatRequest(messages=(Message(role="user", content="x"),), model=MODEL))
    finally:
        await backend.aclose()
        vllm.models = {MODEL: 4096}
    assert [b["model"] for b in vllm.bodies("/v1/chat/completions")] == ["phi-4-mini-lora", MODEL]


async def test_api_key_is_sent_and_a_wrong_one_is_reported(vllm):
    vllm.api_key = "sekrit"
    good = OpenAICompatBackend("v", base_url=vllm.url, api_key="sekrit", flavor="vllm")
    bad = OpenAICompatBackend("v", base_url=vllm.url, api_key="wrong", model=MODEL, flavor="vllm")
    try:
        events, _ = await collect(good, ask())
        with pytest.raises(BackendResponseError) as caught:
            await collect(bad, ask())
    finally:
        await good.aclose()
        await bad.aclose()
    assert text_of(events) == "Hello, world!"
    assert caught.value.status == 401
    assert "API key" in caught.value.hint


@pytest.mark.parametrize(
    ("choice", "sent"),
    [
        ("auto", "auto"),
        ("required", "required"),
        ("none", "none"),
        ("get_weather", {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
async def test_tool_choice_is_sent_as_openai_defines_it(vllm, vllm_backend, choice, sent):
    vllm.script.tool_calls = [{"name": "get_weather", "arguments": {"city": "Kyiv"}}]
    request = with_tools().model_copy(update={"tool_choice": choice})
    await collect(vllm_backend, request)
    assert vllm.bodies("/v1/chat/completions")[0]["tool_choice"] == sent
