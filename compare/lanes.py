"""Lane specs: which backend, which model, and at most one sampling setting varied on purpose.

Syntax (CLI ``--lane``, share links, the API)::

    onnx                         the default in-process model
    onnx:FOLDER                  another in-process model folder (or Hugging Face id)
    openai:MODEL@BASE_URL        any OpenAI-compatible server (MODEL may be empty)
    vllm:MODEL@BASE_URL          vLLM (OpenAI-compatible with vLLM's extras)
    ollama:MODEL@HOST            Ollama; HOST without a scheme gets http://
    LABEL                        a backend already configured in this app (e.g. "vllm")

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

if TYPE_CHECKING:
    from app.registry import BackendRegistry
    from app.settings import Settings

IN_PROCESS_KIND = "onnx"
REMOTE_KINDS = ("openai", "vllm", "ollama")
OVERRIDABLE = ("temperature", "top_p", "top_k", "max_new_tokens", "seed")
"""Sampling settings a lane may vary; everything else stays identical across lanes."""
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
    """``temperature=0.2`` -> SettingOverride; only one of :data:`OVERRIDABLE`."""
    name, sep, raw = text.partition("=")
    name, raw = name.strip().replace("-", "_"), raw.strip()
    if not sep or not name or not raw:
        raise LaneSpecError(f"override {text!r} should look like SETTING=VALUE, e.g. temperature=0.2")
    if name not in OVERRIDABLE:
        raise LaneSpecError(f"cannot vary {name!r} per lane; choose one of: {', '.join(OVERRIDABLE)}")
    value: float | int | None
    try:
        if name == "seed" and raw.lower() in ("none", "random", ""):
            value = None
        elif name in ("top_k", "max_new_tokens", "seed"):
            value = int(raw)
        else:
            value = float(raw)
    except ValueError:
        kind = "a whole number" if name in ("top_k", "max_new_tokens", "seed") else "a number"
        raise LaneSpecError(f"{name} must be {kind}, got {raw!r}") from None
    override = SettingOverride(name, value)
    override.apply(SamplingOptions())  # bounds check now, not at run time
    return override


@dataclass(frozen=True)
class LaneSpec:
    kind: str
    """"onnx", "openai", "vllm", "ollama", or "label" (a backend configured in the app)."""
    model: str = ""
    url: str = ""
    label: str = ""
    override: SettingOverride | None = None

    def __str__(self) -> str:
        if self.kind == "label":
            base = self.label
        elif self.kind == IN_PROCESS_KIND:
            base = f"onnx:{self.model}" if self.model else "onnx"
        else:
            base = f"{self.kind}:{self.model}@{self.url}"
        return f"{base}#{self.override}" if self.override else base

    @property
    def title(self) -> str:
        """Short name for a lane header."""
        if self.kind == "label":
            name = self.label + (f" · {self.model}" if self.model else "")
        elif self.kind == IN_PROCESS_KIND:
            name = f"onnx · {Path(self.model).name}" if self.model else "onnx"
        else:
            host = self.url.split("://", 1)[-1].rstrip("/")
            name = f"{self.kind} · {self.model or 'default'} @ {host}"
        return f"{name} [{self.override}]" if self.override else name


def parse_lane(text: str, *, known_labels: tuple[str, ...] | list[str] = ()) -> LaneSpec:
    """Parse one lane spec (see the module docstring); raises LaneSpecError with a fix."""
    raw = text.strip()
    if not raw:
        raise LaneSpecError("empty lane spec; try onnx, openai:MODEL@URL or ollama:MODEL@HOST")
    raw, sep, override_text = raw.partition("#")
    override = parse_override(override_text) if sep else None
    kind, colon, rest = raw.partition(":")
    kind = kind.strip().lower()
    if kind == IN_PROCESS_KIND and (not colon or "@" not in rest):
        return LaneSpec(IN_PROCESS_KIND, model=rest.strip(), override=override)
    if kind in REMOTE_KINDS and colon and ("@" in rest or kind not in known_labels):
        model, at, url = rest.partition("@")
        if not at or not url.strip():
            raise LaneSpecError(
                f"lane {text!r}: {kind} lanes need a server, e.g. {kind}:MODEL@http://HOST:PORT"
            )
        url = url.strip()
        if "://" not in url:
            url = "http://" + url
        return LaneSpec(kind, model=model.strip(), url=url.rstrip("/"), override=override)
    # "LABEL" or "LABEL:MODEL" naming a configured backend
    label, _, model = raw.partition(":") if raw not in known_labels else (raw, "", "")
    if label in known_labels:
        return LaneSpec("label", model=model.strip(), label=label, override=override)
    hint = f" or one of the configured backends: {', '.join(known_labels)}" if known_labels else ""
    raise LaneSpecError(
        f"unknown lane {text!r}: use onnx, onnx:FOLDER, openai:MODEL@URL, vllm:MODEL@URL, "
        f"ollama:MODEL@HOST{hint}"
    )


def parse_lanes(texts: list[str], *, known_labels: tuple[str, ...] | list[str] = ()) -> list[LaneSpec]:
    specs = [parse_lane(t, known_labels=known_labels) for t in texts if t.strip()]
    if not MIN_LANES <= len(specs) <= MAX_LANES:
        raise LaneSpecError(f"a comparison needs {MIN_LANES} to {MAX_LANES} lanes, got {len(specs)}")
    return specs


def in_process_backend(folder: str, settings: Settings) -> Backend:
    """The ONNX Runtime GenAI backend for a model folder ("" = the default model)."""
    try:
        from backends.model_store import resolve_model_dir
        from backends.onnx_engine import OnnxBackend
    except ImportError as exc:  # the in-process engine is optional on remote-only installs
        from backends.errors import BackendUnavailable

        raise BackendUnavailable("onnx", f"the in-process engine is not available ({exc})") from None
    model_dir = resolve_model_dir(folder or settings.model, home=settings.model_home)
    return OnnxBackend(f"onnx:{folder}" if folder else "onnx", model_dir)


def backend_for_lane(spec: LaneSpec, registry: BackendRegistry) -> tuple[Backend, str | None]:
    """The backend a lane runs on (shared through the registry) and the model id to request."""
    from app.registry import IN_PROCESS
    from app.settings import Endpoint

    settings = registry.settings
    if spec.kind == "label":
        return registry.get(spec.label), spec.model or None
    if spec.kind == IN_PROCESS_KIND:
        label = IN_PROCESS if not spec.model else f"onnx:{spec.model}"
        if label not in registry.labels():
            registry.add(in_process_backend(spec.model, settings))
        return registry.get(label), None
    endpoint = Endpoint(spec.kind, spec.url, name=f"{spec.kind}@{spec.url}")
    if endpoint.label not in registry.labels():
        registry.add_endpoint(endpoint)
    return registry.get(endpoint.label), spec.model or None


def override_fields(override: SettingOverride | None) -> dict[str, Any]:
    return {} if override is None else {override.name: override.value}
