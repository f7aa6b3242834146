"""Decoding several sequences in one step: an onnxruntime-genai folder's graph, driven directly.

onnxruntime-genai 0.18 batches only statically on CPU, and two Generators on one model in
two threads gain nothing on 2 cores. The q4_1 op reads the weights once for every row of a
step, so several rows cost far less than several steps (the default model, 2 cores, rows of
~150 tokens, onnxruntime's profiler: a 4-row step costs ~1.6x a 1-row step; of its growth, the
attention op and the q4_1 matmuls' arithmetic are most). So this module runs the decoder graph
itself with onnxruntime:

* KV cache: per past input one buffer [rows, kv_heads, length, head_size], shared between
  the past input and the present output (the attention op, onnxruntime's GroupQueryAttention
  or slm.gguf's CausalAttention in q4_1 folders, then writes each new token in place at its
  row's own position, from the per-row lengths it reads off attention_mask).
  Untouched pages cost no memory, so a row's RSS grows with the tokens it holds.
* A run feeds rows next to each other: a decoding step runs rows [0, d) at once, and prompts
  waiting to be fed run together in the rows right after them, so rows are moved (two rows
  swap their used prefix) to keep the sequences that run together side by side.
* A finished sequence leaves its row parked with its tokens: the next request whose prompt
  shares a prefix with it (the next turn of that chat, or any request with the same system
  prompt) reuses that row, or copies the shared prefix from a row still in use.

Graphs without one of those ops (or configured not to share buffers) cannot do this;
``batchable`` says so and the engine falls back to onnxruntime-genai's Generator.
"""

from __future__ import annotations

import mmap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models import native_ops

_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
ATTENTION_OPS = frozenset({"GroupQueryAttention", "CausalAttention", "CausalAttentionF16"})
"""Attention ops that take per-row KV lengths: onnxruntime's, and slm.gguf's (q4_1 folders)."""


def batchable(folder: Path, config: dict[str, Any]) -> str | None:
    """Why the folder's graph cannot be batched here, or None when it can."""
    model = config.get("model", {})
    decoder = model.get("decoder", {})
    if "pipeline" in decoder or not decoder.get("filename"):
        return "the model is split into several graphs"
    if config.get("search", {}).get("past_present_share_buffer") is False:
        return "its config does not let past and present KV share a buffer"
    inputs = decoder.get("inputs", {})
    if "past_key_names" not in inputs or "past_value_names" not in inputs:
        return "its graph has no per-layer past key/value inputs"
    try:
        import onnx
    except ImportError:
        return None  # the config flag above is what onnxruntime-genai itself goes by
    graph = onnx.load(str(folder / decoder["filename"]), load_external_data=False).graph
    ops = {node.op_type for node in graph.node}
    if not ops & ATTENTION_OPS:
        return "its attention op cannot take per-row KV lengths (GroupQueryAttention or slm.gguf's can)"
    return None


@dataclass
class Row:
    tokens: list[int] = field(default_factory=list)
    """Tokens whose keys and values this row holds, at positions 0..len-1."""
    owner: Any = None
    """The sequence using the row, or None (free or parked)."""
    used_at: float = 0.0


def _lazy_zeros(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Zeros whose pages the kernel maps on first write, 4 KiB at a time: a row's memory grows
    with the tokens it holds. (np.zeros asks for transparent huge pages on large arrays: then
    one token's write faulted in and zeroed 2 MiB, stalling admission for up to a second.)"""
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    return np.frombuffer(mmap.mmap(-1, max(size, 1)), dtype=dtype, count=int(np.prod(shape))).reshape(shape)


class Graph:
    """One onnxruntime session over a genai decoder graph, plus the KV buffers of every row."""

    def __init__(
        self,
        folder: Path,
        config: dict[str, Any],
        *,
        threads: int,
        rows: int,
        length: int,
        profile_prefix: str | None = None,
    ) -> None:
        """PROFILE_PREFIX turns on onnxruntime's profiler (bench engine --steps reads its file)."""
        import onnxruntime as ort

        model = config["model"]
        decoder = model["decoder"]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        if profile_prefix is not None:
            options.enable_profiling = True
            options.profile_file_prefix = profile_prefix
        session_config = decoder.get("session_options") or {}
        if library := session_config.get("custom_ops_library"):
            if library == native_ops.LIBRARY_NAME:
                native_ops.kernel()  # SLM_KERNEL naming one this CPU cannot run: say so here
            options.register_custom_ops_library(str(folder / library))
        self.session = ort.InferenceSession(
            str(folder / decoder["filename"]), options, providers=["CPUExecutionProvider"]
        )
        names_in = decoder.get("inputs", {})
        names_out = decoder.get("outputs", {})
        self.input_ids = names_in.get("input_ids", "input_ids")
        self.attention_mask = names_in.get("attention_mask", "attention_mask")
        self.logits = names_out.get("logits", "logits")
        graph_inputs = {i.name: i for i in self.session.get_inputs()}
        position = names_in.get("position_ids", "position_ids")
        self.position_ids = position if position in graph_inputs else None
        layers = int(decoder["num_hidden_layers"])
        pairs = (("past_key_names", "present_key_names"), ("past_value_names", "present_value_names"))
        self.kv_names = [
            (names_in[past] % i, names_out[present] % i) for i in range(layers) for past, present in pairs
        ]
        first_past = graph_inputs[self.kv_names[0][0]]
        self.kv_dtype = _DTYPES[first_past.type]
        self.kv_heads = int(decoder["num_key_value_heads"])
        self.head_size = int(decoder["head_size"])
        outputs = {o.name: o for o in self.session.get_outputs()}
        self.logits_dtype = _DTYPES[outputs[self.logits].type]
        self.vocab = int(model.get("vocab_size") or outputs[self.logits].shape[-1])
        self.ids_dtype = np.int64 if graph_inputs[self.input_ids].type == "tensor(int64)" else np.int32
        self.mask_dtype = np.int64 if graph_inputs[self.attention_mask].type == "tensor(int64)" else np.int32
        self.rows: list[Row] = [Row() for _ in range(rows)]
        self.last_run_s = 0.0
        """Seconds the last run spent inside onnxruntime (the rest of run() is Python)."""
        self.length = 0
        self.buffers: list[np.ndarray] = []
        self.grow(length)

    @property
    def bytes_per_token(self) -> int:
        """KV-cache bytes one token takes in one row (every layer's key and value)."""
        return len(self.kv_names) * self.kv_heads * self.head_size * np.dtype(self.kv_dtype).itemsize

    def keep_rows(self, rows: int) -> None:
        """Shrink to ``rows`` rows before first use (the buffers are untouched, so free)."""
        if rows >= len(self.rows):
            return
        assert not any(r.tokens for r in self.rows), "keep_rows after rows were used"
        self.rows = self.rows[:rows]
        length, self.length = self.length, 0
        self.buffers = []
        self.grow(length)

    def grow(self, length: int) -> None:
        """Make room for ``length`` tokens per row, keeping what every row holds."""
        if length <= self.length:
            return
        shape = (len(self.rows), self.kv_heads, length, self.head_size)
        fresh = [_lazy_zeros(shape, self.kv_dtype) for _ in self.kv_names]
        used = max((len(r.tokens) for r in self.rows), default=0)
        for old, new in zip(self.buffers, fresh, strict=False):
            new[:, :, :used] = old[:, :, :used]
        self.buffers, self.length = fresh, length
        self._bindings: dict[tuple[int, int], Any] = {}  # they point into the old buffers

    def swap(self, a: int, b: int) -> None:
        """Exchange two rows, keys and values and bookkeeping."""
        if a == b:
            return
        n = max(len(self.rows[a].tokens), len(self.rows[b].tokens))
        for buf in self.buffers:
            held = buf[a, :, :n].copy()
            buf[a, :, :n] = buf[b, :, :n]
            buf[b, :, :n] = held
        self.rows[a], self.rows[b] = self.rows[b], self.rows[a]
        for index in (a, b):
            if self.rows[index].owner is not None:
                self.rows[index].owner.row = index

    def copy_prefix(self, source: int, target: int, n: int) -> None:
        for buf in self.buffers:
            buf[target, :, :n] = buf[source, :, :n]
        self.rows[target].tokens = list(self.rows[source].tokens[:n])

    def _binding(self, first_row: int, batch: int) -> Any:
        """An IO binding with rows first_row.. bound as past and present (kept: binding 60-odd
        buffers cost ~1 ms a step; only ids, mask and logits change between steps)."""
        key = (first_row, batch)
        if (io := self._bindings.get(key)) is None:
            io = self.session.io_binding()
            shape = (batch, self.kv_heads, self.length, self.head_size)
            itemsize = np.dtype(self.kv_dtype).itemsize
            offset = first_row * self.kv_heads * self.length * self.head_size * itemsize
            for buf, (past_name, present_name) in zip(self.buffers, self.kv_names, strict=True):
                pointer = buf.ctypes.data + offset
                io.bind_input(past_name, "cpu", 0, self.kv_dtype, shape, pointer)
                io.bind_output(present_name, "cpu", 0, self.kv_dtype, shape, pointer)
            self._bindings[key] = io
        return io

    def run(self, first_row: int, ids: np.ndarray) -> np.ndarray:
        """Feed ``ids`` [B, S] to rows first_row..first_row+B-1 after the tokens they hold;
        returns logits [B, S, vocab] as float32 and records the fed tokens in the rows."""
        batch, steps = ids.shape
        rows = self.rows[first_row : first_row + batch]
        past = np.array([len(r.tokens) for r in rows])
        if int(past.max()) + steps > self.length:
            raise RuntimeError(f"KV rows hold {self.length} tokens; {int(past.max()) + steps} needed")
        total = int(past.max()) + steps
        mask = (np.arange(total)[None, :] < (past + steps)[:, None]).astype(self.mask_dtype)
        io = self._binding(first_row, batch)
        keep = [ids.astype(self.ids_dtype), mask]
        io.bind_cpu_input(self.input_ids, keep[0])
        io.bind_cpu_input(self.attention_mask, mask)
        if self.position_ids is not None:
            keep.append((past[:, None] + np.arange(steps)[None, :]).astype(np.int64))
            io.bind_cpu_input(self.position_ids, keep[-1])
        logits = np.empty((batch, steps, self.vocab), self.logits_dtype)
        io.bind_output(self.logits, "cpu", 0, self.logits_dtype, logits.shape, logits.ctypes.data)
        started = time.perf_counter()
        self.session.run_with_iobinding(io)  # releases the GIL while it computes
        self.last_run_s = time.perf_counter() - started
        now = time.monotonic()
        for row, fed in zip(rows, ids.tolist(), strict=True):
            row.tokens.extend(fed)
            row.used_at = now
        return logits if logits.dtype == np.float32 else logits.astype(np.float32)
