"""The OpenAI wire format, without a server: validation, translation, chunk shapes."""

from __future__ import annotations

import json

import pytest

from backends.base import ToolCall
from serve.protocol import (
    ChunkWriter,
    RequestLimits,
    RequestProblem,
    completion_json,
    parse_request,
    sse,
    to_chat_request,
)

LIMITS = RequestLimits(max_prompt_chars=100, max_tokens_cap=64, default_max_tokens=32)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def body(**fields: object) -> bytes:
    fields.setdefault("model", "m")
    fields.setdefault("messages", [{"role": "user", "content": "hi"}])
    return json.dumps(fields).encode()


def translate(**fields: object):
    return to_chat_request(parse_request(body(**fields)), LIMITS)


@pytest.mark.parametrize(
    ("raw", "param", "words"),
    [
        (b"{not json", None, "not valid JSON"),
        (b"[1, 2]", None, "JSON object"),
        (body(messages=[]), "messages", "at least 1"),
        (body(temperature=2.5), "temperature", "less than or equal to 2"),
        (body(messages=[{"role": "robot", "content": "x"}]), "messages[0].role", "'system'"),
        (body(frobnicate=True), "frobnicate", "Extra inputs"),
        (body(n=2), "n", "n=2 is not supported by this server"),
        (body(stream_options={"include_usage": True}), None, "only be set when stream is true"),
        (body(tool_choice="sometimes"), "tool_choice", "'auto', 'none' or 'required'"),
        (
            body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]),
            "messages[0].content",
            "only text content parts are supported here, not 'image_url'",
        ),
    ],
)
def test_bad_requests_name_the_parameter(raw: bytes, param: str | None, words: str) -> None:
    with pytest.raises(RequestProblem) as caught:
        parse_request(raw)
    assert caught.value.status == 400
    assert caught.value.param == param
    assert words in caught.value.message


def test_sampling_fields_map_onto_options() -> None:
    request = translate(temperature=0.0, top_p=0.5, top_k=-1, max_tokens=20, seed=7, stop="END")
    options = request.options
    assert (options.temperature, options.top_p, options.top_k) == (0.0, 0.5, 0)
    assert (options.max_new_tokens, options.seed, options.stop) == (20, 7, ("END",))
    assert translate(max_completion_tokens=9).options.max_new_tokens == 9
    assert translate().options.max_new_tokens == LIMITS.default_max_tokens


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"max_tokens": 65}, "max_tokens", "cannot be greater than this server's cap of 64"),
        ({"messages": [{"role": "user", "content": "x" * 101}]}, "messages", "101 characters"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "at most 4"),
        ({"stop": [""]}, "stop", "must not be empty"),
        ({"tool_choice": "required"}, "tool_choice", "at least one tool"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice",
            "'nope', which is not among the tools",
        ),
        ({"max_tokens": 5, "max_completion_tokens": 6}, "max_tokens", "not both"),
    ],
)
def test_limits_and_contract_rules_become_400s(fields: dict, param: str, words: str) -> None:
    with pytest.raises(RequestProblem) as caught:
        translate(**fields)
    assert caught.value.param == param
    assert words in caught.value.message


def test_tools_and_tool_choice_translate() -> None:
    for choice, expected in [
        (None, "auto"),
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ({"type": "function", "function": {"name": "get_weather"}}, "get_weather"),
    ]:
        request = translate(tools=[WEATHER], tool_choice=choice)
        assert request.tool_choice == expected
        assert request.tools[0].name == "get_weather"
        assert request.tools[0].parameters["required"] == ["city"]


def test_history_with_tool_calls_round_trips() -> None:
    messages = [
        {"role": "developer", "content": "be brief"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "weather "}, {"type": "text", "text": "in Oslo"}],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "4 C"},
    ]
    request = translate(messages=messages, tools=[WEATHER])
    system, user, assistant, tool = request.messages
    assert system.role == "system"
    assert user.content == "weather in Oslo"
    assert assistant.tool_calls[0].arguments == {"city": "Oslo"}
    assert (tool.tool_call_id, tool.name, tool.content) == ("call_1", "get_weather", "4 C")


def test_bad_history_is_refused_with_its_position() -> None:
    bad_args = [
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}],
        },
    ]
    with pytest.raises(RequestProblem) as caught:
        translate(messages=bad_args)
    assert caught.value.param == "messages[1].tool_calls[0].function.arguments"
    with pytest.raises(RequestProblem) as caught:
        translate(messages=[{"role": "tool", "content": "4 C"}])
    assert caught.value.param == "messages[0].tool_call_id"


def test_chunks_follow_the_openai_stream_shape() -> None:
    writer = ChunkWriter("chatcmpl-1", "m", 123)
    call = ToolCall(id="call_1", name="get_weather", arguments={"city": "Oslo"})
    assert writer.role()["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert writer.text("Hi")["choices"][0] == {
        "index": 0,
        "delta": {"content": "Hi"},
        "logprobs": None,
        "finish_reason": None,
    }
    tool_delta = writer.tool_call(call, 0)["choices"][0]["delta"]["tool_calls"][0]
    assert tool_delta["index"] == 0
    assert json.loads(tool_delta["function"]["arguments"]) == {"city": "Oslo"}
    assert writer.finish("cancelled")["choices"][0]["finish_reason"] == "stop"
    usage = writer.usage(5, 3)
    assert usage["choices"] == []
    assert usage["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    assert sse({"a": 1}) == b'data: {"a":1}\n\n'


def test_completion_with_tool_calls_has_null_content_and_string_arguments() -> None:
    call = ToolCall(id="call_1", name="get_weather", arguments={"city": "Kyiv"})
    out = completion_json(
        completion_id="chatcmpl-1",
        model="m",
        text="",
        reasoning="",
        tool_calls=[call],
        finish_reason="tool_calls",
        prompt_tokens=None,
        completion_tokens=4,
    )
    message = out["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"][0]["function"]["arguments"] == '{"city": "Kyiv"}'
    assert out["usage"] == {"prompt_tokens": 0, "completion_tokens": 4, "total_tokens": 4}
