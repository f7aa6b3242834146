"""The Gradio Blocks: wiring only. Behaviour lives in handlers (async generators), render (pure)
and presets; each chat tab is built by :mod:`app.chat_tab` from its preset, its preset and share
controls wired by :mod:`app.preset_sharing`; this module adds the Backends tab and the API.

API: ``/chat`` (prompt, preset, backend, settings) streams ``[answer, metrics]``; see README.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import gradio as gr

from app import handlers as h
from app.chat_tab import build_chat_tab
from app.preset_sharing import restore_handler, wire_presets
from app.registry import IN_PROCESS, BackendRegistry
from app.render import error_message, section
from app.settings import Settings
from app.views import ChatTab
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
                    views[name], controls = build_chat_tab(name, service, catalog, labels, my_presets)
                    wire_presets(views[name], controls, service, catalog, my_presets)
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
            restore_handler(views, catalog, registry.labels),
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
                answer = service.answer(prompt, preset, backend, settings or {})
                async for value in h.paced(answer, service.settings.ui_refresh_s):
                    yield value
            except (PresetError, ValueError, KeyError) as exc:
                raise gr.Error(str(exc).strip("\"'")) from None
            except h.BackendError as exc:
                raise gr.Error(str(error_message(exc).content)) from None

        gr.api(chat, api_name="chat", concurrency_limit=None)
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=None)
    return demo


APP_CSS = CSS
