"""Holders for the components of a chat tab, shared by the modules that wire them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr


@dataclass
class ChatTab:
    """The components of one chat tab."""

    name: str
    preset: gr.Dropdown
    backend: gr.Dropdown
    panel: list[Any]
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


def examples_of(preset: Any) -> list[list[str]]:
    return [[e.prompt] for e in preset.examples]
