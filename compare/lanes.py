"""Lane specs: which backend, which model, and at most one sampling setting varied on purpose.

Syntax (CLI ``--lane``, share links, the API); the kinds come from :mod:`runtime.kinds`::

    onnx                         the default in-process model
    onnx:FOLDER                  another in-process model folder (or Hugging Face id)
    openai:MODEL@BASE_URL        any OpenAI-compatible server (MODEL may be empty)
    vllm:MODEL@BASE_URL          vLLM (OpenAI-compatible with vLLM's extras)
    ollama:MODEL@HOST            Ollama; HOST without a scheme gets http://
    LABEL                        a backend already configured in this app (e.g. "vllm")
    LABEL:MODEL                  a configured backend asked for another model by name

and any of them may end in ``#SETTING=VALUE`` to vary one sampling setting for that lane only,
e.g. ``ollama:qwen2.5:0.5b@localhost:11434#temperature=0``. ``#`` is safe as a separator
because URL fragments are never sent to a server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from backends.base import Backend, SamplingOptions
from runtime.kinds import KINDS, Target, available_kinds, default_in_process, lane_help
from runtime.panel_fields import field_named, option_from_text, overridable
from runtime.settings import Endpoint
from runtime.urls import normalise_base_url

if TYPE_CHECKING:
    from runtime.gate import BackendGate
    from runtime.registry import BackendRegistry

MIN_LANES, MAX_LANES = 2, 4


class LaneSpecError(ValueError):
    """A lane spec or per-lane override that cannot be used; the message says how to fix it."""


@dataclass(frozen=True)
class SettingOverride:
    name: str
    value: float | int | None

    def apply(self, options: SamplingOptions) -> SamplingOptions:
        """The shared options with this one setting changed, validated like any options."""
        try:
            return SamplingOptions.model_validate({**options.model_dump(), self.name: self.value})
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"]
            raise LaneSpecError(f"{self.name}={self.value}: {reason}") from None

    def __str__(self) -> str:
        return f"{self.name}={'none' if self.value is None else self.value}"


def parse_override(text: str) -> SettingOverride:
    """``temperature=0.2`` -> SettingOverride; only a setting the panel table lets a lane vary
    (:func:`runtime.panel_fields.overridable`); everything else stays identical across lanes."""
    name, sep, raw = text.partition("=")
    name, raw = name.strip().replace("-", "_"), raw.strip()
    if not sep or not name or not raw:
        raise LaneSpecError(f"override {text!r} should look like SETTING=VALUE, e.g. temperature=0.2")
    if name not in (names := overridable()):
        raise LaneSpecError(f"cannot vary {name!r} per lane; choose one of: {', '.join(names)}")
    kind = field_named(name).kind
    try:
        value = option_from_text(kind, raw)
    except ValueError:
        words = "a whole number" if kind in ("int", "seed") else "a number"
        raise LaneSpecError(f"{name} must be {words}, got {raw!r}") from None
    override = SettingOverride(name, value)
    override.apply(SamplingOptions())  # bounds check now, not at run time
    return override


@dataclass(frozen=True)
class LaneSpec:
    kind: str
    """A kind of runtime.kinds ("onnx", "ollama", ...), or "label" (a backend configured in the app)."""
    model: str = ""
    url: str = ""
    label: str = ""
    override: SettingOverride | None = None

    @property
    def in_process(self) -> bool:
        return self.kind in KINDS and KINDS[self.kind].in_process

    def __str__(self) -> str:
        if self.kind == "label":
            base = f"{self.label}:{self.model}" if self.model else self.label
        elif self.in_process:
            base = f"{self.kind}:{self.model}" if self.model else self.kind
        else:
            base = f"{self.kind}:{self.model}@{self.url}"
        return f"{base}#{self.override}" if self.override else base

    @property
    def title(self) -> str:
        """Short name for a lane header."""
        if self.kind == "label":
            name = self.label + (f" · {self.model}" if self.model else "")
        elif self.in_process:
            name = f"{self.kind} · {Path(self.model).name}" if self.model else self.kind
        else:
            host = self.url.split("://", 1)[-1].rstrip("/")
            name = f"{self.kind} · {self.model or 'default'} @ {host}"
        return f"{name} [{self.override}]" if self.override else name


def parse_lane(text: str, *, known_labels: tuple[str, ...] | list[str] = ()) -> LaneSpec:
    """Parse one lane spec (see the module docstring); raises LaneSpecError with a fix."""
    raw = text.strip()
    if not raw:
        raise LaneSpecError(f"empty lane spec; try {lane_help()}")
    raw, sep, override_text = raw.partition("#")
    override = parse_override(override_text) if sep else None
    if raw in known_labels:
        return LaneSpec("label", label=raw, override=override)
    kind, colon, rest = raw.partition(":")
    kind = kind.strip().lower()
    in_process, remote = available_kinds(in_process=True), available_kinds(in_process=False)
    if kind in in_process and (not colon or "@" not in rest):
        return LaneSpec(kind, model=rest.strip(), override=override)
    if kind in remote and colon and ("@" in rest or kind not in known_labels):
        model, at, url = rest.partition("@")
        if not at or not url.strip():
            raise LaneSpecError(
                f"lane {text!r}: {kind} lanes need a server, e.g. {kind}:MODEL@http://HOST:PORT"
            )
        url = normalise_base_url(url, default_scheme=KINDS[kind].default_scheme)
        return LaneSpec(kind, model=model.strip(), url=url, override=override)
    # "LABEL:MODEL" naming a configured backend
    label, _, model = raw.partition(":")
    if label in known_labels:
        return LaneSpec("label", model=model.strip(), label=label, override=override)
    hint = f" or one of the configured backends: {', '.join(known_labels)}" if known_labels else ""
    raise LaneSpecError(f"unknown lane {text!r}: use {lane_help()}{hint}")


def parse_lanes(texts: list[str], *, known_labels: tuple[str, ...] | list[str] = ()) -> list[LaneSpec]:
    specs = [parse_lane(t, known_labels=known_labels) for t in texts if t.strip()]
    if not MIN_LANES <= len(specs) <= MAX_LANES:
        raise LaneSpecError(f"a comparison needs {MIN_LANES} to {MAX_LANES} lanes, got {len(specs)}")
    return specs


def backend_for_lane(
    spec: LaneSpec, registry: BackendRegistry, gate: BackendGate | None = None, session: str | None = None
) -> tuple[Backend, str | None]:
    """The backend a lane runs on and the model id to request.

    Everything the user typed passes ``gate`` first (a URL, a folder, a model name); a backend
    built for a typed spec belongs to ``session`` alone."""
    from runtime.gate import BackendGate

    settings = registry.settings
    gate = gate or BackendGate(settings)
    if spec.kind == "label":
        backend = registry.get(spec.label, session)
        if spec.model and type(backend).kind in KINDS and KINDS[type(backend).kind].in_process:
            gate.check_folder(spec.model)
            spec = LaneSpec(type(backend).kind, model=spec.model, override=spec.override)
        else:
            return backend, gate.check_model_name(spec.model) or None
    if spec.in_process:
        if not spec.model and spec.kind in registry.labels(session):  # a default the registry shares
            return registry.get(spec.kind, session), None
        if not spec.model and spec.kind == default_in_process():  # the configured default: always allowed
            registry.add(KINDS[spec.kind].build(spec.kind, Target(), settings))
            return registry.get(spec.kind, session), None
        path = gate.check_folder(spec.model) if spec.model else ""
        label = str(LaneSpec(spec.kind, model=path))
        if label not in registry.labels(session):
            registry.add(KINDS[spec.kind].build(label, Target(path=path), settings), session)
        return registry.get(label, session), None
    url = gate.check_url(spec.url)
    endpoint = Endpoint(spec.kind, url, name=f"{spec.kind}@{url}")
    if endpoint.label not in registry.labels(session):
        registry.add_endpoint(endpoint, session)
    return registry.get(endpoint.label, session), gate.check_model_name(spec.model) or None


def override_fields(override: SettingOverride | None) -> dict[str, Any]:
    return {} if override is None else {override.name: override.value}
