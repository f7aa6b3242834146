"""The legacy /v1/completions wire format: plain-text prompts, no chat template, no I/O.

A prompt (or each of a list of prompts) becomes one contract ChatRequest with
``completion=True``; each gives one choice, in prompt order, with its ``index``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

from pydantic import Field, ValidationError

from backends.base import ChatRequest, Message, SamplingOptions, TokenLogprob
from serve.errors import RequestProblem
from serve.params import VLLM_DEFAULTS, Strict, load_body, problem_from_validation, refuse_unsupported
from serve.protocol import LOGPROB_FLOOR, RequestLimits, StreamOptions, openai_finish_reason

DEFAULT_MAX_TOKENS = 16
"""OpenAI's default for this endpoint (the chat endpoint's is the server's own)."""
MAX_PROMPTS = 16

COMPLETION_DEFAULTS: dict[str, tuple[Any, ...]] = {
    "n": (1,),
    "best_of": (1,),
    "frequency_penalty": (0,),
    "presence_penalty": (0,),
    "logit_bias": ({},),
    "suffix": ("",),
    **VLLM_DEFAULTS,
}


class CompletionRequest(Strict):
    model: str
    prompt: str | list[str] | list[int] | list[list[int]]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=-1, le=1000)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    stop: str | list[str] | None = None
    logprobs: int | None = Field(None, ge=0, le=5)
    echo: bool | None = None
    user: str | None = None

    def prompts(self) -> list[str]:
        prompts = [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)
        if not prompts:
            raise RequestProblem("prompt: give a prompt (a string or a list of strings)", param="prompt")
        if not all(isinstance(p, str) for p in prompts):
            raise RequestProblem("prompt: token-id prompts are not supported here; send text", param="prompt")
        if len(prompts) > MAX_PROMPTS:
            raise RequestProblem(f"prompt: at most {MAX_PROMPTS} prompts per request", param="prompt")
        if not all(prompts):
            raise RequestProblem("prompt: a prompt must not be empty", param="prompt")
        return prompts  # type: ignore[return-value]


def parse_completion_request(body: bytes, content_type: str | None = None) -> CompletionRequest:
    raw = refuse_unsupported(load_body(body, content_type), COMPLETION_DEFAULTS)
    try:
        request = CompletionRequest.model_validate(raw)
    except ValidationError as exc:
        raise problem_from_validation(exc) from None
    if request.stream_options is not None and not request.stream:
        raise RequestProblem("stream_options can only be set when stream is true", param="stream_options")
    if request.echo and request.logprobs is not None:
        raise RequestProblem(
            "echo with logprobs is not supported (prompt logprobs are not computed)", param="echo"
        )
    return request


def to_chat_requests(req: CompletionRequest, limits: RequestLimits) -> list[ChatRequest]:
    prompts = req.prompts()
    chars = sum(len(p) for p in prompts)
    if chars > limits.max_prompt_chars:
        raise RequestProblem(
            f"the prompts hold {chars} characters; this server accepts at most {limits.max_prompt_chars}",
            param="prompt",
            code="context_length_exceeded",
        )
    max_tokens = req.max_tokens or min(DEFAULT_MAX_TOKENS, limits.max_tokens_cap)
    if max_tokens > limits.max_tokens_cap:
        raise RequestProblem(
            f"max_tokens={max_tokens} cannot be greater than this server's cap of {limits.max_tokens_cap}",
            param="max_tokens",
        )
    values: dict[str, Any] = {
        "max_new_tokens": max_tokens,
        "stop": tuple([req.stop] if isinstance(req.stop, str) else req.stop or ()),
        "seed": req.seed,
    }
    for name in ("temperature", "top_p"):
        if getattr(req, name) is not None:
            values[name] = getattr(req, name)
    if req.top_k is not None:
        values["top_k"] = max(req.top_k, 0)
    try:
        options = SamplingOptions(**values)
    except ValidationError as exc:
        problem = problem_from_validation(exc)
        problem.param = {"max_new_tokens": "max_tokens"}.get(problem.param or "", problem.param)
        raise problem from None
    return [
        ChatRequest(
            messages=(Message(role="user", content=p),),
            options=options,
            completion=True,
            logprobs=req.logprobs,
        )
        for p in prompts
    ]


# --- response shapes ----------------------------------------------------------------------------


def new_id() -> str:
    return f"cmpl-{uuid.uuid4().hex}"


def completion_logprobs(entries: Sequence[TokenLogprob], offset: int = 0) -> dict[str, Any]:
    """The legacy shape: parallel lists, alternatives as {token: logprob} maps."""
    offsets, at = [], offset
    for e in entries:
        offsets.append(at)
        at += len(e.token)
    return {
        "tokens": [e.token for e in entries],
        "token_logprobs": [max(e.logprob, LOGPROB_FLOOR) for e in entries],
        "top_logprobs": [{t: max(lp, LOGPROB_FLOOR) for t, lp in e.top} for e in entries],
        "text_offset": offsets,
    }


def choice_json(index: int, text: str, finish: str | None, logprobs: dict | None = None) -> dict[str, Any]:
    return {
        "index": index,
        "text": text,
        "logprobs": logprobs,
        "finish_reason": None if finish is None else openai_finish_reason(finish),
    }


def completion_body(
    completion_id: str, model: str, choices: list[dict], usage: dict | None, created: int | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": completion_id,
        "object": "text_completion",
        "created": created or int(time.time()),
        "model": model,
        "choices": choices,
    }
    if usage is not None:
        out["usage"] = usage
    return out
