"""Lanes for evaluation tests: real Backend subclasses whose answer depends on the prompt."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from backends.base import Backend, ChatRequest, Health, ModelInfo, StreamEvent, TextDelta, Usage
from backends.errors import BackendError
from runtime.registry import BackendRegistry
from runtime.settings import Settings

Answer = Callable[[str], str]


class AnswerBackend(Backend):
    """Streams ``answer(prompt)`` word by word, ``delay_s`` apart; records how many requests were
    in flight at once. An answer "FAIL" raises a BackendError midway (a lane that fails)."""

    kind = "answers"

    def __init__(self, label: str, answer: Answer, delay_s: float = 0.0) -> None:
        super().__init__(label)
        self.answer, self.delay_s = answer, delay_s
        self.in_flight = self.most_in_flight = 0
        self.prompts: list[str] = []
        self.release: asyncio.Event | None = None
        """When set, requests whose prompt contains "HOLD" wait for it before answering."""

    def default_model(self) -> str:
        return f"{self.name}-model"

    async def _stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        prompt = request.messages[-1].content
        self.prompts.append(prompt)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.release is not None and "HOLD" in prompt:
                await self.release.wait()
            text = self.answer(prompt)
            if text == "FAIL":
                raise BackendError(self.name, "scripted failure")
            words = text.split(" ")
            for i, word in enumerate(words):
                await asyncio.sleep(self.delay_s)
                yield TextDelta(word + (" " if i < len(words) - 1 else ""))
            yield Usage(prompt_tokens=len(prompt.split()), completion_tokens=len(words), finish_reason="stop")
        finally:
            self.in_flight -= 1

    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo(self.default_model(), details={"format": "scripted"})]

    async def health(self) -> Health:
        return Health("ready", "answers 1.0")


def registry_of(*backends: Backend, **settings: object) -> BackendRegistry:
    return BackendRegistry.with_backends(Settings().with_overrides(**settings), *backends)


@pytest.fixture
def presets():
    from presets import load_catalog

    return load_catalog()
