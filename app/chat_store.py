"""A chat tab's chats kept in this browser: save after every turn, new / open / rename / delete,
export (JSON, Markdown) and import, and the open chat back after a reload. The records and the
files are :mod:`app.chats`; the store lives in the browser (``gr.BrowserState``), not here."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
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
from app.turns import PanelValues
from app.views import ChatControls, ChatTab
from runtime.errors import describe_validation

SETTING_NAMES = [f.name for f in PanelValues.__dataclass_fields__.values()]


def settings_of(
    record: ChatRecord, labels: list[str], preset_names: list[str], cap: int
) -> tuple[list[Any], str]:
    """Backend, preset and panel values for the chat's saved settings (skips for what is not
    here or does not validate), and a note on what could not be restored."""
    backend = record.backend if record.backend in labels else gr.skip()
    preset = record.preset if record.preset in preset_names else gr.skip()
    note = (
        "" if record.backend in labels or not record.backend else f" (backend {record.backend!r} is not here)"
    )
    panel: list[Any] = [gr.skip()] * len(SETTING_NAMES)
    if set(SETTING_NAMES) <= set(record.settings):
        values = [record.settings[name] for name in SETTING_NAMES]
        try:
            PanelValues(*values).options(cap)
            panel = values
        except (ValueError, TypeError):  # pydantic's and ours: keep the panel as it is
            note += " (its settings do not validate; the panel is unchanged)"
    return [backend, preset, *panel], note


def wire_chat_store(
    view: ChatTab, chats: ChatControls, cap_kb: int, labels: Callable[[str | None], list[str]], cap: int
) -> None:
    store, turns, picker, status = chats.store, chats.turns, chats.picker, view.status
    private: dict[str, Any] = {"api_visibility": "private"}
    preset_names = [str(c[1] if isinstance(c, tuple | list) else c) for c in view.preset.choices or []]
    setting_outputs = [view.backend, view.preset, *view.panel]

    def save(
        history: list, kept: list, raw: Any, preset: str, backend: str, *panel: Any, branch: bool = False
    ):
        """After a turn: the shown chat into the store (a new record for a new chat; for a
        branch, a new record beside the chat it came from, which stays as it was)."""
        if not history:
            return gr.skip(), gr.skip(), gr.skip()
        existing, current = load_store(raw)
        old = next((c for c in existing if c.id == current), None)
        if branch and old is not None:
            title = old.title if old.title.endswith("(branch)") else f"{old.title[:180]} (branch)"
            old = old.model_copy(update={"id": ChatRecord().id, "created": time.time(), "title": title})
        models = [t.get("metrics") or {} for t in kept or []]
        model = next((m.get("model") for m in reversed(models) if m.get("model")), "")
        try:
            record = ChatRecord(
                **({"id": old.id, "created": old.created, "title": old.title} if old else {}),
                tab=view.name,
                preset=preset or "",
                backend=backend or "",
                model=model or (old.model if old else ""),
                settings=dict(zip(SETTING_NAMES, panel, strict=False)),
                messages=messages_of(history, kept or []),
                updated=time.time(),
            )
            if old is None:
                record.title = title_for(history)
            new = upsert(raw, record, cap_kb)
        except StoreFull as exc:
            return gr.skip(), gr.skip(), f"⚠ {exc}"
        except ValidationError as exc:  # the chat stays on screen; say why it was not kept
            return gr.skip(), gr.skip(), f"⚠ This chat was not saved: {describe_validation(exc, ChatRecord)}"
        return new, gr.Dropdown(choices=choices(new), value=record.id), gr.skip()

    saved_from = [view.chatbot, turns, store, view.preset, view.backend, *view.panel]
    for event in chats.runs:
        event.then(save, saved_from, [store, picker, status], **private)

    def save_branch(*args: Any):
        return save(*args, branch=True)

    for event in chats.branches:
        event.then(save_branch, saved_from, [store, picker, status], **private)

    def new_chat(raw: Any):
        chats_, _ = load_store(raw)
        new = dump_store(chats_, None, raw)
        return [], [], "", new, gr.Dropdown(choices=choices(new), value=None), ""

    new_outputs = [view.chatbot, turns, view.prompt, store, picker, chats.title]
    chats.new_btn.click(new_chat, store, new_outputs, cancels=chats.cancels, **private)
    # The chat's own bin icon starts a new chat too (the saved one stays in the list).
    view.chatbot.clear(new_chat, store, new_outputs, cancels=chats.cancels, **private)

    def open_chat(chat_id: str, raw: Any, request: gr.Request):
        found, _ = load_store(raw)
        record = next((c for c in found if c.id == chat_id), None)
        if record is None:
            skips = [gr.skip()] * (4 + len(setting_outputs))
            return (*skips, "⚠ that chat is no longer here")
        new = dump_store(found, record.id, raw)
        restored, note = settings_of(record, labels(session_of(request)), preset_names, cap)
        opened = f"Opened **{record.title}** with its settings{note}."
        return (history_of(record), turns_of(record), new, record.title, *restored, opened)

    picker.input(
        open_chat,
        [picker, store],
        [view.chatbot, turns, store, chats.title, *setting_outputs, status],
        **private,
    )

    def rename(chat_id: str, title: str, raw: Any):
        found, current = load_store(raw)
        record = next((c for c in found if c.id == chat_id), None)
        if record is None or not (title or "").strip():
            return gr.skip(), gr.skip(), "⚠ open a chat and give it a title first"
        record.title = title.strip()[:200]
        new = dump_store(found, current, raw)
        return new, gr.Dropdown(choices=choices(new), value=chat_id), f"Renamed to **{record.title}**."

    chats.rename_btn.click(rename, [picker, chats.title, store], [store, picker, status], **private)

    def delete(chat_id: str, raw: Any):
        found, current = load_store(raw)
        if not any(c.id == chat_id for c in found):
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), "⚠ open the chat to delete first"
        kept = [c for c in found if c.id != chat_id]
        shown = chat_id == current
        new = dump_store(kept, None if shown else current, raw)
        return (
            new,
            gr.Dropdown(choices=choices(new), value=None),
            [] if shown else gr.skip(),
            [] if shown else gr.skip(),
            "Deleted the chat.",
        )

    chats.delete_btn.click(delete, [picker, store], [store, picker, view.chatbot, turns, status], **private)

    def export(kind: str):
        def run(history: list, kept: list, raw: Any, preset: str, backend: str, *panel: Any):
            if not history:
                return gr.File(visible=False), "⚠ nothing to export yet: the chat is empty"
            found, current = load_store(raw)
            old = next((c for c in found if c.id == current), None)
            record = ChatRecord(
                **({"id": old.id, "created": old.created, "title": old.title} if old else {}),
                tab=view.name,
                preset=preset or "",
                backend=backend or "",
                model=old.model if old else "",
                settings=dict(zip(SETTING_NAMES, panel, strict=False)),
                messages=messages_of(history, kept or []),
            )
            if old is None:
                record.title = title_for(history)
            folder = Path(tempfile.mkdtemp(prefix="slm-chat-"))
            stem = "".join(ch if ch.isalnum() else "-" for ch in record.title)[:40].strip("-") or "chat"
            path = folder / f"{stem}.{kind}"
            path.write_text(to_json(record) if kind == "json" else to_markdown(record), encoding="utf-8")
            return gr.File(value=str(path), visible=True), f"Exported **{record.title}** ({kind})."

        return run

    for button, kind in ((chats.export_json, "json"), (chats.export_md, "md")):
        button.click(export(kind), saved_from, [chats.file, status], **private)

    def import_chat(file: Any, raw: Any, request: gr.Request):
        path = getattr(file, "name", file)
        try:
            if not path:
                raise ChatImportError("no file was uploaded")
            record = parse_chat_file(Path(path).read_bytes()[:5_000_000])
            new = upsert(raw, record, cap_kb)
        except (ChatImportError, StoreFull, OSError) as exc:
            skip = [gr.skip()] * (5 + len(setting_outputs))
            return (*skip, f"⚠ Chat not imported: {exc}. Nothing was changed.")
        restored, note = settings_of(record, labels(session_of(request)), preset_names, cap)
        return (
            history_of(record),
            turns_of(record),
            new,
            gr.Dropdown(choices=choices(new), value=record.id),
            record.title,
            *restored,
            f"Imported **{record.title}** with its settings{note}.",
        )

    chats.import_btn.upload(
        import_chat,
        [chats.import_btn, store],
        [view.chatbot, turns, store, picker, chats.title, *setting_outputs, status],
        **private,
    )


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
