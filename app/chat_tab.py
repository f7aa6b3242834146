"""One chat tab (Reasoning, Coding, Math): its components, and Send / Stop / Regenerate / Clear.

The turn itself runs in :mod:`app.turns`; the preset and sharing controls are wired in
:mod:`app.preset_sharing`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from app.api import client_of, session_of
from app.pacing import StopSignals, chat_states
from app.preset_actions import find_preset
from app.render import LATEX_DELIMITERS, invalid_input_message
from app.turns import ChatService, PanelValues
from app.views import ChatTab, PresetControls, examples_of
from presets import PresetCatalog, PresetError
from runtime.registry import IN_PROCESS


def build_chat_tab(
    name: str,
    service: ChatService,
    catalog: PresetCatalog,
    labels: list[str],
    my_presets: gr.BrowserState,
) -> tuple[ChatTab, PresetControls]:
    settings = service.settings
    preset = catalog.for_tab(name)
    default_backend = IN_PROCESS if IN_PROCESS in labels else (labels[0] if labels else None)
    with gr.Row():
        preset_dd = gr.Dropdown(
            catalog.names(name), value=preset.name, label="Preset", scale=1, elem_id=f"preset-{name}"
        )
        backend_dd = gr.Dropdown(
            labels, value=default_backend, label="Backend", scale=1, elem_id=f"backend-{name}"
        )
    with gr.Row():
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(
                label=f"{name.title()} chat",
                height=520,
                latex_delimiters=LATEX_DELIMITERS,
                buttons=["copy", "copy_all"],
                feedback_options=None,
                elem_id=f"chat-{name}",
            )
            prompt = gr.Textbox(
                placeholder="Ask something… (Enter sends, Shift+Enter for a new line)",
                show_label=False,
                lines=2,
                elem_id=f"prompt-{name}",
            )
            with gr.Row():
                send = gr.Button("Send", variant="primary", elem_id=f"send-{name}")
                stop = gr.Button("Stop", variant="stop", elem_id=f"stop-{name}")
                regen = gr.Button("Regenerate", elem_id=f"regen-{name}")
                clear = gr.Button("Clear", elem_id=f"clear-{name}")
            examples = gr.Dataset(
                components=[gr.Textbox(visible=False)],
                samples=examples_of(preset),
                label="Examples (click to send)",
                elem_id=f"examples-{name}",
            )
            status = gr.Markdown(preset.description, elem_id=f"status-{name}")
        with gr.Column(scale=1):
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
    panel = [system, temperature, top_p, top_k, max_new, seed, tools]
    view = ChatTab(name, preset_dd, backend_dd, panel, chatbot, prompt, examples, status)
    _wire_chat(view, service, catalog, my_presets, send, stop, regen, clear)
    controls = PresetControls(share_btn, share_url, save_name, save_btn, export_btn, export_file, import_btn)
    return view, controls


def _wire_chat(
    view: ChatTab,
    service: ChatService,
    catalog: PresetCatalog,
    my_presets: gr.BrowserState,
    send: gr.Button,
    stop: gr.Button,
    regen: gr.Button,
    clear: gr.Button,
) -> None:
    verify = view.name == "math"
    stops = StopSignals()

    def reference(preset_name: str, mine: dict | None) -> Callable[[str], str | None]:
        try:
            found = find_preset(preset_name, catalog, mine)
        except PresetError:
            return lambda _prompt: None
        return found.reference_for

    def key(request: gr.Request) -> tuple[str, str]:
        return (request.session_hash or "", view.name)

    async def respond(request: gr.Request, prompt: str, history: list, backend: str, *rest: Any):
        *panel, preset_name, mine = rest
        if (prompt or "").strip() and (problem := service.refusal(prompt)):
            yield [*(history or []), invalid_input_message(problem)], gr.skip()  # the prompt stays
            return
        panel_values, ref = PanelValues(*panel), reference(preset_name, mine)(prompt or "")
        turn = service.respond(
            prompt, history, backend, panel_values, ref, verify, client_of(request), session_of(request)
        )
        first = True
        with stops.watch(key(request)) as stop:
            async for value in chat_states(turn, stop, history, service.settings.ui_refresh_s):
                yield value, ("" if first else gr.skip())
                first = False

    async def regenerate(request: gr.Request, history: list, backend: str, *rest: Any):
        *panel, preset_name, mine = rest
        panel_values, ref_of = PanelValues(*panel), reference(preset_name, mine)
        turn = service.regenerate(
            history, backend, panel_values, ref_of, verify, client_of(request), session_of(request)
        )
        with stops.watch(key(request)) as stop:
            async for value in chat_states(turn, stop, history, service.settings.ui_refresh_s):
                yield value

    async def stop_turn(request: gr.Request) -> None:
        stops.stop(key(request))

    chat_inputs = [view.prompt, view.chatbot, view.backend, *view.panel, view.preset, my_presets]
    # The in-process model is queued by service.gate (with a visible "waiting" note); Gradio
    # itself must not serialise chats, or a remote backend would wait behind the local model.
    run: dict[str, Any] = {"concurrency_limit": None, "api_visibility": "private"}
    send_evt = send.click(respond, chat_inputs, [view.chatbot, view.prompt], **run)
    submit_evt = view.prompt.submit(respond, chat_inputs, [view.chatbot, view.prompt], **run)
    example_evt = view.examples.click(
        lambda sample: sample[0], view.examples, view.prompt, api_visibility="private", queue=False
    )
    example_run = example_evt.then(respond, chat_inputs, [view.chatbot, view.prompt], **run)
    regen_evt = regen.click(
        regenerate, [view.chatbot, view.backend, *view.panel, view.preset, my_presets], view.chatbot, **run
    )
    running = [send_evt, submit_evt, example_run, regen_evt]
    # No ``cancels=`` here: the turn ends itself, so its stop note is the last update (see app.pacing).
    stop.click(stop_turn, None, None, api_visibility="private", queue=False)
    clear.click(lambda: [], None, view.chatbot, cancels=running, api_visibility="private", queue=False)
