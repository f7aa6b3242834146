"""In-process backend on llama.cpp (llama-cpp-python, the ``llamacpp`` extra), loading a GGUF.

The same contract as the ONNX engine, so the two compare on one model: the prompt is rendered
with the chat template stored in the GGUF, tools are offered and parsed as the ONNX engine
does (``engines.onnx_tools``), a forced tool call or JSON output decodes under a llama.cpp
grammar built from the same JSON schema, and stop strings go through ``engines.stops``.

Threading: a ``Llama`` holds one context, which serves one sequence at a time and is not
thread safe, so the engine runs on the shared scheduler (engines/scheduler.py) with one row:
requests wait in its queue (fair per client, place in line known) and the scheduler thread
advances the running one a token per step. llama.cpp is called through ctypes, which
releases the GIL during each decoding step.

KV-cache reuse and repeatability: llama.cpp's logits for a token depend on the batch it was
evaluated in (alone, or in a batch of 7 or of 64 go through different kernels, which round
differently, more so on CPUs without AVX-512 VNNI). Reusing the cache wherever the prefix matched
made the same request give two answers, greedy or seeded. So prompts are evaluated in chunks of
:data:`PREFILL_CHUNK` tokens aligned to position 0, and the cache is reused only for whole chunks
of the previous prompt's prefill: a prompt then meets the same batches whatever was cached, and
the same request gives the same tokens. Turn N of a chat still prefills only from the last chunk
boundary before its new text.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from backends.base import ChatRequest, FinishReason, ModelInfo
from backends.errors import (
    BackendError,
    BackendResponseError,
    BackendUnavailable,
    ContextOverflow,
    InvalidRequest,
)
from engines.chat_prompt import common_prefix, template_messages
from engines.in_process import AnswerText, InProcessBackend
from engines.onnx_tools import request_guidance
from engines.scheduler import Engine, Job

PREFILL_CHUNK = 64
"""Prompt tokens evaluated per llama.cpp batch, and the granularity of KV-cache reuse."""
DEFAULT_CONTEXT = 4096
"""Tokens of context (and KV cache) allocated, capped at what the model was trained on."""
INSTALL_HINT = "install the extra: pip install 'slm-playground[llamacpp]'"


def available_cores() -> int:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass
class _Loaded:
    llm: Any
    """llama_cpp.Llama"""
    template: Any
    """llama_cpp's Jinja2ChatFormatter for the GGUF's chat template, or None (no template)."""
    eog: frozenset[int]
    """End-of-generation tokens (EOS, end of turn, ...)."""
    bos: str

    def encode(self, request: ChatRequest, name: str) -> list[int]:
        if request.completion:  # /v1/completions: the raw prompt, no chat template
            return list(self.llm.tokenize(request.messages[-1].content.encode("utf-8"), add_bos=True))
        if self.template is None:
            raise InvalidRequest(
                name, "this GGUF has no chat template", hint="use plain completion, or another GGUF"
            )
        messages = template_messages(request)
        prompt = self.template(messages=messages).prompt
        # A template that writes BOS itself must not get a second one from the tokenizer.
        add_bos = not (self.bos and prompt.startswith(self.bos))
        return list(self.llm.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True))


class LlamaJob(Job):
    """One request: its prompt, token budget and llama.cpp's token generator once admitted."""

    def __init__(self, request: ChatRequest) -> None:
        super().__init__()
        self.request = request
        self.prompt: list[int] = []
        self.budget = 0
        self.reused = 0
        self.produced = 0
        self.tokens: Iterator[int] | None = None
        self.text: AnswerText | None = None
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character may span tokens


class LlamaEngine:
    """The scheduler's engine for one ``Llama``: one row, a token per step."""

    def __init__(self, loaded: _Loaded, name: str, model: str) -> None:
        self.loaded, self.name, self.model = loaded, name, model
        self.prefilled: list[int] = []
        """The last prompt whose prefill finished (the scheduler thread's, like the context)."""

    def admit(self, job: Job) -> None:
        assert isinstance(job, LlamaJob)
        import llama_cpp

        llm, request = self.loaded.llm, job.request
        try:
            job.prompt = self.loaded.encode(request, self.name)
        except BackendError:
            raise
        except Exception as exc:  # the GGUF's template refusing these messages (raise_exception)
            raise InvalidRequest(self.name, f"the model's chat template refused the messages: {exc}") from exc
        context = llm.n_ctx()
        if len(job.prompt) >= context:
            raise ContextOverflow(self.name, prompt_tokens=len(job.prompt), context_length=context)
        options = request.options
        job.budget = min(options.max_new_tokens, context - len(job.prompt))
        grammar = self._grammar(request)
        job.text = AnswerText(job, request)
        job.reused = reusable_prefix(self.prefilled, job.prompt)
        self.prefilled = []  # until this prompt's prefill finishes
        llm.n_tokens = job.reused  # generate(reset=False) evaluates from here, dropping the cache after it
        llm.set_seed(options.seed if options.seed is not None else llama_cpp.LLAMA_DEFAULT_SEED)
        job.tokens = llm.generate(
            job.prompt[job.reused :],
            reset=False,
            temp=options.temperature,
            top_p=options.top_p,
            top_k=options.top_k,  # 0: off, as in SamplingOptions
            min_p=0.0,
            typical_p=1.0,
            repeat_penalty=1.0,
            grammar=grammar,
        )

    def _grammar(self, request: ChatRequest) -> Any:
        guidance = request_guidance(request)  # a forced tool call, else JSON output; None: free text
        if guidance is None:
            return None
        from llama_cpp import LlamaGrammar

        try:
            return LlamaGrammar.from_json_schema(guidance[1], verbose=False)
        except Exception as exc:  # the schema converter refuses what it cannot express
            raise InvalidRequest(
                self.name, f"cannot decode under this schema: {exc}", hint="check the JSON schema"
            ) from None

    def step(self, jobs: list[Job]) -> int:
        produced = 0
        for job in jobs:
            assert isinstance(job, LlamaJob)
            if not job.done and not job.cancelled.is_set():
                produced += self._next_token(job)
        return produced

    def _next_token(self, job: LlamaJob) -> int:
        assert job.tokens is not None and job.text is not None
        try:
            token = next(job.tokens)
        except StopIteration:
            self._finish(job, "length")
            return 0
        except Exception as exc:
            raise BackendResponseError(self.name, f"generation failed: {exc}") from exc
        self.prefilled = job.prompt
        job.produced += 1
        if token in self.loaded.eog:
            self._finish(job, "stop")
            return 1
        job.text.feed(job.decoder.decode(self.loaded.llm.detokenize([token])))
        if job.text.stopped:
            self._finish(job, "stop")
        elif job.produced >= job.budget:
            self._finish(job, "length")
        return 1

    def _finish(self, job: LlamaJob, finish: FinishReason) -> None:
        assert job.text is not None
        if not job.text.stopped and (last := job.decoder.decode(b"", final=True)):  # an unfinished character
            job.text.feed(last)
        job.text.finish(
            finish,
            prompt_tokens=len(job.prompt),
            completion_tokens=job.produced,
            model=self.model,
            reused_tokens=job.reused,
        )

    def release(self, job: Job) -> None:
        assert isinstance(job, LlamaJob)
        if job.tokens is not None:
            tokens, job.tokens = job.tokens, None
            tokens.close()  # type: ignore[attr-defined]


class LlamaCppBackend(InProcessBackend):
    kind = "llamacpp"
    supports_tools = True
    supports_completion = True

    def __init__(
        self, name: str, model_path: Path, *, threads: int = 0, context_length: int = 0, max_queue: int = 64
    ) -> None:
        """``threads``: llama.cpp CPU threads, 0 = every core this process may use (llama-cpp-python
        would take half); ``context_length``: 0 = :data:`DEFAULT_CONTEXT`, capped at the model's."""
        super().__init__(name, max_queue=max_queue)
        self.model_path = Path(model_path)
        self.threads = threads or available_cores()
        self.context_length = context_length or DEFAULT_CONTEXT

    # --- loading -----------------------------------------------------------------------

    def check_source(self) -> None:
        if not self.model_path.is_file():
            raise BackendUnavailable(
                self.name, f"{self.model_path} is not a file", hint="give the path of a .gguf model file"
            )

    def capacity(self) -> int:
        return 1  # one llama.cpp context, one sequence at a time

    def ready_note(self) -> str:
        return f"{self.model_path.name} loaded in-process (llama.cpp)"

    def load_blocking(self) -> _Loaded:
        self.check_source()
        try:
            import llama_cpp
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as exc:
            raise BackendUnavailable(
                self.name, f"llama-cpp-python is not installed ({exc})", hint=INSTALL_HINT
            ) from None
        try:
            llm = self._open(llama_cpp, self.context_length)
            arch = llm.metadata.get("general.architecture", "")
            trained = int(llm.metadata.get(f"{arch}.context_length", 0) or 0)
            if 0 < trained < llm.n_ctx():  # a window past its training only degrades the answers
                llm.close()
                llm = self._open(llama_cpp, trained)
        except Exception as exc:  # llama.cpp says only "failed to load model"
            raise BackendUnavailable(
                self.name,
                f"could not load {self.model_path.name}: {exc}",
                hint="is it a GGUF model file?",
            ) from exc
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        eog = frozenset(t for t in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t))
        bos_id, eos_id = llm.token_bos(), llm.token_eos()

        def text(token: int) -> str:
            return llm.detokenize([token], special=True).decode("utf-8", "replace") if token >= 0 else ""

        bos, eos = text(bos_id), text(eos_id)
        source = llm.metadata.get("tokenizer.chat_template")
        template = Jinja2ChatFormatter(source, eos_token=eos, bos_token=bos) if source else None
        return _Loaded(llm, template, eog, bos)

    def _open(self, llama_cpp: Any, n_ctx: int) -> Any:
        return llama_cpp.Llama(
            str(self.model_path),
            n_ctx=n_ctx,
            n_threads=self.threads,
            n_threads_batch=self.threads,
            n_batch=PREFILL_CHUNK,
            n_ubatch=PREFILL_CHUNK,
            verbose=False,
        )

    def engine_for(self, loaded: _Loaded) -> tuple[Engine, int]:
        return LlamaEngine(loaded, self.name, self.default_model()), 1

    def unload(self, loaded: _Loaded) -> None:
        loaded.llm.close()

    def default_model(self) -> str:
        return self.model_path.stem

    async def list_models(self) -> list[ModelInfo]:
        self.check_source()
        details = {"format": "gguf", "runtime": "llama.cpp", "runtime_version": llama_cpp_version()}
        context = None
        if self._loaded is not None:
            meta = self._loaded.llm.metadata
            details.update({k: str(meta[m]) for k, m in (("type", "general.architecture"),) if m in meta})
            if "general.file_type" in meta:
                details["file_type"] = str(meta["general.file_type"])
            context = self._loaded.llm.n_ctx()
        return [ModelInfo(self.default_model(), context_length=context, details=details)]

    # --- generation --------------------------------------------------------------------

    async def job_for(self, request: ChatRequest, loaded: _Loaded) -> LlamaJob:
        return LlamaJob(request)  # encoded when admitted, on the thread that owns the context


def reusable_prefix(prefilled: list[int], prompt: list[int], chunk: int = PREFILL_CHUNK) -> int:
    """How many leading tokens of ``prompt`` may come from the cache: whole chunks shared with
    the last prefilled prompt (never the whole prompt: its last token must be evaluated for logits)."""
    shared = min(common_prefix(prefilled, prompt), len(prompt) - 1)
    return shared // chunk * chunk


def llama_cpp_version() -> str:
    try:
        return version("llama-cpp-python")
    except PackageNotFoundError:
        return "not installed"
