"""Pacing and Stop for streamed chat turns, outside gradio.

:func:`paced` sends at most one state per interval (the browser re-renders the whole chat for
each); Stop is server side (:class:`StopSignals` + :func:`chat_states`): the running turn ends
itself and its last update carries the stop note. Ending the turn closes the backend's stream,
so the in-process engine stops generating.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Hashable, Iterator, Sequence
from typing import Any, TypeVar

from app.render import field_of, stopped_note
from runtime.settings import Settings

T = TypeVar("T")


class StopSignals:
    """One stop event per running chat turn, keyed by (browser session, tab)."""

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Event] = {}

    @contextlib.contextmanager
    def watch(self, key: Hashable) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._running[key] = event
        try:
            yield event
        finally:
            if self._running.get(key) is event:
                del self._running[key]

    def stop(self, key: Hashable) -> bool:
        """Ask the turn running under ``key`` to stop; False when none runs. Call on the event loop."""
        event = self._running.get(key)
        if event is None:
            return False
        event.set()
        return True


UI_REFRESH_S = Settings.ui_refresh_s
"""Shortest gap between two states a chat sends (about 7 a second). The browser re-renders the
chat for each one; ``slm-playground bench browser`` shows what that costs the model (compare
with ``SLM_UI_REFRESH_S=0``, a state per token)."""


async def paced(
    updates: AsyncIterator[T],
    interval_s: float = UI_REFRESH_S,
    *,
    stop: asyncio.Event | None = None,
    stopped: Callable[[T | None], T] | None = None,
) -> AsyncIterator[T]:
    """At most one update per ``interval_s``; the first and the last always pass, and one held
    back goes out when its interval ends even if nothing newer arrives. Each update is the
    whole state so far, so skipping some loses nothing; it saves the server re-sending, and the
    browser re-rendering, the whole answer for every token, CPU the model's threads need.

    When ``stop`` is set, ``updates`` is closed (and with it the backend's stream) and the last
    update is ``stopped(newest state, sent or held; None if none came)``, so nothing already in
    flight can follow it. (Gradio's ``cancels=`` raced with such updates.)"""
    loop = asyncio.get_running_loop()
    sent_at = -interval_s
    latest: T | None = None
    held = False
    step: asyncio.Future[T] | None = None
    stopper = asyncio.ensure_future(stop.wait()) if stop is not None else None

    async def drop_step() -> None:
        if step is not None and not step.done():
            step.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await step

    try:
        while True:
            if step is None:
                step = asyncio.ensure_future(anext(updates))
            wait = max(0.0, sent_at + interval_s - loop.time()) if held else None
            waiting: set[asyncio.Future[Any]] = {step} if stopper is None else {step, stopper}
            await asyncio.wait(waiting, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            if stopper is not None and stopper.done() and not step.done():
                await drop_step()
                if stopped is not None:
                    yield stopped(latest)
                return
            if not step.done():  # the interval is over and nothing newer came: send what is held
                sent_at, held = loop.time(), False
                yield latest  # type: ignore[misc]
                continue
            try:
                latest, held, step = step.result(), True, None
            except StopAsyncIteration:
                if held:
                    yield latest  # type: ignore[misc]
                return
            if loop.time() - sent_at >= interval_s:
                sent_at, held = loop.time(), False
                yield latest
    finally:
        if stopper is not None:
            stopper.cancel()
        await drop_step()
        await updates.aclose()  # type: ignore[attr-defined]


def chat_states(
    turn: AsyncIterator[list[Any]],
    stop: asyncio.Event,
    before: Sequence[Any],
    interval_s: float = UI_REFRESH_S,
) -> AsyncIterator[list[Any]]:
    """A chat turn's histories as the browser gets them: paced, and ending with a stop note when
    Stop is pressed (on ``before`` when the turn had shown nothing yet)."""
    return paced(
        turn,
        interval_s,
        stop=stop,
        stopped=lambda latest: mark_stopped(list(before) if latest is None else latest),
    )


def mark_stopped(history: Sequence[Any]) -> list[Any]:
    """Runs with Stop: keep the partial answer and say it is partial."""
    items = list(history or [])
    if not items or _finished(items):
        return items
    if (field_of(items[-1], "metadata") or {}).get("id") == "waiting":
        items.pop()  # stopped while queued: it no longer waits
    return [*items, stopped_note()]


def _finished(history: Sequence[Any]) -> bool:
    """Whether the last turn already ended (metrics, error or an earlier stop note)."""
    for item in reversed(history):
        if field_of(item, "role") == "user":
            return False
        kind = (field_of(item, "metadata") or {}).get("id")
        if kind in ("metrics", "error", "stopped"):
            return True
    return False
