"""Pure rendering: backend events and errors -> chat messages, metrics -> one line.

Nothing here does I/O. The handlers feed events into an :class:`AnswerView` and yield its
messages; the same view renders a streaming answer, tool-call sections, the metrics line and
error or "stopped" notes. Display-only messages carry a ``metadata.title`` (Gradio shows them
as collapsible sections); :func:`to_model_messages` leaves them out of what the model sees.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from abc import ABCMeta
from collections.abc import Sequence
from typing import Any, cast

import gradio as gr
from gradio.components.chatbot import ChatbotDataMessages, TextMessage

from app.thinking import Piece, ThinkSplitter
from app.tools import ToolOutcome
from backends.base import (
    ChatEvent,
    Done,
    Message,
    Metrics,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallEvent,
)
from backends.errors import (
    BackendError,
    BackendResponseError,
    BackendUnavailable,
    ContextOverflow,
    ModelNotFound,
)
from compare.runner import LaneUpdate
from mathcheck import render_markdown
from runtime.markdown_text import LATEX_DELIMITERS, shown, written

__all__ = ["LATEX_DELIMITERS", "WrittenChatbot"]

THINKING_TITLE = "Thinking"


class _ShownAsWritten:
    """What WrittenChatbot adds to gr.Chatbot: every message shown as written
    (:func:`runtime.markdown_text.shown`) on the way to the browser, and the text back
    (:func:`written`) on the way to the handlers, so history, saved chats and exports hold the
    model's own words. On the class: Gradio rebuilds a session's copy of a component from its
    class after a ``gr.skip()`` update, so an instance-level wrapper would be lost."""

    def get_block_name(self) -> str:
        return "chatbot"  # the same front-end component

    def postprocess(self, value: Any) -> ChatbotDataMessages:
        data = super().postprocess(value)  # type: ignore[misc]
        for message in data.root:
            for part in message.content:
                if isinstance(part, TextMessage):
                    part.text = shown(part.text)
        return data

    def preprocess(self, payload: ChatbotDataMessages | None) -> Any:
        messages = super().preprocess(payload)  # type: ignore[misc]
        for message in messages:
            for part in message["content"]:
                if part.get("type") == "text":
                    part["text"] = written(part["text"])
        return messages


# Made with ABCMeta.__new__, not ComponentMeta's: that one writes a .pyi stub beside the module
# of every component class it sees (a file in the source tree, or an error where it is read-only).
# Nothing else of it is needed: the events are gr.Chatbot's, inherited as they are.
WrittenChatbot = cast(
    type[gr.Chatbot],
    ABCMeta.__new__(type(gr.Chatbot), "WrittenChatbot", (_ShownAsWritten, gr.Chatbot), {}),
)


def text_of(content: Any) -> str:
    """Text of a Chatbot message's content: a string, a block dict or a list of blocks."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or content.get("value") or "")
    if isinstance(content, list | tuple):
        return "".join(text_of(block) for block in content)
    return str(content)


def field_of(message: Any, name: str) -> Any:
    return message.get(name) if isinstance(message, dict) else getattr(message, name, None)


def is_display_only(message: Any) -> bool:
    """Sections (thinking, tools, metrics, errors, notes) are for the reader, not the model."""
    metadata = field_of(message, "metadata") or {}
    return bool(metadata.get("title"))


def to_model_messages(system_prompt: str, history: Sequence[Any]) -> list[Message]:
    messages = [Message(role="system", content=system_prompt)] if system_prompt.strip() else []
    for item in history:
        role = field_of(item, "role")
        if role not in ("user", "assistant") or is_display_only(item):
            continue
        text = text_of(field_of(item, "content"))
        if not text:
            continue
        if messages and messages[-1].role == role == "assistant":
            merged = messages[-1].content + text  # a turn split by a tool section
            messages[-1] = Message(role="assistant", content=merged)
        else:
            messages.append(Message(role=role, content=text))
    return messages


def strip_last_turn(history: Sequence[Any]) -> tuple[list[Any], str | None]:
    """History without its last user message and everything after it, plus that message."""
    items = list(history)
    for index in range(len(items) - 1, -1, -1):
        if field_of(items[index], "role") == "user":
            return items[:index], text_of(field_of(items[index], "content"))
    return items, None


# --- metrics ---------------------------------------------------------------------------


def metrics_line(metrics: Metrics) -> str:
    return metrics.summary()


def metrics_dict(metrics: Metrics) -> dict[str, Any]:
    return dataclasses.asdict(metrics)


LANE_ICONS = {"waiting": "…", "streaming": "▶", "done": "✓", "stopped": "■", "timeout": "✗", "error": "✗"}


def lane_readout(update: LaneUpdate) -> str:
    """A Compare lane's readout: its metrics when done (else live progress), then how long its
    model took to load before the clock started, then how it shared the machine."""
    if update.metrics is not None:
        m = update.metrics
        lines = [f"✓ {m.summary()}"]
        if m.server:
            lines.append("server: " + ", ".join(f"{k} {v:.3g}" for k, v in m.server.items()))
    else:
        rate = f" · {update.tokens_per_s:.1f} tok/s" if update.tokens_per_s else ""
        icon = LANE_ICONS[update.status]
        lines = [f"{icon} {update.status} · {update.tokens} tokens{rate} · {update.elapsed_s:.1f} s"]
        if update.error:
            lines.append(update.error)
    if update.load_s:
        lines.append(f"loaded in {update.load_s:.1f} s (before the clock; not in TTFT)")
    if update.note:
        lines.append(update.note)
    return "  \n".join(lines)


# --- notes and errors -----------------------------------------------------------------


def section(
    title: str, content: str = "", *, status: str | None = None, kind: str = "note"
) -> gr.ChatMessage:
    metadata: dict[str, Any] = {"title": title, "id": kind}
    if status:
        metadata["status"] = status
    return gr.ChatMessage(role="assistant", content=content, metadata=metadata)  # type: ignore[arg-type]


def error_title(exc: BackendError) -> str:
    if isinstance(exc, BackendUnavailable):
        return f"⚠ {exc.backend} is unavailable"
    if isinstance(exc, ContextOverflow):
        return "⚠ The prompt does not fit the model's context"
    if isinstance(exc, ModelNotFound):
        return f"⚠ Model {exc.model!r} not found on {exc.backend}"
    if isinstance(exc, BackendResponseError) and exc.status:
        return f"⚠ {exc.backend} answered with an error (HTTP {exc.status})"
    return f"⚠ {exc.backend} failed"


def error_message(exc: BaseException) -> gr.ChatMessage:
    """What the user sees when a request fails; it is open by default and never sent to the model."""
    if isinstance(exc, BackendError):
        body = exc.message + (f"\n\n**What to do:** {exc.hint}" if exc.hint else "")
        return section(error_title(exc), body, kind="error")
    return section("⚠ Something went wrong", f"{type(exc).__name__}: {exc}", kind="error")


def invalid_input_message(problem: str) -> gr.ChatMessage:
    return section("⚠ Cannot send this request", problem, kind="error")


def verification_section(verification: Any) -> gr.ChatMessage:
    """The Math tab's sympy verdict under an answer (marks that need no emoji font)."""
    body = render_markdown(verification).removeprefix("**Verification**").strip()
    mark = {"correct": "✓", "incorrect": "✗"}.get(verification.final, "?")
    return section(f"{mark} Verification: {verification.final}", body, status="done", kind="verify")


def stopped_note() -> gr.ChatMessage:
    return section("■ Stopped: the answer above is partial", status="done", kind="stopped")


def waiting_note(ahead: int, backend: str) -> gr.ChatMessage:
    who = "1 request" if ahead == 1 else f"{ahead} requests"
    return section(f"… Waiting for {backend}: {who} ahead of you", status="pending", kind="waiting")


# --- one assistant turn -----------------------------------------------------------------


def _call_title(call: ToolCall) -> str:
    args = json.dumps(call.arguments, ensure_ascii=False)
    if len(args) > 80:
        args = args[:77] + "..."
    return f"Tool: {call.name}({args})"


@dataclasses.dataclass
class AnswerView:
    """Accumulates the events of one assistant turn (possibly several tool rounds) into messages."""

    parts: list[gr.ChatMessage] = dataclasses.field(default_factory=list)
    answer: str = ""
    """All answer text of the turn, for the API and for verification."""
    metrics: list[Metrics] = dataclasses.field(default_factory=list)
    tool_calls: list[ToolCall] = dataclasses.field(default_factory=list)
    """Calls of the current round, waiting to be run."""
    _splitter: ThinkSplitter = dataclasses.field(default_factory=ThinkSplitter, repr=False)
    _thinking_since: float = 0.0

    def _open(self, kind: str) -> gr.ChatMessage | None:
        if not self.parts:
            return None
        last = self.parts[-1]
        last_kind = (last.metadata or {}).get("id", "text") if last.metadata else "text"
        return last if last_kind == kind else None

    def _close_thinking(self) -> None:
        last = self._open("thinking")
        if last is not None:
            last.metadata["status"] = "done"
            last.metadata["duration"] = round(time.monotonic() - self._thinking_since, 1)

    def _text(self, text: str) -> None:
        self._close_thinking()
        current = self._open("text")
        if current is None:
            self.parts.append(gr.ChatMessage(role="assistant", content=text))
        else:
            current.content = str(current.content) + text
        self.answer += text

    def _thinking(self, text: str) -> None:
        current = self._open("thinking")
        if current is None:
            self._thinking_since = time.monotonic()
            self.parts.append(section(THINKING_TITLE, text, status="pending", kind="thinking"))
        else:
            current.content = str(current.content) + text

    def _pieces(self, pieces: list[Piece]) -> None:
        for kind, text in pieces:
            self._text(text) if kind == "text" else self._thinking(text)

    def apply(self, event: ChatEvent) -> None:
        if isinstance(event, TextDelta):
            self._pieces(self._splitter.feed(event.text))  # <think> inline: shown apart
        elif isinstance(event, ReasoningDelta):
            self._thinking(event.text)
        elif isinstance(event, ToolCallEvent):
            self._pieces(self._splitter.flush())
            self._close_thinking()
            self.tool_calls.append(event.call)
            self.parts.append(section(_call_title(event.call), "running…", status="pending", kind="tool"))
        elif isinstance(event, Done):
            self._pieces(self._splitter.flush())
            self._close_thinking()
            self.metrics.append(event.metrics)
            self.parts.append(section(metrics_line(event.metrics), kind="metrics"))

    def record_tool_outcome(self, outcome: ToolOutcome) -> None:
        """Fill the section of the call with its result, or with why it was refused."""
        title = _call_title(outcome.call)
        for part in reversed(self.parts):
            meta = part.metadata or {}
            if meta.get("title") == title and meta.get("status") == "pending":
                verdict = "Result" if outcome.ok else "Refused"
                part.content = f"**{verdict}:** {outcome.output}"
                part.metadata["status"] = "done"
                if not outcome.ok:
                    part.metadata["title"] = title + " — refused"
                break

    def add(self, message: gr.ChatMessage) -> None:
        self.parts.append(message)

    def messages(self) -> list[gr.ChatMessage]:
        """Snapshots: later events mutate the parts, not what was already handed out."""
        return [dataclasses.replace(p, metadata=copy.copy(p.metadata)) for p in self.parts]

    @property
    def last_metrics(self) -> Metrics | None:
        return self.metrics[-1] if self.metrics else None
