"""Run a GGUF's quantized weights in onnxruntime as they are stored, block for block.

Precision "q4_1" starts from the float32 ONNX model that onnxruntime-genai's builder makes
from the dequantized GGUF, and swaps each MatMul for a native op (models/native/gguf_ops.c)
that reads the GGUF's own blocks: Q4_1 for the layers, Q8_0 for the tied lm_head. The weights
are therefore exactly the float model's; only activations are rounded (to int8 per block, as
llama.cpp does; twice for TWO_LEVEL_MODULES). Re-quantizing to onnxruntime's int4 instead
shifts each Q4_1 block by up to half a step, because its zero points are integers; see the
README's precision table.

Every weight is checked against the float model's before it is written, so a wrong tensor
mapping fails the build instead of producing a model that talks nonsense.

A tied embedding (SmolLM2's) is gathered from the lm_head's Q8_0 blocks by the GatherQ8_0 op
rather than kept as a float table beside them: the rows it dequantizes are bit for bit the
float model's (checked), and the folder loses the table's 113 MB. (The process gains less,
~20 MB peak RSS in `bench engine`: onnxruntime maps the weights file, so only the pages of
rows it read counted.)
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.native_ops import LAYOUT_FILE, LAYOUT_VERSION, LIBRARY_NAME, build_library

DOMAIN = "slm.gguf"
QK = 32  # elements per block in both formats
GROUP = 8  # output columns the ops interleave (gguf_kernels.h: one 32-byte load feeds 8 columns)

# Modules whose activations are rounded twice (int8, then the remainder again: ~1/32000 of a
# block's largest value instead of ~1/250). Rounding the attention projections' input costs
# the most agreement with the float model, and they are 16% of a layer's weights.
# `bench precision --variants fp32,q4_1,q4_1-a8` shows the two shipped settings: one level
# everywhere 97.3%, two for qkv 98.5% at ~8% fewer tokens/s (llama.cpp: 97.4%). Throwaway
# builds (not a project command) gave qkv + gate/up 98.6% at ~15% fewer, every layer 99.1% at
# ~25% fewer.
TWO_LEVEL_MODULES = frozenset({"attn/qkv_proj", "attn/q_proj", "attn/k_proj", "attn/v_proj"})

Progress = Callable[[str], None]


class GgufMappingError(RuntimeError):
    """The GGUF's blocks do not reproduce the float model's weights."""


@dataclass(frozen=True)
class Q41:
    packed: np.ndarray  # uint8 [N, K/32, 16], ggml nibble order
    scales: np.ndarray  # float32 [N, K/32]
    mins: np.ndarray  # float32 [N, K/32]

    def rows(self, index: np.ndarray) -> Q41:
        return Q41(self.packed[index], self.scales[index], self.mins[index])

    def dequantize(self) -> np.ndarray:
        low = self.packed & 0x0F
        high = self.packed >> 4
        q = np.concatenate([low, high], axis=-1).astype(np.float32)
        w = self.scales[..., None] * q + self.mins[..., None]
        return w.reshape(w.shape[0], -1)


@dataclass(frozen=True)
class Q80:
    values: np.ndarray  # int8 [N, K/32, 32]
    scales: np.ndarray  # float32 [N, K/32]

    def dequantize(self) -> np.ndarray:
        w = self.scales[..., None] * self.values.astype(np.float32)
        return w.reshape(w.shape[0], -1)


def _blocks(raw: np.ndarray, rows: int, block_bytes: int) -> np.ndarray:
    return np.ascontiguousarray(raw).reshape(rows, -1, block_bytes)


def read_q4_1(tensor: Any) -> Q41:
    """A GGUF Q4_1 tensor: blocks of {f16 d, f16 m, 16 bytes of nibbles}."""
    blocks = _blocks(tensor.data, int(tensor.shape[1]), 20)
    scales = blocks[..., 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
    mins = blocks[..., 2:4].copy().view(np.float16)[..., 0].astype(np.float32)
    return Q41(np.ascontiguousarray(blocks[..., 4:20]), scales, mins)


def read_q8_0(tensor: Any) -> Q80:
    """A GGUF Q8_0 tensor: blocks of {f16 d, 32 int8}."""
    blocks = _blocks(tensor.data, int(tensor.shape[1]), 34)
    scales = blocks[..., 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
    return Q80(np.ascontiguousarray(blocks[..., 2:34]).view(np.int8), scales)


def rope_rows(rows: int, heads: int) -> np.ndarray:
    """GGUF stores llama's q/k rows interleaved per head for its rope; this is the HF order."""
    half = rows // heads // 2
    return np.arange(rows).reshape(heads, half, 2).swapaxes(1, 2).reshape(rows)


class GgufModel:
    """The GGUF's tensors by Hugging Face module, in the float ONNX graph's layout."""

    def __init__(self, path: Path) -> None:
        import gguf

        reader = gguf.GGUFReader(str(path))
        self.tensors = {t.name: t for t in reader.tensors}
        field = reader.fields
        arch = bytes(field["general.architecture"].parts[-1]).decode()
        if arch != "llama":
            raise GgufMappingError(f"precision q4_1 supports llama-architecture GGUFs; this one is {arch!r}")
        self.heads = int(field["llama.attention.head_count"].parts[-1][0])
        self.kv_heads = int(field["llama.attention.head_count_kv"].parts[-1][0])

    def _tensor(self, name: str, kind: str) -> Any:
        tensor = self.tensors.get(name)
        if tensor is None:
            raise GgufMappingError(f"the GGUF has no tensor {name}")
        if tensor.tensor_type.name != kind:
            raise GgufMappingError(f"{name} is {tensor.tensor_type.name}; precision q4_1 needs {kind}")
        return tensor

    def q4_1(self, name: str, heads: int | None = None) -> Q41:
        weights = read_q4_1(self._tensor(name, "Q4_1"))
        return weights if heads is None else weights.rows(rope_rows(weights.packed.shape[0], heads))

    def layer(self, index: int, module: str) -> Q41:
        """The blocks behind the ONNX graph's /model/layers.I/<module>/MatMul."""
        prefix = f"blk.{index}."
        if module == "attn/qkv_proj":
            parts = [
                self.q4_1(prefix + "attn_q.weight", self.heads),
                self.q4_1(prefix + "attn_k.weight", self.kv_heads),
                self.q4_1(prefix + "attn_v.weight"),
            ]
            return Q41(
                *(np.concatenate([getattr(p, f) for p in parts]) for f in ("packed", "scales", "mins"))
            )
        names = {
            "attn/q_proj": ("attn_q.weight", self.heads),
            "attn/k_proj": ("attn_k.weight", self.kv_heads),
            "attn/v_proj": ("attn_v.weight", None),
            "attn/o_proj": ("attn_output.weight", None),
            "mlp/gate_proj": ("ffn_gate.weight", None),
            "mlp/up_proj": ("ffn_up.weight", None),
            "mlp/down_proj": ("ffn_down.weight", None),
        }
        if module not in names:
            raise GgufMappingError(f"no GGUF tensor is known for the ONNX module {module!r}")
        name, heads = names[module]
        return self.q4_1(prefix + name, heads)

    def lm_head(self) -> Q80:
        name = "output.weight" if "output.weight" in self.tensors else "token_embd.weight"
        return read_q8_0(self._tensor(name, "Q8_0"))


def _pad_columns(a: np.ndarray) -> np.ndarray:
    extra = -a.shape[0] % GROUP
    return np.concatenate([a, np.zeros((extra, *a.shape[1:]), a.dtype)]) if extra else a


def _interleave(a: np.ndarray, chunk: int) -> np.ndarray:
    """[N, blocks, bytes] -> [N/8, blocks, 8*bytes]: per block, CHUNK bytes of each of 8 columns
    in turn (gguf_kernels.h documents the layout)."""
    n, blocks, width = a.shape
    grouped = a.reshape(n // GROUP, GROUP, blocks, width // chunk, chunk)
    return np.ascontiguousarray(grouped.transpose(0, 2, 3, 1, 4)).reshape(n // GROUP, blocks, GROUP * width)


def _group_scales(a: np.ndarray) -> np.ndarray:
    """[N, blocks] -> [N/8, blocks, 8]"""
    n, blocks = a.shape
    return np.ascontiguousarray(a.reshape(n // GROUP, GROUP, blocks).transpose(0, 2, 1))


def op_inputs(blocks: Q41 | Q80) -> tuple[str, dict[str, np.ndarray]]:
    """The op that multiplies by BLOCKS and its weight inputs in its layout: columns padded with
    zeros to a multiple of 8, so the op's output may be wider than the matrix."""
    if isinstance(blocks, Q41):
        return "MatMulQ4_1", {
            ".q4_1": _interleave(_pad_columns(blocks.packed), 4),
            ".scales": _group_scales(_pad_columns(blocks.scales)),
            ".mins": _group_scales(_pad_columns(blocks.mins)),
        }
    return "MatMulQ8_0", {
        ".q8_0": _interleave(_pad_columns(blocks.values), 4),
        ".scales": _group_scales(_pad_columns(blocks.scales)),
    }


def _check_same(what: str, blocks: Q41 | Q80, float_weight: np.ndarray) -> None:
    """float_weight is the ONNX MatMul's [K, N]; the blocks hold [N, K]."""
    ours = blocks.dequantize()
    theirs = float_weight.T
    if ours.shape != theirs.shape:
        raise GgufMappingError(f"{what}: GGUF blocks give {ours.shape}, the float model has {theirs.shape}")
    worst = float(np.max(np.abs(ours - theirs)))
    if worst > 1e-6 * max(1.0, float(np.max(np.abs(theirs)))):
        raise GgufMappingError(f"{what}: GGUF blocks differ from the float weights by up to {worst:g}")


def rewrite(
    float_dir: Path,
    gguf_path: Path,
    out_dir: Path,
    progress: Progress | None = None,
    two_level: frozenset[str] = TWO_LEVEL_MODULES,
) -> Path:
    """Write OUT_DIR: FLOAT_DIR's graph with every MatMul on GGUF blocks, plus the ops library.
    Modules named in TWO_LEVEL ("attn/qkv_proj", ..., "lm_head") round activations twice."""
    import onnx
    from onnx import helper, numpy_helper

    say = progress or (lambda _m: None)
    model = onnx.load(str(float_dir / "model.onnx"))
    gguf = GgufModel(gguf_path)
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    consumers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1

    new_nodes = []
    new_inits: list[Any] = []
    dropped: set[str] = set()  # initializers and nodes (by name) to leave out
    tied: list[tuple[str, Q41 | Q80, np.ndarray, list[str]]] = []
    matmuls = 0
    for node in graph.node:
        weight_name = node.input[1] if node.op_type == "MatMul" and len(node.input) == 2 else ""
        if weight_name not in initializers:
            new_nodes.append(node)
            continue
        float_weight = numpy_helper.to_array(initializers[weight_name])
        blocks: Q41 | Q80
        if node.name == "/lm_head/MatMul":
            module, blocks = "lm_head", gguf.lm_head()
        else:
            parts = node.name.split("/")  # /model/layers.I/attn/qkv_proj/MatMul
            if len(parts) != 6 or not parts[2].startswith("layers."):
                raise GgufMappingError(f"unexpected MatMul {node.name} in the float graph")
            module = f"{parts[3]}/{parts[4]}"
            blocks = gguf.layer(int(parts[2].split(".")[1]), module)
        _check_same(node.name, blocks, float_weight)
        stem = weight_name.removesuffix(".weight")
        op, tensors = op_inputs(blocks)
        names = [stem + suffix for suffix in tensors]
        new_inits += [numpy_helper.from_array(a, n) for n, a in zip(names, tensors.values(), strict=True)]
        levels = 2 if module in two_level else 1
        new_nodes += _op_nodes(
            op, node, names, columns=float_weight.shape[1], inits=new_inits, levels=levels,
            last_position_only=module == "lm_head",
        )  # fmt: skip
        dropped.add(weight_name)
        if consumers[weight_name] > 1:  # SmolLM2's embedding reads the tied lm_head weight
            tied.append((weight_name, blocks, float_weight, names))
        matmuls += 1
    say(f"  {matmuls} matmuls now read the GGUF's blocks (weights checked against the float model)")
    new_nodes, attention = attention_nodes(new_nodes, head_size=_head_size(float_dir))
    if attention and _cache_to_half(graph, new_nodes):
        say(f"  {attention} attention nodes run on slm.gguf::CausalAttentionF16 (a float16 KV cache)")
    elif attention:
        say(f"  {attention} attention nodes run on slm.gguf::CausalAttention")
    for weight_name, blocks, float_weight, names in tied:
        new_nodes = _embedding_from_blocks(new_nodes, weight_name, blocks, float_weight, names, dropped)
        say("  the tied embedding is gathered from the lm_head's Q8_0 blocks (no float table)")

    del graph.node[:]
    graph.node.extend(n for n in new_nodes if n.name not in dropped)
    kept = [i for i in graph.initializer if i.name not in dropped]
    del graph.initializer[:]
    graph.initializer.extend(kept + new_inits)
    model.opset_import.append(helper.make_opsetid(DOMAIN, 1))

    out_dir.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out_dir / "model.onnx"), save_as_external_data=True, location="model.onnx.data")
    for item in float_dir.iterdir():
        if item.is_file() and not item.name.startswith("model.onnx"):
            shutil.copy2(item, out_dir / item.name)
    build_library(out_dir)
    _point_config_at_library(out_dir / "genai_config.json")
    (out_dir / LAYOUT_FILE).write_text(json.dumps({"layout_version": LAYOUT_VERSION}) + "\n")
    return out_dir


def _head_size(float_dir: Path) -> int:
    config = json.loads((float_dir / "genai_config.json").read_text())
    return int(config["model"]["decoder"]["head_size"])


MAX_ATTENTION_HEAD = 256
"""The widest head slm.gguf::CausalAttention takes (MAX_HEAD in models/native/gguf_attention.c)."""


def attention_nodes(nodes: list[Any], head_size: int) -> tuple[list[Any], int]:
    """NODES with each GroupQueryAttention that slm.gguf::CausalAttention computes the same way
    (packed QKV, rotate-half rotary, no window or softcap, heads a multiple of 8 wide, at most
    MAX_ATTENTION_HEAD) put on it: onnxruntime's kernel packs every head's keys for a GEMM per
    row and head, which is most of a step's growth with the batch (models/native/
    gguf_attention.c). Returns the nodes and how many were replaced; any other attention stays
    as it is."""
    from onnx import helper

    def attr(node: Any, name: str, default: Any) -> Any:
        found = [a for a in node.attribute if a.name == name]
        return helper.get_attribute_value(found[0]) if found else default

    out, replaced = [], 0
    for node in nodes:
        inputs = list(node.input) + [""] * (9 - len(node.input))
        if (
            node.op_type != "GroupQueryAttention"
            or node.domain != "com.microsoft"
            or inputs[1] or inputs[2]  # separate K and V: not packed
            or any(inputs[9:])  # position ids, attention bias, head sink
            or not (inputs[3] and inputs[4] and inputs[7] and inputs[8])
            or attr(node, "do_rotary", 0) != 1
            or attr(node, "rotary_interleaved", 0) != 0
            or attr(node, "local_window_size", -1) > 0
            or attr(node, "softcap", 0.0) != 0.0
            or attr(node, "smooth_softmax", 0) != 0
            or head_size % 8 != 0
            or head_size > MAX_ATTENTION_HEAD
        ):  # fmt: skip
            out.append(node)
            continue
        out.append(
            helper.make_node(
                "CausalAttention",
                [inputs[0], inputs[3], inputs[4], inputs[5], inputs[7], inputs[8]],
                list(node.output), name=node.name, domain=DOMAIN, layout_version=LAYOUT_VERSION,
                num_heads=attr(node, "num_heads", 0), kv_num_heads=attr(node, "kv_num_heads", 0),
                scale=float(attr(node, "scale", 0.0)),
            )
        )  # fmt: skip
        replaced += 1
    return out, replaced


def _cache_to_half(graph: Any, nodes: list[Any]) -> bool:
    """Put the CausalAttention nodes on their float16-cache variant and make the graph's
    past/present KV tensors float16, when nothing else touches them (then a step reads half the
    bytes per cached token: at 4 rows of ~150 tokens the cache is ~28 MB a step beside ~113 MB of
    weights). False, and nothing changed, otherwise."""
    from onnx import TensorProto

    attention = [n for n in nodes if n.op_type == "CausalAttention"]
    caches = {name for n in attention for name in (*n.input[1:3], *n.output[1:3])}
    readers = [n for n in nodes if n not in attention and caches & {*n.input, *n.output}]
    tensors = [t for t in (*graph.input, *graph.output) if t.name in caches]
    if readers or len(tensors) != len(caches):
        return False
    for n in attention:
        n.op_type = "CausalAttentionF16"
    for t in tensors:
        t.type.tensor_type.elem_type = TensorProto.FLOAT16
    return True


def _op_nodes(
    op: str,
    node: Any,
    weights: list[str],
    columns: int,
    inits: list[Any],
    levels: int = 1,
    last_position_only: bool = False,
) -> list[Any]:
    """The op in NODE's place; a Slice drops the zero columns padding added (none for llama's
    usual sizes, which are multiples of 8). LAST_POSITION_ONLY (the lm_head): a prompt chunk's
    logits only at its last token, the one the next token is sampled from; the other positions
    are zeros (onnxruntime-genai and the engine read only the last; for a 64-token chunk the
    lm_head was a fifth of the time)."""
    from onnx import helper, numpy_helper

    padded = node.output[0] + "/padded" if columns % GROUP else node.output[0]
    matmul = helper.make_node(
        op, [node.input[0], *weights], [padded], name=node.name, domain=DOMAIN, layout_version=LAYOUT_VERSION
    )
    if levels != 1:
        matmul.attribute.append(helper.make_attribute("activation_levels", levels))
    if last_position_only:
        matmul.attribute.append(helper.make_attribute("last_position_only", 1))
    if padded == node.output[0]:
        return [matmul]
    bounds = [node.name + suffix for suffix in ("/starts", "/ends", "/axes")]
    for name, value in zip(bounds, (0, columns, -1), strict=True):
        inits.append(numpy_helper.from_array(np.array([value], np.int64), name))
    return [
        matmul,
        helper.make_node("Slice", [padded, *bounds], list(node.output), name=node.name + "/unpad"),
    ]


def _embedding_from_blocks(
    nodes: list[Any],
    weight_name: str,
    blocks: Q41 | Q80,
    weight: np.ndarray,
    names: list[str],
    dropped: set[str],
) -> list[Any]:
    """NODES with the embedding's Gather(Transpose(lm_head weight), ids) replaced by GatherQ8_0
    on the lm_head's blocks (NAMES), once its rows are shown to equal the float table exactly."""
    from onnx import helper

    transposes = [n for n in nodes if n.op_type == "Transpose" and list(n.input) == [weight_name]]
    readers = [n for n in nodes if weight_name in n.input and n not in transposes]
    if len(transposes) != 1 or readers:
        raise GgufMappingError(
            f"{weight_name} has another reader besides its MatMul, and it is not a Transpose"
        )
    table = transposes[0].output[0]
    gathers = [n for n in nodes if table in n.input]
    if not isinstance(blocks, Q80) or any(
        g.op_type != "Gather" or list(g.input).index(table) != 0 or any(a.i != 0 for a in g.attribute)
        for g in gathers
    ):
        raise GgufMappingError(
            f"the tied {weight_name} is read by something other than a Q8_0 embedding Gather"
        )
    if not np.array_equal(blocks.dequantize(), weight.T):
        raise GgufMappingError("the embedding's rows differ from the lm_head's Q8_0 blocks")
    replaced = {
        id(g): helper.make_node(
            "GatherQ8_0", [*names, g.input[1]], list(g.output), name=g.name, domain=DOMAIN,
            layout_version=LAYOUT_VERSION,
        )
        for g in gathers
    }  # fmt: skip
    dropped.add(transposes[0].name)
    return [replaced.get(id(n), n) for n in nodes]


def _point_config_at_library(config_path: Path) -> None:
    config = json.loads(config_path.read_text())
    options = config["model"]["decoder"].setdefault("session_options", {})
    options["custom_ops_library"] = LIBRARY_NAME
    config_path.write_text(json.dumps(config, indent=4) + "\n")
