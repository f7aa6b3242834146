"""In-process backend on ONNX Runtime GenAI.

Threading model: onnxruntime-genai's C API is not thread safe per generator, so each request's
token loop runs in one worker thread that owns its Generator for the whole request and hands
tokens to the event loop through an asyncio queue. Stopping (closing the async iterator)
sets an event the loop checks before every step, and ``_stream`` waits for the worker to
return, so no computation outlives the request.

The GIL: decoding goes through ``oga_native`` (the library's C API via ctypes), which
releases the GIL during each step; the Python binding holds it, which stalled the web server's
event loop for whole answers. The tokenizer stays on the binding.

KV-cache reuse: after a request, its Generator (holding prompt + answer in its KV cache) goes
back to a small pool. The next request whose prompt shares a prefix with it (the next turn
of the same chat) rewinds to the shared prefix and prefills only the new tokens, so the time
to first token of turn N does not grow with the history. Sampling settings are fixed when a
Generator is created, so a pooled one is only reused under the same settings.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
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
from backends.errors import (
    BackendError,
    BackendResponseError,
    BackendUnavailable,
    ContextOverflow,
    InvalidRequest,
)
from backends.logprobs import TokenTexts, token_logprob
from backends.model_store import ModelFolder, check_model_dir
from backends.onnx_tools import ToolCallParser, is_grammar_error, request_guidance, tools_system_text
from backends.stops import StopMatcher

KV_WINDOW = 4096
"""Tokens of KV cache a pooled Generator is created with (grown when a request needs more)."""
POOL_SIZE = 2


@dataclass
class _Loaded:
    model: oga_native.Model
    tokenizer: Any
    folder: ModelFolder
    template: str | None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def encode_chat(self, request: ChatRequest) -> list[int]:
        if request.completion:  # /v1/completions: the raw prompt, no chat template
            with self.lock:
                return [int(t) for t in self.tokenizer.encode(request.messages[-1].content)]
        messages = [_message_json(m) for m in request.messages]
        if request.tools and request.tool_choice != "none":
            _offer_tools(messages, request)
        with self.lock:  # the tokenizer is shared by all requests
            prompt = self.tokenizer.apply_chat_template(
                json.dumps(messages), template_str=self.template, add_generation_prompt=True
            )
            return [int(t) for t in self.tokenizer.encode(prompt)]


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


@dataclass
class _Session:
    generator: oga_native.Generator
    key: tuple[Any, ...] | None
    """Sampling settings it was created with; None: never reuse (seeded or guided)."""
    tokens: list[int]
    max_length: int


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class OnnxBackend(Backend):
    kind = "onnx"
    supports_tools = True
    supports_logprobs = True
    supports_completion = True

    def __init__(self, name: str, model_dir: Path, *, concurrency: int = 1, threads: int = 0) -> None:
        """``threads``: onnxruntime intra-op threads; 0 means every core this process may use."""
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.threads = threads or oga_native.available_cores()
        self._loaded: _Loaded | None = None
        self._load_error: BackendError | None = None
        self._load_task: asyncio.Future[_Loaded] | None = None
        self._slots = asyncio.Semaphore(concurrency)
        self._executor = ThreadPoolExecutor(max_workers=concurrency + 1, thread_name_prefix="onnx-gen")
        self._pool: list[_Session] = []
        self._pool_lock = threading.Lock()
        self.waiting = 0
        """Requests queued for a generation slot (shown to users as their place in line)."""

    # --- loading -----------------------------------------------------------------------

    def _load_blocking(self) -> _Loaded:
        import onnxruntime_genai as og

        folder = check_model_dir(self.model_dir)
        try:
            model = oga_native.Model(folder.path, overlay=oga_native.session_options(self.threads))
            tokenizer = og.Tokenizer(str(folder.path))
        except Exception as exc:
            raise BackendUnavailable(self.name, f"could not load {folder.path}: {exc}") from exc
        template_file = folder.path / "chat_template.jinja"
        template = template_file.read_text(encoding="utf-8") if template_file.is_file() else None
        return _Loaded(model, tokenizer, folder, template)

    async def _ensure_loaded(self) -> _Loaded:
        if self._loaded is not None:
            return self._loaded
        if self._load_task is None:
            loop = asyncio.get_running_loop()
            self._load_task = loop.run_in_executor(self._executor, self._load_blocking)
        try:
            self._loaded = await asyncio.shield(self._load_task)
        except BackendError as exc:
            self._load_error, self._load_task = exc, None
            raise
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
            self._load_task = asyncio.get_running_loop().run_in_executor(self._executor, self._load_blocking)
        if self._load_task.done():
            try:
                self._loaded = self._load_task.result()
                return Health("ready", f"{self.model_dir.name} loaded in-process")
            except BackendError as exc:
                self._load_task = None
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

    async def aclose(self) -> None:
        with self._pool_lock:
            self._pool.clear()
        self._executor.shutdown(wait=True, cancel_futures=True)

    # --- generation --------------------------------------------------------------------

    async def _stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        loaded = await self._ensure_loaded()
        prompt = await asyncio.to_thread(loaded.encode_chat, request)
        context = loaded.folder.context_length
        if len(prompt) >= context:
            raise ContextOverflow(self.name, prompt_tokens=len(prompt), context_length=context)
        budget = min(request.options.max_new_tokens, context - len(prompt))

        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[StreamEvent | BaseException | None] = asyncio.Queue()
        cancel = threading.Event()

        def emit(item: StreamEvent | BaseException | None) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        job = loop.run_in_executor(
            self._executor, self._generate, loaded, request, prompt, budget, cancel, emit
        )
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancel.set()
            try:
                await asyncio.shield(job)  # the worker stops within one decoding step
            finally:
                self._slots.release()

    def _session_for(
        self,
        loaded: _Loaded,
        request: ChatRequest,
        prompt: list[int],
        budget: int,
        guidance: tuple[str, str] | None,
    ) -> tuple[_Session, int]:
        """A Generator whose KV cache holds `prompt`, and how many prompt tokens it reused."""
        options = request.options
        reusable = guidance is None and (options.seed is None or options.greedy)
        key = _sampling_key(options) if reusable else None
        need = len(prompt) + budget
        best, reused = None, 0
        if key is not None:
            with self._pool_lock:
                for session in self._pool:
                    if session.key == key and session.max_length >= need:
                        shared = min(_common_prefix(session.tokens, prompt), len(prompt) - 1)
                        if shared > reused:
                            best, reused = session, shared
                if best is not None:
                    self._pool.remove(best)
        if best is not None:
            best.generator.rewind_to(reused)
            best.generator.append_tokens(prompt[reused:])
            best.tokens = list(prompt)
            return best, reused
        max_length = min(loaded.folder.context_length, max(need, KV_WINDOW) if reusable else need)
        params = oga_native.GeneratorParams(loaded.model)
        params.set_search_options(**_search_options(options, max_length))
        if guidance is not None:
            params.set_guidance(*guidance)
        generator = oga_native.Generator(loaded.model, params)
        generator.append_tokens(prompt)
        return _Session(generator, key, list(prompt), max_length), 0

    def _generate(
        self,
        loaded: _Loaded,
        request: ChatRequest,
        prompt: list[int],
        budget: int,
        cancel: threading.Event,
        emit: Callable[[StreamEvent | BaseException | None], None],
    ) -> None:
        """The token loop; runs in a worker thread and owns its Generator throughout."""
        session: _Session | None = None
        try:
            if cancel.is_set():
                return
            offered = bool(request.tools) and request.tool_choice != "none"
            guidance = request_guidance(request)  # a forced tool call, else JSON output
            session, reused = self._session_for(loaded, request, prompt, budget, guidance)
            generator = session.generator
            with loaded.lock:
                stream = loaded.tokenizer.create_stream()
            stops = StopMatcher(request.options.stop)
            tools = ToolCallParser(request.tools, request.tool_choice) if offered else None
            eos = set(loaded.folder.eos_token_ids)
            # logprobs: read the logits each step is about to sample from (a copy, no extra run)
            want_logprobs, texts, pending = request.logprobs, TokenTexts(loaded.tokenizer, loaded.lock), []
            produced = 0
            finish: FinishReason = "length"
            while not cancel.is_set():
                if produced >= budget or generator.is_done():
                    break
                logits = generator.logits()[0] if want_logprobs is not None else None
                generator.generate_next_token()
                token = generator.next_token()
                produced += 1
                if token in eos:
                    finish = "stop"
                    break
                if logits is not None:
                    pending.append(token_logprob(logits, token, want_logprobs or 0, texts))
                piece = stream.decode(token)
                if tools is not None:
                    piece = tools.feed(piece)
                text = stops.feed(piece) if piece else ""
                if text:
                    emit(TextDelta(text, logprobs=tuple(pending)))
                    pending.clear()
                if stops.stopped:
                    finish = "stop"
                    break
            else:
                finish = "cancelled"
            if tail := stops.flush():
                emit(TextDelta(tools.feed(tail) if tools else tail, logprobs=tuple(pending)))
            if tools is not None:
                if rest := tools.flush():
                    emit(TextDelta(rest))
                for call in tools.calls():
                    emit(ToolCallEvent(call))
                if tools.calls() and finish == "stop":
                    finish = "tool_calls"
            # What the KV cache really holds (an end-of-sequence token is not appended to it).
            session.tokens = generator.sequence()
            emit(
                Usage(
                    prompt_tokens=len(prompt),
                    completion_tokens=produced,
                    finish_reason=finish,
                    model=loaded.folder.name,
                    server={"prefill_tokens": float(len(prompt) - reused), "reused_tokens": float(reused)},
                )
            )
            emit(None)
        except BackendError as exc:
            session = None
            emit(exc)
        except oga_native.OgaError as exc:  # a schema the grammar builder refuses is a bad request
            session = None
            if is_grammar_error(exc):
                emit(InvalidRequest(self.name, str(exc), hint="check the JSON schema"))
            else:
                emit(BackendResponseError(self.name, f"generation failed: {exc}"))
        except Exception as exc:  # an onnxruntime failure must reach the user, not kill the thread
            session = None
            emit(BackendResponseError(self.name, f"generation failed: {exc}"))
        finally:
            if session is not None and session.key is not None:
                with self._pool_lock:  # keep the KV cache for the next turn of this chat
                    self._pool.insert(0, session)
                    del self._pool[POOL_SIZE:]


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
