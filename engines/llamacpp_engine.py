"""In-process backend on llama.cpp (llama-cpp-python, the ``llamacpp`` extra), loading a GGUF.

The same contract as the ONNX engine, so the two compare on one model: the prompt is rendered
with the chat template stored in the GGUF, tools are offered and parsed as the ONNX engine
does (``engines.onnx_tools``), a forced tool call or JSON output decodes under a llama.cpp
grammar built from the same JSON schema, and stop strings go through ``engines.stops``.

Threading: a ``Llama`` holds one context, which serves one sequence at a time and is not
thread safe, so a single worker thread loads the model and runs every request's token loop
(``engines.threaded`` bridges it to the event loop; requests queue behind each other).
llama.cpp is called through ctypes, which releases the GIL during each decoding step.

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

import asyncio
import codecs
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from backends.base import (
    Backend,
    ChatRequest,
    FinishReason,
    Health,
    ModelInfo,
    StreamEvent,
    TextDelta,
    ToolCallEvent,
    Usage,
)
from backends.errors import (
    BackendError,
    BackendResponseError,
    BackendUnavailable,
    ContextOverflow,
    InvalidRequest,
)
from engines.chat_prompt import common_prefix, template_messages
from engines.onnx_tools import ToolCallParser, request_guidance
from engines.stops import StopMatcher
from engines.threaded import Emit, stream_from_thread

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


class LlamaCppBackend(Backend):
    kind = "llamacpp"
    supports_tools = True
    supports_completion = True

    def __init__(self, name: str, model_path: Path, *, threads: int = 0, context_length: int = 0) -> None:
        """``threads``: llama.cpp CPU threads, 0 = every core this process may use (llama-cpp-python
        would take half); ``context_length``: 0 = :data:`DEFAULT_CONTEXT`, capped at the model's."""
        super().__init__(name)
        self.model_path = Path(model_path)
        self.threads = threads or available_cores()
        self.context_length = context_length or DEFAULT_CONTEXT
        self._loaded: _Loaded | None = None
        self._prefilled: list[int] = []
        """The last prompt whose prefill finished (the worker thread's, like the context)."""
        self._load_lock = threading.Lock()
        self._load_task: asyncio.Future[_Loaded] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llamacpp-gen")

    # --- loading -----------------------------------------------------------------------

    def _check_file(self) -> None:
        if not self.model_path.is_file():
            raise BackendUnavailable(
                self.name, f"{self.model_path} is not a file", hint="give the path of a .gguf model file"
            )

    def _load_blocking(self) -> _Loaded:
        with self._load_lock:
            if self._loaded is not None:
                return self._loaded
            self._check_file()
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
            self._loaded = _Loaded(llm, template, eog, bos)
            return self._loaded

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

    async def _ensure_loaded(self) -> _Loaded:
        if self._loaded is not None:
            return self._loaded
        if self._load_task is None:
            self._load_task = asyncio.get_running_loop().run_in_executor(self._executor, self._load_blocking)
        try:
            return await asyncio.shield(self._load_task)
        except BackendError:
            self._load_task = None  # a later request tries again (the file may appear)
            raise

    def default_model(self) -> str:
        return self.model_path.stem

    async def warm_up(self) -> float:
        # Stand-in until the shared engine base implements warm_up for every in-process kind.
        if self._loaded is not None:
            return 0.0
        start = time.perf_counter()
        await self._ensure_loaded()
        return time.perf_counter() - start

    async def health(self) -> Health:
        if self._loaded is not None:
            return Health("ready", f"{self.model_path.name} loaded in-process (llama.cpp)")
        if self._load_task is None:
            try:
                self._check_file()
            except BackendError as exc:
                return Health("unreachable", exc.message)
            self._load_task = asyncio.get_running_loop().run_in_executor(self._executor, self._load_blocking)
        if self._load_task.done():
            try:
                self._load_task.result()
            except BackendError as exc:
                self._load_task = None
                return Health("unreachable", exc.message)
            return Health("ready", f"{self.model_path.name} loaded in-process (llama.cpp)")
        return Health("loading", f"loading {self.model_path.name}")

    async def list_models(self) -> list[ModelInfo]:
        self._check_file()
        details = {"format": "gguf", "runtime": "llama.cpp", "runtime_version": _llama_cpp_version()}
        context = None
        if self._loaded is not None:
            meta = self._loaded.llm.metadata
            details.update({k: str(meta[m]) for k, m in (("type", "general.architecture"),) if m in meta})
            if "general.file_type" in meta:
                details["file_type"] = str(meta["general.file_type"])
            context = self._loaded.llm.n_ctx()
        return [ModelInfo(self.default_model(), context_length=context, details=details)]

    async def aclose(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._loaded is not None:
            self._loaded.llm.close()
            self._loaded = None

    # --- generation --------------------------------------------------------------------

    async def _stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        loaded = await self._ensure_loaded()

        def produce(emit: Emit[StreamEvent], cancel: threading.Event) -> None:
            self._generate(loaded, request, emit, cancel)

        async for event in stream_from_thread(self._executor, produce):
            yield event

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

    def _generate(
        self, loaded: _Loaded, request: ChatRequest, emit: Emit[StreamEvent], cancel: threading.Event
    ) -> None:
        """The token loop; runs in the worker thread, which owns the context throughout."""
        import llama_cpp

        llm, options = loaded.llm, request.options
        try:
            prompt = loaded.encode(request, self.name)
        except BackendError:
            raise
        except Exception as exc:  # the GGUF's template refusing these messages (raise_exception)
            raise InvalidRequest(self.name, f"the model's chat template refused the messages: {exc}") from exc
        context = llm.n_ctx()
        if len(prompt) >= context:
            raise ContextOverflow(self.name, prompt_tokens=len(prompt), context_length=context)
        budget = min(options.max_new_tokens, context - len(prompt))
        grammar = self._grammar(request)
        offered = bool(request.tools) and request.tool_choice != "none"
        tools = ToolCallParser(request.tools, request.tool_choice) if offered else None
        stops = StopMatcher(options.stop)
        reused = reusable_prefix(self._prefilled, prompt)
        self._prefilled = []  # until this prompt's prefill finishes
        llm.n_tokens = reused  # generate(reset=False) evaluates from here, dropping the cache after it
        llm.set_seed(options.seed if options.seed is not None else llama_cpp.LLAMA_DEFAULT_SEED)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character may span tokens
        produced = 0
        tokens = llm.generate(
            prompt[reused:],
            reset=False,
            temp=options.temperature,
            top_p=options.top_p,
            top_k=options.top_k,  # 0: off, as in SamplingOptions
            min_p=0.0,
            typical_p=1.0,
            repeat_penalty=1.0,
            grammar=grammar,
        )
        finish_reason: FinishReason = "length"
        try:
            for token in tokens:
                self._prefilled = prompt
                if cancel.is_set():
                    finish_reason = "cancelled"
                    break
                produced += 1
                if token in loaded.eog:
                    finish_reason = "stop"
                    break
                piece = decoder.decode(llm.detokenize([token]))
                if tools is not None and piece:
                    piece = tools.feed(piece)
                if text := stops.feed(piece) if piece else "":
                    emit(TextDelta(text))
                if stops.stopped:
                    finish_reason = "stop"
                    break
                if produced >= budget:
                    break
        except Exception as exc:
            raise BackendResponseError(self.name, f"generation failed: {exc}") from exc
        finally:
            tokens.close()
        last = "" if stops.stopped else decoder.decode(b"", final=True)  # an unfinished character
        if last and (text := stops.feed(tools.feed(last) if tools else last)):
            emit(TextDelta(text))
        if tail := stops.flush():  # held back as a possible stop string; it was not one
            emit(TextDelta(tail))
        if tools is not None:
            if rest := tools.flush():
                emit(TextDelta(rest))
            for call in tools.calls():
                emit(ToolCallEvent(call))
            if tools.calls() and finish_reason == "stop":
                finish_reason = "tool_calls"
        emit(
            Usage(
                prompt_tokens=len(prompt),
                completion_tokens=produced,
                finish_reason=finish_reason,
                model=self.default_model(),
                server={"prefill_tokens": float(len(prompt) - reused), "reused_tokens": float(reused)},
            )
        )


def reusable_prefix(prefilled: list[int], prompt: list[int], chunk: int = PREFILL_CHUNK) -> int:
    """How many leading tokens of ``prompt`` may come from the cache: whole chunks shared with
    the last prefilled prompt (never the whole prompt: its last token must be evaluated for logits)."""
    shared = min(common_prefix(prefilled, prompt), len(prompt) - 1)
    return shared // chunk * chunk


def _llama_cpp_version() -> str:
    try:
        return version("llama-cpp-python")
    except PackageNotFoundError:
        return "not installed"
