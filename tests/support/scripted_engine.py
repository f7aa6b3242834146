"""A third in-process kind for tests: a scripted engine on the shared scheduler.

It answers every request with ``words`` (one per scheduler step, as many as ``max_new_tokens``
allows) and runs ``rows`` requests at once, so tests see the batching queue, the place in
line, fairness per client and the end-of-answer assembly without a real model. While ``hold``
is clear, steps produce nothing (requests still join and queue); ``admitted`` lists the
clients in the order their jobs got a row. :func:`registered` adds it to the kinds table for
one test, the way a real kind's module and one ``register`` call would.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from backends.base import ChatRequest, ModelInfo
from engines.in_process import AnswerText, InProcessBackend
from engines.scheduler import Engine, Job
from runtime import kinds
from runtime.kinds import BackendKind, Target
from runtime.settings import Settings

KIND = "scriptedlocal"
VERSION = "scripted-engine 1.0"


class ScriptedJob(Job):
    def __init__(self, request: ChatRequest) -> None:
        super().__init__()
        self.request = request
        self.budget = request.options.max_new_tokens
        self.produced = 0
        self.text = AnswerText(self, request)


class ScriptedEngine:
    def __init__(self, words: list[str], hold: threading.Event) -> None:
        self.words, self.hold = words, hold
        self.admitted: list[str] = []

    def admit(self, job: Job) -> None:
        self.admitted.append(job.client)

    def step(self, jobs: list[Job]) -> int:
        if not self.hold.wait(0.01):  # held: no token this step; jobs still join between steps
            return 0
        for job in jobs:
            assert isinstance(job, ScriptedJob)
            job.batch_steps += 1
            job.batch_rows += len(jobs)
            job.text.feed(self.words[job.produced])
            job.produced += 1
            if job.text.stopped or job.produced >= min(job.budget, len(self.words)):
                finish = "stop" if job.text.stopped or job.produced == len(self.words) else "length"
                job.text.finish(
                    finish,
                    prompt_tokens=sum(len(m.content.split()) for m in job.request.messages),
                    completion_tokens=job.produced,
                    model="scripted-model",
                )
        return len(jobs)

    def release(self, job: Job) -> None:
        pass


class ScriptedEngineBackend(InProcessBackend):
    kind = KIND
    supports_tools = True

    def __init__(
        self,
        name: str,
        *,
        rows: int = 2,
        words: list[str] | None = None,
        load_s: float = 0.0,
        max_queue: int = 64,
    ) -> None:
        super().__init__(name, max_queue=max_queue)
        self.rows, self.load_s = rows, load_s
        self.words = words or ["The ", "answer ", "is ", "42."]
        self.hold = threading.Event()
        self.hold.set()
        self.engine: ScriptedEngine | None = None

    def check_source(self) -> None:
        pass

    def load_blocking(self) -> Any:
        time.sleep(self.load_s)  # a model that takes a while to load
        return object()

    def engine_for(self, loaded: Any) -> tuple[Engine, int]:
        self.engine = ScriptedEngine(self.words, self.hold)
        return self.engine, self.rows

    async def job_for(self, request: ChatRequest, loaded: Any) -> Job:
        return ScriptedJob(request)

    def capacity(self) -> int:
        return self.rows

    def default_model(self) -> str:
        return "scripted-model"

    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo("scripted-model", context_length=512, details={"format": "script"})]


def _build(label: str, target: Target, settings: Settings) -> ScriptedEngineBackend:
    rows = int(target.path) if target.path.isdigit() else 2
    return ScriptedEngineBackend(label, rows=rows, max_queue=settings.queue_size)


@contextlib.contextmanager
def registered() -> Iterator[BackendKind]:
    """The scripted kind in the kinds table while the block runs."""
    spec = kinds.register(
        BackendKind(
            KIND,
            "a scripted in-process engine (tests)",
            in_process=True,
            lane_syntax=f"{KIND}[:ROWS]",
            factory=_build,
            has_default=lambda: True,
            version=lambda: VERSION,
        )
    )
    try:
        yield spec
    finally:
        del kinds.KINDS[KIND]
