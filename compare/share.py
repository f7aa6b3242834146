"""The setup of a comparison, and the share link that reopens it.

A share link is the whole setup in the URL query, readable and durable (no server files, so it
survives restarts and works on another instance with the same backends configured)::

    ?tab=compare&lane=onnx&lane=ollama:qwen2.5:0.5b@localhost:11434&preset=math
        &prompt=What+is+17*23%3F&temperature=0&max_new_tokens=256&runs=3

Only settings that differ from the preset's (or the defaults) are written. API keys are never
part of a lane spec, so they never end up in a link.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from pydantic import ValidationError

from backends.base import SamplingOptions
from compare.lanes import MAX_LANES, LaneSpecError, parse_lane
from runtime.errors import InputError, describe_validation
from runtime.panel_fields import compare_options, option_from_text, option_text

MAX_PROMPT_IN_LINK = 8000
"""Characters; longer prompts would make links that browsers and chat apps truncate."""


class ShareLinkError(ValueError):
    """A share link that cannot be turned back into a comparison; says which part is wrong."""


@dataclass
class ComparisonSetup:
    """Everything needed to run (or re-run) a comparison; no results."""

    lanes: list[str]
    prompt: str
    preset: str = ""
    system_prompt: str | None = None
    """None: take the preset's system prompt (or none)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Sampling settings set explicitly, on top of the preset's (or the defaults)."""
    runs: int = 1
    gold: str = ""
    """Expected final answer for the math verdict; empty: the preset example's, if any."""

    def sampling(self, base: SamplingOptions | None = None) -> SamplingOptions:
        base = base or SamplingOptions()
        if not isinstance(self.options, dict):
            raise InputError("settings", 'must be an object such as {"temperature": 0.2}')
        try:
            return SamplingOptions.model_validate({**base.model_dump(), **self.options})
        except ValidationError as exc:
            raise InputError("", describe_validation(exc, SamplingOptions)) from None


def encode_setup(setup: ComparisonSetup) -> str:
    """The query string (without "?") for a share link."""
    pairs: list[tuple[str, str]] = [("tab", "compare")]
    pairs += [("lane", spec) for spec in setup.lanes]
    if setup.preset:
        pairs.append(("preset", setup.preset))
    pairs.append(("prompt", setup.prompt))
    if setup.system_prompt is not None:
        pairs.append(("system", setup.system_prompt))
    for spec in compare_options():  # the panel table: every setting Compare holds for all lanes
        if spec.name in setup.options:
            pairs.append((spec.key, option_text(spec.kind, setup.options[spec.name])))
    if setup.runs != 1:
        pairs.append(("runs", str(setup.runs)))
    if setup.gold:
        pairs.append(("gold", setup.gold))
    return urlencode(pairs)


def share_url(setup: ComparisonSetup, base_url: str = "") -> str:
    return f"{base_url.split('?', 1)[0]}?{encode_setup(setup)}"


def _options(one: Callable[[str], str], present: Collection[str]) -> dict[str, Any]:
    options = {}
    for spec in compare_options():
        if spec.key in present:
            try:
                options[spec.name] = option_from_text(spec.kind, one(spec.key))
            except ValueError as exc:
                raise ShareLinkError(f"share link: {spec.key}: {exc}") from None
    return options


def decode_setup(
    query: str | Mapping[str, Any], *, known_labels: list[str] | tuple[str, ...] = ()
) -> ComparisonSetup:
    """Parse a share link's query (string, or a mapping such as gr.Request.query_params)."""
    if isinstance(query, str):
        params: dict[str, list[str]] = parse_qs(query.split("?", 1)[-1], keep_blank_values=True)
    else:
        params = {}
        getlist = getattr(query, "getlist", None)
        for key in query:
            values = getlist(key) if getlist else query[key]
            params[key] = list(values) if isinstance(values, list | tuple) else [str(values)]

    def one(name: str, default: str = "") -> str:
        values = params.get(name)
        return values[-1] if values else default

    lanes = [spec for spec in params.get("lane", []) if spec.strip()]
    if not lanes:
        raise ShareLinkError("share link has no lane=... parameters")
    if len(lanes) > MAX_LANES:
        raise ShareLinkError(f"share link has {len(lanes)} lanes; at most {MAX_LANES}")
    for spec in lanes:
        try:
            parse_lane(spec, known_labels=known_labels)
        except LaneSpecError as exc:
            raise ShareLinkError(f"share link: {exc}") from None
    prompt = one("prompt")
    if len(prompt) > MAX_PROMPT_IN_LINK:
        raise ShareLinkError(f"share link prompt is {len(prompt)} characters; at most {MAX_PROMPT_IN_LINK}")
    options = _options(one, params.keys())
    runs_raw = one("runs", "1")
    if not runs_raw.isdigit() or not 1 <= int(runs_raw) <= 100:
        raise ShareLinkError(f"share link: runs={runs_raw!r} should be a whole number from 1 to 100")
    setup = ComparisonSetup(
        lanes=lanes,
        prompt=prompt,
        preset=one("preset"),
        system_prompt=params["system"][-1] if "system" in params else None,
        options=options,
        runs=int(runs_raw),
        gold=one("gold"),
    )
    try:
        setup.sampling()
    except ValueError as exc:
        raise ShareLinkError(f"share link: {exc}") from None
    return setup
