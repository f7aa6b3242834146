"""Preset actions of a chat tab: find, save in the browser, export, import (no gradio here)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from app.turns import problem_of
from presets import Preset, PresetCatalog, PresetError, parse_preset
from runtime.panel_fields import PanelValues


def find_preset(name: str, catalog: PresetCatalog, mine: dict[str, Any] | None) -> Preset:
    """A shipped/folder preset by name, or one saved in this browser."""
    if name in catalog.presets:
        return catalog.presets[name]
    if mine and name in mine:
        return parse_preset(json.dumps(mine[name]), source=f"saved preset {name!r}")
    raise PresetError(f"no preset named {name!r}")


def preset_from_panel(name: str, base: Preset, panel: PanelValues, cap: int) -> Preset:
    """A new preset with the panel's settings and the base preset's tab and examples."""
    return Preset(
        name=name.strip(),
        tab=base.tab,
        description=f"Saved from {base.name}",
        system_prompt=panel.system_prompt,
        options=panel.options(cap),
        tools=bool(panel.tools),
        examples=base.examples,
    )


def save_in_browser(
    name: str, base: Preset, panel: PanelValues, mine: dict[str, Any] | None, catalog: PresetCatalog, cap: int
) -> tuple[dict[str, Any], str]:
    """Add a preset to the browser's store; returns (new store, status line). Raises PresetError."""
    if not name.strip():
        raise PresetError("give the preset a name first")
    if name.strip() in catalog.presets:
        raise PresetError(f"{name.strip()!r} is a shipped preset; choose another name")
    try:
        preset = preset_from_panel(name, base, panel, cap)
    except ValidationError as exc:
        raise PresetError(f"cannot save: {problem_of(exc)}") from None
    store = dict(mine or {})
    store[preset.name] = preset.model_dump(mode="json")
    return store, f"Saved **{preset.name}** in this browser."


def import_preset_file(path: str | None) -> Preset:
    """Read an uploaded preset file; every failure is a PresetError with the reason."""
    if not path:
        raise PresetError("no file was uploaded")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(1_000_000)
    except OSError as exc:
        raise PresetError(f"cannot read the uploaded file ({exc.strerror})") from None
    return parse_preset(raw, source="imported file")


def choices_for(tab: str, catalog: PresetCatalog, mine: dict[str, Any] | None) -> list[str]:
    return catalog.names(tab) + [n for n in (mine or {}) if n not in catalog.presets]
