"""The llamacpp kind: llama.cpp in-process on the embedded GGUF, through the Backend contract
(typed events then one Done, sampling options per request, Stop, typed errors), and its one
registration in the kinds table reaching the lane parser, the registry and the gate."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.base import ChatEvent, ChatRequest, Message, SamplingOptions, ToolSpec
from backends.errors import BackendUnavailable, ContextOverflow

pytestmark = pytest.mark.llamacpp

if importlib.util.find_spec("llama_cpp") is None:
    pytest.skip("llama-cpp-python is not installed (the llamacpp extra)", allow_module_level=True)

from engines.llamacpp_engine import LlamaCppBackend, reusable_prefix  # noqa: E402
from models.convert import ConversionError, find_default_gguf  # noqa: E402


@pytest.fixture(scope="module")
def gguf() -> Path:
    try:
        return find_default_gguf()
    except ConversionError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def backend(gguf: Path) -> Iterator[LlamaCppBackend]:
    engine = LlamaCppBackend("llamacpp", gguf)
    asyncio.run(engine.warm_up())  # loaded once for the module, outside any one test's event loop
    yield engine
    asyncio.run(engine.aclose())


def ask(text: str, **options: object) -> ChatRequest:
    return ChatRequest(
        messages=(Message(role="user", content=text),),
        options=SamplingOptions.model_validate({"temperature": 0.0, **options}),
    )


async def collect(backend: LlamaCppBackend, request: ChatRequest) -> list[ChatEvent]:
    return [event async for event in backend.chat(request)]


def text_of(events: list[ChatEvent]) -> str:
    return "".join(e.text for e in events if e.kind == "text")


async def test_streams_text_then_exactly_one_done_with_the_counts(backend: LlamaCppBackend) -> None:
    events = await collect(backend, ask("What is the capital of France? One sentence.", max_new_tokens=30))
    assert [e.kind for e in events][-1] == "done"
    assert sum(e.kind == "done" for e in events) == 1
    assert "Paris" in text_of(events)
    metrics = events[-1].metrics  # type: ignore[union-attr]
    assert metrics.backend == "llamacpp" and metrics.model == "SmolLM2-135M-Instruct.Q4_1"
    assert metrics.prompt_tokens and metrics.prompt_tokens > 10  # the GGUF's chat template around it
    assert metrics.finish_reason == "stop" and metrics.ttft_s is not None


def test_only_whole_chunks_of_the_last_prefill_are_reused() -> None:
    prompt = list(range(200))
    assert reusable_prefix([], prompt) == 0
    assert reusable_prefix(prompt, prompt) == 192  # never the last token, and whole chunks only
    assert reusable_prefix(prompt[:150], prompt) == 128
    assert reusable_prefix([*prompt[:70], -1], prompt) == 64
    assert reusable_prefix(prompt[:63], prompt) == 0


def long_question(topic: str) -> str:
    # over two prefill chunks, so a repeat or a next turn has whole chunks to reuse
    return f"Here are some notes about {topic}. " + "Colours are everywhere in nature. " * 25 + "Name three."


async def test_greedy_is_the_same_whatever_was_cached_before(backend: LlamaCppBackend) -> None:
    request = ask(long_question("colours"), max_new_tokens=24)
    await collect(backend, ask("Write one line about the sea.", max_new_tokens=8))
    fresh = await collect(backend, request)
    again = await collect(backend, request)  # everything but the last chunk comes from the cache
    assert again[-1].metrics.server["reused_tokens"] >= 64  # type: ignore[union-attr]
    await collect(backend, ask(long_question("birds"), max_new_tokens=8))  # a shared prefix cached
    after_another = await collect(backend, request)
    assert text_of(fresh) == text_of(again) == text_of(after_another)


async def test_the_next_turn_reuses_the_cache_and_answers_as_if_it_had_not(backend: LlamaCppBackend) -> None:
    first = ask(long_question("colours"), max_new_tokens=16)
    reply = text_of(await collect(backend, first))
    turn2 = ChatRequest(
        messages=(
            *first.messages,
            Message(role="assistant", content=reply),
            Message(role="user", content="Why?"),
        ),
        options=first.options,
    )
    continued = await collect(backend, turn2)
    assert continued[-1].metrics.server["reused_tokens"] >= 64  # type: ignore[union-attr]
    await collect(backend, ask("Say hi.", max_new_tokens=2))  # nothing of turn2 left to reuse
    cold = await collect(backend, turn2)
    assert cold[-1].metrics.server["reused_tokens"] == 0  # type: ignore[union-attr]
    assert text_of(continued) == text_of(cold)


async def test_max_new_tokens_ends_with_length(backend: LlamaCppBackend) -> None:
    done = (await collect(backend, ask("Write a long story about a dragon.", max_new_tokens=3)))[-1]
    assert done.metrics.completion_tokens == 3  # type: ignore[union-attr]
    assert done.metrics.finish_reason == "length"  # type: ignore[union-attr]


async def test_a_stop_string_ends_the_answer_before_it(backend: LlamaCppBackend) -> None:
    events = await collect(
        backend, ask("Count from 1 to 10, separated by commas.", max_new_tokens=40, stop=("5",))
    )
    assert "4" in text_of(events) and "5" not in text_of(events)
    assert events[-1].metrics.finish_reason == "stop"  # type: ignore[union-attr]


async def test_a_seed_fixes_sampling_whatever_was_cached(backend: LlamaCppBackend) -> None:
    request = ask("Tell me a story.", temperature=1.0, max_new_tokens=12, seed=7)
    first = text_of(await collect(backend, request))
    again = text_of(await collect(backend, request))
    await collect(backend, ask("Tell me a joke.", max_new_tokens=4))
    assert first == again == text_of(await collect(backend, request))


async def test_forced_tool_call_and_json_output_decode_under_a_grammar(backend: LlamaCppBackend) -> None:
    calc = ToolSpec(
        name="calculator",
        parameters={
            "type": "object",
            "properties": {"expression": {"type": "string"}},
            "required": ["expression"],
        },
    )
    request = ChatRequest(
        messages=(Message(role="user", content="What is 12*7?"),),
        options=SamplingOptions(temperature=0.0, max_new_tokens=60),
        tools=(calc,),
        tool_choice="calculator",
    )
    events = await collect(backend, request)
    calls = [e.call for e in events if e.kind == "tool_call"]
    assert len(calls) == 1 and calls[0].name == "calculator" and "expression" in calls[0].arguments
    assert events[-1].metrics.finish_reason == "tool_calls"  # type: ignore[union-attr]
    answer = text_of(
        await collect(
            backend, ask("Give a JSON object with a name and an age.", max_new_tokens=60, json_output=True)
        )
    )
    assert isinstance(json.loads(answer), dict)


async def test_plain_completion_uses_no_chat_template(backend: LlamaCppBackend) -> None:
    request = ChatRequest(
        messages=(Message(role="user", content="The capital of France is"),),
        options=SamplingOptions(temperature=0.0, max_new_tokens=4),
        completion=True,
    )
    events = await collect(backend, request)
    assert "Paris" in text_of(events)
    assert events[-1].metrics.prompt_tokens == 5  # type: ignore[union-attr]


async def test_stop_frees_the_context_for_the_next_request(backend: LlamaCppBackend) -> None:
    stream = backend.chat(ask("Write a very long story about the sea.", max_new_tokens=400))
    first = await anext(stream)
    assert first.kind == "text"
    await stream.aclose()  # returns once the worker has left its token loop
    done = (await collect(backend, ask("Say hi.", max_new_tokens=2)))[-1]
    assert done.metrics.completion_tokens == 2  # type: ignore[union-attr]


async def test_a_prompt_longer_than_the_context_is_refused_with_both_numbers(
    backend: LlamaCppBackend,
) -> None:
    with pytest.raises(ContextOverflow) as caught:
        await collect(backend, ask("word " * 5000))
    assert caught.value.context_length == 4096 and caught.value.prompt_tokens > 4096


async def test_a_missing_or_broken_file_is_unavailable(tmp_path: Path) -> None:
    missing = LlamaCppBackend("llamacpp", tmp_path / "nope.gguf")
    assert (await missing.health()).status == "unreachable"
    with pytest.raises(BackendUnavailable, match="not a file"):
        await collect(missing, ask("hi"))
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf at all")
    engine = LlamaCppBackend("llamacpp", broken)
    try:
        with pytest.raises(BackendUnavailable, match=r"could not load broken\.gguf"):
            await collect(engine, ask("hi"))
    finally:
        await engine.aclose()


async def test_threads_default_to_every_core_and_follow_the_setting(gguf: Path) -> None:
    from runtime.kinds import KINDS, Target
    from runtime.settings import Settings

    built = KINDS["llamacpp"].build("llamacpp", Target(), Settings(llamacpp_threads=1, onnx_threads=2))
    assert isinstance(built, LlamaCppBackend) and built.threads == 1 and built.model_path == gguf  # its own
    assert LlamaCppBackend("x", gguf).threads >= 1
    await built.aclose()


def test_one_registration_reaches_the_lane_parser_registry_and_gate(gguf: Path) -> None:
    from compare.lanes import backend_for_lane, parse_lane
    from runtime.gate import BackendGate, BackendRefused
    from runtime.kinds import available_kinds, lane_help
    from runtime.registry import BackendRegistry
    from runtime.settings import Settings

    assert "llamacpp" in available_kinds(in_process=True)
    assert "llamacpp[:FILE.gguf]" in lane_help()
    spec = parse_lane(f"llamacpp:{gguf}#temperature=0")
    assert (spec.kind, spec.model, spec.in_process) == ("llamacpp", str(gguf), True)
    assert parse_lane("llamacpp").model == ""
    registry = BackendRegistry(Settings(), defaults=True)
    assert registry.labels()[:2] == ["onnx", "llamacpp"]  # offered, nothing loaded yet
    backend, model = backend_for_lane(parse_lane("llamacpp", known_labels=registry.labels()), registry)
    assert isinstance(backend, LlamaCppBackend) and backend.model_path == gguf and model is None
    assert BackendRegistry(Settings()).labels() == []  # no in-process models unless asked for
    app_like = BackendRegistry(Settings(), in_process=lambda: LlamaCppBackend("onnx", gguf))
    assert app_like.labels() == ["onnx", "llamacpp"]  # the app's dropdowns offer the kind
    public = BackendRegistry(Settings(public=True), defaults=True)
    with pytest.raises(BackendRefused, match="not a folder"):
        backend_for_lane(parse_lane(f"llamacpp:{gguf}"), public, BackendGate(public.settings))


def test_the_engine_server_serves_the_gguf_to_the_openai_client(gguf: Path) -> None:
    """`slm-playground engine --lane llamacpp:FILE`: llama.cpp behind the same server as onnx."""
    import argparse

    import openai

    from runtime.settings import Settings
    from serve.cli import add_arguments, build_engine
    from serve.threaded import ServerThread

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    engine = build_engine(parser.parse_args(["--lane", f"llamacpp:{gguf}"]), Settings())
    assert isinstance(engine.backend, LlamaCppBackend) and engine.model_id == gguf.stem
    with ServerThread(engine.app) as server:
        client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0, timeout=120)
        question = [{"role": "user", "content": "What is the capital of France? One sentence."}]
        result = client.chat.completions.create(
            model=gguf.stem, messages=question, max_tokens=20, temperature=0
        )
        listed = [m.id for m in client.models.list()]
        client.close()
    assert "Paris" in (result.choices[0].message.content or "")
    assert result.usage is not None and result.usage.completion_tokens > 1
    assert listed == [gguf.stem]
