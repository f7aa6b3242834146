"""From a setup (lane specs, preset, prompt, settings) to a run card; shared by CLI, API and tab.

``prepare`` resolves everything that can fail before any I/O (lane specs, preset, settings,
the deployment's limits and its gate for user-supplied backends), so bad input gets one clear
message and nothing starts; the UI, ``/compare``, MCP and the CLI all go through it.
``run_card_for`` runs the comparison ``setup.runs`` times and assembles the card, asking each
backend about its model on the way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from backends.base import Backend, SamplingOptions
from compare.lanes import MAX_LANES, MIN_LANES, backend_for_lane, parse_lane
from compare.runcard import RunCard, build_run_card
from compare.runner import Comparison, ComparisonResult, Lane, LaneUpdate
from compare.share import ComparisonSetup
from compare.verdicts import verdicts
from runtime.errors import InputError
from runtime.gate import BackendGate
from runtime.kinds import runtime_version
from runtime.limits import Limits

if TYPE_CHECKING:
    from runtime.registry import BackendRegistry

DEFAULT_TIMEOUT_S = 120.0


class SetupError(ValueError):
    """The comparison cannot start; the message says what to change."""


@dataclass
class Prepared:
    setup: ComparisonSetup
    lanes: list[Lane]
    system_prompt: str
    options: SamplingOptions
    gold: str
    verify: bool
    """Math verdicts: on for a math preset or when a reference answer is known."""

    made: int = field(default=0, init=False)
    """Comparisons made so far: each starts the in-process engines one turn later than the last,
    so the order alternates between repeats (run xN) wherever the comparisons are run."""

    def comparison(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> Comparison:
        self.made += 1
        return Comparison(
            self.lanes,
            prompt=self.setup.prompt,
            system_prompt=self.system_prompt,
            options=self.options,
            timeout_s=timeout_s,
            first_turn=self.made - 1,
        )


def find_preset(name: str, presets: Any) -> Any:
    """The preset called ``name`` from a catalog (presets.PresetCatalog) or a name->preset mapping."""
    if presets is None:
        raise SetupError(f"preset {name!r} asked for, but no presets are loaded")
    getter = getattr(presets, "get", None)
    try:
        preset = getter(name) if getter else presets[name]
    except (KeyError, ValueError) as exc:
        raise SetupError(str(exc).strip("'\"")) from None
    if preset is None:
        raise SetupError(f"no preset named {name!r}")
    return preset


def prepare(
    setup: ComparisonSetup,
    registry: BackendRegistry,
    presets: Any = None,
    *,
    session: str | None = None,
    gate: BackendGate | None = None,
    limits: Limits | None = None,
) -> Prepared:
    """Validate the setup and build its lanes; raises SetupError before any request is sent.

    ``gate`` and ``limits`` default to what the registry's settings say; backends built for
    typed lane specs belong to ``session``."""
    gate = gate or BackendGate(registry.settings)
    limits = limits or Limits.of(registry.settings)
    try:
        limits.prompt(setup.prompt)
        setup.runs = limits.runs(setup.runs)
    except InputError as exc:
        raise SetupError(str(exc)) from None
    if not isinstance(setup.lanes, list | tuple) or not all(isinstance(s, str) for s in setup.lanes):
        raise SetupError('lanes: a list of lane specs, e.g. ["onnx", "ollama"]')
    if not MIN_LANES <= len(setup.lanes) <= MAX_LANES:
        count = len(setup.lanes)
        raise SetupError(f"lanes: a comparison needs {MIN_LANES} to {MAX_LANES} lanes, got {count}")
    system_prompt, base, gold, verify = "", SamplingOptions(), setup.gold, bool(setup.gold)
    if setup.preset:
        preset = find_preset(setup.preset, presets)
        system_prompt, base = preset.system_prompt, preset.options
        verify = verify or getattr(preset, "tab", "") == "math"
        gold = gold or (getattr(preset, "reference_for", lambda _p: None)(setup.prompt) or "")
    if setup.system_prompt is not None:
        system_prompt = setup.system_prompt
    try:
        options = setup.sampling(base)
        limits.new_tokens(options.max_new_tokens)
        lanes = []
        for text in setup.lanes:
            spec = parse_lane(text, known_labels=registry.labels(session))
            if spec.override is not None:
                limits.new_tokens(spec.override.apply(options).max_new_tokens)
            backend, model = backend_for_lane(spec, registry, gate, session)
            lanes.append(Lane(backend, model=model, override=spec.override, title=spec.title, spec=str(spec)))
    except (ValueError, KeyError) as exc:
        raise SetupError(str(exc).strip("'\"")) from None
    return Prepared(setup, lanes, system_prompt, options, gold, verify or bool(gold))


async def describe(backend: Backend, model: str, timeout_s: float = 3.0) -> dict[str, str]:
    """What the backend says about this model and itself (format, quantization, versions).

    Advisory and bounded: a failure is written into the details, never raised.
    """
    details: dict[str, str] = {}
    try:
        models = await asyncio.wait_for(backend.list_models(), timeout_s)
    except Exception as exc:
        models = []
        details["list_models"] = f"failed: {exc}"[:200]
    found = next((m for m in models if m.id == model), None) or (models[0] if len(models) == 1 else None)
    if found is not None:
        details.update({str(k): str(v) for k, v in found.details.items()})
        if found.context_length:
            details.setdefault("context_length", str(found.context_length))
        if found.id != model:
            details.setdefault("model_id", found.id)
    try:
        health = await asyncio.wait_for(backend.health(), timeout_s)
        if health.detail:
            details["server"] = health.detail[:200]
    except Exception as exc:
        details["server"] = f"health check failed: {exc}"[:200]
    if (version := runtime_version(backend)) is not None:
        details.setdefault("runtime_version", version)
    return details


async def card_for(prepared: Prepared, runs: list[ComparisonResult]) -> RunCard:
    last = runs[-1]
    details = await asyncio.gather(
        *(
            describe(lane.backend, result.model)
            for lane, result in zip(prepared.lanes, last.lanes, strict=True)
        )
    )
    found = None
    if prepared.verify:
        texts = [lane.text for lane in last.lanes]
        found = await verdicts(texts, prompt=prepared.setup.prompt, gold=prepared.gold)
    return build_run_card(
        prepared.setup,
        runs,
        system_prompt=prepared.system_prompt,
        options=prepared.options,
        details=list(details),
        verdicts=found,
    )


async def run_card_for(
    setup: ComparisonSetup,
    registry: BackendRegistry,
    presets: Any = None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    on_update: Callable[[int, LaneUpdate], None] | None = None,
    session: str | None = None,
) -> RunCard:
    """Run the setup ``setup.runs`` times and return its card (compare.runner says which lanes
    run at once and which in turn)."""
    prepared = prepare(setup, registry, presets, session=session)
    runs = []
    for run_index in range(setup.runs):
        comparison = prepared.comparison(timeout_s)
        callback = None if on_update is None else (lambda u, r=run_index: on_update(r, u))
        runs.append(await comparison.run(callback))
    return await card_for(prepared, runs)
