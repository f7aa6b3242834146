"""The GGUF block ops (models/native/gguf_ops.c) and the q4_1 model built on them."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from models import gguf_blocks, model_store, native_ops
from models.gguf_blocks import Q41, Q80, GgufMappingError

pytestmark = pytest.mark.skipif(
    native_ops.missing_requirement() is not None, reason=str(native_ops.missing_requirement())
)
rng = np.random.default_rng(7)


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return native_ops.build_library(tmp_path_factory.mktemp("ops"))


def random_q4_1(n: int, k: int) -> Q41:
    q = rng.integers(0, 16, (n, k // 32, 32), dtype=np.uint8)
    packed = (q[..., :16] | (q[..., 16:] << 4)).astype(np.uint8)
    scales = (rng.random((n, k // 32)) * 0.02).astype(np.float32)
    mins = (-rng.random((n, k // 32)) * 0.15).astype(np.float32)
    return Q41(packed, scales, mins)


def random_q8_0(n: int, k: int) -> Q80:
    values = rng.integers(-127, 128, (n, k // 32, 32), dtype=np.int8)
    return Q80(values, (rng.random((n, k // 32)) * 0.01).astype(np.float32))


def rounded_activations(a: np.ndarray, levels: int = 1) -> np.ndarray:
    """What the kernel multiplies: each 32-block of a row rounded to int8 steps of max|x|/127;
    with two levels, the remainder rounded the same way and added back."""
    blocks = a.reshape(*a.shape[:-1], -1, 32).astype(np.float64)
    rounded = np.zeros_like(blocks)
    for _ in range(levels):
        left = blocks - rounded
        step = np.abs(left).max(axis=-1, keepdims=True) / 127
        rounded += np.rint(left / np.where(step > 0, step, 1)) * step
    return rounded.reshape(a.shape)


def session(library: Path, blocks: Q41 | Q80, levels: int = 1, last_position_only: bool = False) -> object:
    """A one-MatMul graph rewritten the way gguf_blocks.rewrite does it (a Slice follows the op
    when N is not a multiple of 8)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    op, tensors = gguf_blocks.op_inputs(blocks)
    names = ["W" + suffix for suffix in tensors]
    inits = [numpy_helper.from_array(v, n) for n, v in zip(names, tensors.values(), strict=True)]
    matmul = helper.make_node("MatMul", ["A", "W"], ["Y"], name="/lm_head/MatMul")
    nodes = gguf_blocks._op_nodes(
        op, matmul, names, columns=blocks.scales.shape[0], inits=inits, levels=levels,
        last_position_only=last_position_only,
    )  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "one_op",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(gguf_blocks.DOMAIN, 1)]
    )
    options = ort.SessionOptions()
    options.register_custom_ops_library(str(library))
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


# rows: 1 (decode), 6 (a 4-row pass plus 2 single rows), and a [2, 3, K] batch; N a multiple
# of 8 or not (padded columns sliced off), over one task of 16 columns or several
@pytest.mark.parametrize("levels", [1, 2])
@pytest.mark.parametrize(("a_shape", "n"), [((1, 64), 37), ((6, 576), 40), ((2, 3, 1536), 19), ((9, 96), 8)])
def test_q4_1_op_multiplies_by_the_blocks_exactly_up_to_activation_rounding(
    library: Path, a_shape: tuple[int, ...], n: int, levels: int
) -> None:
    k = a_shape[-1]
    blocks = random_q4_1(n, k)
    a = rng.standard_normal(a_shape).astype(np.float32)
    (y,) = session(library, blocks, levels).run(None, {"A": a})  # type: ignore[attr-defined]
    assert y.shape == (*a_shape[:-1], n)
    w = blocks.dequantize().astype(np.float64)
    np.testing.assert_allclose(y, rounded_activations(a, levels) @ w.T, rtol=1e-4, atol=1e-4)
    # and within the rounding's reach of the float product: ~1/250 of it with one level
    exact = a.astype(np.float64) @ w.T
    assert np.max(np.abs(y - exact)) < (0.02 if levels == 1 else 0.001) * np.max(np.abs(exact))


@pytest.mark.parametrize("levels", [1, 2])
@pytest.mark.parametrize(("a_shape", "n"), [((1, 576), 53), ((5, 96), 16), ((4, 64), 7)])
def test_q8_0_op_multiplies_by_the_blocks(
    library: Path, a_shape: tuple[int, ...], n: int, levels: int
) -> None:
    blocks = random_q8_0(n, a_shape[-1])
    a = rng.standard_normal(a_shape).astype(np.float32)
    (y,) = session(library, blocks, levels).run(None, {"A": a})  # type: ignore[attr-defined]
    assert y.shape == (*a_shape[:-1], n)
    w = blocks.dequantize().astype(np.float64)
    np.testing.assert_allclose(y, rounded_activations(a, levels) @ w.T, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("a_shape", "n"), [((2, 5, 576), 53), ((3, 1, 96), 16), ((1, 70, 64), 8), ((4, 64), 7)]
)
def test_the_lm_head_of_a_prompt_chunk_computes_only_each_rows_last_position(
    library: Path, a_shape: tuple[int, ...], n: int
) -> None:
    """last_position_only: A [B, S, K] gives each row's logits at S-1, the same bits as the full
    product there, and zeros elsewhere; a decoding step (S = 1) and a 2-D A are products in full."""
    blocks = random_q8_0(n, a_shape[-1])
    a = rng.standard_normal(a_shape).astype(np.float32)
    (full,) = session(library, blocks).run(None, {"A": a})  # type: ignore[attr-defined]
    (last,) = session(library, blocks, last_position_only=True).run(None, {"A": a})  # type: ignore[attr-defined]
    assert last.shape == full.shape == (*a_shape[:-1], n)
    if len(a_shape) == 2 or a_shape[1] == 1:
        assert last.tobytes() == full.tobytes()
        return
    assert last[:, -1].tobytes() == full[:, -1].tobytes()
    assert not last[:, :-1].any()


def test_two_activation_levels_come_much_closer_to_the_float_product(library: Path) -> None:
    blocks = random_q4_1(64, 576)
    a = rng.standard_normal((3, 576)).astype(np.float32)
    exact = a.astype(np.float64) @ blocks.dequantize().astype(np.float64).T
    errors = []
    for levels in (1, 2):
        (y,) = session(library, blocks, levels).run(None, {"A": a})  # type: ignore[attr-defined]
        errors.append(np.sqrt(np.mean((y - exact) ** 2)))
    assert errors[1] < errors[0] / 50


def _without_layout_version(model_bytes: bytes) -> bytes:
    import onnx

    model = onnx.load_from_string(model_bytes)
    for node in model.graph.node:
        kept = [a for a in node.attribute if a.name != "layout_version"]
        del node.attribute[:]
        node.attribute.extend(kept)
    return model.SerializeToString()


def test_a_graph_without_the_layout_version_is_refused_with_the_rebuild_command(
    library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxruntime as ort

    built: list[bytes] = []
    real = ort.InferenceSession

    def capture(model: bytes, *args: object, **kwargs: object) -> object:
        built.append(model)
        return real(model, *args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", capture)
    session(library, random_q4_1(8, 64))
    options = ort.SessionOptions()
    options.register_custom_ops_library(str(library))
    reads = f"this ops library reads layout {native_ops.LAYOUT_VERSION}"
    with pytest.raises(Exception, match=rf"written for GGUF block layout 1, {reads}.*"
                       r"rebuild with `slm-playground model prepare --force`"):  # fmt: skip
        real(_without_layout_version(built[0]), options, providers=["CPUExecutionProvider"])


def gather_session(library: Path, table: Q80) -> object:
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    _, tensors = gguf_blocks.op_inputs(table)
    names = ["W" + suffix for suffix in tensors]
    node = helper.make_node(
        "GatherQ8_0", [*names, "ids"], ["E"], domain=gguf_blocks.DOMAIN,
        layout_version=native_ops.LAYOUT_VERSION,
    )  # fmt: skip
    graph = helper.make_graph(
        [node],
        "gather",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, None)],
        [helper.make_tensor_value_info("E", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, n) for n, v in zip(names, tensors.values(), strict=True)],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(gguf_blocks.DOMAIN, 1)]
    )
    options = ort.SessionOptions()
    options.register_custom_ops_library(str(library))
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def test_the_embedding_gather_returns_the_dequantized_rows_exactly(library: Path) -> None:
    table = random_q8_0(53, 96)  # 53 rows: padded to 56 columns in the op's layout
    ids = np.array([[0, 52, 7], [7, 31, 1]], np.int64)
    (e,) = gather_session(library, table).run(None, {"ids": ids})  # type: ignore[attr-defined]
    assert e.shape == (2, 3, 96)
    assert e.tobytes() == table.dequantize()[ids].tobytes()


def test_a_token_id_outside_the_table_is_a_clear_error(library: Path) -> None:
    run = gather_session(library, random_q8_0(16, 64))
    with pytest.raises(Exception, match="token id 16 is outside the table's 16 rows"):
        run.run(None, {"ids": np.array([[3, 16]], np.int64)})  # type: ignore[attr-defined]


def test_an_activation_levels_attribute_other_than_1_or_2_is_refused(library: Path) -> None:
    with pytest.raises(Exception, match="activation_levels must be 1 or 2"):
        session(library, random_q4_1(8, 64), levels=3)


def test_an_activation_width_that_does_not_match_the_blocks_is_a_clear_error(library: Path) -> None:
    blocks = random_q4_1(8, 64)
    run = session(library, blocks)
    with pytest.raises(Exception, match=r"A has K=96 but B holds \[1, 2, ...\] column groups"):
        run.run(None, {"A": np.ones((1, 96), np.float32)})  # type: ignore[attr-defined]


def test_gguf_q4_1_bytes_are_read_as_scale_min_and_nibbles() -> None:
    # one row, one block: d=0.5, m=-2, element j = j % 16
    q = np.arange(32) % 16
    raw = np.concatenate(
        [
            np.array([0.5], np.float16).view(np.uint8),
            np.array([-2.0], np.float16).view(np.uint8),
            (q[:16] | (q[16:] << 4)).astype(np.uint8),
        ]
    )
    tensor = SimpleNamespace(data=raw.reshape(1, 20), shape=[32, 1])
    blocks = gguf_blocks.read_q4_1(tensor)
    np.testing.assert_array_equal(blocks.dequantize()[0], 0.5 * q - 2.0)


def test_rope_rows_undo_the_gguf_converters_interleaving() -> None:
    # llama.cpp's converter interleaves each head's rows in pairs for its rope; undo must invert it
    heads, rows = 3, 24
    hf = np.arange(rows)
    interleaved = hf.reshape(heads, 2, rows // heads // 2).swapaxes(1, 2).reshape(rows)
    assert list(interleaved[gguf_blocks.rope_rows(rows, heads)]) == list(hf)


def test_blocks_that_differ_from_the_float_weights_stop_the_build() -> None:
    blocks = random_q4_1(4, 64)
    float_weight = blocks.dequantize().T.copy()
    gguf_blocks._check_same("same", blocks, float_weight)
    float_weight[3, 2] += 0.01
    with pytest.raises(GgufMappingError, match="differ from the float weights"):
        gguf_blocks._check_same("off by one weight", blocks, float_weight)


def test_a_folder_without_its_ops_library_is_not_a_model(default_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    for name in ("genai_config.json", "tokenizer.json"):
        (folder / name).write_bytes((default_model_dir / name).read_bytes())
    (folder / "model.onnx").write_bytes(b"")
    config = json.loads((folder / "genai_config.json").read_text())
    config["model"]["decoder"].setdefault("session_options", {})["custom_ops_library"] = "libgone.so"
    (folder / "genai_config.json").write_text(json.dumps(config))
    with pytest.raises(model_store.ModelFolderError, match=r"library libgone\.so .* is missing"):
        model_store.check_model_dir(folder)


def test_the_default_model_runs_the_gguf_blocks(default_model_dir: Path) -> None:
    import onnx

    if model_store.default_precision() != model_store.DEFAULT_PRECISION:
        pytest.skip("this machine uses the fallback precision")
    graph = onnx.load(str(default_model_dir / "model.onnx"), load_external_data=False).graph
    ops = {n.op_type for n in graph.node}
    assert "MatMul" not in ops
    assert {"MatMulQ4_1", "MatMulQ8_0", "GatherQ8_0"} <= ops
    two_level = {n.name for n in graph.node if any(a.name == "activation_levels" for a in n.attribute)}
    assert two_level == {f"/model/layers.{i}/attn/qkv_proj/MatMul" for i in range(30)}
    last_only = {n.name for n in graph.node if any(a.name == "last_position_only" for a in n.attribute)}
    assert last_only == {"/lm_head/MatMul"}  # prompt chunks: logits at the last token only
    assert (default_model_dir / native_ops.LIBRARY_NAME).is_file()
    # the embedding reads the lm_head's blocks: no float table beside them
    (embed,) = [n for n in graph.node if n.op_type == "GatherQ8_0"]
    assert list(embed.input) == ["lm_head.MatMul.q8_0", "lm_head.MatMul.scales", "input_ids"]
    floats = {i.name: list(i.dims) for i in graph.initializer if i.data_type == 1 and len(i.dims) == 2}
    assert floats == {"cos_cache": [8192, 32], "sin_cache": [8192, 32]}  # the rope tables only
    ours = [n for n in graph.node if n.domain == gguf_blocks.DOMAIN]
    assert all(
        [a.i for a in n.attribute if a.name == "layout_version"] == [native_ops.LAYOUT_VERSION] for n in ours
    )


def _outdated_copy(default_model_dir: Path, folder: Path, layout: int | None) -> Path:
    """A q4_1 folder's small files, with the layout marker missing (None) or saying LAYOUT."""
    folder.mkdir()
    for name in ("genai_config.json", "tokenizer.json", native_ops.LIBRARY_NAME):
        (folder / name).write_bytes((default_model_dir / name).read_bytes())
    (folder / "model.onnx").write_bytes(b"")
    if layout is not None:
        (folder / native_ops.LAYOUT_FILE).write_text(json.dumps({"layout_version": layout}))
    return folder


@pytest.mark.parametrize("layout", [None, 1])
def test_a_folder_of_an_older_block_layout_is_refused_with_the_rebuild_command(
    default_model_dir: Path, tmp_path: Path, layout: int | None
) -> None:
    if model_store.default_precision() != model_store.DEFAULT_PRECISION:
        pytest.skip("this machine uses the fallback precision")
    folder = _outdated_copy(default_model_dir, tmp_path / f"{model_store.DEFAULT_MODEL}-q4_1", layout)
    with pytest.raises(model_store.OutdatedModelFolder) as caught:
        model_store.check_model_dir(folder)
    assert "was built by an older version of slm-playground: its GGUF block layout is 1" in str(caught.value)
    assert caught.value.hint == "rebuild with `slm-playground model prepare --force`"
    (folder / native_ops.LAYOUT_FILE).write_text(json.dumps({"layout_version": native_ops.LAYOUT_VERSION}))
    assert model_store.check_model_dir(folder).path == folder


def test_model_prepare_rebuilds_an_outdated_default_folder_and_says_why(
    default_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models import convert

    if model_store.default_precision() != model_store.DEFAULT_PRECISION:
        pytest.skip("this machine uses the fallback precision")
    _outdated_copy(default_model_dir, tmp_path / f"{model_store.DEFAULT_MODEL}-q4_1", None)
    real_convert = convert.convert
    calls: list[tuple[Path, bool]] = []
    monkeypatch.setattr(
        convert, "convert", lambda src, out, precision, **kw: calls.append((out, kw["force"]))
    )
    said: list[str] = []
    convert.prepare_default(tmp_path, "q4_1", progress=said.append)
    assert calls == [(tmp_path / f"{model_store.DEFAULT_MODEL}-q4_1", True)]
    assert any("built by an older version" in m and m.endswith("; rebuilding it") for m in said)
    # `convert --out` on such a folder refuses without --force and says so
    with pytest.raises(convert.ConversionError, match=r"older version.*add --force to rebuild it"):
        real_convert(convert.find_default_gguf(), calls[0][0], "q4_1")


def test_default_precision_prefers_q4_1_and_falls_back_to_int8(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def prepare(precision: str) -> None:
        folder = tmp_path / f"{model_store.DEFAULT_MODEL}-{precision}"
        folder.mkdir()
        (folder / "genai_config.json").write_text("{}")

    assert model_store.default_precision(tmp_path) == "q4_1"  # nothing prepared: what prepare builds
    monkeypatch.setattr(native_ops, "compiler", lambda: None)
    assert model_store.default_precision(tmp_path) == "int8"
    prepare("q4_1")
    assert model_store.default_precision(tmp_path) == "q4_1"  # built; running needs no compiler
    monkeypatch.setattr(native_ops, "cpu_problem", lambda: "no AVX2")
    assert model_store.default_precision(tmp_path) == "int8"
    prepare("int8")
    assert model_store.default_model_dir(tmp_path).name.endswith("-int8")
