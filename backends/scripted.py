"""A scripted backend: replays given replies. For tests of everything above the backend layer,
and for ``bench app --scripted``, which measures what the app adds without a model's noise.

It is a real Backend subclass (metrics come from Backend.chat like any other backend); only the
tokens are scripted. Each reply is a list of chunks; ``delay_s`` paces them so tests can observe
streaming, parallelism and Stop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from backends.base import (
    Backend,
    ChatRequest,
    Health,
    ModelInfo,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallEvent,
    Usage,
)
from backends.errors import BackendError


@dataclass
class ScriptedReply:
    chunks: Sequence[str] = ("Hello", ", ", "world", "!")
    tool_calls: Sequence[ToolCall] = ()
    error_after: int | None = None
    """Raise ``error`` after this many chunks (a stream that dies midway)."""
    error: BackendError | None = None
    finish_reason: str = "stop"


@dataclass
class ScriptedBackend(Backend):
    label: str = "scripted"
    replies: list[ScriptedReply] = field(default_factory=list)
    delay_s: float = 0.0
    first_token_delay_s: float = 0.0
    health_status: Health = field(default_factory=lambda: Health("ready"))
    requests: list[ChatRequest] = field(default_factory=list)
    cancelled: int = 0
    hold: threading.Event | None = None
    """When given, each request waits for it before its first token (after releasing ``arrived``)."""
    arrived: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    kind = "scripted"
    supports_tools = True

    def __post_init__(self) -> None:
        Backend.__init__(self, self.label)

    def default_model(self) -> str:
        return "scripted-model"

    def enqueue(self, *replies: ScriptedReply) -> None:
        self.replies.extend(replies)

    async def _stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        self.requests.append(request)
        reply = self.replies.pop(0) if self.replies else ScriptedReply()
        finished = False
        try:
            self.arrived.release()
            if self.hold is not None:
                await asyncio.to_thread(self.hold.wait)
            if self.first_token_delay_s:
                await asyncio.sleep(self.first_token_delay_s)
            for i, chunk in enumerate(reply.chunks):
                if reply.error_after is not None and i == reply.error_after:
                    raise reply.error or BackendError(self.name, "scripted failure")
                if self.delay_s and i:
                    await asyncio.sleep(self.delay_s)
                yield TextDelta(chunk)
            for call in reply.tool_calls:
                yield ToolCallEvent(call)
            finished = True
            yield Usage(
                prompt_tokens=sum(len(m.content.split()) for m in request.messages),
                completion_tokens=len(reply.chunks),
                finish_reason="tool_calls" if reply.tool_calls else reply.finish_reason,  # type: ignore[arg-type]
            )
        finally:
            if not finished:
                self.cancelled += 1

    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo("scripted-model", context_length=2048)]

    async def health(self) -> Health:
        return self.health_status
