"""The Gradio Blocks: wiring only. Behaviour lives in turns and pacing (async generators), render (pure)
and presets; each chat tab is built by :mod:`app.chat_tab` from its preset, its preset and share
controls wired by :mod:`app.preset_sharing`; this module adds the Backends tab and the API.

API: ``/chat`` (prompt, preset, backend, settings) streams ``[answer, metrics]``; see README.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import gradio as gr

from app.api import api_error, client_of, session_of
from app.backends_view import (
    OVERVIEW_HEADERS,
    check_connection,
    endpoint_from_form,
    health_strip,
    ollama_of,
    overview,
)
from app.chat_store import restore_chats, wire_chat_store
from app.chat_tab import build_chat_tab
from app.compare_tab import build_compare_tab
from app.eval_tab import build_eval_tab
from app.pacing import paced
from app.preset_sharing import restore_handler, wire_presets
from app.turns import ChatService
from app.views import CHAT_TABS, ChatTab
from backends.errors import BackendError
from mathcheck import verify_response
from presets import PresetCatalog, load_catalog
from runtime.kinds import available_kinds, default_in_process
from runtime.panel_fields import panel_fields
from runtime.registry import BackendRegistry
from runtime.settings import Settings

BROWSER_KEY = "slm-playground-my-presets"
CHATS_KEY = "slm-playground-chats"
TAB_KEY = "slm-playground-open-tab"
COMPARE_KEY = "slm-playground-compare-last"
BROWSER_SECRET = "slm-playground-presets-v1"  # presets are not secrets; a fixed key survives restarts
CSS = """
.metrics-line {font-size: 0.85em; opacity: 0.8}
#health-strip {font-size: 0.9em}
#ollama-note progress {width: min(320px, 60%); vertical-align: middle}
.health-dot {display: inline-block; width: 0.7em; height: 0.7em; border-radius: 50%;
  margin: 0 0.3em 0 0.6em; vertical-align: baseline; background: #9ca3af}
.health-dot.ready {background: #16a34a}
.health-dot.loading {background: #eab308}
.health-dot.unreachable {background: #dc2626}
/* Phone width: the side column drops under the chat, buttons share a row, tables scroll. */
@media (max-width: 640px) {
  .gradio-container {padding: 0 6px !important}
  .app-header {flex-direction: column; gap: 0 !important}
  .chat-buttons {gap: 6px !important}
  .chat-buttons button {min-width: 0 !important; padding: 6px 2px !important; font-size: 0.85em !important}
  #backends-table {overflow-x: auto}
}
"""


def _backends_tab(
    registry: BackendRegistry, views: dict[str, ChatTab], service: ChatService, public: bool
) -> Any:
    remote = available_kinds(in_process=False)
    gr.Markdown(
        "Remote backends: an OpenAI-compatible server (vLLM, llama.cpp, …) or Ollama. "
        + (
            "**This public deployment uses only the backends its operator configured.**"
            if public
            else "Endpoints you add here are yours alone (this browser session); the operator's "
            "(environment, flags) are everyone's."
        )
    )
    with gr.Row():
        kind = gr.Dropdown(remote, value=remote[0] if remote else None, label="Kind", interactive=not public)
        url = gr.Textbox(label="Base URL", placeholder="http://localhost:8000/v1", interactive=not public)
        name = gr.Textbox(label="Name (optional)", interactive=not public)
        api_key = gr.Textbox(label="API key (optional)", type="password", interactive=not public)
        model = gr.Textbox(label="Model (optional)", interactive=not public)
    with gr.Row():
        add = gr.Button("Add endpoint", variant="primary", interactive=not public)
        chosen = gr.Dropdown(
            registry.labels(), label="Backend", interactive=True, elem_id="backends-tab-chosen"
        )
        test = gr.Button("Test connection")
        remove = gr.Button("Remove", variant="stop", interactive=not public)
    result = gr.Markdown()
    selectors = [v.backend for v in views.values()]

    def refreshed(session: str | None, note: str, value: str | None = None):
        labels = registry.labels(session)
        return (
            note,
            gr.Dropdown(choices=labels, value=value),
            *[gr.Dropdown(choices=labels)] * len(selectors),
        )

    async def add_endpoint(kind: str, url: str, name: str, api_key: str, model: str, request: gr.Request):
        session = session_of(request)
        try:
            service.backends.check_url(url)
            endpoint = endpoint_from_form(kind, url, name, api_key, model, registry.labels(session))
            label = registry.add_endpoint(endpoint, session)
        except ValueError as exc:
            return refreshed(session, f"⚠ {exc}")
        note = await check_connection(registry, label, session)
        return refreshed(session, f"Added `{label}` (for you only). " + note, label)

    async def remove_endpoint(label: str, request: gr.Request):
        session = session_of(request)
        if public or not label or registry.is_shared(label):
            return refreshed(session, "⚠ choose an endpoint you added (configured ones stay)")
        await registry.remove(label, session)
        return refreshed(session, f"Removed `{label}`.")

    async def test_one(label: str, request: gr.Request) -> str:
        return await check_connection(registry, label, session_of(request))

    private: dict[str, Any] = {"api_visibility": "private"}
    add_evt = add.click(
        add_endpoint, [kind, url, name, api_key, model], [result, chosen, *selectors], **private
    )
    remove_evt = remove.click(remove_endpoint, chosen, [result, chosen, *selectors], **private)
    test.click(test_one, chosen, result, **private)
    table, outputs = _overview(registry, service, chosen, selectors, public)
    for event in (add_evt, remove_evt):
        event.then(table, None, outputs, **private)
    return table, outputs


def _overview(
    registry: BackendRegistry, service: ChatService, chosen: gr.Dropdown, selectors: list[Any], public: bool
):
    """The table of every backend, refreshed on load, on Refresh and after add/remove; and for an
    Ollama endpoint, pulling a model and creating the preset models. Returns the refresh handler."""
    gr.Markdown("### Overview")
    frame = gr.Dataframe(
        headers=OVERVIEW_HEADERS,
        value=[],
        interactive=False,
        wrap=True,
        elem_id="backends-table",
    )
    refresh = gr.Button("Refresh", size="sm", elem_id="backends-refresh")
    with gr.Accordion("Ollama: pull a model, create the preset models", open=False, elem_id="ollama-panel"):
        with gr.Row():
            pull_name = gr.Textbox(label="Model to pull", placeholder="qwen3:0.6b", elem_id="pull-name")
            pull_btn = gr.Button("Pull", interactive=not public, elem_id="pull-btn")
            create_btn = gr.Button("Create the preset models", interactive=not public, elem_id="create-btn")
        ollama_note = gr.Markdown(elem_id="ollama-note")
    outputs = [frame, chosen, *selectors]

    async def table(request: gr.Request):
        session = session_of(request)
        rows = await overview(registry, session, timeout_s=registry.settings.connect_timeout_s)
        labels = registry.labels(session)
        return rows, gr.Dropdown(choices=labels), *[gr.Dropdown(choices=labels)] * len(selectors)

    private: dict[str, Any] = {"api_visibility": "private"}
    refresh.click(table, None, outputs, **private)

    async def pull(label: str, model: str, request: gr.Request):
        """Streams the download's progress as a bar (an HTML <progress>) and the status line."""
        try:
            backend = ollama_of(registry, label, session_of(request))
            if not (model or "").strip():
                raise ValueError("name the model to pull, e.g. qwen3:0.6b")
            last = ""
            yield f"Pulling `{model.strip()}`…"
            async for step in backend.pull(model.strip()):
                last = step.status
                if step.fraction is not None:
                    yield (
                        f'<progress id="pull-progress" value="{step.fraction:.3f}" max="1"></progress> '
                        f"{step.fraction:.0%} · {step.status}"
                    )
            yield f"Pulled `{model.strip()}` on `{label}` ({last})."
        except (ValueError, BackendError) as exc:
            yield f"⚠ {exc}"

    async def create(label: str, request: gr.Request, progress=gr.Progress()):  # noqa: B008
        """The seed's two preset models (system prompt + parameters) from their base model."""
        try:
            from backends.ollama import SEED_PRESET_MODELS  # only where an Ollama endpoint is used

            backend = ollama_of(registry, label, session_of(request))
            made = []
            for i, preset in enumerate(SEED_PRESET_MODELS):
                progress(i / len(SEED_PRESET_MODELS), desc=f"creating {preset.name}")
                async for _status in backend.create_preset_model(
                    preset.name, base=preset.base, system=preset.system, parameters=preset.parameters
                ):
                    pass
                made.append(f"`{preset.name}` (from {preset.base})")
            return f"Created {', '.join(made)} on `{label}`."
        except (ValueError, BackendError) as exc:
            return f"⚠ {exc}"

    pull_btn.click(pull, [chosen, pull_name], ollama_note, **private).then(table, None, outputs, **private)
    create_btn.click(create, chosen, ollama_note, **private).then(table, None, outputs, **private)
    return table, outputs


def build_app(
    settings: Settings, registry: BackendRegistry, catalog: PresetCatalog | None = None
) -> gr.Blocks:
    catalog = catalog or load_catalog(settings.presets_dir)
    service = ChatService(settings, registry, catalog, verifier=verify_response)
    secret = settings.browser_secret or BROWSER_SECRET
    labels = registry.labels()
    with gr.Blocks(title="SLM Playground") as demo:
        my_presets = gr.BrowserState({}, storage_key=BROWSER_KEY, secret=secret)
        with gr.Row(elem_classes="app-header"):
            gr.Markdown(
                "## SLM Playground\nSmall language models on ONNX Runtime GenAI, llama.cpp, vLLM and Ollama."
            )
            health = gr.Markdown("**Backends:** checking…", elem_id="health-strip")
        if catalog.problems:
            gr.Markdown("⚠ Some preset files were skipped:\n" + "\n".join(f"- {p}" for p in catalog.problems))
        views: dict[str, ChatTab] = {}
        loads: list[Any] = []
        # Outside the tabs: a tab's children mount only when it is first shown, and a
        # BrowserState reads localStorage when it mounts, so a store inside the Coding or Math
        # tab reached the page-load restore empty (the Reasoning tab, shown first, worked).
        stores = {
            name: gr.BrowserState(
                {"chats": [], "current": None}, storage_key=f"{CHATS_KEY}-{name}", secret=secret
            )
            for name in CHAT_TABS
        }
        open_tab = gr.BrowserState("", storage_key=TAB_KEY, secret=secret)
        last_comparison = gr.BrowserState(None, storage_key=COMPARE_KEY, secret=secret)
        tab_blocks: list[Any] = []
        with gr.Tabs() as tabs:
            for name in CHAT_TABS:
                with gr.Tab(name.title(), id=name) as tab:
                    tab_blocks.append(tab)
                    views[name], controls, chats = build_chat_tab(
                        name, service, catalog, labels, my_presets, stores[name]
                    )
                    wire_presets(views[name], controls, service, catalog, my_presets)
                    wire_chat_store(
                        views[name],
                        chats,
                        settings.chat_store_kb,
                        registry.labels,
                        settings.max_new_tokens_cap,
                    )
                    loads.append(restore_chats(chats, views[name]))
            with gr.Tab("Compare", id="compare") as tab:
                tab_blocks.append(tab)
                build_compare_tab(settings, registry, catalog, service.admission, last_comparison, demo.load)
            with gr.Tab("Eval", id="eval") as tab:
                tab_blocks.append(tab)
                build_eval_tab(settings, registry, catalog, service.admission)
            with gr.Tab("Backends", id="backends") as tab:
                tab_blocks.append(tab)
                backends_table, table_out = _backends_tab(registry, views, service, settings.public)

        async def poll_health(request: gr.Request) -> str:
            return await health_strip(registry, session_of(request))

        timer = gr.Timer(5.0)
        quiet: dict[str, Any] = {
            "api_visibility": "private",
            "show_progress": "hidden",
            "concurrency_limit": None,
        }
        timer.tick(poll_health, None, health, **quiet)
        demo.load(poll_health, None, health, **quiet)
        demo.load(backends_table, None, table_out, **quiet)  # every page: the same list
        restorable = [c for v in views.values() for c in v.restorable()]
        demo.load(
            restore_handler(views, catalog, registry.labels),
            [my_presets],
            [tabs, *restorable],
            api_visibility="private",
        )
        for restore, inputs, outputs in loads:
            demo.load(restore, inputs, outputs, api_visibility="private")
        _reopen_last_tab(demo, tabs, tab_blocks, open_tab)

        _api(service)
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=None)
    return demo


def _reopen_last_tab(
    demo: gr.Blocks, tabs: gr.Tabs, tab_blocks: list[Any], open_tab: gr.BrowserState
) -> None:
    """The tab that was open is open again after a reload (with its chat, see restore_chats),
    unless the page is a share link, which picks its own tab."""
    for tab in tab_blocks:
        tab.select(lambda tab_id=tab.id: tab_id, None, open_tab, api_visibility="private", queue=False)

    def reopen(last: str, request: gr.Request):
        known = last in [tab.id for tab in tab_blocks]
        return gr.Tabs(selected=last) if known and not request.query_params else gr.skip()

    demo.load(reopen, open_tab, tabs, api_visibility="private")


def _api(service: ChatService) -> None:
    """The scripting endpoints, also served as MCP tools (their docstrings are the tools' help)."""

    async def chat(
        prompt: str,
        preset: str = "math",
        backend: str = default_in_process(),
        settings: dict | None = None,
        request: gr.Request | None = None,
    ) -> AsyncIterator[tuple[str, dict]]:
        """Ask a small language model one question; returns its answer, metrics and, for math, a check.

        Streams [answer so far, {}] and ends with [answer, metrics].

        Args:
            prompt: the question or instruction, plain text.
            preset: "math" (step-by-step arithmetic, answer checked with sympy), "reasoning" or "coding".
            backend: a configured backend label such as "onnx" (the in-process model); see the Backends tab.
            settings: optional overrides of the preset, e.g. {"temperature": 0, "max_new_tokens": 256};
                keys: {setting_keys}.

        Returns:
            [answer, metrics]: the model's text; metrics (backend, model, prompt_tokens,
            completion_tokens, ttft_s, total_s, decode_tokens_per_s) and, for math presets,
            "verification": the sympy check {"final": "correct"|"incorrect"|"unverifiable", "claims": [...]}.
        """
        try:
            client, session = client_of(request), session_of(request)
            answer = service.answer(prompt, preset, backend, settings, client, session)
            async for value in paced(answer, service.settings.ui_refresh_s):
                yield value
        except Exception as exc:  # the API's one error boundary
            raise api_error(exc) from None

    async def verify(
        prompt: str = "", gold: str = "", response: str = "", request: gr.Request | None = None
    ) -> dict:
        """Check a math answer with sympy: its final answer and every arithmetic step.

        Args:
            prompt: the question the answer is for (lets sympy compute the result when gold is empty).
            gold: the reference answer, e.g. "2.4" or "3/4"; empty: judged from the prompt alone.
            response: the full answer text to check, including its working.

        Returns:
            {"final": "correct"|"incorrect"|"unverifiable", "answer": the final answer read,
            "claims": [{"text", "verdict": "ok"|"wrong"|"unchecked", "expected" (on wrong ones)}]}.
        """
        try:
            return await service.verify(prompt, gold, response, client_of(request))
        except Exception as exc:  # the API's one error boundary
            raise api_error(exc) from None

    # The MCP tool's help names every chat-panel field (the table), so a new one is documented.
    keys = ", ".join(f"{f.name} (-1 random)" if f.kind == "seed" else f.name for f in panel_fields())
    chat.__doc__ = (chat.__doc__ or "").replace("{setting_keys}", keys)
    gr.api(chat, api_name="chat", concurrency_limit=None)
    gr.api(verify, api_name="verify", concurrency_limit=None)


APP_CSS = CSS
