"""slm.gguf::CausalAttention against onnxruntime's GroupQueryAttention (the op it replaces in q4_1
folders) and against a float64 reference written here (for CausalAttentionF16, the float16 cache
variant q4_1 folders use, one that rounds the stored keys and values to float16 as it does):
decoding rows of different lengths in one call, prompt chunks on top of a cache, a first
prompt, past and present in one buffer (as the batched engine and onnxruntime-genai bind them)
or apart, and the refusal of a row longer than the cache."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from models import native_ops

pytestmark = pytest.mark.skipif(
    native_ops.missing_requirement() is not None, reason=str(native_ops.missing_requirement())
)
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

HEADS, KV_HEADS, HEAD, LENGTH, POSITIONS = 6, 2, 32, 48, 64
ROTARY = HEAD  # dims of each head that rotary embeddings turn (Phi-style models turn a part)
WIDTH = (HEADS + 2 * KV_HEADS) * HEAD


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return native_ops.build_library(tmp_path_factory.mktemp("ops"))


def _session(library: Path, op: str) -> ort.InferenceSession:
    """OP: "gqa" (onnxruntime's), "ours" (float32 cache) or "ours16" (float16 cache)."""
    from onnx import TensorProto, helper

    from models.native_ops import LAYOUT_VERSION

    f, i32 = TensorProto.FLOAT, TensorProto.INT32
    kv = TensorProto.FLOAT16 if op == "ours16" else f
    inputs = [
        helper.make_tensor_value_info("qkv", f, ["B", "S", WIDTH]),
        helper.make_tensor_value_info("past_key", kv, ["B", KV_HEADS, "L", HEAD]),
        helper.make_tensor_value_info("past_value", kv, ["B", KV_HEADS, "L", HEAD]),
        helper.make_tensor_value_info("seqlens_k", i32, ["B"]),
        helper.make_tensor_value_info("cos", f, [POSITIONS, ROTARY // 2]),
        helper.make_tensor_value_info("sin", f, [POSITIONS, ROTARY // 2]),
    ]
    if op == "gqa":
        inputs.append(helper.make_tensor_value_info("total", i32, []))
    outputs = [
        helper.make_tensor_value_info("out", f, ["B", "S", HEADS * HEAD]),
        helper.make_tensor_value_info("present_key", kv, ["B", KV_HEADS, "T", HEAD]),
        helper.make_tensor_value_info("present_value", kv, ["B", KV_HEADS, "T", HEAD]),
    ]
    names = ["out", "present_key", "present_value"]
    if op == "gqa":
        node = helper.make_node(
            "GroupQueryAttention",
            ["qkv", "", "", "past_key", "past_value", "seqlens_k", "total", "cos", "sin"],
            names, domain="com.microsoft", num_heads=HEADS, kv_num_heads=KV_HEADS, scale=0.17,
            do_rotary=1, rotary_interleaved=0, local_window_size=-1,
        )  # fmt: skip
    else:
        node = helper.make_node(
            "CausalAttentionF16" if op == "ours16" else "CausalAttention",
            ["qkv", "past_key", "past_value", "seqlens_k", "cos", "sin"],
            names, domain="slm.gguf", num_heads=HEADS, kv_num_heads=KV_HEADS, scale=0.17,
            layout_version=LAYOUT_VERSION,
        )  # fmt: skip
    graph = helper.make_graph([node], "attention", inputs, outputs)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    opsets.append(helper.make_opsetid("slm.gguf", 1))
    model = helper.make_model(graph, opset_imports=opsets)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.register_custom_ops_library(str(library))
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _rotary() -> tuple[np.ndarray, np.ndarray]:
    angles = np.arange(POSITIONS)[:, None] / 10000.0 ** (np.arange(ROTARY // 2) / (ROTARY // 2))
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def _run_shared(session: ort.InferenceSession, qkv, key, value, seqlens) -> np.ndarray:
    """One call with present bound to past's memory; KEY and VALUE are updated in place."""
    cos, sin = _rotary()
    io = session.io_binding()
    total = np.array(int(seqlens.max()) + 1, np.int32)
    feeds = {"qkv": qkv, "seqlens_k": seqlens, "cos": cos, "sin": sin, "total": total}
    for name, array in feeds.items():
        if name in {i.name for i in session.get_inputs()}:
            io.bind_cpu_input(name, array)
    for past, present, buf in (("past_key", "present_key", key), ("past_value", "present_value", value)):
        io.bind_input(past, "cpu", 0, buf.dtype, buf.shape, buf.ctypes.data)
        io.bind_output(present, "cpu", 0, buf.dtype, buf.shape, buf.ctypes.data)
    out = np.empty((qkv.shape[0], qkv.shape[1], HEADS * HEAD), np.float32)
    io.bind_output("out", "cpu", 0, np.float32, out.shape, out.ctypes.data)
    session.run_with_iobinding(io)
    return out


def _rotate(x: np.ndarray, pos: int) -> np.ndarray:
    """Float64 rotate-half rotary of one head's vector X at position POS."""
    cos, sin = (t.astype(np.float64) for t in _rotary())
    half = ROTARY // 2
    a, b, rest = x[:half], x[half:ROTARY], x[ROTARY:]
    return np.concatenate([a * cos[pos] - b * sin[pos], b * cos[pos] + a * sin[pos], rest])


def _reference(qkv, key, value, seqlens, half: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Float64: rotate-half rotary at each token's position, causal softmax(scale q.k) v; HALF
    rounds the keys and values it stores to float16 first."""
    store = (lambda x: x.astype(np.float16).astype(np.float64)) if half else (lambda x: x)
    key, value = key.astype(np.float64).copy(), value.astype(np.float64).copy()
    batch, steps, _ = qkv.shape
    out = np.zeros((batch, steps, HEADS * HEAD))
    for b in range(batch):
        past = int(seqlens[b]) + 1 - steps
        token = qkv[b].astype(np.float64).reshape(steps, HEADS + 2 * KV_HEADS, HEAD)
        for s in range(steps):
            for j in range(KV_HEADS):
                key[b, j, past + s] = store(_rotate(token[s, HEADS + j], past + s))
                value[b, j, past + s] = store(token[s, HEADS + KV_HEADS + j])
        for s in range(steps):
            seen = past + s + 1
            for n in range(HEADS):
                j = n // (HEADS // KV_HEADS)
                scores = key[b, j, :seen] @ _rotate(token[s, n], past + s) * 0.17
                weights = np.exp(scores - scores.max())
                out[b, s, n * HEAD : (n + 1) * HEAD] = weights @ value[b, j, :seen] / weights.sum()
    return out, key, value


def _case(rng: np.random.Generator, lengths: list[int], steps: int):
    batch = len(lengths)
    qkv = rng.standard_normal((batch, steps, WIDTH)).astype(np.float32)
    key = rng.standard_normal((batch, KV_HEADS, LENGTH, HEAD)).astype(np.float32)
    value = rng.standard_normal((batch, KV_HEADS, LENGTH, HEAD)).astype(np.float32)
    seqlens = np.array([n + steps - 1 for n in lengths], np.int32)  # n cached tokens before the call
    return qkv, key, value, seqlens


@pytest.mark.parametrize(
    ("lengths", "steps"),
    [([5, 17, 0, 40], 1), ([3, 33], 1), ([20], 7), ([0], 9), ([1], 1), ([30], 18), ([5], 37), ([0, 0], 20)],
    ids=[
        "decode-4-rows",
        "decode-2-rows",
        "chunk-on-cache",
        "first-prompt",
        "second-token",
        "long-chunk",
        "chunk-in-step-ranges",
        "two-chunks-in-step-ranges",
    ],
)
def test_it_computes_what_group_query_attention_computes(
    library: Path, lengths: list[int], steps: int
) -> None:
    rng = np.random.default_rng(len(lengths) * 100 + steps)
    qkv, key, value, seqlens = _case(rng, lengths, steps)
    theirs_k, theirs_v = key.copy(), value.copy()
    ours_k, ours_v = key.copy(), value.copy()
    theirs = _run_shared(_session(library, "gqa"), qkv, theirs_k, theirs_v, seqlens)
    ours = _run_shared(_session(library, "ours"), qkv, ours_k, ours_v, seqlens)
    want, want_k, want_v = _reference(qkv, key, value, seqlens)
    for b, n in enumerate(lengths):  # the cache: the new tokens' keys and values, the rest untouched
        used = n + steps
        np.testing.assert_allclose(ours_k[b, :, :used], want_k[b, :, :used], rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(ours_v[b, :, :used], want_v[b, :, :used].astype(np.float32))
        np.testing.assert_array_equal(ours_k[b, :, used:], key[b, :, used:])
        np.testing.assert_allclose(ours_k[b, :, :used], theirs_k[b, :, :used], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours, want, rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize(
    ("heads", "kv_heads", "head"),
    [(8, 2, 48), (6, 2, 48), (5, 1, 32)],
    ids=["twos-of-a-group-of-4", "threes-with-a-16-column-tail", "a-group-of-5-a-head-a-task"],
)
def test_other_head_shapes_compute_what_group_query_attention_computes(
    library: Path, monkeypatch: pytest.MonkeyPatch, heads: int, kv_heads: int, head: int
) -> None:
    """The task split and the value passes for shapes other than SmolLM2's 3 heads of 64 a KV
    head: two heads a task (a group of 4), heads whose columns leave 16 after the 32-column
    passes, and a group with no divisor up to 3 (a head a task, all its steps; 8-column passes).
    (onnxruntime's op takes head sizes that are multiples of 16 only.)"""
    module = sys.modules[__name__]
    for name, value in (("HEADS", heads), ("KV_HEADS", kv_heads), ("HEAD", head), ("ROTARY", head)):
        monkeypatch.setattr(module, name, value)
    monkeypatch.setattr(module, "WIDTH", (heads + 2 * kv_heads) * head)
    for lengths, steps in (([5, 17, 0, 40], 1), ([5], 37)):
        test_it_computes_what_group_query_attention_computes(library, lengths, steps)
    test_a_prompt_chunk_gives_the_bits_of_its_tokens_fed_one_at_a_time(library, "ours16")


@pytest.mark.parametrize(("lengths", "steps"), [([5, 17, 0, 40], 1), ([20], 7)])
def test_rotary_over_part_of_each_head_leaves_the_rest_as_group_query_attention_does(
    library: Path, monkeypatch: pytest.MonkeyPatch, lengths: list[int], steps: int
) -> None:
    monkeypatch.setattr(sys.modules[__name__], "ROTARY", HEAD // 2)
    test_it_computes_what_group_query_attention_computes(library, lengths, steps)


@pytest.mark.parametrize(("lengths", "steps"), [([5, 17, 0, 40], 1), ([20], 7), ([0], 9)])
def test_the_float16_cache_variant_rounds_only_what_it_stores(
    library: Path, lengths: list[int], steps: int
) -> None:
    rng = np.random.default_rng(len(lengths) * 10 + steps)
    qkv, key, value, seqlens = _case(rng, lengths, steps)
    key16, value16 = key.astype(np.float16), value.astype(np.float16)
    ours = _run_shared(_session(library, "ours16"), qkv, key16, value16, seqlens)
    want, want_k, want_v = _reference(qkv, key16, value16, seqlens, half=True)
    np.testing.assert_allclose(ours, want, rtol=1e-4, atol=2e-5)
    for b, n in enumerate(lengths):
        used = n + steps
        np.testing.assert_allclose(key16[b, :, :used], want_k[b, :, :used], rtol=1e-3, atol=1e-3)
        np.testing.assert_array_equal(value16[b, :, :used], want_v[b, :, :used].astype(np.float16))
    exact, _, _ = _reference(qkv, key16, value16, seqlens)  # what rounding the cache costs
    np.testing.assert_allclose(ours, exact, rtol=0, atol=5e-3)


@pytest.mark.parametrize("op", ["ours", "ours16"])
def test_a_row_gives_the_same_bits_alone_and_in_a_batch(library: Path, op: str) -> None:
    """Five rows: a task computes all the query heads of a KV head together (rows x kv heads >=
    8); one row alone: a head per task. A row's bits must not depend on which."""
    session = _session(library, op)
    rng = np.random.default_rng(7)
    lengths = [9, 30, 2, 17, 5]
    qkv, key, value, seqlens = _case(rng, lengths, 1)
    if op == "ours16":
        key, value = key.astype(np.float16), value.astype(np.float16)
    batch = _run_shared(session, qkv, key.copy(), value.copy(), seqlens)
    for b in range(len(lengths)):
        alone = _run_shared(
            session, qkv[b : b + 1], key[b : b + 1].copy(), value[b : b + 1].copy(), seqlens[b : b + 1]
        )
        assert alone.tobytes() == batch[b : b + 1].tobytes()


@pytest.mark.parametrize("rows", [1, 4], ids=["a-head-a-task", "heads-grouped"])
def test_one_key_far_above_the_rest_is_found_at_any_position(library: Path, rows: int) -> None:
    """The softmax's shift is the row's maximum score, found 8 lanes at a time: one cached key
    scoring ~500 above the others, at each of the 19 cached positions of a 20-key row (both halves
    of a vector and the tail), must take all the weight. A missed maximum overflows exp, so the
    output would be NaN or far off, where other tests' scores of about 1 would hide it (softmax
    ignores a shift)."""
    session = _session(library, "ours")
    cached = 19
    for spike in range(cached):
        rng = np.random.default_rng(spike)
        qkv, key, value, seqlens = _case(rng, [cached] * rows, 1)
        rotated = _rotate(qkv[0, 0, :HEAD].astype(np.float64), cached)  # head 0 of row 0, at its position
        key[0, 0, spike] = (rotated * 100).astype(np.float32)
        want, _, _ = _reference(qkv, key, value, seqlens)
        out = _run_shared(session, qkv, key.copy(), value.copy(), seqlens)
        assert np.isfinite(out).all()
        np.testing.assert_allclose(out[0, 0, :HEAD], value[0, 0, spike], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(out, want, rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("op", ["ours", "ours16"])
def test_a_prompt_chunk_gives_the_bits_of_its_tokens_fed_one_at_a_time(library: Path, op: str) -> None:
    """37 tokens in one call are cut into step ranges with a KV head's query heads together; one
    token a call is a head a task. Each query's arithmetic must not depend on which."""
    session = _session(library, op)
    qkv, key, value, seqlens = _case(np.random.default_rng(3), [4], 37)
    if op == "ours16":
        key, value = key.astype(np.float16), value.astype(np.float16)
    whole = _run_shared(session, qkv, key.copy(), value.copy(), seqlens)
    for s in range(37):
        seqlens_k = np.array([4 + s], np.int32)  # 4 cached, then the tokens before s
        one = _run_shared(session, qkv[:, s : s + 1], key, value, seqlens_k)  # KEY, VALUE grow in place
        assert one.tobytes() == whole[:, s : s + 1].tobytes(), f"token {s}"


def test_separate_present_buffers_get_the_cache_copied(library: Path) -> None:
    session = _session(library, "ours")
    rng = np.random.default_rng(11)
    qkv, key, value, seqlens = _case(rng, [4, 12], 1)
    cos, sin = _rotary()
    out, present_k, present_v = session.run(
        None, {"qkv": qkv, "past_key": key, "past_value": value, "seqlens_k": seqlens, "cos": cos, "sin": sin}
    )
    want, want_k, _ = _reference(qkv, key, value, seqlens)
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=2e-5)
    assert present_k.shape == key.shape
    for b, used in enumerate((5, 13)):
        np.testing.assert_allclose(present_k[b, :, :used], want_k[b, :, :used], rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(present_v[b, :, : used - 1], value[b, :, : used - 1])


@pytest.mark.parametrize(
    ("cache", "cached", "message"),
    [
        (70, 64, "past the end of the rotary tables"),
        (LENGTH, LENGTH + 2, "more cached tokens than past_key holds"),
    ],
)
def test_rows_the_tables_or_the_cache_cannot_hold_are_refused_by_name(
    library: Path, cache: int, cached: int, message: str
) -> None:
    session = _session(library, "ours")
    rng = np.random.default_rng(5)
    qkv = rng.standard_normal((1, 1, WIDTH)).astype(np.float32)
    key = value = np.zeros((1, KV_HEADS, cache, HEAD), np.float32)
    cos, sin = _rotary()
    feeds = {"qkv": qkv, "past_key": key, "past_value": value, "seqlens_k": np.array([cached], np.int32)}
    with pytest.raises(Exception, match=message):
        session.run(None, {**feeds, "cos": cos, "sin": sin})
