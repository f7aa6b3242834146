"""Scripted lanes for comparison tests: real Backend subclasses with paced, scripted replies."""

from __future__ import annotations

import pytest

from backends.scripted import ScriptedBackend, ScriptedReply
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
