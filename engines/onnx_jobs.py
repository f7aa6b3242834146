"""The in-process model's side of the scheduler: one request's state, and one step of work.

:class:`OnnxEngine` is what engines/scheduler.py drives on its thread. A request whose
graph batches gets a KV row (engines/onnx_batch.py): its prompt is fed in chunks, in one run
with the other prompts waiting to be fed, then it decodes one token per step beside every
other decoding row. A guided request (tool_choice "required" or a named function:
onnxruntime-genai's grammar is tied to its Generator), or any request on a graph that cannot
batch, gets a Generator instead and takes one token per step beside the batch. Either way
the tokens go through :class:`_Answer`: detokenizing, stop strings, tool-call parsing and
the final usage record.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from backends.base import ChatRequest, FinishReason, SamplingOptions
from engines import oga_native
from engines.chat_prompt import common_prefix, template_messages
from engines.in_process import AnswerText
from engines.logprobs import TokenTexts, token_logprob
from engines.onnx_batch import Graph
from engines.onnx_tools import SchemaError, is_grammar_error, request_guidance
from engines.sampling import Sampler
from engines.scheduler import Job
from models.model_store import ModelFolder

KV_WINDOW = 4096
"""Tokens of KV cache a row, or a reusable Generator, starts with (grown when one needs more)."""
PREFILL_CHUNK = 64
"""Prompt tokens fed to one row per graph run."""
PREFILL_RUN_TOKENS = 256
"""Prompt tokens one graph run feeds at most, over all its rows (its logits are rows x tokens x
vocabulary floats; a run's time grows with its tokens, so splitting costs next to nothing)."""
PREFILL_BUDGET_S = 0.15
"""Prefill chunks run back to back for up to this long before the running streams get their
next token: a burst of new requests reaches first tokens sooner, and no stream waits long."""
SOLO_POOL = 2
"""Generators kept for the next turn on the onnxruntime-genai path."""


@dataclass
class LoadedModel:
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
        if request.completion:  # /v1/completions: the raw prompt, no chat template
            with self.lock:
                return [int(t) for t in self.tokenizer.encode(request.messages[-1].content)]
        messages = template_messages(request, tools_key=True)
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


class _Answer:
    """Token ids in, the request's events out: detokenizing and logprobs here, the rest (stop
    strings, tool calls, usage) in :class:`~engines.in_process.AnswerText`."""

    def __init__(self, job: OnnxJob, loaded: LoadedModel) -> None:
        self.job = job
        with loaded.lock:
            self.stream = loaded.tokenizer.create_stream()
        self.text = AnswerText(job, job.request)
        self.eos = set(loaded.folder.eos_token_ids)
        self.model = loaded.folder.name
        self.produced = 0
        self.logprobs = job.request.logprobs
        """None: not asked; else how many alternatives each token's entry lists."""
        self.texts = TokenTexts(loaded.tokenizer, loaded.lock)
        self.pending: list[Any] = []
        """Logprobs of tokens whose text has not been emitted yet (held by stop strings)."""

    def feed(self, token: int, logits: Any = None) -> FinishReason | None:
        """Take one generated token (and the logits it was picked from, when logprobs are asked
        for); the finish reason once the answer is complete."""
        self.produced += 1
        if token in self.eos:
            return "stop"
        if self.logprobs is not None and logits is not None:
            self.pending.append(token_logprob(logits, token, self.logprobs, self.texts))
        if self.text.feed(self.stream.decode(token), tuple(self.pending)):
            self.pending.clear()
        if self.text.stopped:
            return "stop"
        return "length" if self.produced >= self.job.budget else None

    def close(self, finish: FinishReason) -> None:
        job = self.job
        self.text.finish(
            finish,
            prompt_tokens=len(job.prompt),
            completion_tokens=self.produced,
            model=self.model,
            reused_tokens=job.reused,
            logprobs=tuple(self.pending),
        )


class OnnxJob(Job):
    def __init__(self, request: ChatRequest, prompt: list[int], budget: int) -> None:
        super().__init__()
        self.request, self.prompt, self.budget = request, prompt, budget
        self.guidance = request_guidance(request)  # a forced tool call, else JSON output (SchemaError)
        self.answer: _Answer | None = None
        self.reused = 0
        # batched path
        self.row: int | None = None
        self.feed: list[int] = []
        self.pending: int | None = None
        self.sampler = Sampler(request.options)
        # onnxruntime-genai path
        self.solo: _Solo | None = None

    def take(self, token: int, logits: Any = None) -> int:
        """Hand a sampled token to the answer; ends the job when it is complete."""
        assert self.answer is not None
        finish = self.answer.feed(token, logits)
        if finish is not None:
            self.answer.close(finish)
        else:
            self.pending = token
        return 1


@dataclass
class GraphWork:
    """What the batched graph has run since the engine started, for /metrics: prompt runs and
    decoding steps apart. A prompt token costs about what an added decoding row does, so with
    many streams the prompts' share of the graph's time is a large part of where time goes."""

    prompt_s: float = 0.0
    prompt_tokens: int = 0
    decode_s: float = 0.0
    decode_steps: int = 0
    decode_rows: int = 0

    def counters(self) -> dict[str, float]:
        return {
            "graph_prompt_seconds": self.prompt_s,
            "graph_prompt_tokens": float(self.prompt_tokens),
            "graph_decode_seconds": self.decode_s,
            "graph_decode_steps": float(self.decode_steps),
            "graph_decode_rows": float(self.decode_rows),
        }


@dataclass
class _Solo:
    generator: oga_native.Generator
    key: tuple[Any, ...] | None
    """Sampling settings it was created with; None: never reuse (seeded or guided)."""
    tokens: list[int]
    max_length: int


class OnnxEngine:
    """The scheduler's engine: batched rows on the graph, Generators for the rest."""

    def __init__(self, loaded: LoadedModel, max_batch: int) -> None:
        self.loaded = loaded
        self.max_batch = max_batch
        self.solo_pool: list[_Solo] = []
        self.prefill_token_s = 0.0
        """Seconds the last prefill run took per token fed (sizes runs while streams wait)."""
        self.work = GraphWork()

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
        shared = {i: min(common_prefix(r.tokens, job.prompt), limit) for i, r in enumerate(graph.rows)}
        # a parked row with the longest shared prefix; else the one unused longest
        row = max(free, key=lambda i: (shared[i], -graph.rows[i].used_at))
        donor = max(range(len(graph.rows)), key=lambda i: shared[i])
        reused = shared[row]
        if shared[donor] > reused + 8:  # e.g. the same system prompt, in a row still running
            graph.copy_prefix(donor, row, shared[donor])
            reused = shared[donor]
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
                    shared = min(common_prefix(session.tokens, job.prompt), len(job.prompt) - 1)
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
        try:
            if job.guidance is not None:
                params.set_guidance(*job.guidance)
            generator = oga_native.Generator(model, params)
        except oga_native.OgaError as exc:  # a schema the grammar builder refuses is a bad request
            if is_grammar_error(exc):
                raise SchemaError("onnx", str(exc), hint="check the JSON schema") from None
            raise
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
        rows = [j for j in live if j.row is not None]  # oldest first
        if graph is None or not rows:
            return produced
        started = time.perf_counter()
        while True:
            # a prompt's last token is fed in the decoding run below, not in a run of its own
            feeding = [j for j in rows if len(j.feed) > 1]
            if not feeding:
                break
            decoding = [j for j in rows if not j.feed and not j.done]
            room = PREFILL_RUN_TOKENS
            if decoding and self.prefill_token_s:  # streams wait: fit the run in the time left
                left = PREFILL_BUDGET_S - (time.perf_counter() - started)
                room = min(room, max(PREFILL_CHUNK, int(left / self.prefill_token_s)))
            produced += self._prefill(graph, decoding, *_prefill_group(feeding, room))
            if time.perf_counter() - started >= PREFILL_BUDGET_S:
                break
        stepping = [j for j in rows if not j.done and (len(j.feed) == 1 or j.pending is not None)]
        if stepping:
            produced += self._decode(graph, stepping)
        return produced

    def _prefill(self, graph: Graph, decoding: list[OnnxJob], jobs: list[OnnxJob], size: int) -> int:
        """Feed the next ``size`` prompt tokens of each of ``jobs`` in one graph run.

        Several jobs' rows go right after the decoding rows, shortest feed first: the jobs whose
        feed ends in this run come first, so they are the next decoding rows, and the rest stay
        contiguous for the next run, with no more swaps."""
        import numpy as np

        if len(jobs) == 1:  # one row runs where it is (moving rows copies their KV cache)
            assert jobs[0].row is not None
            first = jobs[0].row
        else:
            _to_front(graph, decoding)
            jobs = sorted(jobs, key=lambda j: len(j.feed))  # stable: oldest first among equals
            first = len(decoding)
            for i, job in enumerate(jobs):
                assert job.row is not None
                graph.swap(job.row, first + i)
        chunks = np.array([j.feed[:size] for j in jobs])
        logits = graph.run(first, chunks)
        self.prefill_token_s = graph.last_run_s / chunks.size
        self.work.prompt_s += graph.last_run_s
        self.work.prompt_tokens += int(chunks.size)
        produced = 0
        for i, job in enumerate(jobs):
            del job.feed[:size]
            if not job.feed:  # only the last position's logits: the graph may compute no others
                produced += job.take(job.sampler.pick(logits[i, -1]), logits[i, -1])
        return produced

    def _decode(self, graph: Graph, jobs: list[OnnxJob]) -> int:
        """One token into each of ``jobs``' rows in one run: the token it sampled last, or
        its prompt's last one; each samples its next token from the run's logits."""
        import numpy as np

        d = len(jobs)
        _to_front(graph, jobs)
        jobs.sort(key=lambda j: j.row)  # type: ignore[arg-type, return-value]
        fed = [[j.feed[0] if j.feed else j.pending] for j in jobs]
        for job in jobs:
            job.feed = []
        logits = graph.run(0, np.array(fed))
        self.work.decode_s += graph.last_run_s
        self.work.decode_steps += 1
        self.work.decode_rows += d
        for i, job in enumerate(jobs):
            job.batch_steps += 1
            job.batch_rows += d
            job.take(job.sampler.pick(logits[i, 0]), logits[i, 0])
        return d

    def _solo_step(self, job: OnnxJob) -> int:
        assert job.solo is not None
        generator = job.solo.generator
        if generator.is_done():
            assert job.answer is not None
            job.answer.close("length")
            return 0
        # logprobs: the logits this step samples from (a copy, no extra run)
        logits = generator.logits()[0] if job.request.logprobs is not None else None
        generator.generate_next_token()
        job.batch_steps += 1
        job.batch_rows += 1
        return job.take(generator.next_token(), logits)


def _to_front(graph: Graph, jobs: list[OnnxJob]) -> None:
    """Move the jobs' rows to rows 0..len(jobs)-1, in any order (the fewest swaps)."""
    d = len(jobs)
    holes = iter(sorted(set(range(d)) - {j.row for j in jobs}))
    for job in jobs:
        assert job.row is not None
        if job.row >= d:
            graph.swap(job.row, next(holes))


def _prefill_group(feeding: list[OnnxJob], room: int) -> tuple[list[OnnxJob], int]:
    """The jobs of the next prefill run and how many tokens each is fed: the oldest, and the
    others whose next chunk is as long as its, as many as fit in ``room`` tokens (at least the
    oldest, at least one token). Same-length chunks: no padding, a job whose feed ends there
    takes the run's last logits, and none waits for another's longer prompt (measured: sharing
    runs of the shortest's length cost 8 prompts arriving together ~25% mean time to first
    token and gained no throughput; a run's fixed cost is small beside its tokens' here)."""
    size = min(PREFILL_CHUNK, len(feeding[0].feed))
    same = [j for j in feeding if min(PREFILL_CHUNK, len(j.feed)) == size]
    count = max(1, min(len(same), room // size))
    return same[:count], max(1, min(size, room // count))


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
