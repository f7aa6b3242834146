"""Presets and share links in a chat tab: apply, export, import, save in this browser, share
links, and restoring a tab from a link when the page loads."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from app.panel_controls import SHARE_JS
from app.preset_actions import (
    choices_for,
    find_preset,
    import_preset_file,
    preset_from_panel,
    save_in_browser,
)
from app.render import invalid_input_message
from app.share import ShareState, decode_query, encode_query
from app.turns import ChatService
from app.views import ChatTab, PresetControls, examples_of
from presets import PresetCatalog, PresetError
from runtime.panel_fields import PanelValues, panel_fields

TEXT_KINDS = ("text", "schema", "lines")


@dataclass
class PresetHandlers:
    """A chat tab's preset and share handlers; ``*panel`` is the panel's values in table order."""

    view: ChatTab
    catalog: PresetCatalog
    cap: int

    def apply(self, name: str, mine: dict | None):
        try:
            preset = find_preset(name, self.catalog, mine)
        except PresetError as exc:
            return (*[gr.skip()] * len(self.view.panel), gr.skip(), f"⚠ {exc}")
        values = PanelValues.of(preset).as_tuple()
        return (*values, gr.Dataset(samples=examples_of(preset)), preset.description)

    def share(self, preset_name: str, backend: str, prompt: str, *panel: Any) -> str:
        """The link's query: every setting, except text ones that are the preset's own (a long
        system prompt would make the link long for nothing)."""
        values = PanelValues(*panel)
        base = self.catalog.presets.get(preset_name)
        same = PanelValues.of(base) if base is not None else None
        settings = {
            spec.name: getattr(values, spec.name)
            for spec in panel_fields()
            if not (
                spec.kind in TEXT_KINDS
                and same is not None
                and getattr(same, spec.name) == getattr(values, spec.name)
            )
        }
        state = ShareState(self.view.name, preset_name, backend, prompt or "", settings)
        try:
            return encode_query(state)
        except ValueError as exc:
            raise gr.Error(f"No link made: {exc}") from None

    def save(self, name: str, preset_name: str, mine: dict | None, *panel: Any):
        try:
            base = find_preset(preset_name, self.catalog, mine)
            store, note = save_in_browser(name, base, PanelValues(*panel), mine, self.catalog, self.cap)
        except PresetError as exc:
            return gr.skip(), gr.skip(), f"⚠ {exc}"
        choices = choices_for(self.view.name, self.catalog, store)
        return store, gr.Dropdown(choices=choices, value=name.strip()), note

    def export(self, preset_name: str, mine: dict | None, *panel: Any):
        try:
            base = find_preset(preset_name, self.catalog, mine)
            preset = preset_from_panel(base.name, base, PanelValues(*panel), self.cap)
        except (PresetError, ValueError) as exc:
            return gr.File(visible=False), f"⚠ cannot export: {exc}"
        folder = Path(tempfile.mkdtemp(prefix="slm-preset-"))
        path = folder / f"{preset.name.replace(' ', '_')}.json"
        path.write_text(preset.to_json(), encoding="utf-8")
        return gr.File(value=str(path), visible=True), f"Exported **{preset.name}**."

    def import_(self, file: Any, history: list, mine: dict | None):
        path = getattr(file, "name", file)
        try:
            preset = import_preset_file(path)
        except PresetError as exc:
            note = invalid_input_message(f"{exc}\n\nThe current settings are unchanged.")
            note.metadata["title"] = "⚠ Preset not imported"
            skips = [gr.skip()] * (2 + len(self.view.panel) + 1)
            return (*skips, f"⚠ {exc}", [*(history or []), note])
        store = {**(mine or {}), preset.name: preset.model_dump(mode="json")}
        choices = choices_for(self.view.name, self.catalog, store)
        return (
            store,
            gr.Dropdown(choices=choices, value=preset.name),
            *PanelValues.of(preset).as_tuple(),
            gr.Dataset(samples=examples_of(preset)),
            f"Imported **{preset.name}**.",
            gr.skip(),
        )


def wire_presets(
    view: ChatTab,
    controls: PresetControls,
    service: ChatService,
    catalog: PresetCatalog,
    my_presets: gr.BrowserState,
) -> None:
    c, panel = controls, view.panel
    handlers = PresetHandlers(view, catalog, service.settings.max_new_tokens_cap)
    private: dict[str, Any] = {"api_visibility": "private"}
    view.preset.input(
        handlers.apply, [view.preset, my_presets], [*panel, view.examples, view.status], **private
    )
    share_in = [view.preset, view.backend, view.prompt, *panel]
    c.share_btn.click(handlers.share, share_in, c.share_url, **private).then(
        None, c.share_url, c.share_url, js=SHARE_JS, **private
    )
    save_out = [my_presets, view.preset, view.status]
    c.save_btn.click(handlers.save, [c.save_name, view.preset, my_presets, *panel], save_out, **private)
    c.export_btn.click(
        handlers.export, [view.preset, my_presets, *panel], [c.export_file, view.status], **private
    )
    import_out = [my_presets, view.preset, *panel, view.examples, view.status, view.chatbot]
    c.import_btn.upload(handlers.import_, [c.import_btn, view.chatbot, my_presets], import_out, **private)


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
    values = PanelValues.of(preset).replace(**state.settings).as_tuple()
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
