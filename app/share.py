"""Share links: the whole chat setup in the URL query, so a link survives restarts.

``?tab=math&preset=math&backend=onnx&temperature=0.3&...&prompt=...`` is readable, editable by
hand and needs no server-side storage. Decoding never raises: each bad field is dropped and
named in ``problems``, so a damaged link still restores what it can.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from urllib.parse import urlencode

from pydantic import ValidationError

from backends.base import SamplingOptions

TABS = ("reasoning", "coding", "math")
MAX_PROMPT_CHARS = 8000
MAX_SYSTEM_CHARS = 16000
_NUMBERS = {"temperature": float, "top_p": float, "top_k": int, "max_new_tokens": int, "seed": int}


@dataclass(frozen=True)
class ShareState:
    tab: str = "reasoning"
    preset: str | None = None
    backend: str | None = None
    prompt: str = ""
    system_prompt: str | None = None
    """None: the preset's own system prompt."""
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_new_tokens: int | None = None
    seed: int | None = None
    tools: bool | None = None
    problems: tuple[str, ...] = field(default=(), compare=False)

    def options_overrides(self) -> dict[str, float | int]:
        return {name: value for name in _NUMBERS if (value := getattr(self, name)) is not None}


_QUERY_KEY = {"system_prompt": "system"}


def encode_query(state: ShareState) -> str:
    """The query string (with leading '?') for a share link; empty fields are left out."""
    pairs: list[tuple[str, str]] = []
    for item in fields(state):
        value = getattr(state, item.name)
        if item.name == "problems" or value is None or value == "":
            continue
        if isinstance(value, bool):
            value = "1" if value else "0"
        pairs.append((_QUERY_KEY.get(item.name, item.name), str(value)))
    return "?" + urlencode(pairs)


def _number(name: str, raw: str, problems: list[str]) -> float | int | None:
    try:
        value = _NUMBERS[name](raw)
        SamplingOptions.model_validate({name: value})  # same bounds as a request
        return value
    except (ValueError, ValidationError):
        problems.append(f"{name}={raw!r} is not a valid value; the preset's value is used")
        return None


def decode_query(params: Mapping[str, str]) -> ShareState:
    problems: list[str] = []
    values: dict[str, object] = {}
    tab = params.get("tab", "").strip().lower()
    if tab:
        if tab in TABS:
            values["tab"] = tab
        else:
            problems.append(f"tab={tab!r} is unknown; expected one of {', '.join(TABS)}")
    for key in ("preset", "backend"):
        if raw := params.get(key, "").strip():
            values[key] = raw[:200]
    if prompt := params.get("prompt", ""):
        if len(prompt) > MAX_PROMPT_CHARS:
            problems.append(f"prompt was cut to {MAX_PROMPT_CHARS} characters")
        values["prompt"] = prompt[:MAX_PROMPT_CHARS]
    if "system" in params:
        values["system_prompt"] = params["system"][:MAX_SYSTEM_CHARS]
    for name in _NUMBERS:
        if (raw := params.get(name, "").strip()) and (number := _number(name, raw, problems)) is not None:
            values[name] = number
    if raw := params.get("tools", "").strip().lower():
        if raw in ("1", "true", "on", "yes", "0", "false", "off", "no"):
            values["tools"] = raw in ("1", "true", "on", "yes")
        else:
            problems.append(f"tools={raw!r} is not a yes/no value")
    return ShareState(**values, problems=tuple(problems))  # type: ignore[arg-type]
