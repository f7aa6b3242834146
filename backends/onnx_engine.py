"""In-process backend on the ONNX Runtime GenAI model format, batched across requests.

Every request of one model runs on that model's scheduler thread (backends/scheduler.py):
requests join and leave a running batch between decoding steps, each with its own sampling
settings, stop strings, token budget and tool parser. Decoding drives the folder's graph with
onnxruntime directly (backends/onnx_batch.py: one KV row per sequence, several rows per step);
onnxruntime-genai's Generator (through ``oga_native``, which releases the GIL) is kept for
what that cannot do: guided decoding (tool_choice "required" or a named function, whose
grammar is tied to the Generator) and graphs without GroupQueryAttention. Those run one
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
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends import oga_native
from backends.base import (
    Backend,
    ChatRequest,
    FinishReason,
    Health,
    Message,
    ModelInfo,
    SamplingOptions,
    StreamEvent,
    TextDelta,
    ToolCallEvent,
    Usage,
)
from backends.errors import BackendError, BackendUnavailable, ContextOverflow
from backends.model_store import ModelFolder, check_model_dir
from backends.onnx_batch import Graph, batchable
from backends.onnx_tools import ToolCallParser, tool_guidance, tools_system_text
from backends.sampling import Sampler
from backends.scheduler import Job, Scheduler
from backends.stops import StopMatcher

KV_WINDOW = 4096
"""Tokens of KV cache a row starts with (grown when a request needs more)."""
MAX_BATCH = 16
"""Sequences decoded in one step at most (when memory allows): a request arriving while 8
stream should join them, not wait for a whole answer."""
PARKED_ROWS = 2
"""Rows beyond the batch that keep finished chats' caches for their next turn."""
PREFILL_CHUNK = 64
"""Prompt tokens fed per graph run."""
PREFILL_BUDGET_S = 0.15
"""Prefill chunks run back to back for up to this long before the running streams get their
next token: a burst of new requests reaches first tokens sooner, and no stream waits long."""
SOLO_POOL = 2
"""Generators kept for the next turn on the onnxruntime-genai path."""


@dataclass
class _Loaded:
    tokenizer: Any
    folder: ModelFolder
    config: dict[str, Any]
    template: str | None
    threads: int
    graph: Graph | None
    why_solo: str | None
    """Why every request takes the Generator path (None when the graph batches)."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    _genai: oga_native.Model | None = None

    def encode_chat(self, request: ChatRequest) -> list[int]:
        messages = [_message_json(m) for m in request.messages]
        if request.tools and request.tool_choice != "none":
            _offer_tools(messages, request)
        with self.lock:  # the tokenizer is shared by all requests
            prompt = self.tokenizer.apply_chat_template(
                json.dumps(messages), template_str=self.template, add_generation_prompt=True
            )
            return [int(t) for t in self.tokenizer.encode(prompt)]

    def genai(self) -> oga_native.Model:
        """onnxruntime-genai's own model, loaded on first use (guided or unbatchable requests)."""
        if self._genai is None:
            overlay = oga_native.session_options(self.threads)
            self._genai = oga_native.Model(self.folder.path, overlay=overlay)
        return self._genai


def _message_json(message: Message) -> dict[str, str]:
    content = message.content
    if message.tool_calls:  # replay earlier calls as the text the model would have written
        calls = [{"name": c.name, "arguments": c.arguments} for c in message.tool_calls]
        content = (content + "\n" if content else "") + "<tool_call>" + json.dumps(calls) + "</tool_call>"
    return {"role": message.role, "content": content}


def _offer_tools(messages: list[dict[str, str]], request: ChatRequest) -> None:
    """Describe the tools in the system message; Phi-4's template also reads the `tools` key."""
    text = tools_system_text(request.tools, request.tool_choice)
    if messages and messages[0]["role"] == "system":
        messages[0] = {**messages[0], "content": messages[0]["content"] + "\n\n" + text}
    else:
        messages.insert(0, {"role": "system", "content": text})
    messages[0]["tools"] = json.dumps([t.openai_schema()["function"] for t in request.tools])


def request_guidance(request: ChatRequest) -> tuple[str, str] | None:
    """Constrained decoding a request needs ((type, data) for the Generator), or None."""
    if not request.tools or request.tool_choice == "none":
        return None
    return tool_guidance(request.tools, request.tool_choice)


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class _Answer:
    """Token ids in, the request's events out: detokenizing, stop strings, tool calls, usage."""

    def __init__(self, job: OnnxJob, loaded: _Loaded) -> None:
        request = job.request
        self.job = job
        with loaded.lock:
            self.stream = loaded.tokenizer.create_stream()
        self.stops = StopMatcher(request.options.stop)
        offered = bool(request.tools) and request.tool_choice != "none"
        self.tools = ToolCallParser(request.tools, request.tool_choice) if offered else None
        self.eos = set(loaded.folder.eos_token_ids)
        self.model = loaded.folder.name
        self.produced = 0

    def feed(self, token: int) -> FinishReason | None:
        """Take one generated token; the finish reason once the answer is complete."""
        self.produced += 1
        if token in self.eos:
            return "stop"
        piece = self.stream.decode(token)
        if self.tools is not None:
            piece = self.tools.feed(piece)
        text = self.stops.feed(piece) if piece else ""
        if text:
            self.job.emit(TextDelta(text))
        if self.stops.stopped:
            return "stop"
        return "length" if self.produced >= self.job.budget else None

    def close(self, finish: FinishReason) -> None:
        if tail := self.stops.flush():
            self.job.emit(TextDelta(self.tools.feed(tail) if self.tools else tail))
        if self.tools is not None:
            if rest := self.tools.flush():
                self.job.emit(TextDelta(rest))
            for call in self.tools.calls():
                self.job.emit(ToolCallEvent(call))
            if self.tools.calls() and finish == "stop":
                finish = "tool_calls"
        job = self.job
        server = {
            "prefill_tokens": float(len(job.prompt) - job.reused),
            "reused_tokens": float(job.reused),
            "queue_s": job.queue_s,
            "mean_batch": job.mean_batch,
        }
        job.emit(
            Usage(
                prompt_tokens=len(job.prompt),
                completion_tokens=self.produced,
                finish_reason=finish,
                model=self.model,
                server=server,
            )
        )
        job.end()


class OnnxJob(Job):
    def __init__(self, request: ChatRequest, prompt: list[int], budget: int) -> None:
        super().__init__()
        self.request, self.prompt, self.budget = request, prompt, budget
        self.guidance = request_guidance(request)
        self.answer: _Answer | None = None
        self.reused = 0
        # batched path
        self.row: int | None = None
        self.feed: list[int] = []
        self.pending: int | None = None
        self.sampler = Sampler(request.options)
        # onnxruntime-genai path
        self.solo: _Solo | None = None

    def take(self, token: int) -> int:
        """Hand a sampled token to the answer; ends the job when it is complete."""
        assert self.answer is not None
        finish = self.answer.feed(token)
        if finish is not None:
            self.answer.close(finish)
        else:
            self.pending = token
        return 1


@dataclass
class _Solo:
    generator: oga_native.Generator
    key: tuple[Any, ...] | None
    """Sampling settings it was created with; None: never reuse (seeded or guided)."""
    tokens: list[int]
    max_length: int


class OnnxEngine:
    """The scheduler's engine: batched rows on the graph, Generators for the rest."""

    def __init__(self, loaded: _Loaded, max_batch: int) -> None:
        self.loaded = loaded
        self.max_batch = max_batch
        self.solo_pool: list[_Solo] = []

    # --- admission ---------------------------------------------------------------------

    def admit(self, job: Job) -> None:
        assert isinstance(job, OnnxJob)
        job.answer = _Answer(job, self.loaded)
        if self.loaded.graph is None or job.guidance is not None:
            self._admit_solo(job)
        else:
            self._admit_row(job, self.loaded.graph)

    def _admit_row(self, job: OnnxJob, graph: Graph) -> None:
        need = len(job.prompt) + job.budget + 1
        if need > graph.length:
            graph.grow(min(max(need, 2 * graph.length), self.loaded.folder.context_length + 1))
        limit = len(job.prompt) - 1  # at least one token is fed, for its logits
        free = [i for i, r in enumerate(graph.rows) if r.owner is None]
        shared = {i: min(_common_prefix(r.tokens, job.prompt), limit) for i, r in enumerate(graph.rows)}
        # a parked row with the longest shared prefix; else the one unused longest
        row = max(free, key=lambda i: (shared[i], -graph.rows[i].used_at))
        donor = max(range(len(graph.rows)), key=lambda i: shared[i])
        if shared[donor] > shared[row] + 8:  # e.g. the same system prompt, still running elsewhere
            graph.copy_prefix(donor, row, shared[donor])
        reused = shared[row] if shared[donor] <= shared[row] + 8 else shared[donor]
        del graph.rows[row].tokens[reused:]
        graph.rows[row].owner = job
        job.row, job.reused, job.feed = row, reused, job.prompt[reused:]

    def _admit_solo(self, job: OnnxJob) -> None:
        model = self.loaded.genai()
        options = job.request.options
        reusable = job.guidance is None and (options.seed is None or options.greedy)
        key = _sampling_key(options) if reusable else None
        need = len(job.prompt) + job.budget
        best, reused = None, 0
        if key is not None:
            for session in self.solo_pool:
                if session.key == key and session.max_length >= need:
                    shared = min(_common_prefix(session.tokens, job.prompt), len(job.prompt) - 1)
                    if shared > reused:
                        best, reused = session, shared
        if best is not None:
            self.solo_pool.remove(best)
            best.generator.rewind_to(reused)
            best.generator.append_tokens(job.prompt[reused:])
            job.solo, job.reused = best, reused
            return
        context = self.loaded.folder.context_length
        max_length = min(context, max(need, KV_WINDOW) if reusable else need)
        params = oga_native.GeneratorParams(model)
        params.set_search_options(**_search_options(options, max_length))
        if job.guidance is not None:
            params.set_guidance(*job.guidance)
        generator = oga_native.Generator(model, params)
        generator.append_tokens(job.prompt)
        job.solo = _Solo(generator, key, list(job.prompt), max_length)

    def release(self, job: Job) -> None:
        assert isinstance(job, OnnxJob)
        if job.row is not None and self.loaded.graph is not None:
            row = self.loaded.graph.rows[job.row]
            if row.owner is job:
                row.owner = None  # parked: its tokens stay for a later prompt that shares them
            job.row = None
        if job.solo is not None:
            solo, job.solo = job.solo, None
            if job.done and not job.cancelled.is_set() and solo.key is not None:
                solo.tokens = solo.generator.sequence()  # what the KV cache really holds
                self.solo_pool.insert(0, solo)
                del self.solo_pool[SOLO_POOL:]

    # --- one step ----------------------------------------------------------------------

    def step(self, jobs: list[Job]) -> int:
        produced = 0
        live = [j for j in jobs if isinstance(j, OnnxJob) and not j.done and not j.cancelled.is_set()]
        for job in live:
            if job.solo is not None:
                produced += self._solo_step(job)
        graph = self.loaded.graph
        rows = [j for j in live if j.row is not None]
        if graph is None or not rows:
            return produced
        started = time.perf_counter()
        for job in [j for j in rows if j.feed]:  # oldest first
            produced += self._prefill(graph, job)
            while job.feed and time.perf_counter() - started < PREFILL_BUDGET_S:
                produced += self._prefill(graph, job)
            if time.perf_counter() - started >= PREFILL_BUDGET_S:
                break
        decoding = [j for j in rows if not j.feed and not j.done and j.pending is not None]
        if decoding:
            produced += self._decode(graph, decoding)
        return produced

    def _prefill(self, graph: Graph, job: OnnxJob) -> int:
        import numpy as np

        assert job.row is not None
        chunk, job.feed = job.feed[:PREFILL_CHUNK], job.feed[PREFILL_CHUNK:]
        logits = graph.run(job.row, np.array([chunk]))
        if job.feed:
            return 0
        return job.take(job.sampler.pick(logits[0, -1]))

    def _decode(self, graph: Graph, jobs: list[OnnxJob]) -> int:
        import numpy as np

        d = len(jobs)
        holes = iter(sorted(set(range(d)) - {j.row for j in jobs}))
        for job in jobs:  # decoding rows must be rows 0..d-1
            assert job.row is not None
            if job.row >= d:
                graph.swap(job.row, next(holes))
        jobs.sort(key=lambda j: j.row)  # type: ignore[arg-type, return-value]
        logits = graph.run(0, np.array([[j.pending] for j in jobs]))
        for i, job in enumerate(jobs):
            job.batch_steps += 1
            job.batch_rows += d
            job.take(job.sampler.pick(logits[i, 0]))
        return d

    def _solo_step(self, job: OnnxJob) -> int:
        assert job.solo is not None
        generator = job.solo.generator
        if generator.is_done():
            assert job.answer is not None
            job.answer.close("length")
            return 0
        generator.generate_next_token()
        job.batch_steps += 1
        job.batch_rows += 1
        return job.take(generator.next_token())


class OnnxBackend(Backend):
    kind = "onnx"
    supports_tools = True

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
        self._loaded: _Loaded | None = None
        self._load_task: asyncio.Future[_Loaded] | None = None
        self.scheduler: Scheduler | None = None

    # --- loading -----------------------------------------------------------------------

    def _load_blocking(self) -> _Loaded:
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
        loaded = _Loaded(tokenizer, folder, config, template, self.threads, graph, why_solo)
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

    async def _ensure_loaded(self) -> _Loaded:
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
        async with contextlib.aclosing(self.scheduler.stream(OnnxJob(request, prompt, budget))) as events:
            async for event in events:
                yield event


def _sampling_key(options: SamplingOptions) -> tuple[Any, ...]:
    if options.greedy:
        return ("greedy",)
    return ("sample", options.temperature, options.top_p, options.top_k)


def _search_options(options: SamplingOptions, max_length: int) -> dict[str, Any]:
    search: dict[str, Any] = {"max_length": max_length, "do_sample": not options.greedy}
    if not options.greedy:
        search.update(temperature=options.temperature, top_p=options.top_p)
        search["top_k"] = options.top_k or 0
        if options.seed is not None:
            search["random_seed"] = options.seed
    return search
