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

from serve.protocol import Limits
from serve.server import create_app
from serve.threaded import ServerThread

pytestmark = pytest.mark.model
MODEL_ID = "default-onnx"
QUESTION = [{"role": "user", "content": "List the days of the week, one per line."}]


def default_model_dir() -> Path:
    if configured := os.environ.get("SLM_TEST_MODEL_DIR"):
        return Path(configured)
    try:
        from backends.model_store import resolve_model_dir

        return resolve_model_dir("")
    except Exception as exc:  # missing folder or model store not importable: nothing to run
        pytest.skip(f"default model folder not available: {exc}")


@pytest.fixture(scope="module")
def client() -> Iterator[openai.OpenAI]:
    from backends.onnx_engine import OnnxBackend

    backend = OnnxBackend("onnx", default_model_dir())
    app = create_app(
        backend,
        model_id=MODEL_ID,
        limits=Limits(max_prompt_chars=200_000, max_tokens_cap=256),
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
