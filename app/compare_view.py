"""What the Compare tab shows, as pure functions: lane specs from its pickers and back, the live
readout of a lane, the chart's frame, the summary, the run card files and the last run kept in
the browser. The tab's components and handlers are :mod:`app.compare_tab`."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from compare.lanes import MAX_LANES, LaneSpecError, parse_lane
from compare.runcard import RunCard, differences_markdown, metrics_markdown, verdicts_markdown
from compare.runner import ComparisonResult
from runtime.gate import BackendGate
from runtime.kinds import KINDS, default_in_process
from runtime.panel_fields import field_named

NO_OVERRIDE = "(none)"


def lane_spec(
    backend: str,
    model: str,
    override: str,
    value: float | None,
    *,
    labels: list[str] | None = None,
    gate: BackendGate | None = None,
    in_process: bool = False,
) -> str:
    """The lane spec for one lane's pickers (a configured label, or a full spec typed in).

    With ``labels`` and ``gate``, a model typed beside a configured backend must be a model name
    (or, for an in-process backend, a folder the gate allows): it is never read as a spec, so
    ``openai`` + ``stub@http://host`` cannot become a lane at that host."""
    backend, model = (backend or "").strip(), (model or "").strip()
    if not backend:
        return ""
    if gate is not None and labels is not None and backend in labels and model:
        model = gate.check_folder(model) if in_process else gate.check_model_name(model)
    spec = f"{backend}:{model}" if model and "@" not in backend and ":" not in backend else backend
    if override and override != NO_OVERRIDE:
        if value is None:
            raise LaneSpecError(f"give a value for {override}, or choose {NO_OVERRIDE}")
        shown = int(value) if field_named(override).kind in ("int", "seed") else value
        spec += f"#{override}={shown}"
    return spec


def pickers_for(spec: str, labels: list[str]) -> tuple[str, str, str, float | None]:
    """Inverse of :func:`lane_spec`: (backend, model, override, value) for a spec from a link."""
    parsed = parse_lane(spec, known_labels=labels)
    override = parsed.override
    if parsed.kind == "label":
        backend, model = parsed.label, parsed.model
    else:
        backend, model = str(parsed).split("#", 1)[0], ""
    if override is None:
        return backend, model, NO_OVERRIDE, None
    return backend, model, override.name, None if override.value is None else float(override.value)


def timeline_frame(result: ComparisonResult) -> pd.DataFrame:
    """Tokens over time per lane, long format for gr.LinePlot (x=seconds, y=tokens, color=lane)."""
    rows = [{"seconds": 0.0, "tokens": 0, "lane": f"{lane.index + 1}: {lane.title}"} for lane in result.lanes]
    rows += [
        {"seconds": round(t, 4), "tokens": n, "lane": f"{lane.index + 1}: {lane.title}"}
        for lane in result.lanes
        for t, n in lane.timeline
    ]
    return pd.DataFrame(rows, columns=["seconds", "tokens", "lane"]).astype(
        {"seconds": float, "tokens": int, "lane": str}
    )


def summary_markdown(card: RunCard) -> str:
    parts = ["### Metrics (median / p95)", *metrics_markdown(card)]
    if card.notes:
        parts += ["", *[f"ℹ️ {note}" for note in card.notes]]
    if verdicts := verdicts_markdown(card):
        parts += ["", "### Math verdicts", *verdicts]
    if card.diffs:
        parts += ["", "### Differences (against lane 1)", *differences_markdown(card)]
    return "\n".join(parts)


def write_card_files(card: RunCard) -> tuple[str, str]:
    folder = Path(tempfile.mkdtemp(prefix="slm-compare-"))
    json_path, md_path = folder / "run-card.json", folder / "run-card.md"
    json_path.write_text(card.to_json(), encoding="utf-8")
    md_path.write_text(card.to_markdown(), encoding="utf-8")
    return str(json_path), str(md_path)


class SavedRun(BaseModel):
    """The last finished comparison, kept in the browser so a reload shows it again."""

    model_config = ConfigDict(extra="forbid")
    prompt: str
    lanes: int = Field(ge=2, le=MAX_LANES)
    texts: list[str] = Field(max_length=MAX_LANES)
    """Each lane's answer as the lane shows it (Markdown from ``shown``)."""
    notes: list[str] = Field(max_length=MAX_LANES)
    summary: str
    share: str
    card_json: str


def restored_run(saved: Any) -> tuple[tuple[SavedRun, RunCard] | None, str]:
    """The saved comparison and its card, or None and why it cannot be shown (empty: nothing saved)."""
    if not saved:
        return None, ""
    try:
        run = SavedRun.model_validate(saved)
        return (run, RunCard.model_validate_json(run.card_json)), ""
    except ValidationError as exc:
        return None, f"the last comparison kept in this browser cannot be shown ({exc.errors()[0]['msg']})"


def unconfigured(spec: str, known: list[str]) -> bool:
    """Whether a lane spec from a link names a server or folder rather than a configured backend."""
    parsed = parse_lane(spec, known_labels=known)
    if parsed.kind == "label":
        # a model beside an in-process label is a file or folder to load
        return bool(parsed.model) and getattr(KINDS.get(parsed.label), "in_process", False)
    return bool(parsed.url) or bool(parsed.model) or parsed.kind != default_in_process()
