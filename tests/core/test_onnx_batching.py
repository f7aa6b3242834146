"""The real default model decoding several requests in one batch (engines/onnx_batch.py)."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import numpy as np
import pytest

from backends.base import ChatRequest, Message, Metrics, SamplingOptions
from engines.onnx_engine import OnnxBackend
from engines.onnx_jobs import PREFILL_CHUNK, LoadedModel, OnnxEngine, OnnxJob

pytestmark = pytest.mark.model

PROMPTS = (
    "Name three fruits.",
    "Why is the sky blue? One sentence.",
    "Count from one to ten in words.",
    "Say good morning in French and Spanish.",
)


def greedy(n: int) -> SamplingOptions:
    return SamplingOptions(temperature=0.0, max_new_tokens=n)


def ask(prompt: str, options: SamplingOptions) -> ChatRequest:
    return ChatRequest(messages=(Message(role="user", content=prompt),), options=options)


async def collect(backend: OnnxBackend, request: ChatRequest) -> tuple[str, object]:
    text, done = "", None
    async for event in backend.chat(request):
        if event.kind == "text":
            text += event.text
        elif event.kind == "done":
            done = event.metrics
    return text, done


@pytest.fixture
async def backend(default_model_dir: Path):
    b = OnnxBackend("onnx", default_model_dir)
    yield b
    await b.aclose()


def test_the_default_folder_batches_and_q4_1_runs_the_slm_attention(default_model_dir: Path) -> None:
    import json

    import onnx

    from engines.onnx_batch import ATTENTION_OPS, batchable

    config = json.loads((default_model_dir / "genai_config.json").read_text())
    assert batchable(default_model_dir, config) is None
    graph = onnx.load(str(default_model_dir / "model.onnx"), load_external_data=False).graph
    attention = {n.op_type for n in graph.node} & ATTENTION_OPS
    native = config["model"]["decoder"].get("session_options", {}).get("custom_ops_library")
    assert attention == ({"CausalAttentionF16"} if native else {"GroupQueryAttention"})
    if native:  # its KV cache is float16: half the bytes a decoding step reads per cached token
        kinds = {i.name: i.type.tensor_type.elem_type for i in graph.input}
        assert kinds["past_key_values.0.key"] == onnx.TensorProto.FLOAT16


SYSTEM = "You are a terse assistant who answers in plain words."
ARRIVING_TOGETHER = (
    (SYSTEM, "Name three fruits."),
    (SYSTEM, "Name three birds."),
    (None, "Count from one to ten in words."),
    (SYSTEM, "Name three trees."),
    (SYSTEM, "Summarise this list: " + " ".join(f"item {i} is red;" for i in range(30))),
    (SYSTEM, "Summarise this list: " + " ".join(f"item {i} is blue;" for i in range(20))),
)
"""Prompts sharing a system prompt (three of one length), one without, two longer than
PREFILL_CHUNK of different lengths."""


class Recorded:
    """A job on the engine directly (no scheduler), with the events it emits."""

    def __init__(self, loaded: LoadedModel, system: str | None, prompt: str, max_tokens: int) -> None:
        system_message = (Message(role="system", content=system),) if system else ()
        request = ChatRequest(
            messages=(*system_message, Message(role="user", content=prompt)), options=greedy(max_tokens)
        )
        self.job = OnnxJob(request, loaded.encode_chat(request), max_tokens)
        self.events: list = []
        self.job._emit = self.events.append

    @property
    def text(self) -> str:
        return "".join(e.text for e in self.events if getattr(e, "kind", None) == "text")


def run_together(
    loaded: LoadedModel,
    recorded: list[Recorded],
    *,
    fresh: bool = True,
    engine: OnnxEngine | None = None,
    run_times: list[float] | None = None,
) -> tuple[list[tuple[int, int]], int]:
    """Admit the jobs at once and step until all are done (FRESH: into empty rows, each prompt
    fed whole) on ENGINE (default: a new one): the shape of every graph run on the way, and how
    many were decoding steps; RUN_TIMES gets each run's time in onnxruntime."""
    graph = loaded.graph
    assert graph is not None
    for row in graph.rows if fresh else ():
        row.tokens.clear()
    engine = engine if engine is not None else OnnxEngine(loaded, len(graph.rows))
    jobs = [r.job for r in recorded]
    shapes: list[tuple[int, int]] = []
    decode_steps = 0
    real_run, real_decode = graph.run, engine._decode

    def run(first_row: int, ids: np.ndarray) -> np.ndarray:
        shapes.append(ids.shape)
        logits = real_run(first_row, ids)
        if run_times is not None:
            run_times.append(graph.last_run_s)
        return logits

    def decode(*args: object) -> int:
        nonlocal decode_steps
        decode_steps += 1
        return real_decode(*args)

    graph.run, engine._decode = run, decode
    try:
        for job in jobs:
            engine.admit(job)
        while not all(j.done for j in jobs):
            engine.step(list(jobs))
    finally:
        del graph.run, engine._decode  # the classes' own again
        for job in jobs:
            engine.release(job)
    return shapes, decode_steps


@pytest.fixture(scope="module")
def loaded(default_model_dir: Path) -> LoadedModel:
    return OnnxBackend("engine", default_model_dir).load_blocking()


def test_prompts_arriving_together_are_prefilled_together_and_answer_as_alone(loaded: LoadedModel) -> None:
    def new() -> list[Recorded]:
        return [Recorded(loaded, system, prompt, 24) for system, prompt in ARRIVING_TOGETHER]

    alone = []
    for recorded in new():
        run_together(loaded, [recorded])
        alone.append(recorded.text)
    assert all(alone)
    together = new()
    feeds = [len(r.job.prompt) for r in together]
    assert feeds[0] == feeds[1] == feeds[3] != feeds[2] and min(feeds[4:]) > PREFILL_CHUNK
    shapes, decode_steps = run_together(loaded, together)
    assert [r.text for r in together] == alone
    assert shapes[0] == (3, feeds[0]), "the three of one length in one run"
    prefill_runs = len(shapes) - decode_steps
    assert prefill_runs < sum(math.ceil(f / PREFILL_CHUNK) for f in feeds), "fewer runs than one per chunk"
    # no padding: each prompt token is fed once, then each generated token but the last
    answered = sum(r.job.answer.produced for r in together if r.job.answer is not None)
    assert sum(rows * tokens for rows, tokens in shapes) == sum(feeds) + answered - len(together)


def test_the_engine_counts_what_its_graph_ran(loaded: LoadedModel) -> None:
    """GraphWork (what /metrics and bench concurrency report): prompt runs and decoding steps
    apart, each with the graph's own time."""
    assert loaded.graph is not None
    engine = OnnxEngine(loaded, len(loaded.graph.rows))
    recorded = [Recorded(loaded, system, prompt, 6) for system, prompt in ARRIVING_TOGETHER[:4]]
    times: list[float] = []
    shapes, decode_steps = run_together(loaded, recorded, engine=engine, run_times=times)
    work = engine.work
    prompt_runs = [(rows, tokens) for rows, tokens in shapes if tokens > 1]  # a prompt run feeds 2+
    assert work.prompt_tokens == sum(rows * tokens for rows, tokens in prompt_runs) > 0
    assert work.decode_steps == decode_steps == len(shapes) - len(prompt_runs)
    assert work.decode_rows == sum(rows for rows, tokens in shapes if tokens == 1)
    prompt_s = sum(t for t, (_, tokens) in zip(times, shapes, strict=True) if tokens > 1)
    assert work.prompt_s == pytest.approx(prompt_s) and work.decode_s == pytest.approx(sum(times) - prompt_s)
    assert work.prompt_s > 0 and work.decode_s > 0
    assert engine.work.counters()["graph_decode_rows"] == work.decode_rows


def test_long_prompts_of_different_lengths_share_their_full_chunks(loaded: LoadedModel) -> None:
    long = [Recorded(loaded, system, prompt, 4) for system, prompt in ARRIVING_TOGETHER[4:]]
    assert len(long[0].job.prompt) > len(long[1].job.prompt) > 2 * PREFILL_CHUNK
    shapes, _ = run_together(loaded, long)
    assert shapes[:2] == [(2, PREFILL_CHUNK)] * 2  # nothing decodes yet: no run is cut short
    assert all(r.text for r in long)


def test_a_cached_prompts_last_token_is_fed_in_the_decoding_step(loaded: LoadedModel) -> None:
    """Asked again, a prompt has one token left to feed (its logits): that rides in the other
    request's first decoding step instead of a run of its own."""
    first = Recorded(loaded, None, "Name three fruits.", 8)
    run_together(loaded, [first])
    again, other = Recorded(loaded, None, "Name three fruits.", 8), Recorded(loaded, None, "Hi", 8)
    shapes, _ = run_together(loaded, [again, other], fresh=False)
    assert again.job.reused == len(again.job.prompt) - 1
    fed = len(other.job.prompt) - other.job.reused
    assert fed > 1 and shapes[:2] == [(1, fed), (2, 1)]
    assert again.text == first.text and other.text


async def test_greedy_output_is_the_same_alone_and_in_a_batch(backend: OnnxBackend) -> None:
    alone = [await collect(backend, ask(p, greedy(40))) for p in PROMPTS]
    together = await asyncio.gather(*(collect(backend, ask(p, greedy(40))) for p in PROMPTS))
    assert [t for t, _ in together] == [t for t, _ in alone]
    assert all(m.server["mean_batch"] > 1.5 for _, m in together), "they really shared steps"


async def test_stop_on_one_of_four_leaves_the_others_unchanged(backend: OnnxBackend) -> None:
    alone = [await collect(backend, ask(p, greedy(48))) for p in PROMPTS]
    three_tokens = asyncio.Event()

    async def stopped() -> str:
        text, seen = "", 0
        stream = backend.chat(ask("Write a long story about a dragon.", greedy(400)))
        async for event in stream:
            if event.kind == "text":
                text += event.text
                seen += 1
                if seen == 3:
                    break
        await stream.aclose()
        three_tokens.set()
        return text

    results = await asyncio.gather(stopped(), *(collect(backend, ask(p, greedy(48))) for p in PROMPTS))
    assert three_tokens.is_set() and results[0]
    for (text, metrics), (expected, _) in zip(results[1:], alone, strict=True):
        assert text == expected
        assert metrics.finish_reason in ("stop", "length") and metrics.completion_tokens > 0
    assert backend.stats()["running"] == 0
    assert all(row.owner is None for row in backend._loaded.graph.rows)  # type: ignore[union-attr]


async def test_stop_frees_the_row_while_others_keep_decoding(backend: OnnxBackend) -> None:
    """The stopped sequence leaves the batch at once, not when the others finish."""
    long = [collect(backend, ask(p, greedy(120))) for p in PROMPTS[:3]]
    others = asyncio.gather(*long)
    stream = backend.chat(ask("Write a long story about a dragon.", greedy(400)))
    async for event in stream:
        if event.kind == "text":
            break
    await stream.aclose()
    assert not others.done(), "the other three are still decoding"
    assert backend.stats()["running"] <= 3
    results = await others
    assert all(m.completion_tokens > 0 for _, m in results)


async def test_thirty_two_concurrent_requests_all_complete_with_full_answers(backend: OnnxBackend) -> None:
    prompts = [f"Write the number {i} in words, then say done." for i in range(32)]
    alone = {p: await collect(backend, ask(p, greedy(16))) for p in prompts[:4]}
    results = await asyncio.gather(*(collect(backend, ask(p, greedy(16))) for p in prompts))
    assert len(results) == 32
    for prompt, (text, metrics) in zip(prompts, results, strict=True):
        assert text and metrics.finish_reason in ("stop", "length")
        assert metrics.completion_tokens == 16 or metrics.finish_reason == "stop"
        if prompt in alone:
            assert text == alone[prompt][0]
    stats = backend.stats()
    assert stats["running"] == 0 and stats["queued"] == 0
    # what the graph ran, for /metrics: every answer's tokens but each one's first came from a step
    assert stats["graph_decode_rows"] >= sum(m.completion_tokens - 1 for _, m in results)
    assert stats["graph_prompt_tokens"] > 0 and stats["graph_decode_seconds"] > 0


async def test_a_request_arriving_while_eight_stream_joins_them_at_once(backend: OnnxBackend) -> None:
    """It is admitted into the running batch, not queued behind it: its answer arrives while the
    eight still stream. (How fast that is, is a benchmark's job: `bench concurrency`'s TTFT.)"""
    await collect(backend, ask("Hello", greedy(4)))  # loaded and warm
    started = [asyncio.Event() for _ in range(8)]

    async def streaming(i: int) -> None:
        async for event in backend.chat(ask(f"Tell a long story number {i}.", greedy(200))):
            if event.kind == "text":
                started[i].set()

    eight = asyncio.gather(*(streaming(i) for i in range(8)))
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started)), 30)
    assert backend.stats()["running"] == 8
    _, metrics = await collect(backend, ask("What is two plus two?", greedy(8)))
    assert metrics.ttft_s is not None
    assert not eight.done(), "it waited for the eight to end"
    await eight


async def test_seeded_sampling_is_reproducible_in_a_batch(backend: OnnxBackend) -> None:
    options = SamplingOptions(temperature=0.8, top_p=0.9, top_k=40, seed=7, max_new_tokens=24)
    await collect(backend, ask(PROMPTS[0], options))
    # the second run reuses the first one's cached prompt, as the batched run will: sampled
    # tokens are only reproducible from bit-identical logits
    alone, _ = await collect(backend, ask(PROMPTS[0], options))
    together = await asyncio.gather(
        collect(backend, ask(PROMPTS[0], options)),
        *(collect(backend, ask(p, greedy(24))) for p in PROMPTS[1:]),
    )
    assert together[0][0] == alone


async def test_batched_greedy_output_matches_onnxruntime_genai_generator(default_model_dir: Path) -> None:
    """Driving the graph ourselves computes what onnxruntime-genai's own Generator does."""
    generator = OnnxBackend("generator", default_model_dir, batching=False)
    try:
        expected = [await collect(generator, ask(p, greedy(40))) for p in PROMPTS]
        assert generator._loaded is not None and generator._loaded.graph is None
    finally:
        await generator.aclose()
    batched = OnnxBackend("batched", default_model_dir)
    try:
        together = await asyncio.gather(*(collect(batched, ask(p, greedy(40))) for p in PROMPTS))
    finally:
        await batched.aclose()
    assert [t for t, _ in together] == [t for t, _ in expected]


async def test_rows_grow_when_a_request_needs_more_than_the_window(
    default_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engines.onnx_engine as engine

    expected, _ = await collect(
        reference := OnnxBackend("ref", default_model_dir), ask(PROMPTS[1], greedy(60))
    )
    await reference.aclose()
    monkeypatch.setattr(engine, "KV_WINDOW", 48)  # smaller than one prompt and its answer
    backend = OnnxBackend("small", default_model_dir)
    try:
        short = asyncio.create_task(collect(backend, ask(PROMPTS[0], greedy(8))))
        text, metrics = await collect(backend, ask(PROMPTS[1], greedy(60)))
        await short
        assert backend._loaded is not None and backend._loaded.graph is not None
        assert backend._loaded.graph.length >= metrics.prompt_tokens + 60
    finally:
        await backend.aclose()
    assert text == expected


async def test_a_long_prompt_arriving_does_not_stall_running_streams(backend: OnnxBackend) -> None:
    """Its prefill is fed in chunks between decoding steps, not in one go: the running stream
    gets tokens while the long prompt is read (one per chunk), before that prompt's first token."""
    await collect(backend, ask("Hello", greedy(4)))
    first = asyncio.Event()
    reading = asyncio.Event()
    answered = asyncio.Event()
    tokens_while_reading = 0

    async def running() -> None:
        nonlocal tokens_while_reading
        async for event in backend.chat(ask("Tell me a long story about the sea.", greedy(160))):
            if event.kind == "text":
                first.set()
                if reading.is_set() and not answered.is_set():
                    tokens_while_reading += 1

    async def long_request() -> Metrics | None:
        long_prompt = "Summarise this: " + " ".join(f"item {i} is blue;" for i in range(180))
        reading.set()
        metrics = None
        async for event in backend.chat(ask(long_prompt, greedy(4))):
            if event.kind == "text":
                answered.set()
            elif event.kind == "done":
                metrics = event.metrics
        return metrics

    stream = asyncio.create_task(running())
    await first.wait()
    metrics = await long_request()
    await stream
    assert metrics is not None and metrics.prompt_tokens > 500 and metrics.server["prefill_tokens"] > 500
    # 500+ prompt tokens are 8+ chunks of 64: a stall would give the stream no token in between
    assert tokens_while_reading >= 4, f"{tokens_while_reading} tokens while 500+ prompt tokens were read"


async def test_a_guided_tool_call_runs_beside_the_batch(backend: OnnxBackend) -> None:
    """tool_choice "required" decodes on onnxruntime-genai's Generator, in the same scheduler."""
    from backends.base import ToolSpec

    area = ToolSpec(
        name="circle_area",
        parameters={"type": "object", "properties": {"radius": {"type": "number"}}, "required": ["radius"]},
    )
    guided = ChatRequest(
        messages=(Message(role="user", content="Area of a circle with radius 3?"),),
        tools=(area,),
        tool_choice="required",
        options=greedy(48),
    )

    async def call() -> list:
        calls = []
        async for event in backend.chat(guided):
            if event.kind == "tool_call":
                calls.append(event.call)
        return calls

    calls, *free = await asyncio.gather(call(), *(collect(backend, ask(p, greedy(32))) for p in PROMPTS[:2]))
    assert len(calls) == 1 and calls[0].name == "circle_area"
    assert isinstance(calls[0].arguments["radius"], int | float)
    assert all(text and m.completion_tokens for text, m in free)
