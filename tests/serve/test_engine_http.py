"""The engine server over real HTTP, driven by the official openai client (ScriptedBackend)."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from backends.base import Health, ToolCall
from backends.errors import BackendUnavailable, ContextOverflow, ModelNotFound
from backends.scripted import ScriptedBackend, ScriptedReply
from tests.serve.conftest import MODEL, Engine

USER = [{"role": "user", "content": "say hello to the world"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def sse_events(engine: Engine, payload: dict) -> list[str]:
    """The raw `data:` payloads of one streamed response, in order."""
    with httpx.stream("POST", f"{engine.base_url}/v1/chat/completions", json=payload, timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]


def test_non_streaming_completion_has_content_and_usage(engine: Engine) -> None:
    engine.backend.enqueue(ScriptedReply(chunks=("Hello", ", ", "world")))
    result = engine.client.chat.completions.create(model=MODEL, messages=USER)
    assert result.object == "chat.completion"
    assert result.model == MODEL
    assert result.id.startswith("chatcmpl-")
    choice = result.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Hello, world"
    assert choice.finish_reason == "stop"
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.total_tokens) == (
        5,
        3,
        8,
    )


def test_stream_is_role_then_deltas_then_finish_then_usage_then_done(engine: Engine) -> None:
    engine.backend.enqueue(ScriptedReply(chunks=("Hel", "lo")))
    payload = {"model": MODEL, "messages": USER, "stream": True, "stream_options": {"include_usage": True}}
    events = sse_events(engine, payload)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert len({c["id"] for c in chunks}) == 1
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:3]] == ["Hel", "lo"]
    assert [c["choices"][0]["finish_reason"] for c in chunks[:3]] == [None, None, None]
    assert chunks[3]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert chunks[4]["choices"] == []
    assert chunks[4]["usage"] == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    assert len(chunks) == 5


def test_stream_through_the_openai_client_without_usage(engine: Engine) -> None:
    engine.backend.enqueue(ScriptedReply(chunks=("a", "b", "c")))
    stream = engine.client.chat.completions.create(model=MODEL, messages=USER, stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "abc"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


def test_options_and_stop_reach_the_backend(engine: Engine) -> None:
    engine.client.chat.completions.create(
        model=MODEL,
        messages=USER,
        stop=["\n\n", "END"],
        temperature=0.0,
        top_p=0.9,
        max_tokens=17,
        seed=3,
        extra_body={"top_k": 5},
    )
    options = engine.backend.requests[-1].options
    assert options.stop == ("\n\n", "END")
    assert (options.temperature, options.top_p, options.top_k) == (0.0, 0.9, 5)
    assert (options.max_new_tokens, options.seed) == (17, 3)
    assert engine.backend.requests[-1].model is None  # one model per server: the backend's own


def test_length_finish_reason_is_passed_on(engine: Engine) -> None:
    engine.backend.enqueue(ScriptedReply(chunks=("a", "b"), finish_reason="length"))
    result = engine.client.chat.completions.create(model=MODEL, messages=USER, max_tokens=2)
    assert result.choices[0].finish_reason == "length"


def test_tool_call_comes_back_in_openai_shape(engine: Engine) -> None:
    call = ToolCall(id="call_abc", name="get_weather", arguments={"city": "Lviv", "units": "metric"})
    engine.backend.enqueue(ScriptedReply(chunks=(), tool_calls=(call,)))
    result = engine.client.chat.completions.create(
        model=MODEL, messages=USER, tools=[WEATHER], tool_choice="required"
    )
    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (returned,) = choice.message.tool_calls or []
    assert (returned.id, returned.type, returned.function.name) == ("call_abc", "function", "get_weather")
    assert isinstance(returned.function.arguments, str)
    assert json.loads(returned.function.arguments) == {"city": "Lviv", "units": "metric"}
    sent = engine.backend.requests[-1]
    assert sent.tool_choice == "required"
    assert [t.name for t in sent.tools] == ["get_weather"]


def test_streamed_tool_calls_accumulate_with_indexes(engine: Engine) -> None:
    calls = (
        ToolCall(id="call_1", name="get_weather", arguments={"city": "Lviv"}),
        ToolCall(id="call_2", name="get_weather", arguments={"city": "Odesa"}),
    )
    engine.backend.enqueue(ScriptedReply(chunks=(), tool_calls=calls))
    chunks = list(
        engine.client.chat.completions.create(
            model=MODEL,
            messages=USER,
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            stream=True,
        )
    )
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert [d.index for d in deltas] == [0, 1]
    assert [json.loads(d.function.arguments)["city"] for d in deltas] == ["Lviv", "Odesa"]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert engine.backend.requests[-1].tool_choice == "get_weather"


@pytest.mark.parametrize("choice", ["auto", "none"])
def test_tool_choice_auto_and_none_pass_through(engine: Engine, choice: str) -> None:
    result = engine.client.chat.completions.create(
        model=MODEL, messages=USER, tools=[WEATHER], tool_choice=choice
    )
    assert result.choices[0].message.content == "Hello, world!"
    assert engine.backend.requests[-1].tool_choice == choice


def test_history_with_tool_results_is_accepted(engine: Engine) -> None:
    history = [
        *USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Lviv"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "12 C, cloudy"},
    ]
    engine.client.chat.completions.create(model=MODEL, messages=history, tools=[WEATHER])
    sent = engine.backend.requests[-1].messages
    assert sent[1].tool_calls[0].arguments == {"city": "Lviv"}
    assert (sent[2].role, sent[2].name, sent[2].content) == ("tool", "get_weather", "12 C, cloudy")


# --- errors ---------------------------------------------------------------------------------------


def assert_openai_error(response: httpx.Response, status: int, param: str | None) -> dict:
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    assert error["message"]
    return error


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"model": MODEL}, "messages"),
        ({"model": MODEL, "messages": USER, "temperature": -1}, "temperature"),
        ({"model": MODEL, "messages": USER, "max_tokens": 0}, "max_tokens"),
        ({"model": MODEL, "messages": USER, "max_tokens": 257}, "max_tokens"),
        ({"model": MODEL, "messages": [{"role": "user", "content": "x" * 2001}]}, "messages"),
        ({"model": MODEL, "messages": USER, "logit_bias": {"1": 2}}, "logit_bias"),
        ({"model": MODEL, "messages": USER, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ],
)
def test_bad_input_is_a_400_in_openai_shape(engine: Engine, payload: dict, param: str) -> None:
    response = httpx.post(f"{engine.base_url}/v1/chat/completions", json=payload)
    error = assert_openai_error(response, 400, param)
    assert error["type"] == "invalid_request_error"
    assert engine.backend.requests == []  # refused before any generation


def test_invalid_json_is_a_400(engine: Engine) -> None:
    response = httpx.post(f"{engine.base_url}/v1/chat/completions", content=b"{oops")
    assert "not valid JSON" in assert_openai_error(response, 400, None)["message"]


def test_openai_client_raises_bad_request(engine: Engine) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        engine.client.chat.completions.create(model=MODEL, messages=USER, tool_choice="required")
    assert "at least one tool" in str(caught.value)


def test_unknown_model_is_a_404(engine: Engine) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        engine.client.chat.completions.create(model="gpt-9", messages=USER)
    assert "The model `gpt-9` does not exist" in caught.value.message
    assert caught.value.code == "model_not_found"


def test_backend_errors_map_to_statuses(engine: Engine) -> None:
    overflow = ContextOverflow("scripted", prompt_tokens=3000, context_length=2048, reserved=100)
    engine.backend.enqueue(
        ScriptedReply(error_after=0, error=overflow),
        ScriptedReply(error_after=0, error=ModelNotFound("scripted", "x", ["scripted-model"])),
        ScriptedReply(error_after=0, error=BackendUnavailable("scripted", "model folder missing")),
    )
    with pytest.raises(openai.BadRequestError) as caught:
        engine.client.chat.completions.create(model=MODEL, messages=USER, stream=True)
    assert "3000 prompt tokens" in caught.value.message
    assert "2048 tokens" in caught.value.message
    assert caught.value.code == "context_length_exceeded"
    with pytest.raises(openai.NotFoundError):
        engine.client.chat.completions.create(model=MODEL, messages=USER)
    with pytest.raises(openai.InternalServerError) as unavailable:
        engine.client.chat.completions.create(model=MODEL, messages=USER)
    assert unavailable.value.status_code == 503


def test_mid_stream_failure_sends_an_error_event_then_done(engine: Engine) -> None:
    engine.backend.enqueue(ScriptedReply(chunks=("a", "b", "c"), error_after=2))
    events = sse_events(engine, {"model": MODEL, "messages": USER, "stream": True})
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["error"]["message"] == "scripted failure"
    engine.backend.enqueue(ScriptedReply(chunks=("a", "b", "c"), error_after=2))
    with pytest.raises(openai.APIError):
        list(engine.client.chat.completions.create(model=MODEL, messages=USER, stream=True))


# --- models, health, metrics ----------------------------------------------------------------------


def test_models_lists_the_served_model(engine: Engine) -> None:
    models = engine.client.models.list()
    assert [m.id for m in models.data] == [MODEL]
    assert models.data[0].model_extra is not None
    assert models.data[0].model_extra["max_model_len"] == 2048


def test_health_follows_the_backend(start_engine) -> None:
    backend = ScriptedBackend(health_status=Health("loading", "reading model.onnx"))
    engine = start_engine(backend)
    response = httpx.get(f"{engine.base_url}/health")
    assert (response.status_code, response.json()["status"]) == (503, "loading")
    backend.health_status = Health("ready")
    assert httpx.get(f"{engine.base_url}/health").status_code == 200


def parse_metrics(text: str) -> dict[str, float]:
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def test_metrics_count_requests_tokens_and_timings(engine: Engine) -> None:
    engine.backend.first_token_delay_s = 0.03
    for _ in range(2):
        engine.client.chat.completions.create(model=MODEL, messages=USER)
    with pytest.raises(openai.NotFoundError):
        engine.client.chat.completions.create(model="other", messages=USER)
    response = httpx.get(f"{engine.base_url}/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    m = parse_metrics(response.text)
    label = f'model_name="{MODEL}"'
    assert m[f'slm_engine:requests_total{{{label},status="200"}}'] == 2
    assert m[f'slm_engine:requests_total{{{label},status="404"}}'] == 1
    assert m[f"slm_engine:prompt_tokens_total{{{label}}}"] == 10
    assert m[f"slm_engine:generation_tokens_total{{{label}}}"] == 8
    assert m[f"slm_engine:time_to_first_token_seconds_count{{{label}}}"] == 2
    assert m[f'slm_engine:time_to_first_token_seconds_bucket{{{label},le="0.01"}}'] == 0
    assert m[f'slm_engine:time_to_first_token_seconds_bucket{{{label},le="+Inf"}}'] == 2
    assert m[f"slm_engine:time_to_first_token_seconds_sum{{{label}}}"] >= 0.06
    assert m[f"slm_engine:decode_tokens_per_second_count{{{label}}}"] == 2
    assert m[f"slm_engine:num_requests_running{{{label}}}"] == 0
