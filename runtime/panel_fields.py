"""The table of chat-panel fields: every place that needs to know which settings a chat has reads it.

A field declares its name (the panel's value, the ``/chat`` API key and the chat store's key),
the control that shows it, where a preset keeps it, its key in a share link, its bounds in the
API and what Compare does with it. The chat tab's settings, :class:`PanelValues`, the API's
settings model, share links (chat and Compare), Compare's sliders and per-lane "Vary" choices
and the chats kept in the browser all read :func:`panel_fields`. Adding a sampling setting is one
row in :data:`FIELDS` (and its use in the backends' request): see ``tests/ui/test_panel_fields.py``.

Values live in two forms: the *panel* form the controls hold (seed -1 = random, the schema as
text) and the *option* form of :class:`~backends.base.SamplingOptions` (seed None, the schema as
a dict). Share links write the option form as text. Each :data:`Kind` converts between them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from backends.base import SamplingOptions
from runtime.errors import InputError, describe_validation

Kind = Literal["text", "float", "int", "seed", "bool", "schema", "lines"]
"""How a field's value is typed, converted to a sampling option and written in a link."""
CompareUse = Literal["lane", "shared", "none"]
"""In Compare: varied per lane ("lane", also shared), the same for every lane, or not offered."""
TRUE_WORDS, FALSE_WORDS = ("1", "true", "on", "yes"), ("0", "false", "off", "no")


@dataclass(frozen=True)
class Control:
    """How the UI shows a field (the app builds the Gradio component from this)."""

    component: Literal["textbox", "slider", "number", "checkbox"]
    label: str
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    capped: bool = False
    """The maximum (and the value shown) is at most the deployment's ``max_new_tokens_cap``."""
    lines: int = 1
    placeholder: str = ""
    info: str = ""


@dataclass(frozen=True)
class PanelField:
    name: str
    """The panel value's name, the ``/chat`` settings key and the chat store's key."""
    kind: Kind
    control: Control
    default: Any
    """The panel value when nothing else says (the SamplingOptions default)."""
    elem: str
    """Element id stem: the chat tab's control is ``{elem}-{tab}``, Compare's ``{elem}-cmp``."""
    option: bool = True
    """A SamplingOptions field of the same name; False: a preset field (system prompt, tools)."""
    share_key: str = ""
    """Key in a share link; empty: the name."""
    api_limits: Mapping[str, Any] = field(default_factory=dict)
    """pydantic Field bounds for the ``/chat`` settings (ge, le, max_length, ...)."""
    compare: CompareUse = "shared"
    only_with: str = ""
    """Another (bool) field this one is used with, e.g. the schema with JSON output: the control
    shows only while that is on, and the option is unset while it is off."""

    @property
    def key(self) -> str:
        return self.share_key or self.name

    def from_preset(self, preset: Any) -> Any:
        """The panel value a preset gives (``preset`` is a presets.Preset)."""
        if not self.option:
            return getattr(preset, self.name)
        return to_panel(self.kind, getattr(preset.options, self.name))

    def to_option(self, value: Any) -> Any:
        return to_option(self.kind, value)

    def link_text(self, value: Any) -> str:
        """A panel value as share-link text."""
        return option_text(self.kind, self.to_option(value))

    def from_link(self, raw: str) -> Any:
        """Share-link text to a panel value; raises ValueError (with why) for one that does not
        parse or is out of bounds (the same bounds as a request)."""
        value = option_from_text(self.kind, raw)
        if self.option:
            try:
                SamplingOptions.model_validate(_with_prerequisite(self, {self.name: value}))
            except ValidationError as exc:
                raise ValueError(describe_validation(exc, SamplingOptions)) from None
        return to_panel(self.kind, value)


def _with_prerequisite(spec: PanelField, values: dict[str, Any]) -> dict[str, Any]:
    return {spec.only_with: True, **values} if spec.only_with else values


# --- conversions, one per kind ------------------------------------------------------------------


def parse_schema(text: object) -> dict[str, Any] | None:
    """The JSON output field's schema: empty is none; anything else must be a JSON object."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, dict):
        return text
    try:
        value = json.loads(str(text))
    except json.JSONDecodeError as exc:
        raise InputError("json_schema", f"is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(value, dict):
        raise InputError("json_schema", 'must be a JSON object such as {"type": "object"}')
    return value


def seed_option(value: object) -> int | None:
    """A panel's or link's seed as the option: -1, empty, "none" or "random" are a random seed
    (None); raises ValueError for text that is not a whole number."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "random")):
        return None
    number = int(float(value)) if isinstance(value, float | int) else int(str(value).strip())
    return None if number == -1 else number


def to_option(kind: Kind, value: Any) -> Any:
    if kind == "float":
        return float(value)
    if kind == "int":
        return int(value or 0)
    if kind == "seed":
        return seed_option(value)
    if kind == "bool":
        return bool(value)
    if kind == "schema":
        return parse_schema(value)
    if kind == "lines":
        lines = value.splitlines() if isinstance(value, str) else list(value or ())
        return tuple(line for line in lines if line)
    return "" if value is None else value


def to_panel(kind: Kind, value: Any) -> Any:
    if kind == "seed":
        return -1 if value is None else value
    if kind == "schema":
        return "" if value is None else json.dumps(value, indent=2)
    if kind == "lines":
        return "\n".join(value or ())
    return value


def option_text(kind: Kind, value: Any) -> str:
    if value is None:
        return "none"
    if kind == "bool":
        return "1" if value else "0"
    if kind == "schema":
        return json.dumps(value, separators=(",", ":"))
    if kind == "lines":
        return "\n".join(value)
    return str(value)


def option_from_text(kind: Kind, raw: str) -> Any:
    text = raw.strip()
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{raw!r} is not a number") from None
    if kind in ("int", "seed"):
        try:
            return seed_option(text) if kind == "seed" else int(text)
        except ValueError:
            raise ValueError(f"{raw!r} is not a whole number") from None
    if kind == "bool":
        if text.lower() not in TRUE_WORDS + FALSE_WORDS:
            raise ValueError(f"{raw!r} is not a yes/no value")
        return text.lower() in TRUE_WORDS
    if kind == "schema":
        try:
            return parse_schema(None if text.lower() == "none" else text)
        except InputError as exc:
            raise ValueError(exc.message) from None
    if kind == "lines":
        return tuple(line for line in raw.splitlines() if line)
    return raw


API_TYPES: dict[Kind, Any] = {
    "text": str,
    "float": float,
    "int": int,
    "seed": int,
    "bool": bool,
    "schema": dict[str, Any],
    "lines": list[str],
}


# --- the table ------------------------------------------------------------------------------------

SCHEMA_HINT = '{"type": "object", "properties": {"answer": {"type": "number"}}, "required": ["answer"]}'

FIELDS: list[PanelField] = [
    PanelField(
        "system_prompt",
        "text",
        Control("textbox", "System prompt", lines=6),
        "",
        "system",
        option=False,
        share_key="system",
        api_limits={"max_length": 32_000},
        compare="none",  # Compare has its own system prompt box (ComparisonSetup.system_prompt)
    ),
    PanelField(
        "temperature",
        "float",
        Control("slider", "Temperature", 0, 2, 0.05),
        0.7,
        "temperature",
        api_limits={"ge": 0.0, "le": 2.0},
        compare="lane",
    ),
    PanelField(
        "top_p",
        "float",
        Control("slider", "Top p", 0.05, 1, 0.05),
        1.0,
        "top-p",
        api_limits={"gt": 0.0, "le": 1.0},
        compare="lane",
    ),
    PanelField(
        "top_k",
        "int",
        Control("slider", "Top k (0 = off)", 0, 200, 1),
        0,
        "top-k",
        api_limits={"ge": 0, "le": 1000},
        compare="lane",
    ),
    PanelField(
        "max_new_tokens",
        "int",
        Control("slider", "Max new tokens", 16, 32768, 16, capped=True),
        512,
        "max-new-tokens",
        api_limits={"ge": 1, "le": 32768},
        compare="lane",
    ),
    PanelField(
        "seed",
        "seed",
        Control("number", "Seed (-1 = random)", minimum=-1),
        -1,
        "seed",
        api_limits={"ge": -1, "le": 2**31 - 1},
        compare="lane",
    ),
    PanelField(
        "tools",
        "bool",
        Control("checkbox", "Offer tools (calculator, circle area)"),
        False,
        "tools",
        option=False,
        compare="none",  # Compare runs no tool rounds
    ),
    PanelField(
        "json_output",
        "bool",
        Control("checkbox", "JSON output (the answer is one JSON value)"),
        False,
        "json-output",
        share_key="json",
    ),
    PanelField(
        "json_schema",
        "schema",
        Control("textbox", "JSON schema (optional)", lines=2, placeholder=SCHEMA_HINT),
        "",
        "json-schema",
        share_key="schema",
        only_with="json_output",
    ),
]
"""The chat panel, in the order the controls show (and :class:`PanelValues` takes positionally)."""


def panel_fields() -> tuple[PanelField, ...]:
    return tuple(FIELDS)


def field_named(name: str) -> PanelField:
    for spec in FIELDS:
        if spec.name == name:
            return spec
    raise KeyError(name)


def overridable() -> tuple[str, ...]:
    """The settings a Compare lane may vary."""
    return tuple(f.name for f in FIELDS if f.compare == "lane")


def compare_options() -> tuple[PanelField, ...]:
    """The sampling settings Compare holds for every lane (the shared row and share links)."""
    return tuple(f for f in FIELDS if f.option and f.compare != "none")


@contextmanager
def registered(extra: PanelField) -> Iterator[PanelField]:
    """Add a field for the duration (a test's new setting); everything built meanwhile has it."""
    if any(f.name == extra.name for f in FIELDS):
        raise ValueError(f"a panel field named {extra.name!r} exists")
    FIELDS.append(extra)
    try:
        yield extra
    finally:
        FIELDS.remove(extra)


# --- the values of one panel ----------------------------------------------------------------------


class PanelValues:
    """What a tab's settings panel holds: one value per field of the table, in table order.

    Built positionally from the controls' values (``PanelValues(*panel)``) or by name; a field
    left out takes its default. Read a value as an attribute (``values.temperature``)."""

    __slots__ = ("values",)
    values: dict[str, Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        table = panel_fields()
        if len(args) > len(table):
            raise TypeError(f"PanelValues takes at most {len(table)} values, got {len(args)}")
        values = {f.name: f.default for f in table}
        values.update(zip((f.name for f in table), args, strict=False))
        if unknown := set(kwargs) - set(values):
            raise TypeError(f"no panel field named {', '.join(sorted(unknown))}")
        values.update(kwargs)
        object.__setattr__(self, "values", values)

    def __getattr__(self, name: str) -> Any:
        try:
            return object.__getattribute__(self, "values")[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("PanelValues is immutable; use replace()")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PanelValues) and self.values == other.values

    def __hash__(self) -> int:
        return hash(tuple(map(repr, self.values.items())))

    def __repr__(self) -> str:
        return "PanelValues(" + ", ".join(f"{k}={v!r}" for k, v in self.values.items()) + ")"

    def replace(self, **changes: Any) -> PanelValues:
        return PanelValues(**{**self.values, **changes})

    def as_tuple(self) -> tuple[Any, ...]:
        return tuple(self.values.values())

    def options(self, cap: int) -> SamplingOptions:
        """Validated sampling options; raises ValidationError (or InputError for a schema that
        is not JSON) with the bad field named."""
        chosen: dict[str, Any] = {}
        for spec in panel_fields():
            if not spec.option or (spec.only_with and not self.values[spec.only_with]):
                continue
            chosen[spec.name] = spec.to_option(self.values[spec.name])
        if "max_new_tokens" in chosen:
            chosen["max_new_tokens"] = min(chosen["max_new_tokens"], cap)
        return SamplingOptions(**chosen)

    @classmethod
    def of(cls, preset: Any) -> PanelValues:
        """The panel a preset (presets.Preset) sets."""
        return cls(**{spec.name: spec.from_preset(preset) for spec in panel_fields()})


class _ApiSettingsBase(BaseModel):
    model_config = ConfigDict(extra="forbid")


def api_settings_model() -> type[BaseModel]:
    """What ``/chat``'s ``settings`` may change on top of the preset (null: the preset's)."""
    fields: dict[str, Any] = {
        spec.name: (API_TYPES[spec.kind] | None, Field(None, **spec.api_limits)) for spec in panel_fields()
    }
    return create_model("ApiSettings", __base__=_ApiSettingsBase, **fields)


def parse_api_settings(raw: object) -> dict[str, Any]:
    """The settings an API call set (by name); raises InputError naming a bad or unknown one."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InputError("settings", 'must be an object such as {"temperature": 0.2}')
    model = api_settings_model()
    try:
        return model.model_validate(raw).model_dump(exclude_none=True)
    except ValidationError as exc:
        raise InputError("", describe_validation(exc, model)) from None
