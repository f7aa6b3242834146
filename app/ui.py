"""The Gradio Blocks: wiring only. Behaviour lives in handlers (async generators), render (pure)
and presets; each tab is a full chat built by :func:`_chat_tab` from its preset.

API: ``/chat`` (prompt, preset, backend, settings) streams ``[answer, metrics]``; see README.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from app import handlers as h
from app.registry import IN_PROCESS, BackendRegistry
from app.render import LATEX_DELIMITERS, error_message, invalid_input_message, section
from app.settings import Settings
from app.share import ShareState, decode_query, encode_query
from presets import PresetCatalog, PresetError, load_catalog

try:
    from app.compare_tab import build_compare_tab
except ImportError:  # built in its own issue; the playground works without it
    build_compare_tab = None

TABS = ("reasoning", "coding", "math")
BROWSER_KEY = "slm-playground-my-presets"
BROWSER_SECRET = "slm-playground-presets-v1"  # presets are not secrets; a fixed key survives restarts
CSS = """
.metrics-line {font-size: 0.85em; opacity: 0.8}
#health-strip {font-size: 0.9em}
"""
SHARE_JS = "(q) => q ? window.location.origin + window.location.pathname + q : ''"


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


def _verifier() -> Callable[[str, str, str | None], Any] | None:
    """The Math tab's verification section, when the mathcheck package is available."""
    try:
        from mathcheck import render_markdown, verify_response
    except ImportError:
        return None

    def verify(answer: str, prompt: str, reference: str | None) -> gr.ChatMessage:
        verification = verify_response(answer, prompt=prompt, gold=reference)
        body = render_markdown(verification).removeprefix("**Verification**").strip()
        icon = {"correct": "✅", "incorrect": "❌"}.get(verification.final, "❔")
        return section(f"{icon} Verification: {verification.final}", body, status="done", kind="verify")

    return verify


def _examples_of(preset: Any) -> list[list[str]]:
    return [[e.prompt] for e in preset.examples]


def _chat_tab(
    name: str,
    service: h.ChatService,
    catalog: PresetCatalog,
    labels: list[str],
    my_presets: gr.BrowserState,
    public: bool,
) -> ChatTab:
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
                samples=_examples_of(preset),
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
    _wire_presets(
        view,
        service,
        catalog,
        my_presets,
        share_btn,
        share_url,
        save_name,
        save_btn,
        export_btn,
        export_file,
        import_btn,
    )
    return view


def _wire_chat(
    view: ChatTab,
    service: h.ChatService,
    catalog: PresetCatalog,
    my_presets: gr.BrowserState,
    send: gr.Button,
    stop: gr.Button,
    regen: gr.Button,
    clear: gr.Button,
) -> None:
    verify = view.name == "math"
    stops = h.StopSignals()

    def reference(preset_name: str, mine: dict | None) -> Callable[[str], str | None]:
        try:
            found = h.find_preset(preset_name, catalog, mine)
        except PresetError:
            return lambda _prompt: None
        return found.reference_for

    def key(request: gr.Request) -> tuple[str, str]:
        return (request.session_hash or "", view.name)

    async def respond(request: gr.Request, prompt: str, history: list, backend: str, *rest: Any):
        *panel, preset_name, mine = rest
        panel_values, ref = h.PanelValues(*panel), reference(preset_name, mine)(prompt or "")
        turn = h.paced(service.respond(prompt, history, backend, panel_values, ref, verify))
        first = True
        with stops.watch(key(request)) as stop:
            async for value in h.until_stopped(turn, stop, history):
                yield value, ("" if first else gr.skip())
                first = False

    async def regenerate(request: gr.Request, history: list, backend: str, *rest: Any):
        *panel, preset_name, mine = rest
        panel_values, ref_of = h.PanelValues(*panel), reference(preset_name, mine)
        turn = h.paced(service.regenerate(history, backend, panel_values, ref_of, verify))
        with stops.watch(key(request)) as stop:
            async for value in h.until_stopped(turn, stop, history):
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
    # No ``cancels=`` here: the turn ends itself, so its stop note is the last update (see handlers).
    stop.click(stop_turn, None, None, api_visibility="private", queue=False)
    clear.click(lambda: [], None, view.chatbot, cancels=running, api_visibility="private", queue=False)


def _wire_presets(
    view: ChatTab,
    service: h.ChatService,
    catalog: PresetCatalog,
    my_presets: gr.BrowserState,
    share_btn: gr.Button,
    share_url: gr.Textbox,
    save_name: gr.Textbox,
    save_btn: gr.Button,
    export_btn: gr.Button,
    export_file: gr.File,
    import_btn: gr.UploadButton,
) -> None:
    cap = service.settings.max_new_tokens_cap
    private: dict[str, Any] = {"api_visibility": "private"}

    def apply(name: str, mine: dict | None):
        try:
            preset = h.find_preset(name, catalog, mine)
        except PresetError as exc:
            return (*[gr.skip()] * len(view.panel), gr.skip(), f"⚠️ {exc}")
        values = h.PanelValues.of(preset).as_tuple()
        return (*values, gr.Dataset(samples=_examples_of(preset)), preset.description)

    view.preset.input(apply, [view.preset, my_presets], [*view.panel, view.examples, view.status], **private)

    def share(preset_name: str, backend: str, prompt: str, *panel: Any) -> str:
        values = h.PanelValues(*panel)
        base = catalog.presets.get(preset_name)
        system = (
            None if base is not None and base.system_prompt == values.system_prompt else values.system_prompt
        )
        seed = None if values.seed in (None, "") or int(values.seed) < 0 else int(values.seed)
        state = ShareState(
            tab=view.name,
            preset=preset_name,
            backend=backend,
            prompt=prompt or "",
            system_prompt=system,
            temperature=values.temperature,
            top_p=values.top_p,
            top_k=int(values.top_k),
            max_new_tokens=int(values.max_new_tokens),
            seed=seed,
            tools=bool(values.tools),
        )
        return encode_query(state)

    share_btn.click(share, [view.preset, view.backend, view.prompt, *view.panel], share_url, **private).then(
        None, share_url, share_url, js=SHARE_JS, **private
    )

    def save(name: str, preset_name: str, mine: dict | None, *panel: Any):
        try:
            base = h.find_preset(preset_name, catalog, mine)
            store, note = h.save_in_browser(name, base, h.PanelValues(*panel), mine, catalog, cap)
        except PresetError as exc:
            return gr.skip(), gr.skip(), f"⚠️ {exc}"
        choices = h.choices_for(view.name, catalog, store)
        return store, gr.Dropdown(choices=choices, value=name.strip()), note

    save_btn.click(
        save,
        [save_name, view.preset, my_presets, *view.panel],
        [my_presets, view.preset, view.status],
        **private,
    )

    def export(preset_name: str, mine: dict | None, *panel: Any):
        try:
            base = h.find_preset(preset_name, catalog, mine)
            preset = h.preset_from_panel(base.name, base, h.PanelValues(*panel), cap)
        except (PresetError, ValueError) as exc:
            return gr.File(visible=False), f"⚠️ cannot export: {exc}"
        folder = Path(tempfile.mkdtemp(prefix="slm-preset-"))
        path = folder / f"{preset.name.replace(' ', '_')}.json"
        path.write_text(preset.to_json(), encoding="utf-8")
        return gr.File(value=str(path), visible=True), f"Exported **{preset.name}**."

    export_btn.click(export, [view.preset, my_presets, *view.panel], [export_file, view.status], **private)

    def import_(file: Any, history: list, mine: dict | None):
        path = getattr(file, "name", file)
        try:
            preset = h.import_preset_file(path)
        except PresetError as exc:
            note = invalid_input_message(f"{exc}\n\nThe current settings are unchanged.")
            note.metadata["title"] = "⚠️ Preset not imported"
            return (
                gr.skip(),
                gr.skip(),
                *[gr.skip()] * len(view.panel),
                gr.skip(),
                f"⚠️ {exc}",
                [*(history or []), note],
            )
        store = {**(mine or {}), preset.name: preset.model_dump(mode="json")}
        choices = h.choices_for(view.name, catalog, store)
        return (
            store,
            gr.Dropdown(choices=choices, value=preset.name),
            *h.PanelValues.of(preset).as_tuple(),
            gr.Dataset(samples=_examples_of(preset)),
            f"Imported **{preset.name}**.",
            gr.skip(),
        )

    import_btn.upload(
        import_,
        [import_btn, view.chatbot, my_presets],
        [my_presets, view.preset, *view.panel, view.examples, view.status, view.chatbot],
        **private,
    )


def _restore(views: dict[str, ChatTab], catalog: PresetCatalog, labels: Callable[[], list[str]]):
    """demo.load: fill preset choices with this browser's presets and apply a share link."""

    def restore(mine: dict | None, request: gr.Request):
        params = dict(request.query_params) if request is not None else {}
        out: list[Any]
        if params.get("tab", "").strip().lower() == "compare":
            # A comparison link: the Compare tab's own load handler restores the lanes.
            state, out = None, [gr.Tabs(selected="compare")]
        else:
            state = decode_query(params) if params else None
            out = [gr.Tabs(selected=state.tab) if state else gr.skip()]
        for name, view in views.items():
            choices = h.choices_for(name, catalog, mine)
            if state is None or state.tab != name:
                out += [gr.Dropdown(choices=choices), *[gr.skip()] * (len(view.restorable()) - 1)]
                continue
            out += _restored_values(state, view, catalog, mine, choices, labels())
        return out

    return restore


def _restored_values(
    state: ShareState,
    view: ChatTab,
    catalog: PresetCatalog,
    mine: dict | None,
    choices: list[str],
    labels: list[str],
) -> list[Any]:
    problems = list(state.problems)
    try:
        preset = h.find_preset(state.preset or view.name, catalog, mine)
    except PresetError as exc:
        problems.append(str(exc))
        preset = catalog.for_tab(view.name)
    panel = h.PanelValues.of(preset)
    options = preset.options.model_dump()
    options.update(state.options_overrides())
    values = [
        state.system_prompt if state.system_prompt is not None else panel.system_prompt,
        options["temperature"],
        options["top_p"],
        options["top_k"],
        options["max_new_tokens"],
        -1 if options["seed"] is None else options["seed"],
        panel.tools if state.tools is None else state.tools,
    ]
    backend: Any = gr.skip()
    if state.backend:
        if state.backend in labels:
            backend = state.backend
        else:
            problems.append(
                f"backend {state.backend!r} is not configured here; available: {', '.join(labels)}"
            )
    note = "Restored from a share link." + "".join(f"\n\n⚠️ {p}" for p in problems)
    return [
        gr.Dropdown(choices=choices, value=preset.name),
        backend,
        *values,
        state.prompt or gr.skip(),
        gr.Dataset(samples=_examples_of(preset)),
        note,
    ]


def _backends_tab(registry: BackendRegistry, views: dict[str, ChatTab], public: bool) -> None:
    gr.Markdown(
        "Remote backends: an OpenAI-compatible server (vLLM, llama.cpp, …) or Ollama. "
        + (
            "**Adding endpoints is disabled on this public deployment.**"
            if public
            else "Added endpoints are shared by everyone using this app instance until it restarts."
        )
    )
    with gr.Row():
        kind = gr.Dropdown(["openai", "vllm", "ollama"], value="openai", label="Kind", interactive=not public)
        url = gr.Textbox(label="Base URL", placeholder="http://localhost:8000/v1", interactive=not public)
        name = gr.Textbox(label="Name (optional)", interactive=not public)
        api_key = gr.Textbox(label="API key (optional)", type="password", interactive=not public)
        model = gr.Textbox(label="Model (optional)", interactive=not public)
    with gr.Row():
        add = gr.Button("Add endpoint", variant="primary", interactive=not public)
        chosen = gr.Dropdown(registry.labels(), label="Backend", interactive=True)
        test = gr.Button("Test connection")
        remove = gr.Button("Remove", variant="stop", interactive=not public)
    result = gr.Markdown()
    selectors = [v.backend for v in views.values()]

    def refreshed(note: str, value: str | None = None):
        labels = registry.labels()
        return (
            note,
            gr.Dropdown(choices=labels, value=value),
            *[gr.Dropdown(choices=labels)] * len(selectors),
        )

    async def add_endpoint(kind: str, url: str, name: str, api_key: str, model: str):
        if public:
            return refreshed("⚠️ adding endpoints is disabled on this deployment")
        try:
            endpoint = h.endpoint_from_form(kind, url, name, api_key, model, registry.labels())
            label = registry.add_endpoint(endpoint)
        except ValueError as exc:
            return refreshed(f"⚠️ {exc}")
        return refreshed(f"Added `{label}`. " + await h.test_connection(registry, label), label)

    async def remove_endpoint(label: str):
        if public or not label or label == IN_PROCESS:
            return refreshed("⚠️ choose a remote endpoint to remove (the in-process model stays)")
        await registry.remove(label)
        return refreshed(f"Removed `{label}`.")

    private: dict[str, Any] = {"api_visibility": "private"}
    add.click(add_endpoint, [kind, url, name, api_key, model], [result, chosen, *selectors], **private)
    remove.click(remove_endpoint, chosen, [result, chosen, *selectors], **private)
    test.click(lambda label: h.test_connection(registry, label), chosen, result, **private)


def build_app(
    settings: Settings, registry: BackendRegistry, catalog: PresetCatalog | None = None
) -> gr.Blocks:
    catalog = catalog or load_catalog(settings.presets_dir)
    service = h.ChatService(settings, registry, catalog, verifier=_verifier())
    labels = registry.labels()
    with gr.Blocks(title="SLM Playground") as demo:
        my_presets = gr.BrowserState({}, storage_key=BROWSER_KEY, secret=BROWSER_SECRET)
        with gr.Row():
            gr.Markdown("## SLM Playground\nSmall language models on ONNX Runtime GenAI, vLLM and Ollama.")
            health = gr.Markdown("**Backends:** checking…", elem_id="health-strip")
        if catalog.problems:
            gr.Markdown("⚠️ Some preset files were skipped:\n" + "\n".join(f"- {p}" for p in catalog.problems))
        views: dict[str, ChatTab] = {}
        with gr.Tabs() as tabs:
            for name in TABS:
                with gr.Tab(name.title(), id=name):
                    views[name] = _chat_tab(name, service, catalog, labels, my_presets, settings.public)
            if build_compare_tab is not None:
                with gr.Tab("Compare", id="compare"):
                    build_compare_tab(settings, registry, catalog)
            with gr.Tab("Backends", id="backends"):
                _backends_tab(registry, views, settings.public)

        async def poll_health() -> str:
            return await h.health_strip(registry)

        timer = gr.Timer(5.0)
        quiet: dict[str, Any] = {
            "api_visibility": "private",
            "show_progress": "hidden",
            "concurrency_limit": None,
        }
        timer.tick(poll_health, None, health, **quiet)
        demo.load(poll_health, None, health, **quiet)
        restorable = [c for v in views.values() for c in v.restorable()]
        demo.load(
            _restore(views, catalog, registry.labels),
            [my_presets],
            [tabs, *restorable],
            api_visibility="private",
        )

        async def chat(
            prompt: str, preset: str = "math", backend: str = IN_PROCESS, settings: dict | None = None
        ) -> AsyncIterator[tuple[str, dict]]:
            """Chat once: streams [answer so far, {}] and ends with [answer, metrics].

            settings may override system_prompt, temperature, top_p, top_k, max_new_tokens, seed, tools.
            Metrics: backend, model, prompt/completion tokens, ttft_s, total_s, decode_tokens_per_s.
            """
            try:
                async for value in h.paced(service.answer(prompt, preset, backend, settings or {})):
                    yield value
            except (PresetError, ValueError, KeyError) as exc:
                raise gr.Error(str(exc).strip("\"'")) from None
            except h.BackendError as exc:
                raise gr.Error(str(error_message(exc).content)) from None

        gr.api(chat, api_name="chat", concurrency_limit=None)
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=None)
    return demo


APP_CSS = CSS
