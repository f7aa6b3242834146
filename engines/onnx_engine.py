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
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from backends.base import Backend, ChatRequest, Health, ModelInfo, StreamEvent
from backends.errors import BackendError, BackendUnavailable, ContextOverflow
from engines import oga_native
from engines.onnx_batch import Graph, batchable
from engines.onnx_jobs import KV_WINDOW, LoadedModel, OnnxEngine, OnnxJob
from engines.onnx_tools import request_guidance
from engines.scheduler import Scheduler
from models.model_store import check_model_dir

__all__ = ["KV_WINDOW", "MAX_BATCH", "OnnxBackend", "request_guidance"]

MAX_BATCH = 16
"""Sequences decoded in one step at most (when memory allows): a request arriving while 8
stream should join them, not wait for a whole answer."""
PARKED_ROWS = 2
"""Rows beyond the batch that keep finished chats' caches for their next turn."""


class OnnxBackend(Backend):
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
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.threads = threads or oga_native.available_cores()
        self.requested_batch = concurrency
        self.max_queue = max_queue
        self.batching = batching
        self._loaded: LoadedModel | None = None
        self._load_task: asyncio.Future[LoadedModel] | None = None
        self.scheduler: Scheduler | None = None

    # --- loading -----------------------------------------------------------------------

    def _load_blocking(self) -> LoadedModel:
        import onnxruntime_genai as og

        folder = check_model_dir(self.model_dir)
        config = json.loads((folder.path / "genai_config.json").read_text(encoding="utf-8"))
        try:
            tokenizer = og.Tokenizer(str(folder.path))
            why_solo = batchable(folder.path, config) if self.batching else "batching is off"
            graph = None
            if why_solo is None:
                rows = self.batch_size(config) + PARKED_ROWS
                window = min(KV_WINDOW, folder.context_length + 1)
                graph = Graph(folder.path, config, threads=self.threads, rows=rows, length=window)
        except Exception as exc:
            raise BackendUnavailable(self.name, f"could not load {folder.path}: {exc}") from exc
        template_file = folder.path / "chat_template.jinja"
        template = template_file.read_text(encoding="utf-8") if template_file.is_file() else None
        loaded = LoadedModel(tokenizer, folder, config, template, self.threads, graph, why_solo)
        if why_solo is not None:
            loaded.genai()  # fail now rather than on the first request
        return loaded

    def batch_size(self, config: dict[str, Any] | None = None) -> int:
        """The batch: as asked, else MAX_BATCH unless a quarter of the free memory cannot hold
        that many rows of KV_WINDOW tokens."""
        if self.requested_batch:
            return self.requested_batch
        if config is None:
            return MAX_BATCH
        decoder = config["model"]["decoder"]
        per_token = 2 * 4 * int(decoder["num_hidden_layers"]) * int(decoder["num_key_value_heads"])
        per_token *= int(decoder["head_size"])
        try:
            import psutil

            free = psutil.virtual_memory().available
        except ImportError:
            return MAX_BATCH
        return max(1, min(MAX_BATCH, int(free / 4 // (per_token * KV_WINDOW))))

    def capacity(self) -> int:
        """The batch size the model will run with, known before it loads."""
        if self.scheduler is not None:
            return self.scheduler.max_batch
        try:
            folder = check_model_dir(self.model_dir)
            config = json.loads((folder.path / "genai_config.json").read_text(encoding="utf-8"))
        except (BackendError, ValueError):
            return self.batch_size()
        return self.batch_size(config) if self.batching and batchable(folder.path, config) is None else 1

    async def _ensure_loaded(self) -> LoadedModel:
        if self._loaded is not None:
            return self._loaded
        if self._load_task is None:
            self._load_task = asyncio.get_running_loop().run_in_executor(None, self._load_blocking)
        try:
            loaded = await asyncio.shield(self._load_task)
        except BackendError:
            self._load_task = None
            raise
        if self._loaded is None:
            self._loaded = loaded
            batch = self.batch_size(loaded.config) if loaded.graph is not None else 1
            self.scheduler = Scheduler(
                OnnxEngine(loaded, batch), name=self.name, max_batch=batch, max_queue=self.max_queue
            )
        return self._loaded

    def default_model(self) -> str:
        return self.model_dir.name

    async def warm_up(self) -> float:
        # Stand-in until the shared engine base implements warm_up for every in-process kind.
        if self._loaded is not None:
            return 0.0
        start = time.perf_counter()
        await self._ensure_loaded()
        return time.perf_counter() - start

    async def health(self) -> Health:
        if self._loaded is not None:
            return Health("ready", f"{self.model_dir.name} loaded in-process")
        if self._load_task is None:
            try:
                check_model_dir(self.model_dir)
            except BackendError as exc:
                return Health("unreachable", exc.message)
            self._load_task = asyncio.get_running_loop().run_in_executor(None, self._load_blocking)
        if self._load_task.done():
            try:
                await self._ensure_loaded()
                return Health("ready", f"{self.model_dir.name} loaded in-process")
            except BackendError as exc:
                return Health("unreachable", exc.message)
        return Health("loading", f"loading {self.model_dir.name}")

    async def list_models(self) -> list[ModelInfo]:
        folder = check_model_dir(self.model_dir)
        return [
            ModelInfo(
                folder.name,
                context_length=folder.context_length,
                details={"format": "onnx", "runtime": "onnxruntime-genai", "type": folder.model_type},
            )
        ]

    def stats(self) -> dict[str, float]:
        """Batch size, queue length and aggregate tokens/s (for /metrics)."""
        return self.scheduler.stats() if self.scheduler is not None else {}

    @property
    def waiting(self) -> int:
        """Requests queued for a place in the batch."""
        return int(self.stats().get("queued", 0))

    async def aclose(self) -> None:
        if self.scheduler is not None:
            await asyncio.to_thread(self.scheduler.close)

    # --- generation --------------------------------------------------------------------

    async def _stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        loaded = await self._ensure_loaded()
        prompt = await asyncio.to_thread(loaded.encode_chat, request)
        context = loaded.folder.context_length
        if len(prompt) >= context:
            raise ContextOverflow(self.name, prompt_tokens=len(prompt), context_length=context)
        budget = min(request.options.max_new_tokens, context - len(prompt))
        assert self.scheduler is not None
        # aclosing: the caller's Stop must reach the scheduler now, not when the GC finalizes
        events = self.scheduler.stream(OnnxJob(request, prompt, budget))
        async with contextlib.aclosing(events):
            async for event in events:
                yield event
