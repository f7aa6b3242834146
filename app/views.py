"""Holders for the components of a chat tab, shared by the modules that wire them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, get_args

import gradio as gr

from presets import Tab

CHAT_TABS: tuple[str, ...] = get_args(Tab)
"""The chat tabs, in the order the app shows them (presets' ``tab`` names them)."""


@dataclass
class ChatTab:
    """The components of one chat tab."""

    name: str
    preset: gr.Dropdown
    backend: gr.Dropdown
    panel: list[Any]
    """One control per field of :mod:`runtime.panel_fields`, in the table's order."""
    chatbot: gr.Chatbot
    prompt: gr.Textbox
    examples: gr.Dataset
    status: gr.Markdown

    def restorable(self) -> list[gr.components.Component]:
        return [self.preset, self.backend, *self.panel, self.prompt, self.examples, self.status]


@dataclass
class PresetControls:
    """The tab's "Share and presets" panel."""

    share_btn: gr.Button
    share_url: gr.Textbox
    save_name: gr.Textbox
    save_btn: gr.Button
    export_btn: gr.Button
    export_file: gr.File
    import_btn: gr.UploadButton


@dataclass
class ChatControls:
    """The tab's chats kept in the browser: the store, the turns' records, the "Chats" panel."""

    store: gr.BrowserState
    turns: gr.State
    """One {metrics, verification} per user message of the chat shown."""
    picker: gr.Dropdown
    title: gr.Textbox
    rename_btn: gr.Button
    delete_btn: gr.Button
    export_json: gr.Button
    export_md: gr.Button
    file: gr.File
    import_btn: gr.UploadButton
    runs: list[Any] = field(default_factory=list)
    """The events after which the chat is saved."""
    branches: list[Any] = field(default_factory=list)
    """The events that branch the chat (an edited message): saved as a new chat beside the old."""
    new_btn: Any = None
    cancels: list[Any] = field(default_factory=list)


def examples_of(preset: Any) -> list[list[str]]:
    return [[e.prompt] for e in preset.examples]
