"""The ctypes path to onnxruntime-genai's C API: same tokens as the Python binding, the GIL
released while decoding, and the library's own errors."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from pathlib import Path

import onnxruntime_genai as og
import pytest

from backends.base import ChatRequest, Message, SamplingOptions
from engines import oga_native
from engines.onnx_engine import OnnxBackend

pytestmark = pytest.mark.model

PROMPT = "Tell me a short story about a cat who learns to swim."


def _native(folder: Path, ids: list[int], max_length: int) -> oga_native.Generator:
    model = oga_native.Model(folder)
    params = oga_native.GeneratorParams(model)
    params.set_search_options(max_length=max_length, do_sample=False)
    generator = oga_native.Generator(model, params)
    generator.append_tokens(ids)
    return generator


def test_native_greedy_tokens_match_the_python_binding(default_model_dir: Path) -> None:
    tokenizer = og.Tokenizer(str(default_model_dir))
    ids = [int(t) for t in tokenizer.encode(PROMPT)]
    model = og.Model(str(default_model_dir))
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=len(ids) + 20, do_sample=False)
    reference = og.Generator(model, params)
    reference.append_tokens(ids)
    native = _native(default_model_dir, ids, len(ids) + 20)
    expected, got = [], []
    for _ in range(20):
        reference.generate_next_token()
        expected.append(int(reference.get_next_tokens()[0]))
        native.generate_next_token()
        got.append(native.next_token())
    assert got == expected
    assert native.sequence() == [int(t) for t in reference.get_sequence(0)]
    native.rewind_to(len(ids))
    native.generate_next_token()
    assert native.next_token() == expected[0]


def test_decoding_releases_the_gil(default_model_dir: Path) -> None:
    """A Python thread keeps running while a step decodes (the binding's step blocks it)."""
    tokenizer = og.Tokenizer(str(default_model_dir))
    ids = [int(t) for t in tokenizer.encode(PROMPT)]
    generator = _native(default_model_dir, ids, len(ids) + 40)
    ticks: list[float] = []
    steps: list[tuple[float, float]] = []
    done = threading.Event()

    def ticker() -> None:
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.0005)

    thread = threading.Thread(target=ticker)
    thread.start()
    try:
        for _ in range(20):
            start = time.perf_counter()
            generator.generate_next_token()
            steps.append((start, time.perf_counter()))
    finally:
        done.set()
        thread.join()
    inside = sum(1 for t in ticks for a, b in steps if a < t < b)
    assert inside > len(steps), f"only {inside} ticks of the other thread ran during 20 decoding steps"


def test_library_errors_become_oga_errors(tmp_path: Path) -> None:
    with pytest.raises(oga_native.OgaError, match=r"reading the model config: .*genai_config\.json"):
        oga_native.Model(tmp_path)


async def test_the_event_loop_sees_every_token_as_it_is_made(default_model_dir: Path) -> None:
    """Tokens arrive one by one, not in bursts: the loop runs between and during steps."""
    backend = OnnxBackend("onnx", default_model_dir)
    request = ChatRequest(
        messages=(Message(role="user", content=PROMPT),),
        options=SamplingOptions(temperature=0.0, max_new_tokens=24),
    )
    ticks = 0
    arrivals: list[int] = []

    async def count() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    counter = asyncio.create_task(count())
    try:
        async for event in backend.chat(request):
            if event.kind == "text":
                arrivals.append(ticks)
    finally:
        counter.cancel()
        await backend.aclose()
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    # With the GIL held through each step, almost every token landed together (no loop turn
    # between). On a loaded machine two steps' tokens can still reach a slow loop at once, so
    # the bar is half of them, well clear of that failure.
    assert sum(1 for g in gaps if g > 0) >= len(gaps) * 0.5, gaps


def test_config_overlay_reaches_the_runtime(default_model_dir: Path) -> None:
    oga_native.Model(default_model_dir, overlay=oga_native.session_options(1)).close()
    bad = {"model": {"decoder": {"session_options": {"no_such_option": 1}}}}
    with pytest.raises(oga_native.OgaError, match="no_such_option"):
        oga_native.Model(default_model_dir, overlay=bad)


def test_threads_default_to_the_cores_the_process_may_use(default_model_dir: Path) -> None:
    assert OnnxBackend("onnx", default_model_dir).threads == oga_native.available_cores() >= 1
    assert OnnxBackend("onnx", default_model_dir, threads=1).threads == 1
