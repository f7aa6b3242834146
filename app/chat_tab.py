"""One chat tab (Reasoning, Coding, Math): its components, and Send / Stop / Retry / Undo / Edit.

The turn itself runs in :mod:`app.turns` (paced and stopped by :mod:`app.pacing`); the chats
kept in the browser are wired by :mod:`app.chat_store`, the preset and sharing controls by
:mod:`app.preset_sharing`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from app.api import client_of, session_of
from app.chats import user_turns
from app.pacing import StopSignals, chat_states
from app.preset_actions import find_preset
from app.render import LATEX_DELIMITERS, WrittenChatbot, invalid_input_message, strip_last_turn, text_of
from app.turns import ChatService, PanelValues, TurnRecord
from app.views import ChatControls, ChatTab, PresetControls, examples_of
from presets import PresetCatalog, PresetError
from runtime.kinds import default_in_process
from runtime.markdown_text import written

PROMPT_HINT = "Ask something… (Enter sends, Shift+Enter for a new line)"
SCHEMA_HINT = '{"type": "object", "properties": {"answer": {"type": "number"}}, "required": ["answer"]}'


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
    settings = service.settings
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
                send = gr.Button("Send", variant="primary", min_width=60, elem_id=f"send-{name}")
                stop = gr.Button("Stop", variant="stop", min_width=60, elem_id=f"stop-{name}")
                regen = gr.Button("Regenerate", min_width=60, elem_id=f"regen-{name}")
                new = gr.Button("New chat", min_width=60, elem_id=f"new-{name}")
            examples = gr.Dataset(
                components=[gr.Textbox(visible=False)],
                samples=examples_of(preset),
                label="Examples (click to send)",
                elem_id=f"examples-{name}",
            )
            status = gr.Markdown(preset.description, elem_id=f"status-{name}")
        with gr.Column(scale=1, min_width=260):
            with gr.Accordion("Chats (kept in this browser)", open=False, elem_id=f"chats-panel-{name}"):
                picker = gr.Dropdown([], label="Open a chat", elem_id=f"chats-{name}")
                title = gr.Textbox(label="Title", max_lines=1, elem_id=f"chat-title-{name}")
                with gr.Row():
                    rename = gr.Button("Rename", size="sm", min_width=80, elem_id=f"rename-{name}")
                    delete = gr.Button(
                        "Delete", size="sm", min_width=80, variant="stop", elem_id=f"delete-{name}"
                    )
                with gr.Row():
                    export_json = gr.Button(
                        "Export JSON", size="sm", min_width=80, elem_id=f"export-json-{name}"
                    )
                    export_md = gr.Button(
                        "Export Markdown", size="sm", min_width=80, elem_id=f"export-md-{name}"
                    )
                chat_file = gr.File(label="Chat file", visible=False, elem_id=f"chat-file-{name}")
                import_chat = gr.UploadButton(
                    "Import chat (.json)", file_types=[".json"], size="sm", elem_id=f"import-chat-{name}"
                )
            with gr.Accordion("Settings", open=True):
                system = gr.Textbox(
                    preset.system_prompt, label="System prompt", lines=6, elem_id=f"system-{name}"
                )
                temperature = gr.Slider(
                    0,
                    2,
                    preset.options.temperature,
                    step=0.05,
                    label="Temperature",
                    elem_id=f"temperature-{name}",
                )
                top_p = gr.Slider(0.05, 1, preset.options.top_p, step=0.05, label="Top p")
                top_k = gr.Slider(0, 200, preset.options.top_k, step=1, label="Top k (0 = off)")
                max_new = gr.Slider(
                    16,
                    settings.max_new_tokens_cap,
                    min(preset.options.max_new_tokens, settings.max_new_tokens_cap),
                    step=16,
                    label="Max new tokens",
                )
                seed = gr.Number(
                    -1 if preset.options.seed is None else preset.options.seed,
                    precision=0,
                    minimum=-1,
                    label="Seed (-1 = random)",
                )
                tools = gr.Checkbox(preset.tools, label="Offer tools (calculator, circle area)")
                json_output, json_schema = json_controls(preset, f"{name}")
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
    panel = [system, temperature, top_p, top_k, max_new, seed, tools, json_output, json_schema]
    view = ChatTab(name, preset_dd, backend_dd, panel, chatbot, prompt, examples, status)
    chats = ChatControls(
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
    runs = _wire_chat(view, chats, service, catalog, my_presets, send, stop, regen, new)
    controls = PresetControls(share_btn, share_url, save_name, save_btn, export_btn, export_file, import_btn)
    chats.runs = runs
    return view, controls, chats


def json_controls(preset: Any, suffix: str) -> tuple[gr.Checkbox, gr.Textbox]:
    """The "JSON output" switch and its optional schema (a constrained answer on backends that
    support it: the in-process model, vLLM, Ollama, OpenAI)."""
    values = PanelValues.of(preset) if preset is not None else None
    json_output = gr.Checkbox(
        bool(values and values.json_output),
        label="JSON output (the answer is one JSON value)",
        elem_id=f"json-output-{suffix}",
    )
    json_schema = gr.Textbox(
        values.json_schema if values else "",
        label="JSON schema (optional)",
        placeholder=SCHEMA_HINT,
        lines=2,
        max_lines=12,
        visible=bool(values and values.json_output),
        elem_id=f"json-schema-{suffix}",
    )
    json_output.change(
        lambda on: gr.Textbox(visible=bool(on)),
        json_output,
        json_schema,
        api_visibility="private",
        queue=False,
    )
    return json_output, json_schema


def _wire_chat(
    view: ChatTab,
    chats: ChatControls,
    service: ChatService,
    catalog: PresetCatalog,
    my_presets: gr.BrowserState,
    send: gr.Button,
    stop: gr.Button,
    regen: gr.Button,
    new: gr.Button,
) -> list[Any]:
    """Wire the turn events; returns them, so the chat store can save after each."""
    verify = view.name == "math"
    stops = StopSignals()
    refresh = service.settings.ui_refresh_s

    def reference(preset_name: str, mine: dict | None) -> Callable[[str], str | None]:
        try:
            found = find_preset(preset_name, catalog, mine)
        except PresetError:
            return lambda _prompt: None
        return found.reference_for

    def key(request: gr.Request) -> tuple[str, str]:
        return (request.session_hash or "", view.name)

    async def turn_from(request: gr.Request, prompt: str, earlier: list, turns: list, rest: tuple):
        """One turn after ``earlier``: yields (history, turns or skip); turns only at the end."""
        backend, *panel, preset_name, mine = rest
        panel_values, ref = PanelValues(*panel), reference(preset_name, mine)(prompt or "")
        record = TurnRecord()
        turn = service.respond(
            prompt,
            earlier,
            backend,
            panel_values,
            ref,
            verify,
            client_of(request),
            session_of(request),
            record,
        )
        kept = list(turns or [])[: user_turns(earlier)]
        with stops.watch(key(request)) as stop_event:
            async for value in chat_states(turn, stop_event, earlier, refresh):
                yield value, gr.skip()
        if user_turns(value) > len(kept):
            kept.append({"metrics": record.metrics, "verification": record.verification})
        yield value, kept

    async def respond(request: gr.Request, prompt: str, history: list, turns: list, *rest: Any):
        if (prompt or "").strip() and (problem := service.refusal(prompt)):
            yield [*(history or []), invalid_input_message(problem)], gr.skip(), gr.skip()  # prompt stays
            return
        first = True
        async for value, kept in turn_from(request, prompt, list(history or []), turns, rest):
            yield value, ("" if first else gr.skip()), kept
            first = False

    async def regenerate(request: gr.Request, history: list, turns: list, *rest: Any):
        earlier, prompt = strip_last_turn(history or [])
        if prompt is None:
            yield gr.skip(), gr.skip()
            return
        async for value in turn_from(request, prompt, earlier, turns, rest):
            yield value

    async def edited(request: gr.Request, data: gr.EditData, history: list, turns: list, *rest: Any):
        """An edited user message: the chat continues from it (what came after is replaced)."""
        index = data.index if isinstance(data.index, int) else data.index[0]
        earlier = list(history or [])[:index]
        async for value in turn_from(request, written(text_of(data.value)), earlier, turns, rest):
            yield value

    def undo(history: list, turns: list):
        earlier, prompt = strip_last_turn(history or [])
        return earlier, prompt or "", list(turns or [])[: user_turns(earlier)]

    async def stop_turn(request: gr.Request) -> None:
        stops.stop(key(request))

    rest_in = [view.backend, *view.panel, view.preset, my_presets]
    chat_inputs = [view.prompt, view.chatbot, chats.turns, *rest_in]
    history_in = [view.chatbot, chats.turns, *rest_in]
    to_chat, to_all = [view.chatbot, chats.turns], [view.chatbot, view.prompt, chats.turns]
    # The in-process model is queued by service.gate (with a visible "waiting" note); Gradio
    # itself must not serialise chats, or a remote backend would wait behind the local model.
    run: dict[str, Any] = {"concurrency_limit": None, "api_visibility": "private"}
    send_evt = send.click(respond, chat_inputs, to_all, **run)
    submit_evt = view.prompt.submit(respond, chat_inputs, to_all, **run)
    example_evt = view.examples.click(
        lambda sample: sample[0], view.examples, view.prompt, api_visibility="private", queue=False
    )
    example_run = example_evt.then(respond, chat_inputs, to_all, **run)
    regen_evt = regen.click(regenerate, history_in, to_chat, **run)
    retry_evt = view.chatbot.retry(regenerate, history_in, to_chat, **run)
    edit_evt = view.chatbot.edit(edited, history_in, to_chat, **run)
    undo_evt = view.chatbot.undo(undo, [view.chatbot, chats.turns], to_all, api_visibility="private")
    running = [send_evt, submit_evt, example_run, regen_evt, retry_evt, edit_evt]
    # No ``cancels=`` here: the turn ends itself, so its stop note is the last update (see app.pacing).
    stop.click(stop_turn, None, None, api_visibility="private", queue=False)
    chats.new_btn = new
    chats.cancels = running
    chats.branches = [edit_evt]
    return [send_evt, submit_evt, example_run, regen_evt, retry_evt, undo_evt]
