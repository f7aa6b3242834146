"""One chat tab (Reasoning, Coding, Math): its components, and Send / Stop / Retry / Undo / Edit.

The turn itself runs in :mod:`app.turns` (paced and stopped by :mod:`app.pacing`); the chats
kept in the browser are wired by :mod:`app.chat_store`, the preset and sharing controls by
:mod:`app.preset_sharing`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from app.api import client_of, session_of
from app.chats import user_turns
from app.pacing import StopSignals, chat_states
from app.panel_controls import build_controls
from app.preset_actions import find_preset
from app.render import LATEX_DELIMITERS, WrittenChatbot, invalid_input_message, strip_last_turn, text_of
from app.turns import ChatService, TurnRecord
from app.views import ChatControls, ChatTab, PresetControls, examples_of
from presets import PresetCatalog, PresetError
from runtime.kinds import default_in_process
from runtime.markdown_text import written
from runtime.panel_fields import PanelValues, panel_fields

PROMPT_HINT = "Ask something… (Enter sends, Shift+Enter for a new line)"


def prompt_box(elem_id: str, placeholder: str = PROMPT_HINT, label: str | None = None) -> gr.Textbox:
    """A prompt box where Enter sends and Shift+Enter adds a line: Gradio submits on Enter only
    for ``lines=1``; ``max_lines`` lets it grow as lines are added."""
    return gr.Textbox(
        placeholder=placeholder,
        label=label,
        show_label=label is not None,
        lines=1,
        max_lines=10,
        elem_id=elem_id,
    )


def build_chat_tab(
    name: str,
    service: ChatService,
    catalog: PresetCatalog,
    labels: list[str],
    my_presets: gr.BrowserState,
    chat_store: gr.BrowserState,
) -> tuple[ChatTab, PresetControls, ChatControls]:
    preset = catalog.for_tab(name)
    default_backend = (
        default_in_process() if default_in_process() in labels else (labels[0] if labels else None)
    )
    with gr.Row(elem_classes="chat-pickers"):
        preset_dd = gr.Dropdown(
            catalog.names(name), value=preset.name, label="Preset", scale=1, elem_id=f"preset-{name}"
        )
        backend_dd = gr.Dropdown(
            labels, value=default_backend, label="Backend", scale=1, elem_id=f"backend-{name}"
        )
    with gr.Row(elem_classes="chat-row"):
        with gr.Column(scale=3, min_width=300):
            view, buttons = _chat_column(name, preset, preset_dd, backend_dd)
        with gr.Column(scale=1, min_width=260):
            chats = _chats_panel(name, chat_store)
            with gr.Accordion("Settings", open=True):
                view.panel = build_controls(
                    panel_fields(), PanelValues.of(preset), name, service.settings.max_new_tokens_cap
                )
            controls = _share_panel(name)
    chats.runs = _wire_chat(view, chats, service, catalog, my_presets, buttons)
    return view, controls, chats


@dataclass
class TurnButtons:
    send: gr.Button
    stop: gr.Button
    regen: gr.Button
    new: gr.Button


def _chat_column(
    name: str, preset: Any, preset_dd: gr.Dropdown, backend_dd: gr.Dropdown
) -> tuple[ChatTab, TurnButtons]:
    """The chat, its prompt box, buttons, examples and status line (the panel comes later)."""
    chatbot = WrittenChatbot(
        label=f"{name.title()} chat",
        height=520,
        latex_delimiters=LATEX_DELIMITERS,
        buttons=["copy", "copy_all"],
        feedback_options=None,
        editable="user",
        elem_id=f"chat-{name}",
    )
    prompt = prompt_box(f"prompt-{name}")
    with gr.Row(elem_classes="chat-buttons"):
        buttons = TurnButtons(
            send=gr.Button("Send", variant="primary", min_width=60, elem_id=f"send-{name}"),
            stop=gr.Button("Stop", variant="stop", min_width=60, elem_id=f"stop-{name}"),
            regen=gr.Button("Regenerate", min_width=60, elem_id=f"regen-{name}"),
            new=gr.Button("New chat", min_width=60, elem_id=f"new-{name}"),
        )
    examples = gr.Dataset(
        components=[gr.Textbox(visible=False)],
        samples=examples_of(preset),
        label="Examples (click to send)",
        elem_id=f"examples-{name}",
    )
    status = gr.Markdown(preset.description, elem_id=f"status-{name}")
    return ChatTab(name, preset_dd, backend_dd, [], chatbot, prompt, examples, status), buttons


def _chats_panel(name: str, chat_store: gr.BrowserState) -> ChatControls:
    with gr.Accordion("Chats (kept in this browser)", open=False, elem_id=f"chats-panel-{name}"):
        picker = gr.Dropdown([], label="Open a chat", elem_id=f"chats-{name}")
        title = gr.Textbox(label="Title", max_lines=1, elem_id=f"chat-title-{name}")
        with gr.Row():
            rename = gr.Button("Rename", size="sm", min_width=80, elem_id=f"rename-{name}")
            delete = gr.Button("Delete", size="sm", min_width=80, variant="stop", elem_id=f"delete-{name}")
        with gr.Row():
            export_json = gr.Button("Export JSON", size="sm", min_width=80, elem_id=f"export-json-{name}")
            export_md = gr.Button("Export Markdown", size="sm", min_width=80, elem_id=f"export-md-{name}")
        chat_file = gr.File(label="Chat file", visible=False, elem_id=f"chat-file-{name}")
        import_chat = gr.UploadButton(
            "Import chat (.json)", file_types=[".json"], size="sm", elem_id=f"import-chat-{name}"
        )
    return ChatControls(
        chat_store,
        gr.State([]),
        picker,
        title,
        rename,
        delete,
        export_json,
        export_md,
        chat_file,
        import_chat,
    )


def _share_panel(name: str) -> PresetControls:
    with gr.Accordion("Share and presets", open=False, elem_id=f"share-panel-{name}"):
        share_btn = gr.Button("Make share link", size="sm", elem_id=f"share-{name}")
        share_url = gr.Textbox(label="Share link", buttons=["copy"], elem_id=f"share-url-{name}")
        save_name = gr.Textbox(label="Save current settings as", placeholder="my preset name")
        save_btn = gr.Button("Save as my preset (this browser)", size="sm")
        export_btn = gr.Button("Export preset file", size="sm")
        export_file = gr.File(label="Preset file", visible=False)
        import_btn = gr.UploadButton(
            "Import preset (.json)", file_types=[".json"], size="sm", elem_id=f"import-{name}"
        )
    return PresetControls(share_btn, share_url, save_name, save_btn, export_btn, export_file, import_btn)


@dataclass
class TurnHandlers:
    """One chat tab's turn handlers (Send, Regenerate, Edit, Undo, Stop): their inputs are the
    backend, the panel's values (in table order), the preset and the browser's presets."""

    view: ChatTab
    service: ChatService
    catalog: PresetCatalog
    stops: StopSignals = field(default_factory=StopSignals)

    def reference(self, preset_name: str, mine: dict | None) -> Callable[[str], str | None]:
        try:
            found = find_preset(preset_name, self.catalog, mine)
        except PresetError:
            return lambda _prompt: None
        return found.reference_for

    def key(self, request: gr.Request) -> tuple[str, str]:
        return (request.session_hash or "", self.view.name)

    async def turn_from(self, request: gr.Request, prompt: str, earlier: list, turns: list, rest: tuple):
        """One turn after ``earlier``: yields (history, turns or skip); turns only at the end."""
        backend, *panel, preset_name, mine = rest
        record = TurnRecord()
        turn = self.service.respond(
            prompt,
            earlier,
            backend,
            PanelValues(*panel),
            self.reference(preset_name, mine)(prompt or ""),
            self.view.name == "math",
            client_of(request),
            session_of(request),
            record,
        )
        kept = list(turns or [])[: user_turns(earlier)]
        with self.stops.watch(self.key(request)) as stop_event:
            async for value in chat_states(turn, stop_event, earlier, self.service.settings.ui_refresh_s):
                yield value, gr.skip()
        if user_turns(value) > len(kept):
            kept.append({"metrics": record.metrics, "verification": record.verification})
        yield value, kept

    async def respond(self, request: gr.Request, prompt: str, history: list, turns: list, *rest: Any):
        if (prompt or "").strip() and (problem := self.service.refusal(prompt)):
            yield [*(history or []), invalid_input_message(problem)], gr.skip(), gr.skip()  # prompt stays
            return
        first = True
        async for value, kept in self.turn_from(request, prompt, list(history or []), turns, rest):
            yield value, ("" if first else gr.skip()), kept
            first = False

    async def regenerate(self, request: gr.Request, history: list, turns: list, *rest: Any):
        earlier, prompt = strip_last_turn(history or [])
        if prompt is None:
            yield gr.skip(), gr.skip()
            return
        async for value in self.turn_from(request, prompt, earlier, turns, rest):
            yield value

    async def edited(self, request: gr.Request, data: gr.EditData, history: list, turns: list, *rest: Any):
        """An edited user message: the chat continues from it (what came after is replaced)."""
        index = data.index if isinstance(data.index, int) else data.index[0]
        earlier = list(history or [])[:index]
        async for value in self.turn_from(request, written(text_of(data.value)), earlier, turns, rest):
            yield value

    @staticmethod
    def undo(history: list, turns: list):
        earlier, prompt = strip_last_turn(history or [])
        return earlier, prompt or "", list(turns or [])[: user_turns(earlier)]

    async def stop_turn(self, request: gr.Request) -> None:
        self.stops.stop(self.key(request))


def _wire_chat(
    view: ChatTab,
    chats: ChatControls,
    service: ChatService,
    catalog: PresetCatalog,
    my_presets: gr.BrowserState,
    buttons: TurnButtons,
) -> list[Any]:
    """Wire the turn events; returns them, so the chat store can save after each."""
    turns = TurnHandlers(view, service, catalog)
    rest_in = [view.backend, *view.panel, view.preset, my_presets]
    chat_inputs = [view.prompt, view.chatbot, chats.turns, *rest_in]
    history_in = [view.chatbot, chats.turns, *rest_in]
    to_chat, to_all = [view.chatbot, chats.turns], [view.chatbot, view.prompt, chats.turns]
    # An in-process model queues requests in its engine's scheduler (with a visible place in
    # line); Gradio itself must not serialise chats, or a remote backend would wait behind it.
    run: dict[str, Any] = {"concurrency_limit": None, "api_visibility": "private"}
    send_evt = buttons.send.click(turns.respond, chat_inputs, to_all, **run)
    submit_evt = view.prompt.submit(turns.respond, chat_inputs, to_all, **run)
    example_evt = view.examples.click(
        lambda sample: sample[0], view.examples, view.prompt, api_visibility="private", queue=False
    )
    example_run = example_evt.then(turns.respond, chat_inputs, to_all, **run)
    regen_evt = buttons.regen.click(turns.regenerate, history_in, to_chat, **run)
    retry_evt = view.chatbot.retry(turns.regenerate, history_in, to_chat, **run)
    edit_evt = view.chatbot.edit(turns.edited, history_in, to_chat, **run)
    undo_evt = view.chatbot.undo(turns.undo, [view.chatbot, chats.turns], to_all, api_visibility="private")
    # No ``cancels=`` here: the turn ends itself, so its stop note is the last update (see app.pacing).
    buttons.stop.click(turns.stop_turn, None, None, api_visibility="private", queue=False)
    chats.new_btn = buttons.new
    chats.cancels = [send_evt, submit_evt, example_run, regen_evt, retry_evt, edit_evt]
    chats.branches = [edit_evt]
    return [send_evt, submit_evt, example_run, regen_evt, retry_evt, undo_evt]
