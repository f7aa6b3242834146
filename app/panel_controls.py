"""The Gradio controls of the chat-panel fields (:mod:`runtime.panel_fields`), built from the table.

The chat tabs show every field; Compare shows the sampling ones it holds for every lane.
A field used only with another (the schema with JSON output) shows only while that one is on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr

from runtime.panel_fields import PanelField, PanelValues

SHARE_JS = "(q) => q && q.startsWith('?') ? window.location.origin + window.location.pathname + q : q || ''"
"""After a handler returned a share link's query: the page's own address before it. A link that
has its address already is left alone (a stored run shown again runs this a second time)."""


def control_for(
    spec: PanelField, value: Any, suffix: str, cap: int, visible: bool = True
) -> gr.components.Component:
    """One field's control, showing ``value``; ``cap`` (the deployment's most new tokens) bounds
    a capped control."""
    c = spec.control
    elem_id = f"{spec.elem}-{suffix}"
    info = c.info or None
    if c.component == "slider":
        minimum, maximum = c.minimum or 0, c.maximum if c.maximum is not None else cap
        if c.capped:
            maximum, value = min(maximum, cap), min(int(value), cap)
        return gr.Slider(
            minimum, maximum, value, step=c.step, label=c.label, info=info, visible=visible, elem_id=elem_id
        )
    if c.component == "number":
        precision = 0 if spec.kind in ("int", "seed") else None
        return gr.Number(
            value,
            precision=precision,
            minimum=c.minimum,
            label=c.label,
            info=info,
            visible=visible,
            elem_id=elem_id,
        )
    if c.component == "checkbox":
        return gr.Checkbox(bool(value), label=c.label, info=info, visible=visible, elem_id=elem_id)
    return gr.Textbox(
        value,
        label=c.label,
        info=info,
        lines=c.lines,
        max_lines=max(12, c.lines),
        placeholder=c.placeholder or None,
        visible=visible,
        elem_id=elem_id,
    )


def build_controls(
    specs: Sequence[PanelField], values: PanelValues, suffix: str, cap: int
) -> list[gr.components.Component]:
    """The controls of ``specs`` in order (call inside the layout that holds them), with the
    show-while-on wiring of fields used only with another one."""
    names = {spec.name for spec in specs}
    controls: dict[str, gr.components.Component] = {}
    for spec in specs:
        visible = not spec.only_with or spec.only_with not in names or bool(getattr(values, spec.only_with))
        controls[spec.name] = control_for(spec, getattr(values, spec.name), suffix, cap, visible)
    for spec in specs:
        if spec.only_with in controls:
            switch, shown = controls[spec.only_with], controls[spec.name]
            switch.change(_show(type(shown)), switch, shown, api_visibility="private", queue=False)  # type: ignore[attr-defined]
    return list(controls.values())


def _show(component: type[gr.components.Component]) -> Callable[[bool], Any]:
    def show(on: bool) -> Any:
        return component(visible=bool(on))

    return show
