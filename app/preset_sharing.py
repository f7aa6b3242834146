"""Presets and share links in a chat tab: apply, export, import, save in this browser, share
links, and restoring a tab from a link when the page loads."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from app.preset_actions import (
    choices_for,
    find_preset,
    import_preset_file,
    preset_from_panel,
    save_in_browser,
)
from app.render import invalid_input_message
from app.share import ShareState, decode_query, encode_query
from app.turns import ChatService, PanelValues
from app.views import ChatTab, PresetControls, examples_of
from presets import PresetCatalog, PresetError

SHARE_JS = "(q) => q ? window.location.origin + window.location.pathname + q : ''"


def wire_presets(
    view: ChatTab,
    controls: PresetControls,
    service: ChatService,
    catalog: PresetCatalog,
    my_presets: gr.BrowserState,
) -> None:
    c = controls
    share_btn, share_url, save_name, save_btn = c.share_btn, c.share_url, c.save_name, c.save_btn
    export_btn, export_file, import_btn = c.export_btn, c.export_file, c.import_btn
    cap = service.settings.max_new_tokens_cap
    private: dict[str, Any] = {"api_visibility": "private"}

    def apply(name: str, mine: dict | None):
        try:
            preset = find_preset(name, catalog, mine)
        except PresetError as exc:
            return (*[gr.skip()] * len(view.panel), gr.skip(), f"⚠ {exc}")
        values = PanelValues.of(preset).as_tuple()
        return (*values, gr.Dataset(samples=examples_of(preset)), preset.description)

    view.preset.input(apply, [view.preset, my_presets], [*view.panel, view.examples, view.status], **private)

    def share(preset_name: str, backend: str, prompt: str, *panel: Any) -> str:
        values = PanelValues(*panel)
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
            base = find_preset(preset_name, catalog, mine)
            store, note = save_in_browser(name, base, PanelValues(*panel), mine, catalog, cap)
        except PresetError as exc:
            return gr.skip(), gr.skip(), f"⚠ {exc}"
        choices = choices_for(view.name, catalog, store)
        return store, gr.Dropdown(choices=choices, value=name.strip()), note

    save_btn.click(
        save,
        [save_name, view.preset, my_presets, *view.panel],
        [my_presets, view.preset, view.status],
        **private,
    )

    def export(preset_name: str, mine: dict | None, *panel: Any):
        try:
            base = find_preset(preset_name, catalog, mine)
            preset = preset_from_panel(base.name, base, PanelValues(*panel), cap)
        except (PresetError, ValueError) as exc:
            return gr.File(visible=False), f"⚠ cannot export: {exc}"
        folder = Path(tempfile.mkdtemp(prefix="slm-preset-"))
        path = folder / f"{preset.name.replace(' ', '_')}.json"
        path.write_text(preset.to_json(), encoding="utf-8")
        return gr.File(value=str(path), visible=True), f"Exported **{preset.name}**."

    export_btn.click(export, [view.preset, my_presets, *view.panel], [export_file, view.status], **private)

    def import_(file: Any, history: list, mine: dict | None):
        path = getattr(file, "name", file)
        try:
            preset = import_preset_file(path)
        except PresetError as exc:
            note = invalid_input_message(f"{exc}\n\nThe current settings are unchanged.")
            note.metadata["title"] = "⚠ Preset not imported"
            return (
                gr.skip(),
                gr.skip(),
                *[gr.skip()] * len(view.panel),
                gr.skip(),
                f"⚠ {exc}",
                [*(history or []), note],
            )
        store = {**(mine or {}), preset.name: preset.model_dump(mode="json")}
        choices = choices_for(view.name, catalog, store)
        return (
            store,
            gr.Dropdown(choices=choices, value=preset.name),
            *PanelValues.of(preset).as_tuple(),
            gr.Dataset(samples=examples_of(preset)),
            f"Imported **{preset.name}**.",
            gr.skip(),
        )

    import_btn.upload(
        import_,
        [import_btn, view.chatbot, my_presets],
        [my_presets, view.preset, *view.panel, view.examples, view.status, view.chatbot],
        **private,
    )


def restore_handler(views: dict[str, ChatTab], catalog: PresetCatalog, labels: Callable[[], list[str]]):
    """demo.load: fill preset choices with this browser's presets and apply a share link."""

    def restore(mine: dict | None, request: gr.Request):
        params = dict(request.query_params) if request is not None else {}
        out: list[Any]
        if (tab := params.get("tab", "").strip().lower()) in ("compare", "eval"):
            # A comparison or evaluation link: that tab's own load handler restores its setup.
            state, out = None, [gr.Tabs(selected=tab)]
        else:
            state = decode_query(params) if params else None
            out = [gr.Tabs(selected=state.tab) if state else gr.skip()]
        for name, view in views.items():
            choices = choices_for(name, catalog, mine)
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
        preset = find_preset(state.preset or view.name, catalog, mine)
    except PresetError as exc:
        problems.append(str(exc))
        preset = catalog.for_tab(view.name)
    panel = PanelValues.of(preset)
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
        panel.json_output,  # not in share links: the preset's
        panel.json_schema,
    ]
    backend: Any = gr.skip()
    if state.backend:
        if state.backend in labels:
            backend = state.backend
        else:
            problems.append(
                f"backend {state.backend!r} is not configured here; available: {', '.join(labels)}"
            )
    note = "Restored from a share link." + "".join(f"\n\n⚠ {p}" for p in problems)
    return [
        gr.Dropdown(choices=choices, value=preset.name),
        backend,
        *values,
        state.prompt or gr.skip(),
        gr.Dataset(samples=examples_of(preset)),
        note,
    ]
