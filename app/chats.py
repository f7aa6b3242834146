"""Chats kept in the browser, and their JSON / Markdown files (pure: no gradio, no I/O).

A tab's store is ``{"chats": [ChatRecord...], "current": id | None}``, kept in the browser's
localStorage by ``gr.BrowserState`` (encrypted with the app's browser secret); the server keeps
nothing. The store is capped (``chat_store_kb``) below what browsers allow an origin, so a full
store is refused here with a message instead of failing silently in the browser.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.render import field_of, text_of
from runtime.errors import describe_validation
from runtime.markdown_text import shown

FORMAT: Literal["slm-playground-chat"] = "slm-playground-chat"
TITLE_CHARS = 60


class ChatMessageRecord(BaseModel):
    """One message as the chat shows it. Sections (thinking, metrics, verification, notes)
    carry a ``metadata.title`` and are never sent to the model."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str = Field(max_length=5_000_000)
    """No tighter than the store's own cap: a long answer is kept, or the store says it is full."""
    metadata: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    """On the answer: the turn's metrics (backend, model, tokens, ttft_s, tokens/s)."""
    verification: dict[str, Any] | None = None
    """On the answer of a math turn: the sympy verdict (final + claims)."""


class ChatRecord(BaseModel):
    """A chat: what a store keeps and what a JSON export holds."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["slm-playground-chat"] = FORMAT
    version: Literal[1] = 1
    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:10], max_length=40)
    title: str = Field("New chat", max_length=200)
    created: float = Field(default_factory=time.time)
    updated: float = Field(default_factory=time.time)
    tab: str = ""
    preset: str = ""
    backend: str = ""
    model: str = ""
    settings: dict[str, Any] = Field(default_factory=dict)
    """The settings panel when the chat was last saved (system prompt, sampling, tools, JSON)."""
    messages: list[ChatMessageRecord] = Field(default_factory=list, max_length=100_000)


class ChatImportError(ValueError):
    """A chat file that cannot be imported; the message says what is wrong."""


def messages_of(history: list[Any], turns: list[dict[str, Any]]) -> list[ChatMessageRecord]:
    """The Chatbot's value as records; each turn's metrics and verdict go on its answer (the
    first plain assistant message after the turn's user message)."""
    out: list[ChatMessageRecord] = []
    turn, pending = -1, False
    for item in history or []:
        role = field_of(item, "role")
        if role not in ("user", "assistant"):
            continue
        metadata = {k: v for k, v in (field_of(item, "metadata") or {}).items() if v is not None}
        record = ChatMessageRecord(
            role=role, content=text_of(field_of(item, "content")), metadata=metadata or None
        )
        if role == "user":
            turn, pending = turn + 1, True
        elif pending and not metadata.get("title") and 0 <= turn < len(turns):
            record.metrics = turns[turn].get("metrics")
            record.verification = turns[turn].get("verification")
            pending = False
        out.append(record)
    return out


def history_of(record: ChatRecord) -> list[dict[str, Any]]:
    """Records back to the Chatbot's value."""
    history = []
    for m in record.messages:
        item: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.metadata:
            item["metadata"] = m.metadata
        history.append(item)
    return history


def turns_of(record: ChatRecord) -> list[dict[str, Any]]:
    """One {metrics, verification} per user message, as the chat tab keeps them."""
    turns: list[dict[str, Any]] = []
    for m in record.messages:
        if m.role == "user":
            turns.append({"metrics": None, "verification": None})
        elif (m.metrics or m.verification) and turns:
            turns[-1] = {"metrics": m.metrics, "verification": m.verification}
    return turns


def title_for(history: list[Any]) -> str:
    for item in history or []:
        if field_of(item, "role") == "user":
            text = " ".join(text_of(field_of(item, "content")).split())
            return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1] + "…"
    return "New chat"


def user_turns(history: list[Any]) -> int:
    return sum(1 for item in history or [] if field_of(item, "role") == "user")


# --- the store -------------------------------------------------------------------------------


def load_store(raw: Any) -> tuple[list[ChatRecord], str | None]:
    """The chats in a browser's store that validate (see :func:`unreadable` for the others)."""
    if not isinstance(raw, dict):
        return [], None
    chats = []
    for item in raw.get("chats") or []:
        try:
            chats.append(ChatRecord.model_validate(item))
        except ValidationError:
            continue
    current = raw.get("current")
    return chats, current if any(c.id == current for c in chats) else None


def unreadable(raw: Any) -> list[tuple[Any, str]]:
    """Saved chats that do not validate (a newer or damaged record), each with why; the store
    keeps them (:func:`dump_store`) so nothing is lost, and the tab names them."""
    found = []
    for item in (raw.get("chats") or []) if isinstance(raw, dict) else []:
        try:
            ChatRecord.model_validate(item)
        except ValidationError as exc:
            found.append((item, describe_validation(exc, ChatRecord)))
    return found


def unreadable_note(raw: Any) -> str:
    """What the tab says about chats it cannot show; empty when there are none."""
    broken = unreadable(raw)
    if not broken:
        return ""
    names = []
    for item, why in broken[:3]:
        title = item.get("title") if isinstance(item, dict) else None
        names.append(f"**{title if isinstance(title, str) else 'untitled'}** ({why})")
    more = f" and {len(broken) - 3} more" if len(broken) > 3 else ""
    return (
        f"⚠ {len(broken)} saved chat{'s' if len(broken) > 1 else ''} could not be opened: "
        + "; ".join(names)
        + more
        + ". They stay in this browser's storage."
    )


def dump_store(chats: list[ChatRecord], current: str | None, raw: Any = None) -> dict[str, Any]:
    """The store to write; the records of ``raw`` that do not validate are carried over."""
    kept = [item for item, _ in unreadable(raw)]
    return {"chats": [c.model_dump(mode="json") for c in chats] + kept, "current": current}


def store_kb(store: dict[str, Any]) -> float:
    return len(json.dumps(store, ensure_ascii=False).encode("utf-8")) / 1000


class StoreFull(Exception):
    def __init__(self, used_kb: float, cap_kb: int) -> None:
        super().__init__(
            f"This browser's chat storage is full ({used_kb:.0f} KB of {cap_kb} KB), so this chat "
            "was not saved: export chats you want to keep, then delete some."
        )


def upsert(store: Any, record: ChatRecord, cap_kb: int, *, make_current: bool = True) -> dict[str, Any]:
    """The store with ``record`` added or replaced (newest first); raises StoreFull over the cap."""
    chats, current = load_store(store)
    chats = [record] + [c for c in chats if c.id != record.id]
    new = dump_store(chats, record.id if make_current else current, store)
    used = store_kb(new)
    if used > cap_kb:
        raise StoreFull(used, cap_kb)
    return new


def choices(store: Any) -> list[tuple[str, str]]:
    """(label, id) for the chat picker: title · time · backend/model."""
    chats, _ = load_store(store)
    return [(label_of(c), c.id) for c in chats]


def label_of(chat: ChatRecord) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(chat.updated))
    where = "/".join(x for x in (chat.backend, chat.model) if x)
    return f"{chat.title} · {when} UTC" + (f" · {where}" if where else "")


# --- files -----------------------------------------------------------------------------------


def parse_chat_file(raw: bytes | str) -> ChatRecord:
    """An exported chat; every failure is a ChatImportError naming what is wrong."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ChatImportError(f"the file is not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ChatImportError(f'this is not an exported chat (it needs "format": "{FORMAT}")')
    try:
        record = ChatRecord.model_validate(data)
    except ValidationError as exc:
        raise ChatImportError(describe_validation(exc, ChatRecord)) from None
    return record.model_copy(update={"id": uuid.uuid4().hex[:10]})  # a copy, never an overwrite


def to_json(record: ChatRecord) -> str:
    return record.model_dump_json(indent=2)


def to_markdown(record: ChatRecord) -> str:
    """A readable transcript: sections as quoted blocks, metrics and verdicts under answers."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(record.updated))
    lines = [f"# {record.title}", "", f"*{when} · preset {record.preset or '-'} · "
             f"{record.backend or '-'} / {record.model or '-'}*", ""]  # fmt: skip
    for m in record.messages:
        title = (m.metadata or {}).get("title")
        text = shown(m.content)  # the file renders as the chat does
        if title:
            lines += [f"> **{title}**", *(f"> {line}" for line in text.splitlines()), ""]
            continue
        lines += [f"**{'You' if m.role == 'user' else 'Assistant'}:**", "", text, ""]
        if m.verification:
            lines += [f"*Verification: {m.verification.get('final', '?')}*", ""]
    return "\n".join(lines).rstrip() + "\n"
