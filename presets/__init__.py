"""Presets: a named system prompt + sampling settings + example prompts, stored as JSON files.

One schema (:class:`Preset`), one loader. Shipped presets live beside this module as package
data; users add their own ``*.json`` files from a folder (``SLM_PRESETS_DIR``), import one in the
UI, or save one in their browser. Every path in goes through :func:`parse_preset`, so a malformed
file fails with one clear message naming the file and the field, and never half-loads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backends.base import SamplingOptions

SCHEMA_VERSION = 1
SHIPPED_DIR = Path(__file__).parent
MAX_PRESET_BYTES = 256_000

Tab = Literal["reasoning", "coding", "math"]


class PresetError(ValueError):
    """Raised when a preset file cannot be read or does not match the schema."""


class ExamplePrompt(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = Field(min_length=1, max_length=8000)
    reference: str | None = Field(None, max_length=2000)
    """Expected final answer (math): what mathcheck compares the model's answer with."""


class Preset(BaseModel):
    """A preset file. Unknown keys are errors, so a typo never silently does nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}$")
    """Identifier shown in the preset selector and used in share links."""
    tab: Tab = "reasoning"
    """Which chat tab offers it first."""
    description: str = Field("", max_length=2000)
    system_prompt: str = Field("", max_length=16000)
    options: SamplingOptions = SamplingOptions()
    tools: bool = False
    """Whether the built-in tools (calculator, circle area) are offered by default."""
    examples: tuple[ExamplePrompt, ...] = Field((), max_length=50)

    def reference_for(self, prompt: str) -> str | None:
        """The reference answer of the example whose prompt this is, if any."""
        wanted = prompt.strip()
        return next((e.reference for e in self.examples if e.prompt.strip() == wanted), None)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        parts.append(f"{where}: {item['msg']}")
    more = len(error.errors()) - 5
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def parse_preset(text: str | bytes, source: str = "preset") -> Preset:
    """Validate one preset document; raise PresetError with a message a person can act on."""
    if len(text) > MAX_PRESET_BYTES:
        raise PresetError(f"{source}: file is {len(text)} bytes, more than the {MAX_PRESET_BYTES} allowed")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PresetError(f"{source}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise PresetError(f"{source}: a preset is a JSON object, got {type(data).__name__}")
    try:
        return Preset.model_validate(data)
    except ValidationError as exc:
        raise PresetError(f"{source}: {_describe(exc)}") from None


def load_preset(path: Path) -> Preset:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PresetError(f"{path}: cannot read ({exc.strerror})") from None
    return parse_preset(raw, source=path.name)


@dataclass
class PresetCatalog:
    """Presets by name: shipped first, then the user's folder (which may override by name)."""

    presets: dict[str, Preset] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    """One line per user file that failed to load; shown in the UI, never fatal."""

    def names(self, tab: str | None = None) -> list[str]:
        """All names, the given tab's presets first."""
        if tab is None:
            return list(self.presets)
        first = [n for n, p in self.presets.items() if p.tab == tab]
        return first + [n for n in self.presets if n not in first]

    def get(self, name: str) -> Preset:
        try:
            return self.presets[name]
        except KeyError:
            raise PresetError(f"no preset named {name!r}; known: {', '.join(self.presets)}") from None

    def for_tab(self, tab: str) -> Preset:
        return next(p for p in self.presets.values() if p.tab == tab)


def shipped_presets() -> dict[str, Preset]:
    found = {}
    for path in sorted(SHIPPED_DIR.glob("*.json")):
        preset = load_preset(path)  # a broken shipped preset is a bug: let it raise
        found[preset.name] = preset
    return found


def load_catalog(user_dir: Path | None = None) -> PresetCatalog:
    catalog = PresetCatalog(presets=shipped_presets())
    if user_dir is None:
        return catalog
    if not user_dir.is_dir():
        catalog.problems.append(f"presets folder {user_dir} does not exist")
        return catalog
    for path in sorted(user_dir.glob("*.json")):
        try:
            preset = load_preset(path)
        except PresetError as exc:
            catalog.problems.append(str(exc))
            continue
        catalog.presets[preset.name] = preset
    return catalog
