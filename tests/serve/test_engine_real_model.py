"""The same core checks against the real in-process ONNX model behind the engine server.

Skipped when the default model folder is missing (`slm-playground model prepare`), or point
SLM_TEST_MODEL_DIR at any onnxruntime-genai folder.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from serve.protocol import RequestLimits
from serve.server import create_app
from serve.threaded import ServerThread

pytestmark = pytest.mark.model
MODEL_ID = "default-onnx"
QUESTION = [{"role": "user", "content": "List the days of the week, one per line."}]


def default_model_dir() -> Path:
    if configured := os.environ.get("SLM_TEST_MODEL_DIR"):
        return Path(configured)
    try:
        from models.model_store import resolve_model_dir

        return resolve_model_dir("")
    except Exception as exc:  # missing folder or model store not importable: nothing to run
        pytest.skip(f"default model folder not available: {exc}")


@pytest.fixture(scope="module")
def client() -> Iterator[openai.OpenAI]:
    from engines.onnx_engine import OnnxBackend

    backend = OnnxBackend("onnx", default_model_dir())
    app = create_app(
        backend,
        model_id=MODEL_ID,
        limits=RequestLimits(max_prompt_chars=200_000, max_tokens_cap=256),
        close_backend=True,
    )
    with ServerThread(app) as server:
        http = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0, timeout=120)
        yield http
        http.close()


def test_non_streaming_answer_with_usage(client: openai.OpenAI) -> None:
    result = client.chat.completions.create(model=MODEL_ID, messages=QUESTION, max_tokens=24, temperature=0)
    choice = result.choices[0]
    assert choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert result.usage is not None
    assert result.usage.prompt_tokens > 5
    assert 0 < result.usage.completion_tokens <= 24


def test_streaming_matches_non_streaming_and_reports_usage(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model=MODEL_ID, messages=QUESTION, max_tokens=24, temperature=0)
    chunks = list(
        client.chat.completions.create(
            model=MODEL_ID,
            messages=QUESTION,
            max_tokens=24,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == whole.choices[0].message.content  # greedy: the same tokens either way
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert whole.usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_stop_string_ends_the_answer_before_it(client: openai.OpenAI) -> None:
    free = client.chat.completions.create(model=MODEL_ID, messages=QUESTION, max_tokens=40, temperature=0)
    text = free.choices[0].message.content or ""
    words = [w for w in text.split() if len(w) > 3]
    assert len(words) >= 3, f"answer too short to pick a stop word from: {text!r}"
    stop = words[2]
    stopped = client.chat.completions.create(
        model=MODEL_ID, messages=QUESTION, max_tokens=40, temperature=0, stop=[stop]
    )
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].message.content == text[: text.index(stop)]


def test_unknown_model_and_context_overflow_are_openai_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=QUESTION)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL_ID, messages=[{"role": "user", "content": "word " * 12_000}], max_tokens=8
        )
    assert caught.value.code == "context_length_exceeded"
    assert re.search(r"\d{4,} prompt tokens.*holds \d{3,} tokens", caught.value.message)


def test_required_tool_call_has_valid_json_arguments(client: openai.OpenAI) -> None:
    weather = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
    result = client.chat.completions.create(
        model=MODEL_ID,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[weather],
        tool_choice="required",
        max_tokens=96,
        temperature=0,
    )
    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments), dict)


# --- structured output, logprobs, completions on the real model --------------------------------

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 24},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}
ASK_JSON = [
    {
        "role": "user",
        "content": 'Reply with a JSON object with the key "answer" holding the capital of France.',
    }
]


def test_json_object_parses_streamed_or_not(client: openai.OpenAI) -> None:
    fmt = {"type": "json_object"}
    whole = client.chat.completions.create(
        model=MODEL_ID,
        messages=ASK_JSON,
        response_format=fmt,
        max_tokens=96,
        temperature=0,  # type: ignore[arg-type]
    )
    assert whole.choices[0].finish_reason == "stop"
    parsed = json.loads(whole.choices[0].message.content or "")
    assert isinstance(parsed, dict)
    chunks = client.chat.completions.create(
        model=MODEL_ID,
        messages=ASK_JSON,
        response_format=fmt,
        max_tokens=96,
        temperature=0,
        stream=True,  # type: ignore[arg-type]
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert json.loads(streamed) == parsed


@pytest.mark.parametrize("stream", [False, True])
def test_json_schema_answers_validate(client: openai.OpenAI, stream: bool) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}}
    for prompt in ("Invent a person.", "Who wrote Hamlet? Give the name and age at death.", "hello"):
        messages = [{"role": "user", "content": prompt}]
        result = client.chat.completions.create(
            model=MODEL_ID,
            messages=messages,
            response_format=fmt,
            max_tokens=64,
            temperature=0,
            stream=stream,  # type: ignore[arg-type, call-overload]
        )
        if stream:
            text = "".join(c.choices[0].delta.content or "" for c in result if c.choices)
        else:
            assert result.choices[0].finish_reason == "stop"
            text = result.choices[0].message.content or ""
        jsonschema.validate(json.loads(text), PERSON)


@pytest.mark.parametrize(
    ("schema", "words"),
    [
        ({"type": "frobnicate"}, "Invalid type"),
        (
            {"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}},
            "loops back",
        ),
        ({"$ref": "#/$defs/missing"}, "does not exist"),
    ],
)
def test_schemas_the_grammar_cannot_use_are_400s(client: openai.OpenAI, schema: dict, words: str) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL_ID, messages=QUESTION, response_format=fmt, max_tokens=8)  # type: ignore[arg-type]
    assert words in caught.value.message
    assert caught.value.param == "response_format"  # type: ignore[attr-defined]
    bad_tool = {"type": "function", "function": {"name": "f", "parameters": {"$ref": "#"}}}
    with pytest.raises(openai.BadRequestError) as tool_caught:
        client.chat.completions.create(
            model=MODEL_ID,
            messages=QUESTION,
            tools=[bad_tool],
            tool_choice="required",
            max_tokens=8,  # type: ignore[list-item]
        )
    assert tool_caught.value.param == "tools"  # type: ignore[attr-defined]
    assert client.chat.completions.create(
        model=MODEL_ID, messages=QUESTION, max_tokens=2
    ).choices  # still serving


@pytest.mark.parametrize("stream", [False, True])
def test_greedy_logprobs_name_the_likeliest_token(client: openai.OpenAI, stream: bool) -> None:
    result = client.chat.completions.create(
        model=MODEL_ID,
        messages=QUESTION,
        max_tokens=12,
        temperature=0,
        logprobs=True,
        top_logprobs=3,
        stream=stream,  # type: ignore[call-overload]
    )
    if stream:
        chunks = [c for c in result if c.choices]
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        entries = [t for c in chunks if c.choices[0].logprobs for t in c.choices[0].logprobs.content or []]
    else:
        text = result.choices[0].message.content or ""
        entries = result.choices[0].logprobs.content or []
    assert "".join(e.token for e in entries) == text
    assert len(entries) >= 5
    for entry in entries:
        assert len(entry.top_logprobs) == 3
        assert entry.logprob <= 0
        assert entry.top_logprobs[0].logprob >= entry.top_logprobs[1].logprob >= entry.top_logprobs[2].logprob
        assert entry.logprob == pytest.approx(entry.top_logprobs[0].logprob)  # greedy takes the top one


def test_completions_on_the_real_model(client: openai.OpenAI) -> None:
    prompt = "The days of the week are Monday, Tuesday,"
    one = client.completions.create(model=MODEL_ID, prompt=prompt, max_tokens=10, temperature=0)
    text = one.choices[0].text
    assert text and not text.startswith(prompt)  # echo is off: only the continuation
    assert one.choices[0].finish_reason == "length"
    assert one.usage is not None and one.usage.completion_tokens == 10
    assert 5 < one.usage.prompt_tokens < 20  # the raw prompt, no chat template around it
    both = client.completions.create(
        model=MODEL_ID, prompt=[prompt, "1, 2, 3,"], max_tokens=10, temperature=0
    )
    assert [c.index for c in both.choices] == [0, 1]
    assert all(c.text for c in both.choices)
    streamed = client.completions.create(
        model=MODEL_ID,
        prompt=prompt,
        max_tokens=10,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(streamed)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 10
    word = text.split()[1] if len(text.split()) > 1 else text.split()[0]
    stopped = client.completions.create(
        model=MODEL_ID, prompt=prompt, max_tokens=10, temperature=0, stop=[word]
    )
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].text == text[: text.index(word)]
