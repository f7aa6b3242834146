"""The real default model through the real in-process backend."""

import asyncio
from pathlib import Path

import pytest

from backends.base import ChatRequest, Message, SamplingOptions, ToolSpec
from backends.errors import ContextOverflow
from engines.onnx_engine import OnnxBackend
from models.model_store import ModelFolderError

pytestmark = pytest.mark.model

GREEDY = SamplingOptions(temperature=0.0, max_new_tokens=24)


@pytest.fixture
async def backend(default_model_dir: Path):
    b = OnnxBackend("onnx", default_model_dir)
    yield b
    await b.aclose()


def chat(*turns: str) -> tuple[Message, ...]:
    roles = ["user", "assistant"]
    return tuple(Message(role=roles[i % 2], content=t) for i, t in enumerate(turns))  # type: ignore[arg-type]


async def collect(backend: OnnxBackend, request: ChatRequest) -> tuple[str, object]:
    text, done = "", None
    async for event in backend.chat(request):
        if event.kind == "text":
            text += event.text
        elif event.kind == "done":
            done = event.metrics
    return text, done


async def test_streams_an_answer_with_metrics(backend: OnnxBackend) -> None:
    deltas = []
    async for event in backend.chat(
        ChatRequest(messages=chat("What is the capital of France? Answer in one sentence."), options=GREEDY)
    ):
        deltas.append(event)
    texts = [e.text for e in deltas if e.kind == "text"]
    metrics = deltas[-1].metrics
    assert len(texts) > 3, "tokens arrive one by one, not as one block"
    assert "Paris" in "".join(texts)
    assert metrics.prompt_tokens > 10 and 0 < metrics.completion_tokens <= 24
    assert metrics.ttft_s > 0 and metrics.decode_tokens_per_s > 0
    assert metrics.finish_reason in ("stop", "length")
    assert (await backend.health()).status == "ready"


async def test_max_new_tokens_and_stop_strings(backend: OnnxBackend) -> None:
    _, metrics = await collect(
        backend,
        ChatRequest(
            messages=chat("Count from 1 to 50, separated by commas."),
            options=SamplingOptions(temperature=0.0, max_new_tokens=8),
        ),
    )
    assert metrics.completion_tokens == 8 and metrics.finish_reason == "length"
    full, _ = await collect(
        backend,
        ChatRequest(
            messages=chat("Count from 1 to 20, separated by commas."),
            options=SamplingOptions(temperature=0.0, max_new_tokens=60),
        ),
    )
    assert "5" in full
    cut, metrics = await collect(
        backend,
        ChatRequest(
            messages=chat("Count from 1 to 20, separated by commas."),
            options=SamplingOptions(temperature=0.0, max_new_tokens=60, stop=("5",)),
        ),
    )
    assert "5" not in cut and full.startswith(cut) and metrics.finish_reason == "stop"


async def test_stop_mid_stream_ends_the_worker(backend: OnnxBackend) -> None:
    request = ChatRequest(
        messages=chat("Write a long story about a dragon."),
        options=SamplingOptions(temperature=0.7, max_new_tokens=400),
    )
    stream = backend.chat(request)
    seen = 0
    async for event in stream:
        seen += event.kind == "text"
        if seen == 3:
            break
    await stream.aclose()
    # closing the stream waits until the scheduler has freed the job's row
    assert backend.stats()["running"] == 0
    assert all(row.owner is None for row in backend._loaded.graph.rows)  # type: ignore[union-attr]
    text, metrics = await collect(backend, ChatRequest(messages=chat("Say hi."), options=GREEDY))
    assert text and metrics.finish_reason in ("stop", "length")


async def test_context_overflow_is_refused_before_generation(backend: OnnxBackend) -> None:
    huge = "word " * 9000
    with pytest.raises(ContextOverflow) as info:
        await collect(backend, ChatRequest(messages=chat(huge), options=GREEDY))
    assert info.value.prompt_tokens > info.value.context_length == 8192
    assert "8192" in str(info.value)


async def test_multi_turn_reuses_the_kv_cache_and_matches_a_fresh_run(
    backend: OnnxBackend, default_model_dir: Path
) -> None:
    first, m1 = await collect(backend, ChatRequest(messages=chat("Name a fruit."), options=GREEDY))
    turns = ("Name a fruit.", first, "What colour is it?")
    second, m2 = await collect(backend, ChatRequest(messages=chat(*turns), options=GREEDY))
    assert m2.server["reused_tokens"] >= m1.prompt_tokens - 1
    assert m2.server["prefill_tokens"] < m2.prompt_tokens / 2
    fresh_backend = OnnxBackend("fresh", default_model_dir)
    try:
        fresh, m3 = await collect(fresh_backend, ChatRequest(messages=chat(*turns), options=GREEDY))
    finally:
        await fresh_backend.aclose()
    assert m3.server["reused_tokens"] == 0
    assert fresh == second, "rewinding the KV cache must not change greedy output"


async def test_concurrent_requests_all_complete(backend: OnnxBackend) -> None:
    prompts = [
        f"Give one word that rhymes with {w}." for w in ("cat", "tree", "blue", "light", "rain", "day")
    ]
    results = await asyncio.gather(
        *(collect(backend, ChatRequest(messages=chat(p), options=GREEDY)) for p in prompts)
    )
    assert all(text and metrics.completion_tokens for text, metrics in results)


async def test_required_tool_call_is_valid_json_for_the_schema(backend: OnnxBackend) -> None:
    area = ToolSpec(
        name="calculate_circle_area",
        description="Area of a circle given its radius",
        parameters={"type": "object", "properties": {"radius": {"type": "number"}}, "required": ["radius"]},
    )
    calls = []
    async for event in backend.chat(
        ChatRequest(
            messages=chat("Area of a circle with radius 5?"),
            tools=(area,),
            tool_choice="required",
            options=SamplingOptions(temperature=0, max_new_tokens=64),
        )
    ):
        if event.kind == "tool_call":
            calls.append(event.call)
        if event.kind == "done":
            assert event.metrics.finish_reason == "tool_calls"
    assert len(calls) == 1 and calls[0].name == "calculate_circle_area"
    assert isinstance(calls[0].arguments["radius"], int | float)


async def test_a_folder_that_is_not_a_model_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "genai_config.json").write_text("{}")
    backend = OnnxBackend("onnx", tmp_path)
    assert (await backend.health()).status == "unreachable"
    with pytest.raises(ModelFolderError, match="malformed"):
        await collect(backend, ChatRequest(messages=chat("hi")))
    await backend.aclose()
