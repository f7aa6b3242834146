"""Scripted lanes for comparison tests: real Backend subclasses with paced, scripted replies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from backends.base import Backend, ChatRequest, Health, ModelInfo, StreamEvent, TextDelta, Usage
from backends.errors import BackendError
from backends.scripted import ScriptedBackend, ScriptedReply
from runtime.kinds import KINDS, BackendKind, Target
from runtime.registry import BackendRegistry
from runtime.settings import Settings


def paced(label: str, words: str, delay_s: float, first_token_delay_s: float = 0.0) -> ScriptedBackend:
    """A lane that streams ``words`` one chunk per ``delay_s``: I/O-bound like a remote server."""
    backend = ScriptedBackend(label=label, delay_s=delay_s, first_token_delay_s=first_token_delay_s)
    chunks = [w + " " for w in words.split()]
    backend.enqueue(*(ScriptedReply(chunks=chunks) for _ in range(10)))
    return backend


@pytest.fixture
def two_lanes() -> tuple[ScriptedBackend, ScriptedBackend]:
    return (
        paced("fast", "The answer is 391 because 17 times 23 is 391", 0.01),
        paced("slow", "The answer is 390 since 17 times 23 is 390", 0.03),
    )


@pytest.fixture
def registry(two_lanes: tuple[ScriptedBackend, ScriptedBackend]) -> BackendRegistry:
    return BackendRegistry.with_backends(Settings(), *two_lanes)


class ScriptedEngine(Backend):
    """A test stand-in for an in-process engine (its kind is registered as in-process by the
    ``engine_kind`` fixture): a model "load" that waits for ``load_gate`` when given (and takes
    ``load_delay_s``), paced
    words, and a log, shared between lanes, of when each load and each request began and ended."""

    kind = "scripted-engine"

    def __init__(
        self,
        name: str,
        log: list[tuple[str, str]],
        *,
        words: int = 8,
        delay_s: float = 0.005,
        load_gate: asyncio.Event | None = None,
        load_delay_s: float = 0.0,
        load_error: BackendError | None = None,
        mean_batch: float | None = None,
    ) -> None:
        super().__init__(name)
        self.log, self.words, self.delay_s = log, words, delay_s
        self.load_gate, self.load_error, self.mean_batch = load_gate, load_error, mean_batch
        self.load_delay_s = load_delay_s
        self.loaded = False
        self.requests: list[ChatRequest] = []

    async def warm_up(self) -> float:
        if self.loaded:
            return 0.0
        start = time.perf_counter()
        self.log.append(("load", self.name))
        if self.load_gate is not None:
            await self.load_gate.wait()
        await asyncio.sleep(self.load_delay_s)  # a load that takes this long
        if self.load_error is not None:
            raise self.load_error
        self.loaded = True
        return time.perf_counter() - start

    async def _stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        self.log.append(("start", self.name))
        self.requests.append(request)
        try:
            for i in range(self.words):
                await asyncio.sleep(self.delay_s)  # paced like a decode step; lets other lanes run
                yield TextDelta(f"{self.name}{i} ")
            server = {} if self.mean_batch is None else {"mean_batch": self.mean_batch}
            yield Usage(prompt_tokens=3, completion_tokens=self.words, finish_reason="stop", server=server)
        finally:
            self.log.append(("end", self.name))

    def default_model(self) -> str:
        return "engine-model"

    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo("engine-model")]

    async def health(self) -> Health:
        return Health("ready" if self.loaded else "loading")


class ScriptedRemote(ScriptedEngine):
    """The same, of a kind that is not in-process (a server elsewhere): nothing to load."""

    kind = "scripted"

    async def warm_up(self) -> float:
        return await Backend.warm_up(self)


@pytest.fixture
def engine_kind(monkeypatch: pytest.MonkeyPatch) -> str:
    """Registers ``scripted-engine`` as an in-process kind for the test's duration."""

    def build(label: str, target: Target, settings: Settings) -> Backend:
        raise NotImplementedError("tests build ScriptedEngine themselves")

    kind = BackendKind(
        ScriptedEngine.kind, "a scripted in-process engine", in_process=True, lane_syntax="scripted-engine",
        factory=build,
    )  # fmt: skip
    monkeypatch.setitem(KINDS, kind.name, kind)
    return kind.name
