"""Share links: the whole chat setup in the URL query, so a link survives restarts.

``?tab=math&preset=math&backend=onnx&temperature=0.3&...&prompt=...`` is readable, editable by
hand and needs no server-side storage. Every chat-panel field has its key (the table in
:mod:`runtime.panel_fields`), so a link carries every setting. Decoding never raises: each bad
field is dropped and named in ``problems``, so a damaged link still restores what it can.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from app.views import CHAT_TABS
from runtime.panel_fields import panel_fields

MAX_PROMPT_CHARS = 8000
MAX_TEXT_CHARS = 16000
"""A text setting (the system prompt) longer than a preset's may be is cut."""


@dataclass(frozen=True)
class ShareState:
    tab: str = "reasoning"
    preset: str | None = None
    backend: str | None = None
    prompt: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)
    """Panel values the link sets, by field name; the others are the preset's."""
    problems: tuple[str, ...] = field(default=(), compare=False)


def encode_query(state: ShareState) -> str:
    """The query string (with leading '?') for a share link; empty fields are left out.
    Raises ValueError for a setting that cannot be written (a schema that is not JSON)."""
    pairs = [
        (name, value) for name in ("tab", "preset", "backend", "prompt") if (value := getattr(state, name))
    ]
    for spec in panel_fields():
        if spec.name in state.settings and state.settings[spec.name] is not None:
            pairs.append((spec.key, spec.link_text(state.settings[spec.name])))
    return "?" + urlencode(pairs)


def decode_query(params: Mapping[str, str]) -> ShareState:
    problems: list[str] = []
    values: dict[str, Any] = {}
    tab = params.get("tab", "").strip().lower()
    if tab:
        if tab in CHAT_TABS:
            values["tab"] = tab
        else:
            problems.append(f"tab={tab!r} is unknown; expected one of {', '.join(CHAT_TABS)}")
    for key in ("preset", "backend"):
        if raw := params.get(key, "").strip():
            values[key] = raw[:200]
    if prompt := params.get("prompt", ""):
        if len(prompt) > MAX_PROMPT_CHARS:
            problems.append(f"prompt was cut to {MAX_PROMPT_CHARS} characters")
        values["prompt"] = prompt[:MAX_PROMPT_CHARS]
    return ShareState(**values, settings=_settings(params, problems), problems=tuple(problems))


def _settings(params: Mapping[str, str], problems: list[str]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for spec in panel_fields():
        if spec.key not in params:
            continue
        raw = params[spec.key]
        if spec.kind == "text":
            settings[spec.name] = raw[:MAX_TEXT_CHARS]
            continue
        if not raw.strip():
            continue
        try:
            settings[spec.name] = spec.from_link(raw)
        except ValueError as exc:
            problems.append(
                f"{spec.key}={raw[:40]!r} is not a valid value ({exc}); the preset's value is used"
            )
    return settings
