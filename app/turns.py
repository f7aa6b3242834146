"""One assistant turn (tool rounds included) against a backend from the registry.

:class:`ChatService` is what the chat tabs and the ``/chat`` API run: it validates the panel or
the API's settings, admits the request, streams the backend's events into an
:class:`~app.render.AnswerView` and yields the history after each change. A failed request
becomes a visible chat message, never an exception, in the UI path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from app.render import (
    AnswerView,
    error_message,
    invalid_input_message,
    metrics_dict,
    section,
    strip_last_turn,
    to_model_messages,
    verification_section,
    waiting_note,
)
from app.tools import run_tool, tool_specs
from backends.base import Backend, ChatRequest, Message, SamplingOptions
from backends.errors import BackendError
from presets import PresetCatalog
from runtime.errors import Busy, InputError, describe_validation
from runtime.gate import BackendGate
from runtime.kinds import queue_of
from runtime.limits import Admission, Limits, fairness_key, set_client
from runtime.panel_fields import PanelValues, parse_api_settings
from runtime.registry import BackendRegistry
from runtime.settings import Settings

log = logging.getLogger(__name__)
MAX_TOOL_ROUNDS = 3


@dataclass
class TurnRecord:
    """What a finished turn leaves besides its messages: kept with a saved chat and exported."""

    metrics: dict[str, Any] | None = None
    verification: dict[str, Any] | None = None


def problem_of(exc: ValidationError) -> str:
    """The one line that names the bad sampling field."""
    return describe_validation(exc, SamplingOptions)


@dataclass
class ChatService:
    settings: Settings
    registry: BackendRegistry
    catalog: PresetCatalog
    verifier: Callable[..., Any] | None = None
    """mathcheck.verify_response's signature: (answer, prompt=, gold=) -> a Verification."""
    limits: Limits = field(init=False)
    admission: Admission = field(init=False)
    """Requests in flight, overall and per client: the same count for the UI and the API."""
    backends: BackendGate = field(init=False)

    def __post_init__(self) -> None:
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
        client: str = "",
    ) -> AsyncIterator[None]:
        """Stream one assistant turn into ``view``, yielding after every change. ``client``: the
        in-process scheduler's fairness key (one per browser session or API caller)."""
        backend = self.registry.get(label, session)
        offered = tool_specs() if use_tools and backend.supports_tools else ()
        if use_tools and not backend.supports_tools:
            view.add(section(f"ℹ️ {label} does not support tool calls; answering without tools"))
        for _round in range(MAX_TOOL_ROUNDS + 1):
            request = ChatRequest(messages=tuple(messages), options=options, tools=offered)
            before = len(view.answer)
            # aclosing: a Stop must reach the engine now, not when the GC finalizes
            events = self._stream_into(backend, request, view, client)
            async with contextlib.aclosing(events):
                async for _ in events:
                    yield
            if not view.tool_calls:
                return
            calls, view.tool_calls = list(view.tool_calls), []
            messages.append(Message(role="assistant", content=view.answer[before:], tool_calls=tuple(calls)))
            for call in calls:
                outcome = await run_tool(call)
                view.record_tool_outcome(outcome)
                messages.append(
                    Message(role="tool", content=outcome.output, tool_call_id=call.id, name=call.name)
                )
            yield
        view.add(section(f"⚠ Stopped after {MAX_TOOL_ROUNDS} tool rounds", kind="error"))

    async def _stream_into(
        self, backend: Backend, request: ChatRequest, view: AnswerView, client: str
    ) -> AsyncGenerator[None, None]:
        """One request's events into ``view``; while an in-process engine is full, a note with
        the place in line its queue reports (the wait counts in the TTFT: the timing starts at
        the request, and the engine reports it as ``queue_s``)."""
        queue = queue_of(backend)
        ahead = queue.ahead() if queue is not None else 0
        note = ahead > 0
        if note:
            view.add(waiting_note(ahead, backend.name))
            yield
        set_client(client)  # in the step that creates the engine's job: it queues as this client's
        async with contextlib.aclosing(backend.chat(request)) as stream:  # type: ignore[type-var]
            async for event in stream:
                if note and view.parts and (view.parts[-1].metadata or {}).get("id") == "waiting":
                    view.parts.pop()
                note = False
                view.apply(event)
                yield

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
        record: TurnRecord | None = None,
    ) -> AsyncIterator[list[Any]]:
        """The chat turn the UI runs: yields the whole history after each change; never raises
        for a failed request (the error becomes a message and the conversation is kept).
        ``record`` gets the turn's metrics and verification when it ends."""
        record = record if record is not None else TurnRecord()
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
                turn = self.run_turn(
                    label, messages, options, panel.tools, view, session, fairness_key(client, session)
                )
                async for _ in turn:
                    yield history + view.messages()
        except Busy as exc:
            view.add(section("Not sent: the server is busy", str(exc), kind="error"))
        except BackendError as exc:
            view.add(error_message(exc))
        except ValidationError as exc:
            view.add(invalid_input_message(problem_of(exc)))
        except InputError as exc:
            view.add(invalid_input_message(str(exc)))
        except KeyError as exc:
            view.add(invalid_input_message(str(exc).strip("\"'")))
        except Exception as exc:  # the app keeps working; the trace goes to the log
            log.exception("chat turn failed")
            view.add(error_message(exc))
        else:
            if verify and self.verifier is not None and view.answer:
                view.add(section("Verifying with sympy…", status="pending", kind="verifying"))
                yield history + view.messages()
                view.parts.pop()
                verification = await self.verification(view.answer, prompt, reference)
                if verification is not None:
                    view.add(verification_section(verification))
                    record.verification = verification.to_json()
        if view.last_metrics is not None:
            record.metrics = metrics_dict(view.last_metrics)
        yield history + view.messages()

    async def verification(self, answer: str, prompt: str, gold: str | None) -> Any:
        """The sympy verification (in a worker process with a time budget, off the event loop);
        None when it failed: verification is advisory, the answer stays."""
        if self.verifier is None:
            return None
        try:
            return await asyncio.to_thread(self.verifier, answer, prompt=prompt, gold=gold)
        except Exception as exc:
            log.warning("verification failed: %s", exc)
            return None

    async def verify(
        self, prompt: object, gold: object, response: object, client: str = ""
    ) -> dict[str, Any]:
        """The ``/verify`` API: check ``response`` against ``gold`` (or what sympy computes from
        ``prompt``); raises InputError for bad fields, Busy past the client's limit."""
        text = self.limits.prompt(response) if response else ""
        if not text:
            raise InputError("response", "give the answer to check")
        question = self.limits.prompt(prompt) if prompt else ""
        if gold is not None and not isinstance(gold, str | int | float):
            raise InputError("gold", 'must be text or a number, such as "2.4"')
        reference = None if gold in (None, "") else str(gold)
        if self.verifier is None:
            raise InputError("", "verification is not available on this server")
        with self.admission.enter(client):  # sympy workers are shared: counted like a chat
            verification = await asyncio.to_thread(
                self.verifier, text, prompt=question or None, gold=reference
            )
        return verification.to_json()

    async def regenerate(
        self,
        history: Sequence[Any],
        label: str,
        panel: PanelValues,
        reference_of: Callable[[str], str | None],
        verify: bool = False,
        client: str = "",
        session: str | None = None,
        record: TurnRecord | None = None,
    ) -> AsyncIterator[list[Any]]:
        earlier, prompt = strip_last_turn(history)
        if prompt is None:
            yield list(history)
            return
        reference = reference_of(prompt)
        turn = self.respond(prompt, earlier, label, panel, reference, verify, client, session, record)
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
        changes = parse_api_settings(overrides)
        panel = PanelValues.of(self.catalog.presets[preset_name]).replace(**changes)
        try:
            options = panel.options(32768)
        except ValidationError as exc:
            raise InputError("", problem_of(exc)) from None
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
        """The scripting API: stream (answer so far, {}) then (answer, metrics); for a math
        preset the metrics carry ``verification``, the Math tab's sympy check. Errors raise
        (InputError and Busy before anything is sent)."""
        text, panel, options = self.api_request(prompt, preset_name, label, overrides, session)
        messages = to_model_messages(panel.system_prompt, [{"role": "user", "content": text}])
        view = AnswerView()
        with self.admission.enter(client):
            turn = self.run_turn(
                str(label), messages, options, panel.tools, view, session, fairness_key(client, session)
            )
            async for _ in turn:
                if view.answer:
                    yield view.answer, {}
        metrics = metrics_dict(view.last_metrics) if view.last_metrics else {}
        preset = self.catalog.presets[str(preset_name)]
        if preset.tab == "math" and view.answer:
            verification = await self.verification(view.answer, text, preset.reference_for(text))
            if verification is not None:
                metrics["verification"] = verification.to_json()
        yield view.answer, metrics
