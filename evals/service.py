"""From an eval setup (set, lanes, preset, settings) to a finished card; shared by CLI, API and tab.

:func:`prepare` checks everything that can fail before any request (the set, the lanes through
the deployment's gate, the preset, the limits: items per eval and tokens per item), so bad input
gets one clear message and nothing starts. :func:`start` returns an :class:`Evaluation` whose
:meth:`~Evaluation.run` writes every cell to a JSONL log as it finishes and the card at the end.
"""

from __future__ import annotations

import asyncio
import os
import platform
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backends.base import Backend, ChatRequest, Done, Message, SamplingOptions
from backends.errors import BackendError
from compare.lanes import MAX_LANES, backend_for_lane, parse_lane
from compare.runner import Lane
from compare.service import describe, find_preset
from evals.card import CellLog, EvalCard, ItemRecord, LaneRecord
from evals.checks import grade
from evals.runner import EvalLane, EvalRun
from evals.sets import EvalSet
from runtime.errors import InputError
from runtime.gate import BackendGate
from runtime.limits import Limits

if TYPE_CHECKING:
    from runtime.registry import BackendRegistry

DEFAULT_SEED = 0
IN_PROCESS_CONCURRENCY = 16
"""Items of an in-process lane decoding together by default: the batching engine's largest batch
(the scheduler may batch fewer). On 2 AVX2 cores, 48 math items: 8 in flight ran 1.85x faster than
one at a time, 16 in flight 2.13x (uneven answer lengths leave a tail of short batches)."""
REMOTE_CONCURRENCY = 4
DEFAULT_TIMEOUT_S = 300.0


class EvalSetupError(ValueError):
    """The evaluation cannot start; the message says what to change."""


@dataclass
class EvalSetup:
    eval_set: EvalSet
    lanes: list[str]
    preset: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    limit: int | None = None
    concurrency: int = 0
    """Items in flight per lane; 0: 8 for in-process lanes, 4 for remote ones."""
    timeout_s: float = DEFAULT_TIMEOUT_S
    probe: bool = True
    """Ask each backend what it supports (tools, JSON, logprobs) for the framework table."""


@dataclass
class Evaluation:
    card: EvalCard
    run: EvalRun
    backends: list[Backend]
    log_path: Path
    card_path: Path
    probe: bool

    async def execute(self, on_cell: Callable[[Any], None] | None = None) -> EvalCard:
        """Run it: cells go to the log as they finish; the card is written at the end (or on Stop)."""
        log = CellLog(self.log_path, self.card)

        def keep(cell: Any) -> None:
            self.card.cells.append(cell)
            log.add(cell)
            if on_cell is not None:
                on_cell(cell)

        def lane_done(index: int, wall_s: float) -> None:
            record = self.card.lanes[index]
            record.wall_s = wall_s
            if self.run.lanes[index].in_process:
                record.memory_mib = resident_mib()

        self.run.on_cell, self.run.on_lane_done = keep, lane_done
        try:
            if any(c.get("type") == "math" for item in self.card.items for c in item.checks):
                from mathcheck import warm_up

                await asyncio.to_thread(warm_up)  # the verifier's worker starts outside lane 1's time
            await self._describe()
            self.card.wall_s = await self.run.run()
        finally:
            log.close()
            self.card.stopped = self.run.stopped
            self.card.machine.update(load_end=_load())
            self.card_path.write_text(self.card.to_json(), encoding="utf-8")
        return self.card

    async def _describe(self) -> None:
        """Probe first (it also loads in-process models, keeping the load out of the first TTFT),
        then ask each backend about itself, now that it is up."""
        pairs = list(zip(self.backends, self.card.lanes, strict=True))
        if self.probe:
            probes = await asyncio.gather(*(probe(b, r.model or None) for b, r in pairs))
            for record, probed in zip(self.card.lanes, probes, strict=True):
                record.probes = probed
        found = await asyncio.gather(*(describe(b, r.model) for b, r in pairs))
        for record, details in zip(self.card.lanes, found, strict=True):
            record.details = details


def prepare(
    setup: EvalSetup,
    registry: BackendRegistry,
    presets: Any = None,
    *,
    session: str | None = None,
    out_dir: Path | None = None,
) -> Evaluation:
    """Validate the setup and build its lanes; raises EvalSetupError before any request."""
    settings = registry.settings
    gate, limits = BackendGate(settings), Limits.of(settings)
    items = list(setup.eval_set.limited(setup.limit).items)
    if setup.limit is not None and setup.limit < 1:
        raise EvalSetupError("limit must be a whole number of items, at least 1")
    if len(items) > settings.max_eval_items:
        raise EvalSetupError(
            f"the set has {len(items)} items; this instance runs at most {settings.max_eval_items} per "
            f"evaluation: set a limit of {settings.max_eval_items} or less"
        )
    if not 1 <= len(setup.lanes) <= MAX_LANES:
        raise EvalSetupError(f"an evaluation runs 1 to {MAX_LANES} lanes, got {len(setup.lanes)}")
    preset_name = setup.preset or setup.eval_set.preset
    system_prompt, base, is_math = "", SamplingOptions(), False
    try:
        if preset_name:
            preset = find_preset(preset_name, presets)
            system_prompt, base = preset.system_prompt, preset.options
            is_math = getattr(preset, "tab", "") == "math"
        # the preset's own token budget is trimmed to the instance's cap; one asked for is checked
        budget = min(base.max_new_tokens, limits.max_new_tokens)
        options = SamplingOptions.model_validate(
            {**base.model_dump(), "max_new_tokens": budget, **setup.options}
        )
        if options.seed is None:
            options = options.model_copy(update={"seed": DEFAULT_SEED})
        limits.new_tokens(options.max_new_tokens)
        for n, item in enumerate(items, start=1):
            limits.prompt(item.prompt, field=f"item {n}: prompt")
        lanes, backends = [], []
        for text in setup.lanes:
            spec = parse_lane(text, known_labels=registry.labels(session))
            if spec.override is not None:
                limits.new_tokens(spec.override.apply(options).max_new_tokens)
            backend, model = backend_for_lane(spec, registry, gate, session)
            lane = Lane(backend, model=model, override=spec.override, title=spec.title, spec=str(spec))
            in_process = spec.in_process or _in_process(backend)
            default = IN_PROCESS_CONCURRENCY if in_process else REMOTE_CONCURRENCY
            lanes.append(EvalLane(lane, min(setup.concurrency or default, len(items)), in_process))
            backends.append(backend)
    except (InputError, ValueError, KeyError) as exc:
        raise EvalSetupError(str(exc).strip("'\"")) from None
    started = datetime.now(UTC)
    card = EvalCard(
        set_name=setup.eval_set.name,
        set_sha256=setup.eval_set.sha256,
        set_origin=setup.eval_set.origin,
        preset=preset_name,
        preset_is_math=is_math,
        system_prompt=system_prompt,
        options=options.model_dump(mode="json"),
        items=[
            ItemRecord(
                index=i,
                prompt=it.prompt,
                reference=it.reference,
                checks=[c.to_json() for c in it.checks_for(is_math)],
                id=it.id,
            )
            for i, it in enumerate(items)
        ],
        lanes=[_lane_record(i, lane, options) for i, lane in enumerate(lanes)],
        started=started.isoformat(timespec="seconds"),
        how=_how(lanes, options),
        machine=machine(),
    )
    run = EvalRun(
        items,
        lanes,
        system_prompt=system_prompt,
        options=options,
        preset_is_math=is_math,
        timeout_s=setup.timeout_s,
    )
    folder = out_dir or Path(tempfile.gettempdir()) / "slm-playground-evals"
    stem = f"eval-{started:%Y%m%dT%H%M%S}-{os.getpid()}-{id(run) % 10_000:04d}"
    return Evaluation(card, run, backends, folder / f"{stem}.jsonl", folder / f"{stem}.json", setup.probe)


def _in_process(backend: Backend) -> bool:
    from runtime.kinds import KINDS

    return bool(getattr(KINDS.get(type(backend).kind), "in_process", False))


def _lane_record(index: int, lane: EvalLane, options: SamplingOptions) -> LaneRecord:
    own = lane.lane.override.apply(options) if lane.lane.override else options
    backend = lane.lane.backend
    return LaneRecord(
        index=index,
        spec=lane.lane.spec,
        title=lane.lane.title,
        kind=type(backend).kind,
        backend=backend.name,
        model=lane.lane.model or backend.default_model(),
        concurrency=lane.concurrency,
        options=own.model_dump(mode="json"),
    )


def _how(lanes: list[EvalLane], options: SamplingOptions) -> str:
    per_lane = ", ".join(f"{e.lane.title}: {e.concurrency}" for e in lanes)
    return (
        f"Uncached; seed {options.seed}, temperature {options.temperature:g}, at most "
        f"{options.max_new_tokens} new tokens; lanes one after another; items in flight per lane: {per_lane}."
    )


async def probe(backend: Backend, model: str | None, timeout_s: float = 60.0) -> dict[str, str]:
    """What the backend supports: tools and logprobs as it declares them, JSON output by asking
    for a tiny JSON object (a few tokens) and reading what comes back."""
    found = {
        "tools": "yes" if backend.supports_tools else "no",
        "logprobs": "yes" if backend.supports_logprobs else "no",
    }
    options = SamplingOptions(
        temperature=0,
        max_new_tokens=32,
        seed=DEFAULT_SEED,
        json_output=True,
        json_schema={
            "type": "object",
            "properties": {"ok": {"type": "boolean"}},
            "required": ["ok"],
            "additionalProperties": False,
        },
    )
    ask = Message(role="user", content='Reply {"ok": true}')
    request = ChatRequest(messages=(ask,), options=options, model=model)
    text = ""
    try:
        async with asyncio.timeout(timeout_s):
            async for event in backend.chat(request):
                if isinstance(event, Done):
                    break
                text += getattr(event, "text", "") or ""
        import json

        json.loads(text)
        found["json"] = "yes (schema-constrained)"
    except (BackendError, ValueError) as exc:
        found["json"] = f"no: {str(exc)[:80]}" if isinstance(exc, BackendError) else "answered, not JSON"
    except TimeoutError:
        found["json"] = f"no answer within {timeout_s:g} s"
    return found


def recheck(card: EvalCard) -> list[tuple[str, int, int, int]]:
    """Regrade every stored answer: (lane title, cells, stored correct, regraded correct) per lane."""
    from evals.sets import Item

    rows = []
    for lane in card.lanes:
        cells = [c for c in card.cells if c.lane == lane.index]
        stored = sum(c.verdict == "correct" for c in cells)
        regraded = 0
        for c in cells:
            if c.verdict == "error":
                continue
            record = card.items[c.item]
            item = Item.model_validate(
                {"prompt": record.prompt, "reference": record.reference, "checks": record.checks}
            )
            regraded += grade(c.text, item, preset_is_math=card.preset_is_math).verdict == "correct"
        rows.append((lane.title, len(cells), stored, regraded))
    return rows


def machine() -> dict[str, Any]:
    from models.native_ops import cpu_model

    cpu = cpu_model() or "unknown"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": cores, "kernel": platform.release(), "load_start": _load()}


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def resident_mib() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return None
