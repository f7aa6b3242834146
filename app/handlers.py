"""Event handlers: short async generators between the Gradio wiring and the backends.

:class:`ChatService` runs one assistant turn (tool rounds included) against a backend from the
registry; the chat handlers wrap it in the one error boundary that turns a failed request into a
visible chat message. Stop is server side (:class:`StopSignals` + :func:`chat_states`): the
running turn ends itself and its last update carries the stop note. Ending the turn closes the
backend's stream through the ``aclosing`` block, so the in-process engine stops generating.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.render import (
    AnswerView,
    error_message,
    field_of,
    invalid_input_message,
    metrics_dict,
    section,
    stopped_note,
    strip_last_turn,
    to_model_messages,
    waiting_note,
)
from app.tools import run_tool, tool_specs
from backends.base import ChatRequest, Message, SamplingOptions
from backends.errors import BackendError
from presets import Preset, PresetCatalog, PresetError, parse_preset
from runtime.errors import Busy, InputError, describe_validation
from runtime.gate import BackendGate
from runtime.kinds import available_kinds
from runtime.limits import Admission, Limits
from runtime.registry import IN_PROCESS, BackendRegistry
from runtime.settings import DEFAULT_BATCH, Endpoint, Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_TOOL_ROUNDS = 3


@dataclass(frozen=True)
class PanelValues:
    """What a tab's settings panel holds; the order matches ``ui.SETTINGS_FIELDS``."""

    system_prompt: str
    temperature: float
    top_p: float
    top_k: int
    max_new_tokens: int
    seed: float | None
    """-1 or empty: a random seed."""
    tools: bool

    def options(self, cap: int) -> SamplingOptions:
        """Validated sampling options; raises ValidationError with the bad field named."""
        return SamplingOptions(
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=int(self.top_k or 0),
            max_new_tokens=min(int(self.max_new_tokens), cap),
            seed=None if self.seed in (None, "") or int(self.seed) < 0 else int(self.seed),
        )

    @classmethod
    def of(cls, preset: Preset) -> PanelValues:
        o = preset.options
        return cls(
            preset.system_prompt,
            o.temperature,
            o.top_p,
            o.top_k,
            o.max_new_tokens,
            -1 if o.seed is None else o.seed,
            preset.tools,
        )

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            self.system_prompt,
            self.temperature,
            self.top_p,
            self.top_k,
            self.max_new_tokens,
            self.seed,
            self.tools,
        )


class InProcessGate:
    """At most ``limit`` in-process generations at once; the others wait in order and can see it."""

    def __init__(self, limit: int) -> None:
        self._semaphore = asyncio.Semaphore(max(1, limit))
        self.waiting = 0

    @property
    def busy(self) -> bool:
        return self._semaphore.locked()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        self.waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self._semaphore.release()


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


def _problem(exc: ValidationError) -> str:
    return describe_validation(exc, SamplingOptions)


class ApiSettings(BaseModel):
    """What ``/chat``'s ``settings`` may change on top of the preset; null means the preset's."""

    model_config = ConfigDict(extra="forbid")

    system_prompt: str | None = Field(None, max_length=32_000)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=0, le=1000)
    max_new_tokens: int | None = Field(None, ge=1, le=32768)
    seed: int | None = Field(None, ge=-1, le=2**31 - 1)
    """-1: a random seed."""
    tools: bool | None = None

    @classmethod
    def parse(cls, raw: object) -> ApiSettings:
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise InputError("settings", 'must be an object such as {"temperature": 0.2}')
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise InputError("", describe_validation(exc, cls)) from None


@dataclass
class ChatService:
    settings: Settings
    registry: BackendRegistry
    catalog: PresetCatalog
    verifier: Callable[[str, str, str | None], Any] | None = None
    """(answer, prompt, reference) -> a ChatMessage section, used where ``verify`` is asked for."""
    gate: InProcessGate = field(init=False)
    limits: Limits = field(init=False)
    admission: Admission = field(init=False)
    """Requests in flight, overall and per client: the same count for the UI and the API."""
    backends: BackendGate = field(init=False)

    def __post_init__(self) -> None:
        self.gate = InProcessGate(self.settings.onnx_concurrency or DEFAULT_BATCH)
        self.limits = Limits.of(self.settings)
        self.admission = Admission.of(self.settings)
        self.backends = BackendGate(self.settings)

    async def run_turn(
        self,
        label: str,
        messages: list[Message],
        options: SamplingOptions,
        use_tools: bool,
        view: AnswerView,
        session: str | None = None,
    ) -> AsyncIterator[None]:
        """Stream one assistant turn into ``view``, yielding after every change."""
        backend = self.registry.get(label, session)
        gate = self.gate.slot() if label == IN_PROCESS else contextlib.nullcontext()
        if label == IN_PROCESS and self.gate.busy:
            view.add(waiting_note(self.gate.waiting + 1, label))
            yield
        async with gate:
            if view.parts and (view.parts[-1].metadata or {}).get("id") == "waiting":
                view.parts.pop()
            offered = tool_specs() if use_tools and backend.supports_tools else ()
            if use_tools and not backend.supports_tools:
                view.add(section(f"ℹ️ {label} does not support tool calls; answering without tools"))
            for _round in range(MAX_TOOL_ROUNDS + 1):
                request = ChatRequest(messages=tuple(messages), options=options, tools=offered)
                before = len(view.answer)
                async with contextlib.aclosing(backend.chat(request)) as stream:  # type: ignore[type-var]
                    async for event in stream:
                        view.apply(event)
                        yield
                if not view.tool_calls:
                    return
                calls, view.tool_calls = list(view.tool_calls), []
                messages.append(
                    Message(role="assistant", content=view.answer[before:], tool_calls=tuple(calls))
                )
                for call in calls:
                    outcome = await run_tool(call)  # the calculator runs in the sympy worker
                    view.record_tool_outcome(outcome)
                    messages.append(
                        Message(role="tool", content=outcome.output, tool_call_id=call.id, name=call.name)
                    )
                yield
            view.add(section(f"⚠️ Stopped after {MAX_TOOL_ROUNDS} tool rounds", kind="error"))

    async def respond(
        self,
        prompt: str,
        history: Sequence[Any],
        label: str,
        panel: PanelValues,
        reference: str | None = None,
        verify: bool = False,
        client: str = "",
        session: str | None = None,
    ) -> AsyncIterator[list[Any]]:
        """The chat turn the UI runs: yields the whole history after each change; never raises
        for a failed request (the error becomes a message and the conversation is kept)."""
        history = list(history or [])
        if not (prompt or "").strip():
            yield history
            return
        view = AnswerView()
        try:
            prompt = self.limits.prompt(prompt)
        except InputError as exc:  # the prompt stays in its box (see chat_tab): nothing is lost
            view.add(invalid_input_message(str(exc)))
            yield history + view.messages()
            return
        history.append({"role": "user", "content": prompt})
        yield history  # the question shows at once, before the first token
        try:
            options = panel.options(self.settings.max_new_tokens_cap)
            messages = to_model_messages(panel.system_prompt, history)
            with self.admission.enter(client):
                async for _ in self.run_turn(label, messages, options, panel.tools, view, session):
                    yield history + view.messages()
        except Busy as exc:
            view.add(section("⏳ Not sent: the server is busy", str(exc), kind="error"))
        except BackendError as exc:
            view.add(error_message(exc))
        except ValidationError as exc:
            view.add(invalid_input_message(_problem(exc)))
        except KeyError as exc:
            view.add(invalid_input_message(str(exc).strip("\"'")))
        except Exception as exc:  # the app keeps working; the trace goes to the log
            log.exception("chat turn failed")
            view.add(error_message(exc))
        else:
            if verify and self.verifier is not None and view.answer:
                view.add(section("🧮 Verifying with sympy…", status="pending", kind="verifying"))
                yield history + view.messages()
                view.parts.pop()
                try:  # runs in a worker process with a time budget; keep the event loop free
                    view.add(await asyncio.to_thread(self.verifier, view.answer, prompt, reference))
                except Exception as exc:  # verification is advisory: say so, keep the answer
                    log.warning("verification failed: %s", exc)
        yield history + view.messages()

    async def regenerate(
        self,
        history: Sequence[Any],
        label: str,
        panel: PanelValues,
        reference_of: Callable[[str], str | None],
        verify: bool = False,
        client: str = "",
        session: str | None = None,
    ) -> AsyncIterator[list[Any]]:
        earlier, prompt = strip_last_turn(history)
        if prompt is None:
            yield list(history)
            return
        turn = self.respond(prompt, earlier, label, panel, reference_of(prompt), verify, client, session)
        async for value in turn:
            yield value

    def refusal(self, prompt: str) -> str | None:
        """Why this prompt cannot be sent (None: it can); checked before the prompt box clears."""
        try:
            self.limits.prompt(prompt)
        except InputError as exc:
            return str(exc)
        return None

    def api_request(
        self,
        prompt: object,
        preset_name: object,
        label: object,
        overrides: object,
        session: str | None = None,
    ) -> tuple[str, PanelValues, SamplingOptions]:
        """Validate a scripting-API call before any work: (prompt, panel, options); raises InputError."""
        prompt = self.limits.prompt(prompt)
        if not isinstance(preset_name, str) or preset_name not in self.catalog.presets:
            known = ", ".join(self.catalog.presets)
            raise InputError("preset", f"no preset named {preset_name!r}; known: {known}")
        if not isinstance(label, str) or label not in self.registry.labels(session):
            known = ", ".join(self.registry.labels(session)) or "none"
            raise InputError("backend", f"no backend named {label!r}; configured: {known}")
        changes = ApiSettings.parse(overrides).model_dump(exclude_none=True)
        base = PanelValues.of(self.catalog.presets[preset_name])
        panel = PanelValues(**{**base.__dict__, **changes})
        try:
            options = panel.options(32768)
        except ValidationError as exc:
            raise InputError("", _problem(exc)) from None
        self.limits.new_tokens(options.max_new_tokens)
        return prompt, panel, options

    async def answer(
        self,
        prompt: object,
        preset_name: object,
        label: object,
        overrides: object,
        client: str = "",
        session: str | None = None,
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """The scripting API: stream (answer so far, {}) then (answer, metrics). Errors raise
        (InputError and Busy before anything is sent)."""
        text, panel, options = self.api_request(prompt, preset_name, label, overrides, session)
        messages = to_model_messages(panel.system_prompt, [{"role": "user", "content": text}])
        view = AnswerView()
        with self.admission.enter(client):
            async for _ in self.run_turn(str(label), messages, options, panel.tools, view, session):
                if view.answer:
                    yield view.answer, {}
        metrics = view.last_metrics
        yield view.answer, metrics_dict(metrics) if metrics else {}


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


def find_preset(name: str, catalog: PresetCatalog, mine: dict[str, Any] | None) -> Preset:
    """A shipped/folder preset by name, or one saved in this browser."""
    if name in catalog.presets:
        return catalog.presets[name]
    if mine and name in mine:
        return parse_preset(json.dumps(mine[name]), source=f"saved preset {name!r}")
    raise PresetError(f"no preset named {name!r}")


# --- presets: pick, save in the browser, export, import ---------------------------------------


def preset_from_panel(name: str, base: Preset, panel: PanelValues, cap: int) -> Preset:
    """A new preset with the panel's settings and the base preset's tab and examples."""
    return Preset(
        name=name.strip(),
        tab=base.tab,
        description=f"Saved from {base.name}",
        system_prompt=panel.system_prompt,
        options=panel.options(cap),
        tools=bool(panel.tools),
        examples=base.examples,
    )


def save_in_browser(
    name: str, base: Preset, panel: PanelValues, mine: dict[str, Any] | None, catalog: PresetCatalog, cap: int
) -> tuple[dict[str, Any], str]:
    """Add a preset to the browser's store; returns (new store, status line). Raises PresetError."""
    if not name.strip():
        raise PresetError("give the preset a name first")
    if name.strip() in catalog.presets:
        raise PresetError(f"{name.strip()!r} is a shipped preset; choose another name")
    try:
        preset = preset_from_panel(name, base, panel, cap)
    except ValidationError as exc:
        raise PresetError(f"cannot save: {_problem(exc)}") from None
    store = dict(mine or {})
    store[preset.name] = preset.model_dump(mode="json")
    return store, f"Saved **{preset.name}** in this browser."


def import_preset_file(path: str | None) -> Preset:
    """Read an uploaded preset file; every failure is a PresetError with the reason."""
    if not path:
        raise PresetError("no file was uploaded")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(1_000_000)
    except OSError as exc:
        raise PresetError(f"cannot read the uploaded file ({exc.strerror})") from None
    return parse_preset(raw, source="imported file")


def choices_for(tab: str, catalog: PresetCatalog, mine: dict[str, Any] | None) -> list[str]:
    return catalog.names(tab) + [n for n in (mine or {}) if n not in catalog.presets]


# --- backends: health strip and endpoints --------------------------------------------------

_HEALTH_ICON = {"ready": "🟢", "loading": "🟡", "unreachable": "🔴"}


async def health_strip(registry: BackendRegistry, session: str | None = None) -> str:
    """One markdown line with every backend's state; never blocks longer than the timeout."""
    results = await registry.health_all(timeout_s=2.0, session=session)
    if not results:
        return "**Backends:** none configured"
    parts = []
    for label, health in results.items():
        detail = f" ({health.detail[:80]})" if health.detail and health.status != "ready" else ""
        parts.append(f"{_HEALTH_ICON.get(health.status, '⚪')} `{label}` {health.status}{detail}")
    return "**Backends:** " + " · ".join(parts)


def endpoint_from_form(
    kind: str, url: str, name: str, api_key: str, model: str, taken: list[str]
) -> Endpoint:
    """Validate the add-endpoint form into an Endpoint; raises ValueError with what to fix."""
    url = (url or "").strip().rstrip("/")
    remote = available_kinds(in_process=False)
    if kind not in remote:
        raise ValueError(f"choose the kind of server: {', '.join(remote)}")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"the URL must start with http:// or https:// (got {url!r})")
    endpoint = Endpoint(
        kind, url, name=(name or "").strip(), api_key=(api_key or "").strip(), model=model or ""
    )
    if endpoint.label in taken:
        raise ValueError(f"a backend named {endpoint.label!r} already exists; pick another name")
    return endpoint


async def check_connection(registry: BackendRegistry, label: str, session: str | None = None) -> str:
    if not label:
        return "Choose a backend to test."
    health = await registry.health(label, timeout_s=registry.settings.connect_timeout_s, session=session)
    icon = _HEALTH_ICON.get(health.status, "⚪")
    line = f"{icon} `{label}`: {health.status}" + (f" — {health.detail}" if health.detail else "")
    if health.status != "ready":
        return line
    try:
        models = await asyncio.wait_for(registry.get(label, session).list_models(), 5.0)
    except Exception as exc:  # listing is a courtesy; say why it failed
        return f"{line}\n\nCould not list models: {exc}"
    names = ", ".join(f"`{m.id}`" for m in models[:10]) or "none"
    return f"{line}\n\nModels: {names}"
