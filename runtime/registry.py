"""The backends this app instance knows about, by label: the in-process model plus endpoints.

The UI's backend selector, the compare tab's lanes, the APIs and the CLI all go through one
registry so a label means the same backend everywhere. Backends the operator configured
(environment, flags) are shared by every user; a backend a user adds (the Backends tab, a
typed lane spec) belongs to that user's session only and never shows up for anyone else.
Health checks run concurrently with a short timeout and never raise, so a dead endpoint cannot
block the page.

In-process backends: where the registry runs models in-process (the app passes ``in_process``;
``defaults=True`` elsewhere), every in-process kind of :mod:`runtime.kinds` whose default
model is at hand is offered under the kind's name, built on first use, so nothing loads
until someone picks it; the table's default in-process kind comes first.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from functools import partial

from backends.base import Backend, Health
from runtime.kinds import KINDS, Target, default_in_process, kind
from runtime.settings import Endpoint, Settings

MAX_SESSIONS = 256
"""Sessions whose own backends are kept; the least recently used are closed beyond that."""
MAX_PER_SESSION = 8


def backend_for_endpoint(endpoint: Endpoint, settings: Settings) -> Backend:
    """Build the remote backend an endpoint describes (imports stay lazy: start-up is fast)."""
    spec = kind(endpoint.kind)
    if spec.in_process:
        raise ValueError(f"{endpoint.kind} is an in-process kind, not a server")
    target = Target(url=endpoint.url, model=endpoint.model, api_key=endpoint.api_key)
    return spec.build(endpoint.label, target, settings)


class BackendRegistry:
    def __init__(
        self, settings: Settings, *, in_process: Callable[[], Backend] | None = None, defaults: bool = False
    ) -> None:
        """``in_process``: builds the default in-process kind's backend (runtime.kinds'
        default_in_process); with it or ``defaults``, the other in-process kinds' defaults are
        offered too (``defaults`` alone builds every one from the table)."""
        self.settings = settings
        self._backends: dict[str, Backend] = {}
        self._sessions: OrderedDict[str, dict[str, Backend]] = OrderedDict()
        self._lazy: dict[str, Callable[[], Backend]] = {}
        if in_process is not None or defaults:
            for spec in KINDS.values():
                if spec.offers_default:
                    self._lazy[spec.name] = partial(spec.build, spec.name, Target(), settings)
        first = default_in_process()
        if in_process is not None:
            self._lazy[first] = in_process
        if first in self._lazy:  # the default first: the chat's default backend, a bare lane
            self._lazy = {first: self._lazy[first], **{k: v for k, v in self._lazy.items() if k != first}}
        self._closing: set[asyncio.Task[None]] = set()
        for endpoint in settings.endpoints:
            self.add_endpoint(endpoint)

    @classmethod
    def with_backends(cls, settings: Settings, *backends: Backend) -> BackendRegistry:
        """A registry holding exactly these backends (tests, scripted demos)."""
        registry = cls(settings.with_overrides(endpoints=()))
        for backend in backends:
            registry.add(backend)
        return registry

    def _own(self, session: str | None) -> dict[str, Backend]:
        if session is None:
            return {}
        own = self._sessions.get(session)
        if own is not None:
            self._sessions.move_to_end(session)
        return own or {}

    def add(self, backend: Backend, session: str | None = None) -> str:
        """Add a backend: shared by everyone (``session`` None: the operator's) or one session's."""
        if session is None:
            self._backends[backend.name] = backend
            return backend.name
        own = self._sessions.setdefault(session, {})
        self._sessions.move_to_end(session)
        if backend.name not in own and len(own) >= MAX_PER_SESSION:
            raise ValueError(f"at most {MAX_PER_SESSION} added backends per session; remove one first")
        own[backend.name] = backend
        while len(self._sessions) > MAX_SESSIONS:
            _, dropped = self._sessions.popitem(last=False)
            for old in dropped.values():
                self._close_later(old)
        return backend.name

    def add_endpoint(self, endpoint: Endpoint, session: str | None = None) -> str:
        return self.add(backend_for_endpoint(endpoint, self.settings), session)

    def is_shared(self, label: str) -> bool:
        """Whether ``label`` is a backend the operator configured (every user sees it)."""
        return label in self.labels()

    async def remove(self, label: str, session: str | None = None) -> None:
        own = self._sessions.get(session) if session is not None else None
        backend = own.pop(label, None) if own is not None else None
        if backend is None and session is None:
            backend = self._backends.pop(label, None)
        if backend is not None:
            await backend.aclose()

    def labels(self, session: str | None = None) -> list[str]:
        shared = [*self._lazy, *(label for label in self._backends if label not in self._lazy)]
        return shared + [label for label in self._own(session) if label not in shared]

    def get(self, label: str, session: str | None = None) -> Backend:
        if label in self._lazy and label not in self._backends:
            backend = self._lazy[label]()
            backend.name = label
            self._backends[label] = backend
        found = self._backends.get(label) or self._own(session).get(label)
        if found is None:
            raise KeyError(
                f"no backend named {label!r}; configured: {', '.join(self.labels(session)) or 'none'}"
            )
        return found

    async def health(self, label: str, timeout_s: float = 3.0, session: str | None = None) -> Health:
        try:
            return await asyncio.wait_for(self.get(label, session).health(), timeout_s)
        except TimeoutError:
            return Health("unreachable", f"no answer in {timeout_s:.0f} s")
        except Exception as exc:  # health is advisory: report, never raise
            return Health("unreachable", str(exc))

    async def health_all(self, timeout_s: float = 3.0, session: str | None = None) -> dict[str, Health]:
        labels = self.labels(session)
        results = await asyncio.gather(*(self.health(label, timeout_s, session) for label in labels))
        return dict(zip(labels, results, strict=True))

    def _close_later(self, backend: Backend) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (tests, shutdown): nothing holds a connection yet
            return
        task = loop.create_task(backend.aclose())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        for backend in [*self._backends.values(), *(b for s in self._sessions.values() for b in s.values())]:
            await backend.aclose()
        self._backends.clear()
        self._sessions.clear()
