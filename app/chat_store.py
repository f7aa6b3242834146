"""A chat tab's chats kept in this browser: save after every turn, new / open / rename / delete,
export (JSON, Markdown) and import, and the open chat back after a reload. The records and the
files are :mod:`app.chats`; the store lives in the browser (``gr.BrowserState``), not here."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
from pydantic import ValidationError

from app.api import session_of
from app.chats import (
    ChatImportError,
    ChatRecord,
    StoreFull,
    choices,
    dump_store,
    history_of,
    load_store,
    messages_of,
    parse_chat_file,
    title_for,
    to_json,
    to_markdown,
    turns_of,
    unreadable_note,
    upsert,
)
from app.views import ChatControls, ChatTab
from runtime.errors import describe_validation
from runtime.panel_fields import PanelValues, panel_fields


def setting_names() -> list[str]:
    """The chat-store keys of a chat's settings: one per panel field."""
    return [spec.name for spec in panel_fields()]


def settings_of(
    record: ChatRecord, labels: list[str], preset_names: list[str], cap: int
) -> tuple[list[Any], str]:
    """Backend, preset and panel values for the chat's saved settings (skips for what is not
    here or does not validate; a field the chat was saved without takes its default), and a
    note on what could not be restored."""
    backend = record.backend if record.backend in labels else gr.skip()
    preset = record.preset if record.preset in preset_names else gr.skip()
    note = (
        "" if record.backend in labels or not record.backend else f" (backend {record.backend!r} is not here)"
    )
    names = setting_names()
    panel: list[Any] = [gr.skip()] * len(names)
    if saved := {name: record.settings[name] for name in names if name in record.settings}:
        try:
            values = PanelValues(**saved)
            values.options(cap)
            panel = list(values.as_tuple())
        except (ValueError, TypeError):  # pydantic's and ours: keep the panel as it is
            note += " (its settings do not validate; the panel is unchanged)"
    return [backend, preset, *panel], note


@dataclass
class ChatStoreHandlers:
    """One chat tab's store handlers. ``shown`` (the inputs of save and export) is the chat,
    its turns, the store, the preset, the backend and the panel's values in table order."""

    view: ChatTab
    chats: ChatControls
    cap_kb: int
    labels: Callable[[str | None], list[str]]
    cap: int
    preset_names: list[str] = field(init=False)

    def __post_init__(self) -> None:
        choices = self.view.preset.choices or []
        self.preset_names = [str(c[1] if isinstance(c, tuple | list) else c) for c in choices]

    def record_of(
        self, history: list, kept: list, raw: Any, preset: str, backend: str, panel: tuple, branch: bool
    ) -> ChatRecord:
        """The shown chat as a store record (the open chat's id and title; a new record for a
        new chat or a branch). Raises ValidationError for a chat that cannot be kept."""
        existing, current = load_store(raw)
        old = next((c for c in existing if c.id == current), None)
        if branch and old is not None:
            title = old.title if old.title.endswith("(branch)") else f"{old.title[:180]} (branch)"
            old = old.model_copy(update={"id": ChatRecord().id, "created": time.time(), "title": title})
        models = [t.get("metrics") or {} for t in kept or []]
        model = next((m.get("model") for m in reversed(models) if m.get("model")), "")
        record = ChatRecord(
            **({"id": old.id, "created": old.created, "title": old.title} if old else {}),
            tab=self.view.name,
            preset=preset or "",
            backend=backend or "",
            model=model or (old.model if old else ""),
            settings=dict(zip(setting_names(), panel, strict=False)),
            messages=messages_of(history, kept or []),
            updated=time.time(),
        )
        if old is None:
            record.title = title_for(history)
        return record

    def save(self, history: list, kept: list, raw: Any, preset: str, backend: str, *panel: Any):
        """After a turn: the shown chat into the store."""
        return self._save(history, kept, raw, preset, backend, panel, branch=False)

    def save_branch(self, history: list, kept: list, raw: Any, preset: str, backend: str, *panel: Any):
        """After an edit: a new record beside the chat it came from, which stays as it was."""
        return self._save(history, kept, raw, preset, backend, panel, branch=True)

    def _save(
        self, history: list, kept: list, raw: Any, preset: str, backend: str, panel: tuple, branch: bool
    ):
        if not history:
            return gr.skip(), gr.skip(), gr.skip()
        try:
            record = self.record_of(history, kept, raw, preset, backend, panel, branch)
            new = upsert(raw, record, self.cap_kb)
        except StoreFull as exc:
            return gr.skip(), gr.skip(), f"⚠ {exc}"
        except ValidationError as exc:  # the chat stays on screen; say why it was not kept
            return gr.skip(), gr.skip(), f"⚠ This chat was not saved: {describe_validation(exc, ChatRecord)}"
        return new, gr.Dropdown(choices=choices(new), value=record.id), gr.skip()

    @staticmethod
    def new_chat(raw: Any):
        chats_, _ = load_store(raw)
        new = dump_store(chats_, None, raw)
        return [], [], "", new, gr.Dropdown(choices=choices(new), value=None), ""

    def open_chat(self, chat_id: str, raw: Any, request: gr.Request):
        found, _ = load_store(raw)
        record = next((c for c in found if c.id == chat_id), None)
        if record is None:
            skips = [gr.skip()] * (4 + 2 + len(self.view.panel))
            return (*skips, "⚠ that chat is no longer here")
        new = dump_store(found, record.id, raw)
        restored, note = settings_of(record, self.labels(session_of(request)), self.preset_names, self.cap)
        opened = f"Opened **{record.title}** with its settings{note}."
        return (history_of(record), turns_of(record), new, record.title, *restored, opened)

    @staticmethod
    def rename(chat_id: str, title: str, raw: Any):
        found, current = load_store(raw)
        record = next((c for c in found if c.id == chat_id), None)
        if record is None or not (title or "").strip():
            return gr.skip(), gr.skip(), "⚠ open a chat and give it a title first"
        record.title = title.strip()[:200]
        new = dump_store(found, current, raw)
        return new, gr.Dropdown(choices=choices(new), value=chat_id), f"Renamed to **{record.title}**."

    @staticmethod
    def delete(chat_id: str, raw: Any):
        found, current = load_store(raw)
        if not any(c.id == chat_id for c in found):
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), "⚠ open the chat to delete first"
        kept = [c for c in found if c.id != chat_id]
        shown = chat_id == current
        new = dump_store(kept, None if shown else current, raw)
        cleared = [] if shown else gr.skip()
        return new, gr.Dropdown(choices=choices(new), value=None), cleared, cleared, "Deleted the chat."

    def export(self, kind: str) -> Callable[..., Any]:
        def run(history: list, kept: list, raw: Any, preset: str, backend: str, *panel: Any):
            if not history:
                return gr.File(visible=False), "⚠ nothing to export yet: the chat is empty"
            record = self.record_of(history, kept, raw, preset, backend, panel, branch=False)
            folder = Path(tempfile.mkdtemp(prefix="slm-chat-"))
            stem = "".join(ch if ch.isalnum() else "-" for ch in record.title)[:40].strip("-") or "chat"
            path = folder / f"{stem}.{kind}"
            path.write_text(to_json(record) if kind == "json" else to_markdown(record), encoding="utf-8")
            return gr.File(value=str(path), visible=True), f"Exported **{record.title}** ({kind})."

        return run

    def import_chat(self, file: Any, raw: Any, request: gr.Request):
        path = getattr(file, "name", file)
        try:
            if not path:
                raise ChatImportError("no file was uploaded")
            record = parse_chat_file(Path(path).read_bytes()[:5_000_000])
            new = upsert(raw, record, self.cap_kb)
        except (ChatImportError, StoreFull, OSError) as exc:
            skip = [gr.skip()] * (5 + 2 + len(self.view.panel))
            return (*skip, f"⚠ Chat not imported: {exc}. Nothing was changed.")
        restored, note = settings_of(record, self.labels(session_of(request)), self.preset_names, self.cap)
        return (
            history_of(record),
            turns_of(record),
            new,
            gr.Dropdown(choices=choices(new), value=record.id),
            record.title,
            *restored,
            f"Imported **{record.title}** with its settings{note}.",
        )


def wire_chat_store(
    view: ChatTab, chats: ChatControls, cap_kb: int, labels: Callable[[str | None], list[str]], cap: int
) -> None:
    handlers = ChatStoreHandlers(view, chats, cap_kb, labels, cap)
    store, turns, picker, status = chats.store, chats.turns, chats.picker, view.status
    private: dict[str, Any] = {"api_visibility": "private"}
    settings_out = [view.backend, view.preset, *view.panel]
    shown = [view.chatbot, turns, store, view.preset, view.backend, *view.panel]
    for event in chats.runs:
        event.then(handlers.save, shown, [store, picker, status], **private)
    for event in chats.branches:
        event.then(handlers.save_branch, shown, [store, picker, status], **private)
    new_out = [view.chatbot, turns, view.prompt, store, picker, chats.title]
    chats.new_btn.click(handlers.new_chat, store, new_out, cancels=chats.cancels, **private)
    # The chat's own bin icon starts a new chat too (the saved one stays in the list).
    view.chatbot.clear(handlers.new_chat, store, new_out, cancels=chats.cancels, **private)
    open_out = [view.chatbot, turns, store, chats.title, *settings_out, status]
    picker.input(handlers.open_chat, [picker, store], open_out, **private)
    chats.rename_btn.click(handlers.rename, [picker, chats.title, store], [store, picker, status], **private)
    delete_out = [store, picker, view.chatbot, turns, status]
    chats.delete_btn.click(handlers.delete, [picker, store], delete_out, **private)
    for button, kind in ((chats.export_json, "json"), (chats.export_md, "md")):
        button.click(handlers.export(kind), shown, [chats.file, status], **private)
    import_out = [view.chatbot, turns, store, picker, chats.title, *settings_out, status]
    chats.import_btn.upload(handlers.import_chat, [chats.import_btn, store], import_out, **private)


def restore_chats(chats: ChatControls, view: ChatTab):
    """demo.load: the chat list, and the chat that was open, back after a reload; saved chats
    that cannot be opened are named in the tab's status line with why."""

    def restore(raw: Any):
        found, current = load_store(raw)
        record = next((c for c in found if c.id == current), None)
        picked = gr.Dropdown(choices=choices(raw), value=record.id if record else None)
        note = unreadable_note(raw) or gr.skip()
        if record is None:
            return picked, gr.skip(), gr.skip(), gr.skip(), note
        return picked, history_of(record), turns_of(record), record.title, note

    return restore, [chats.store], [chats.picker, view.chatbot, chats.turns, chats.title, view.status]
