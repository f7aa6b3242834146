"""Pure wire parsing on recorded lines (tests/remote/recorded/): no sockets, no clients."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends.base import ReasoningDelta, TextDelta, ToolCallEvent, Usage
from backends.wire import (
    OllamaStreamState,
    OpenAIStreamState,
    WireError,
    completion_events,
    finish_reason,
    ndjson_chunk,
    ollama_server_metrics,
    parse_context_overflow,
    server_message,
    sse_chunks,
    sse_data,
)

RECORDED = Path(__file__).parent / "recorded"


def lines(name: str) -> list[str]:
    return (RECORDED / name).read_text().splitlines(keepends=True)


def openai_events(name: str) -> list:
    state = OpenAIStreamState()
    events = [event for chunk in sse_chunks(lines(name)) for event in state.handle_chunk(chunk)]
    return events + state.finish_events()


def ollama_events(name: str) -> list:
    state = OllamaStreamState()
    events = []
    for line in lines(name):
        chunk = ndjson_chunk(line)
        if chunk is not None:
            events += state.handle_chunk(chunk)
    state.check_finished()
    return events


def test_sse_framing_skips_comments_joins_data_lines_and_stops_at_done():
    raw = [
        ": ping - 2025-06-15 12:00:00\n",
        "\n",
        "event: message\n",
        'data: {"a":\n',
        "data: 1}\n",
        "\n",
        "data: [DONE]\n",
        "\n",
        'data: {"after": "done"}\n',
        "\n",
    ]
    assert list(sse_data(raw)) == ['{"a":\n1}']


def test_sse_accepts_crlf_and_no_space_after_colon():
    assert list(sse_data(['data:{"x":1}\r\n', "\r\n"])) == ['{"x":1}']


def test_sse_event_cut_off_without_blank_line_is_an_error():
    with pytest.raises(WireError, match="middle of an event"):
        list(sse_data(['data: {"x":1}\n']))


def test_vllm_stream_gives_reasoning_text_and_usage_from_the_usage_chunk():
    events = openai_events("vllm_chat_stream.sse")
    assert [e.text for e in events if isinstance(e, ReasoningDelta)] == ["2+2", " is 4."]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "The answer is 4."
    usage = events[-1]
    assert isinstance(usage, Usage)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.finish_reason) == (18, 6, "stop")
    assert usage.model == "microsoft/Phi-4-mini-instruct"
    assert sum(isinstance(e, Usage) for e in events) == 1


def test_older_reasoning_content_field_and_length_finish():
    events = openai_events("vllm_reasoning_content_stream.sse")
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == "Thinking."
    assert events[-1].finish_reason == "length"


def test_streamed_tool_call_fragments_are_joined_into_parsed_objects():
    events = openai_events("vllm_tool_stream_hermes.sse")
    calls = [e.call for e in events if isinstance(e, ToolCallEvent)]
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("chatcmpl-tool-4f9a0c1b2d3e4f5a", "get_weather", {"city": "Kyiv", "unit": "celsius"}),
        ("chatcmpl-tool-9e8d7c6b5a4f3e2d", "calculate", {"expression": "17*23"}),
    ]
    assert events[-1].finish_reason == "tool_calls"
    assert not any(isinstance(e, TextDelta) for e in events)


def test_error_event_mid_stream_raises_after_the_text_before_it():
    state = OpenAIStreamState()
    seen: list = []

    def feed() -> None:
        for chunk in sse_chunks(lines("vllm_error_midstream.sse")):
            seen.extend(state.handle_chunk(chunk))

    with pytest.raises(WireError, match="illegal memory access"):
        feed()
    assert "".join(e.text for e in seen) == "Partial answer"


def test_stream_without_finish_reason_is_reported_as_cut_off():
    state = OpenAIStreamState()
    for chunk in list(sse_chunks(lines("vllm_chat_stream.sse")))[:4]:
        state.handle_chunk(chunk)
    with pytest.raises(WireError, match="ended before"):
        state.finish_events()


def test_non_streaming_tool_result_becomes_events():
    response = json.loads((RECORDED / "vllm_tools_nonstream.json").read_text())
    events = completion_events(response)
    assert isinstance(events[0], ToolCallEvent)
    assert events[0].call.name == "get_weather"
    assert events[0].call.arguments == {"city": "Kyiv", "unit": "celsius"}
    assert events[0].call.id.startswith("chatcmpl-tool-")
    assert (events[1].prompt_tokens, events[1].completion_tokens, events[1].finish_reason) == (
        142,
        21,
        "tool_calls",
    )


def _one_call(arguments: object, finish: str = "tool_calls") -> dict:
    call = {"id": "c1", "function": {"name": "get_weather", "arguments": arguments}}
    return {"choices": [{"message": {"content": "", "tool_calls": [call]}, "finish_reason": finish}]}


@pytest.mark.parametrize(
    ("arguments", "shown"),
    [('{"city": "Kyiv"', '"{\\"city\\": \\"Kyiv\\""'), ('["Kyiv"]', '["Kyiv"]'), ('"Kyiv"', '"Kyiv"')],
)
def test_tool_arguments_that_are_not_a_json_object_stay_visible_as_text_and_are_not_run(arguments, shown):
    text, usage = completion_events(_one_call(arguments))
    assert text == TextDelta(f'<tool_call>\n{{"name": "get_weather", "arguments": {shown}}}\n</tool_call>')
    assert usage.finish_reason == "stop"  # nothing to run


def test_vllm_032_string_arguments_from_a_model_without_tools_are_text_on_every_path():
    """vLLM 0.32 answering tool_choice "required" for SmolLM2, whose template has no tools."""
    response = json.loads((RECORDED / "vllm_032_tool_required.json").read_text())
    raw = response["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    assert raw == '"5 + 7 = 12"'
    text, usage = completion_events(response)
    expected = '<tool_call>\n{"name": "add", "arguments": "5 + 7 = 12"}\n</tool_call>'
    assert (text, usage.finish_reason) == (TextDelta(expected), "stop")
    streamed = OpenAIStreamState()
    call = {"index": 0, "id": "x", "function": {"name": "add", "arguments": raw}}
    streamed.handle_chunk({"choices": [{"delta": {"tool_calls": [call]}, "finish_reason": "tool_calls"}]})
    assert streamed.finish_events()[:1] == [TextDelta(expected)]
    ollama = OllamaStreamState()
    chunk = {"message": {"tool_calls": [{"function": {"name": "add", "arguments": raw}}]}, "done": True}
    events = ollama.handle_chunk(chunk)
    assert events[0] == TextDelta(expected)
    assert events[-1].finish_reason == "stop"


def test_an_object_encoded_twice_is_still_a_call():
    (event, usage) = completion_events(_one_call(json.dumps('{"city": "Kyiv"}')))
    assert isinstance(event, ToolCallEvent)
    assert event.call.arguments == {"city": "Kyiv"}
    assert usage.finish_reason == "tool_calls"


def test_ollama_stream_keeps_nanosecond_metrics_as_seconds():
    events = ollama_events("ollama_chat.ndjson")
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "The sky is blue."
    usage = events[-1]
    assert (usage.prompt_tokens, usage.completion_tokens, usage.finish_reason) == (26, 5, "stop")
    assert usage.server["server_total_s"] == pytest.approx(1.482913551)
    assert usage.server["server_load_s"] == pytest.approx(0.012345678)
    assert usage.server["server_prompt_eval_s"] == pytest.approx(0.13)
    assert usage.server["server_eval_s"] == pytest.approx(0.25)
    assert usage.server["server_tokens_per_s"] == pytest.approx(20.0)  # 5 tokens / 0.25 s
    assert usage.server["server_prompt_tokens_per_s"] == pytest.approx(200.0)


def test_ollama_tool_call_arrives_whole_with_object_arguments():
    events = ollama_events("ollama_tool_call.ndjson")
    call = events[0].call
    assert (call.id, call.name, call.arguments) == (
        "call_k3v9x2qa",
        "get_weather",
        {"city": "Kyiv", "unit": "celsius"},
    )
    assert events[-1].finish_reason == "tool_calls"  # Ollama says "stop"; a call was made


def test_ollama_thinking_becomes_reasoning():
    events = ollama_events("ollama_thinking.ndjson")
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == "Let me think."
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Yes."]
    assert events[-1].finish_reason == "length"


def test_ollama_error_line_raises_after_the_text_before_it():
    state = OllamaStreamState()
    seen: list = []

    def feed() -> None:
        for line in lines("ollama_error_midstream.ndjson"):
            seen.extend(state.handle_chunk(ndjson_chunk(line) or {}))

    with pytest.raises(WireError, match="unexpected EOF"):
        feed()
    assert "".join(e.text for e in seen) == "Partial answer"


def test_ollama_stream_cut_before_done_is_reported():
    state = OllamaStreamState()
    for line in lines("ollama_chat.ndjson")[:2]:
        state.handle_chunk(ndjson_chunk(line) or {})
    with pytest.raises(WireError, match="ended before"):
        state.check_finished()


def test_ndjson_blank_and_garbage_lines():
    assert ndjson_chunk("\n") is None
    with pytest.raises(WireError, match="not JSON"):
        ndjson_chunk('{"model": "x", "mess')
    with pytest.raises(WireError, match="not a JSON object"):
        ndjson_chunk("[1, 2]")


def test_ollama_pull_progress_lines_parse():
    parts = [ndjson_chunk(line) for line in lines("ollama_pull.ndjson")]
    assert parts[0] == {"status": "pulling manifest"}
    assert parts[2]["completed"] * 2 == parts[2]["total"]
    assert parts[-1] == {"status": "success"}


def test_metrics_absent_on_intermediate_chunks_give_no_server_figures():
    assert ollama_server_metrics({"done": False, "message": {"content": "x"}}) == {}


@pytest.mark.parametrize(
    ("message", "body", "expected"),
    [
        (
            "This model's maximum context length is 4096 tokens. However, your prompt contains 5000 input "
            "tokens. Please reduce the length of the input messages.",
            None,
            (5000, 4096, 0),
        ),
        (
            "This model's maximum context length is 2048 tokens. However, you requested 3000 tokens (2500 in "
            "the messages, 500 in the completion). Please reduce the length of the messages or completion.",
            None,
            (2500, 2048, 500),
        ),
        (
            "the request exceeds the available context size, try increasing it",
            {"type": "exceed_context_size_error", "n_prompt_tokens": 3000, "n_ctx": 2048},
            (3000, 2048, 0),
        ),
    ],
)
def test_context_overflow_numbers_from_each_server_dialect(message, body, expected):
    numbers = parse_context_overflow(message, body)
    assert numbers is not None
    assert (numbers.prompt_tokens, numbers.context_length, numbers.reserved) == expected


def test_other_400_messages_have_no_context_numbers():
    assert parse_context_overflow("max_tokens=9000 cannot be greater than max_model_len=4096.") is None


def test_server_message_from_each_error_shape():
    assert (
        server_message({"message": "The model `x` does not exist.", "code": 404})
        == "The model `x` does not exist."
    )
    assert server_message({"error": "model 'x' not found"}) == "model 'x' not found"
    assert server_message(
        {"detail": [{"loc": ["body", "top_p"], "msg": "Input should be a valid number"}]}
    ) == ("top_p: Input should be a valid number")
    assert server_message("Internal Server Error\n") == "Internal Server Error"
    assert server_message(None, "fallback") == "fallback"


def test_finish_reasons_map_onto_ours():
    assert [finish_reason(r) for r in ("stop", "length", "tool_calls", "abort", None, "weird")] == [
        "stop",
        "length",
        "tool_calls",
        "cancelled",
        "stop",
        "stop",
    ]
    assert finish_reason("stop", had_tool_calls=True) == "tool_calls"


def test_llamacpp_stream_recorded_from_the_real_server_parses():
    """Recorded from llama-cpp-python 0.3.36: role chunk without content, no usage chunk."""
    events = openai_events("llamacpp_stream.sse")
    assert text_of_events(events) == "The colour is a rare and"
    usage = events[-1]
    assert (usage.prompt_tokens, usage.completion_tokens, usage.finish_reason) == (None, None, "length")
    assert usage.model == "smollm2-135m"


def test_stream_that_sent_nothing_says_so():
    with pytest.raises(WireError, match="without sending anything"):
        OpenAIStreamState().finish_events()


def text_of_events(events: list) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))
