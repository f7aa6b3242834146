"""In-process backend on the ONNX Runtime GenAI model format, batched across requests.

Every request of one model runs on that model's scheduler thread (engines/scheduler.py):
requests join and leave a running batch between decoding steps, each with its own sampling
settings, stop strings, token budget and tool parser. Decoding drives the folder's graph with
onnxruntime directly (engines/onnx_batch.py: one KV row per sequence, several rows per step);
onnxruntime-genai's Generator (through ``oga_native``, which releases the GIL) is kept for
what that cannot do: guided decoding (tool_choice "required" or a named function, whose
grammar is tied to the Generator) and graphs whose attention cannot take per-row lengths
(onnx_batch.ATTENTION_OPS). Those run one
token per scheduler step beside the batch. The tokenizer stays on onnxruntime-genai.

KV-cache reuse: a finished request's row stays parked with its tokens; the next request whose
prompt shares a prefix with any row (the next turn of the same chat, or the same system
prompt) prefills only the rest, so the time to first token of turn N does not grow with the
history. A new request's prompt is fed in chunks between decoding steps, so running streams
keep flowing while it is read.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from backends.base import ChatRequest, ModelInfo
from backends.errors import BackendError, BackendUnavailable, ContextOverflow
from engines import oga_native
from engines.in_process import InProcessBackend
from engines.onnx_batch import Graph, batchable
from engines.onnx_jobs import KV_WINDOW, LoadedModel, OnnxEngine, OnnxJob
from engines.onnx_tools import request_guidance
from engines.scheduler import Engine
from models.model_store import check_model_dir

__all__ = ["KV_WINDOW", "MAX_BATCH", "OnnxBackend", "request_guidance", "rows_for_memory"]

MAX_BATCH = 16
"""Sequences decoded in one step at most (when memory allows): a request arriving while 8
stream should join them, not wait for a whole answer."""
PARKED_ROWS = 2
"""Rows beyond the batch that keep finished chats' caches for their next turn."""
FLOAT32_BYTES = 4
"""What a KV value takes before the graph is open to say (int8 folders: float32; q4_1: float16)."""


def rows_for_memory(bytes_per_token: int, free: int) -> int:
    """MAX_BATCH, unless a quarter of ``free`` bytes cannot hold that many rows of KV_WINDOW tokens."""
    return max(1, min(MAX_BATCH, int(free / 4 // (bytes_per_token * KV_WINDOW))))


def _free_memory() -> int | None:
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


class OnnxBackend(InProcessBackend):
    kind = "onnx"
    supports_tools = True
    supports_logprobs = True
    supports_completion = True

    def __init__(
        self,
        name: str,
        model_dir: Path,
        *,
        concurrency: int = 0,
        threads: int = 0,
        max_queue: int = 64,
        batching: bool = True,
    ) -> None:
        """``concurrency``: sequences decoded together (0: chosen from the model and memory);
        ``threads``: onnxruntime intra-op threads (0: every core this process may use);
        ``batching=False``: every request on onnxruntime-genai's Generator, one at a time."""
        super().__init__(name, max_queue=max_queue)
        self.model_dir = Path(model_dir)
        self.threads = threads or oga_native.available_cores()
        self.requested_batch = concurrency
        self.batching = batching

    # --- loading -----------------------------------------------------------------------

    def check_source(self) -> None:
        check_model_dir(self.model_dir)

    def load_blocking(self) -> LoadedModel:
        import onnxruntime_genai as og

        folder = check_model_dir(self.model_dir)
        config = json.loads((folder.path / "genai_config.json").read_text(encoding="utf-8"))
        try:
            tokenizer = og.Tokenizer(str(folder.path))
            why_solo = batchable(folder.path, config) if self.batching else "batching is off"
            graph = None
            if why_solo is None:
                window = min(KV_WINDOW, folder.context_length + 1)
                # rows are memory-mapped zeros until written: open with the most, then keep what fits
                most = (self.requested_batch or MAX_BATCH) + PARKED_ROWS
                graph = Graph(folder.path, config, threads=self.threads, rows=most, length=window)
                graph.keep_rows(self.batch_size(graph.bytes_per_token) + PARKED_ROWS)
        except Exception as exc:
            raise BackendUnavailable(self.name, f"could not load {folder.path}: {exc}") from exc
        template_file = folder.path / "chat_template.jinja"
        template = template_file.read_text(encoding="utf-8") if template_file.is_file() else None
        loaded = LoadedModel(tokenizer, folder, config, template, self.threads, graph, why_solo)
        if why_solo is not None:
            loaded.genai()  # fail now rather than on the first request
        return loaded

    def engine_for(self, loaded: LoadedModel) -> tuple[Engine, int]:
        graph = loaded.graph
        batch = len(graph.rows) - PARKED_ROWS if graph is not None else 1
        return OnnxEngine(loaded, batch), batch

    def stats(self) -> dict[str, float]:
        """The scheduler's gauges, plus what the batched graph has run (GraphWork's counters)."""
        stats = super().stats()
        engine = self.scheduler.engine if self.scheduler is not None else None
        if isinstance(engine, OnnxEngine) and engine.loaded.graph is not None:  # else nothing batches
            stats.update(engine.work.counters())
        return stats

    def batch_size(self, bytes_per_token: int | None = None) -> int:
        """The batch: as asked, else as many rows as memory holds (:func:`rows_for_memory`) of a
        cache taking ``bytes_per_token`` (the graph's; None: MAX_BATCH)."""
        if self.requested_batch:
            return self.requested_batch
        free = _free_memory()
        if bytes_per_token is None or free is None:
            return MAX_BATCH
        return rows_for_memory(bytes_per_token, free)

    def capacity(self) -> int:
        """The batch size the model will run with (before it loads: an estimate, float32 cache)."""
        if self.scheduler is not None:
            return self.scheduler.max_batch
        try:
            folder = check_model_dir(self.model_dir)
            config = json.loads((folder.path / "genai_config.json").read_text(encoding="utf-8"))
        except (BackendError, ValueError):
            return self.batch_size()
        if not self.batching or batchable(folder.path, config) is not None:
            return 1
        decoder = config["model"]["decoder"]
        values = 2 * int(decoder["num_hidden_layers"]) * int(decoder["num_key_value_heads"])
        return self.batch_size(values * int(decoder["head_size"]) * FLOAT32_BYTES)

    def default_model(self) -> str:
        return self.model_dir.name

    async def list_models(self) -> list[ModelInfo]:
        folder = check_model_dir(self.model_dir)
        return [
            ModelInfo(
                folder.name,
                context_length=folder.context_length,
                details={"format": "onnx", "runtime": "onnxruntime-genai", "type": folder.model_type},
            )
        ]

    # --- generation --------------------------------------------------------------------

    async def job_for(self, request: ChatRequest, loaded: LoadedModel) -> OnnxJob:
        prompt = await asyncio.to_thread(loaded.encode_chat, request)
        context = loaded.folder.context_length
        if len(prompt) >= context:
            raise ContextOverflow(self.name, prompt_tokens=len(prompt), context_length=context)
        return OnnxJob(request, prompt, min(request.options.max_new_tokens, context - len(prompt)))
