"""Small helpers shared by the remote-backend tests."""

from __future__ import annotations

from typing import Any

from backends.base import Backend, ChatEvent, ChatRequest, Done, Message, SamplingOptions, TextDelta


def ask(text: str = "Say hello", **options: Any) -> ChatRequest:
    return ChatRequest(messages=(Message(role="user", content=text),), options=SamplingOptions(**options))


async def collect(backend: Backend, request: ChatRequest) -> tuple[list[ChatEvent], Done]:
    """All events of one chat; the last must be Done."""
    events = [event async for event in backend.chat(request)]
    assert isinstance(events[-1], Done), events[-1]
    return events[:-1], events[-1]


def text_of(events: list[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def drain(backend: Backend, request: ChatRequest, into: list[ChatEvent]) -> None:
    """Stream a chat into ``into`` so a test can see what arrived before an error."""
    async for event in backend.chat(request):
        into.append(event)
