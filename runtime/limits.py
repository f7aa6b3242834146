"""Limits enforced where requests arrive, so the UI, ``/chat``, ``/compare``, MCP and the engine
refuse the same things with the same words.

:class:`Limits` checks a request's size (prompt characters, new tokens, repeat runs) before any
work starts; :class:`Admission` counts requests in flight, overall and per client, and refuses
one more with :class:`~runtime.errors.Busy` instead of letting it pile up; entering also names
the client to the in-process scheduler (its fairness key, :func:`set_client`), so every entry
point that admits a request carries who asked down to the engine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from engines.scheduler import CLIENT
from runtime.errors import Busy, InputError
from runtime.settings import Settings


@dataclass(frozen=True)
class Limits:
    max_prompt_chars: int
    max_new_tokens: int
    max_runs: int

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(settings.max_prompt_chars, settings.max_new_tokens_cap, settings.max_runs)

    def prompt(self, text: object, *, field: str = "prompt") -> str:
        """The prompt, stripped; refuses non-text, empty and over-long prompts."""
        if not isinstance(text, str):
            raise InputError(field, f"must be text, got {type(text).__name__}")
        stripped = text.strip()
        if not stripped:
            raise InputError(field, "is empty; write a question or instruction")
        if len(text) > self.max_prompt_chars:
            raise InputError(
                field, f"has {len(text):,} characters; this instance takes at most {self.max_prompt_chars:,}"
            )
        return stripped

    def new_tokens(self, value: int, *, field: str = "max_new_tokens") -> int:
        if value > self.max_new_tokens:
            allowed = f"a whole number from 1 to {self.max_new_tokens} on this instance"
            raise InputError(field, f"must be {allowed} (got {value})")
        return value

    def runs(self, value: object, *, field: str = "runs") -> int:
        """A whole number of runs: an int, a whole float or a digit string (not a bool)."""
        allowed = f"a whole number from 1 to {self.max_runs}"
        if isinstance(value, str) and value.strip().isdigit():
            number = int(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        else:
            raise InputError(field, f"must be {allowed} (got {value!r})")
        if not 1 <= number <= self.max_runs:
            raise InputError(field, f"must be {allowed} (got {number})")
        return number


def fairness_key(client: str, session: str | None) -> str:
    """The in-process scheduler's key for a request: its browser (or API) session, else its
    address, so two tabs behind one address still take turns with each other."""
    return f"{client}#{session}" if session else client


def set_client(client: str) -> None:
    """Name who is asking to the in-process schedulers: jobs created after this, in this context
    (this task, and tasks it starts), queue as that client's. Not reset on purpose: it is set in
    the request's own task, by every entry point, before each request."""
    CLIENT.set(client)


class Admission:
    """Requests in flight: at most ``total`` overall and ``per_client`` for one client."""

    def __init__(self, total: int, per_client: int) -> None:
        self.total = max(1, total)
        self.per_client = max(1, per_client)
        self.running = 0
        self._by_client: dict[str, int] = {}

    @classmethod
    def of(cls, settings: Settings) -> Admission:
        return cls(settings.queue_size, settings.per_client)

    @contextlib.contextmanager
    def enter(self, client: str, session: str | None = None) -> Iterator[None]:
        """Hold a place for one request of ``client``; raises Busy when a limit is reached. The
        in-process schedulers then see it as ``session``'s (see :func:`fairness_key`).

        Synchronous on purpose: check and count happen with no await between them."""
        mine = self._by_client.get(client, 0)
        if mine >= self.per_client:
            raise Busy(
                f"you already have {mine} requests running (at most {self.per_client} per client); "
                "wait for one to finish",
                retry_after_s=2.0,
            )
        if self.running >= self.total:
            raise Busy(
                f"the server is busy ({self.running} requests running, at most {self.total}); "
                "try again in a few seconds"
            )
        self.running += 1
        self._by_client[client] = mine + 1
        set_client(fairness_key(client, session))
        try:
            yield
        finally:
            self.running -= 1
            left = self._by_client[client] - 1
            if left:
                self._by_client[client] = left
            else:
                del self._by_client[client]
