"""Client libraries as people use them, against the engine server on the real default model:
the official openai client (sync and async) and LangChain's ChatOpenAI, each doing a chat, a
stream, a tool call and structured output."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import openai
import pytest
from pydantic import BaseModel, Field

from serve.protocol import RequestLimits
from serve.server import create_app
from serve.threaded import ServerThread
from tests.serve.test_engine_real_model import default_model_dir

pytestmark = pytest.mark.model
MODEL_ID = "default-onnx"
HELLO = [{"role": "user", "content": "Say hello in one short sentence."}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


class Person(BaseModel):
    name: str = Field(max_length=24)
    age: int = Field(ge=0, le=120)


def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    from engines.onnx_engine import OnnxBackend

    backend = OnnxBackend("onnx", default_model_dir())
    app = create_app(backend, model_id=MODEL_ID, limits=RequestLimits(max_tokens_cap=256), close_backend=True)
    with ServerThread(app) as server:
        yield f"{server.base_url}/v1"


# --- openai, sync -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sync_client(base_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=120) as client:
        yield client


def test_openai_sync_chat_and_stream(sync_client: openai.OpenAI) -> None:
    assert sync_client.models.retrieve(MODEL_ID).id == MODEL_ID
    whole = sync_client.chat.completions.create(model=MODEL_ID, messages=HELLO, max_tokens=48, temperature=0)  # type: ignore[arg-type]
    with sync_client.chat.completions.stream(
        model=MODEL_ID,
        messages=HELLO,  # type: ignore[arg-type]
        max_tokens=48,
        temperature=0,
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    # (not compared with `whole`: a pooled KV cache may flip a near-tie in greedy decoding)
    assert whole.choices[0].message.content
    assert len(deltas) > 1
    assert final.choices[0].message.content == "".join(deltas)


def test_openai_sync_tool_call(sync_client: openai.OpenAI) -> None:
    result = sync_client.chat.completions.create(
        model=MODEL_ID,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=48,
        temperature=0,
    )
    (call,) = result.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert isinstance(json.loads(call.function.arguments)["city"], str)  # type: ignore[union-attr]


def test_openai_sync_structured_output(sync_client: openai.OpenAI) -> None:
    result = sync_client.chat.completions.parse(
        model=MODEL_ID,
        messages=[{"role": "user", "content": "Invent a person."}],
        response_format=Person,
        max_tokens=48,
        temperature=0,
    )
    person = result.choices[0].message.parsed
    assert isinstance(person, Person)


# --- openai, async ------------------------------------------------------------------------------


def test_openai_async_chat_stream_tool_and_structured_output(base_url: str) -> None:
    async def scenario() -> None:
        async with openai.AsyncOpenAI(
            base_url=base_url, api_key="unused", max_retries=0, timeout=120
        ) as client:
            whole = await client.chat.completions.create(
                model=MODEL_ID,
                messages=HELLO,  # type: ignore[arg-type]
                max_tokens=48,
                temperature=0,
            )
            stream = await client.chat.completions.create(
                model=MODEL_ID,
                messages=HELLO,  # type: ignore[arg-type]
                max_tokens=48,
                temperature=0,
                stream=True,
                stream_options={"include_usage": True},
            )
            chunks = [c async for c in stream]
            assert whole.choices[0].message.content
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 1
            called = await client.chat.completions.create(
                model=MODEL_ID,
                messages=[{"role": "user", "content": "Weather in Rome?"}],
                tools=[WEATHER_TOOL],  # type: ignore[list-item]
                tool_choice="required",
                max_tokens=48,
                temperature=0,
            )
            assert called.choices[0].finish_reason == "tool_calls"
            parsed = await client.chat.completions.parse(
                model=MODEL_ID,
                messages=[{"role": "user", "content": "Invent a person."}],
                response_format=Person,
                max_tokens=48,
                temperature=0,
            )
            assert isinstance(parsed.choices[0].message.parsed, Person)

    asyncio.run(scenario())


# --- LangChain ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chat_model(base_url: str):  # type: ignore[no-untyped-def]
    langchain_openai = pytest.importorskip("langchain_openai")
    return langchain_openai.ChatOpenAI(
        model=MODEL_ID, base_url=base_url, api_key="unused", temperature=0, max_tokens=48, max_retries=0
    )


def test_langchain_chat_and_stream(chat_model) -> None:  # type: ignore[no-untyped-def]
    answer = chat_model.invoke("Say hello in one short sentence.")
    assert isinstance(answer.content, str) and answer.content
    chunks = list(chat_model.stream("Say hello in one short sentence."))
    assert len(chunks) > 1
    assert "".join(chunk.content for chunk in chunks)


def test_langchain_tool_call(chat_model) -> None:  # type: ignore[no-untyped-def]
    with_tools = chat_model.bind_tools([get_weather], tool_choice="get_weather")
    message = with_tools.invoke("What is the weather in Paris?")
    (call,) = message.tool_calls
    assert call["name"] == "get_weather"
    assert isinstance(call["args"]["city"], str)


def test_langchain_structured_output(chat_model) -> None:  # type: ignore[no-untyped-def]
    person = chat_model.with_structured_output(Person, method="json_schema").invoke("Invent a person.")
    assert isinstance(person, Person)
    loose = chat_model.with_structured_output(method="json_mode").invoke(
        'Reply with a JSON object with the key "answer" holding the capital of France.'
    )
    assert isinstance(loose, dict)
