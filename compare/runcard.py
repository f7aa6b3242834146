"""The run card: a whole comparison as JSON (machine) and Markdown (people).

It holds the setup (prompt, preset, settings, lanes with backend kind, versions and model ids),
the metrics of every lane (last run, and median/p95 over repeated runs), the math verdicts,
where the answers diverge, and the answers themselves. ``RunCard.from_json(card.to_json())``
gives the same card back, so saved cards can be loaded and compared later.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from backends.base import SamplingOptions
from compare.diff import first_divergence, markdown_diff, similarity, word_diff
from compare.runner import ComparisonResult, LaneResult
from compare.share import ComparisonSetup, encode_setup
from compare.stats import METRICS, lane_stats, summarize
from compare.verdicts import LaneVerdict, agreement
from runtime.markdown_text import shown

SCHEMA_VERSION = 1


class _Card(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetricSummary(_Card):
    n: int
    median: float
    p95: float
    min: float
    max: float


class LaneMetrics(_Card):
    """Client-side figures (same method for every backend) and the server's own beside them."""

    ttft_s: float | None
    decode_tokens_per_s: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    total_s: float
    finish_reason: str
    server: dict[str, float] = {}


class ScheduleCard(_Card):
    """How the lane shared the machine in the last run, as the runner recorded it."""

    mode: str
    """"remote" (at once with every lane), "alone", "shared" (with lanes of its engine) or
    "in_turn" (different in-process engines ran one after another)."""
    cores: int
    engine_peers: list[int] = []
    turn: int = 0
    turns: int = 0
    turn_peers: list[int] = []
    text: str = ""
    """The same in words, e.g. "ran in turn with lane 2 (turn 1 of 2): in-process engines share 2 cores"."""

    @property
    def short(self) -> str:
        if self.mode == "in_turn":
            return f"in turn {self.turn}/{self.turns}" + (" (batched)" if self.engine_peers else "")
        if self.mode == "shared":
            return "with lane " + ", ".join(str(i + 1) for i in self.engine_peers)
        if self.mode == "alone":
            return f"alone on {self.cores} cores"
        return "at once (remote)" if self.mode == "remote" else self.mode


class VerdictCard(_Card):
    verdict: str
    answer: str | None = None
    detail: str = ""


class LaneCard(_Card):
    index: int
    title: str
    spec: str
    backend: str
    backend_kind: str
    model: str
    model_details: dict[str, str] = {}
    """What the backend reports about the model and itself: format, quantization, version."""
    override: str | None = None
    options: dict[str, Any]
    status: str
    error: str | None = None
    runs_ok: int
    metrics: LaneMetrics | None = None
    """The last run's metrics."""
    stats: dict[str, MetricSummary] = {}
    """Per metric over all runs that finished: median, p95, min, max."""
    timeline: list[tuple[float, int]] = []
    """Last run: (seconds since the lane started, tokens so far)."""
    answer: str = ""
    reasoning: str = ""
    verdict: VerdictCard | None = None
    load_s: float | None = None
    """Seconds spent loading the model before the clock started, over all runs (normally the
    first run's load; 0.0: it was ready). Never part of TTFT or total time."""
    schedule: ScheduleCard | None = None


class DiffCard(_Card):
    a: int
    b: int
    identical: bool
    char_index: int | None = None
    word_index: int | None = None
    a_context: str = ""
    b_context: str = ""
    similarity: float
    markdown: str = ""


class RunCard(_Card):
    schema_version: int = SCHEMA_VERSION
    created: str
    prompt: str
    system_prompt: str
    preset: str
    options: dict[str, Any]
    """The sampling settings every lane shares (a lane's override is in its own card)."""
    runs: int
    wall_s: MetricSummary | None
    """Wall time of a whole comparison (all lanes, after loading), over the runs."""
    lanes: list[LaneCard]
    diffs: list[DiffCard]
    answers_agree: bool | None = None
    """Whether every lane's verified final answer is the same (None: not enough verdicts)."""
    turn_orders: list[list[list[int]]] = []
    """Per run: lane indices per in-process engine in the order the engines ran."""
    notes: list[str] = []
    """What a reader must know to read the numbers: turns, shared engines, loading."""
    share_query: str

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str) -> RunCard:
        return cls.model_validate_json(text)

    def to_markdown(self) -> str:
        return render_markdown(self)


def _summary(values: list[float]) -> MetricSummary | None:
    found = summarize(values)
    return None if found is None else MetricSummary(**found.__dict__)


def build_run_card(
    setup: ComparisonSetup,
    runs: list[ComparisonResult],
    *,
    system_prompt: str,
    options: SamplingOptions,
    details: list[dict[str, str]] | None = None,
    verdicts: list[LaneVerdict | None] | None = None,
) -> RunCard:
    """Assemble the card from the setup, every run's results (last run = answers shown)."""
    if not runs:
        raise ValueError("a run card needs at least one run")
    last = runs[-1]
    stats = lane_stats(runs)
    verdicts = verdicts or [None] * len(last.lanes)
    lanes = []
    for lane in last.lanes:
        m = lane.metrics
        verdict = verdicts[lane.index]
        lanes.append(
            LaneCard(
                index=lane.index,
                title=lane.title,
                spec=lane.spec,
                backend=lane.backend,
                backend_kind=lane.backend_kind,
                model=lane.model,
                model_details=(details or [{}] * len(last.lanes))[lane.index],
                override=None if lane.override is None else str(lane.override),
                options=lane.options.model_dump(mode="json"),
                status=lane.status,
                error=lane.error,
                runs_ok=max((s.n for s in stats[lane.index].values() if s is not None), default=0),
                metrics=None
                if m is None
                else LaneMetrics(
                    ttft_s=m.ttft_s,
                    decode_tokens_per_s=m.decode_tokens_per_s,
                    prompt_tokens=m.prompt_tokens,
                    completion_tokens=m.completion_tokens,
                    total_s=m.total_s,
                    finish_reason=m.finish_reason,
                    server=m.server,
                ),
                stats={k: MetricSummary(**s.__dict__) for k, s in stats[lane.index].items() if s is not None},
                timeline=[(round(t, 4), n) for t, n in lane.timeline],
                answer=lane.text,
                reasoning=lane.reasoning,
                verdict=None if verdict is None else VerdictCard(**verdict.__dict__),
                load_s=_load_s(runs, lane.index),
                schedule=_schedule_card(lane),
            )
        )
    diffs = []
    base = last.lanes[0]
    for other in last.lanes[1:]:
        where = first_divergence(base.text, other.text)
        diffs.append(
            DiffCard(
                a=base.index,
                b=other.index,
                identical=where is None,
                char_index=None if where is None else where.char_index,
                word_index=None if where is None else where.word_index,
                a_context="" if where is None else where.a_context,
                b_context="" if where is None else where.b_context,
                similarity=round(similarity(base.text, other.text), 4),
                markdown="" if where is None else markdown_diff(word_diff(base.text, other.text)),
            )
        )
    return RunCard(
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        prompt=setup.prompt,
        system_prompt=system_prompt,
        preset=setup.preset,
        options=options.model_dump(mode="json"),
        runs=len(runs),
        wall_s=_summary([r.wall_s for r in runs]),
        lanes=lanes,
        diffs=diffs,
        answers_agree=agreement(verdicts, setup.prompt),
        turn_orders=[r.turns for r in runs],
        notes=schedule_notes(lanes, [r.turns for r in runs]),
        share_query=encode_setup(setup),
    )


def _load_s(runs: list[ComparisonResult], index: int) -> float | None:
    loads = [load for r in runs if (load := r.lanes[index].load_s) is not None]
    return round(sum(loads), 3) if loads else None


def _schedule_card(lane: LaneResult) -> ScheduleCard | None:
    s = lane.schedule
    if s is None:
        return None
    return ScheduleCard(
        mode=s.mode, cores=s.cores, engine_peers=list(s.engine_peers), turn=s.turn, turns=s.turns,
        turn_peers=list(s.turn_peers), text=lane.describe_schedule(),
    )  # fmt: skip


def _lane_list(indices: list[int]) -> str:
    return " + ".join(str(i + 1) for i in indices)


def schedule_notes(lanes: list[LaneCard], turn_orders: list[list[list[int]]]) -> list[str]:
    """What the runner did with the CPU, from what it recorded (not from the kinds' labels)."""
    notes = []
    turned = [order for order in turn_orders if len(order) > 1]
    if turned:
        cores = next(lane.schedule.cores for lane in lanes if lane.schedule is not None)
        runs = "; ".join(
            f"run {n}: lanes " + " → ".join(_lane_list(group) for group in order)
            for n, order in enumerate(turn_orders, start=1)
            if len(order) > 1
        )
        notes.append(
            f"In-process engines ran in turn, one at a time, so none competed with another for the "
            f"{cores} cores and each lane's TTFT and tokens/s are its engine's alone ({runs}); "
            "remote lanes ran at the same time."
        )
    groups: dict[tuple[int, ...], list[LaneCard]] = {}
    for lane in lanes:
        if lane.schedule is not None and lane.schedule.engine_peers:
            groups.setdefault(tuple(sorted([lane.index, *lane.schedule.engine_peers])), []).append(lane)
    for members, group in groups.items():
        batches = [lane.metrics.server.get("mean_batch") for lane in group if lane.metrics is not None]
        seen = [b for b in batches if b]
        if not seen:
            how = "ran at the same time on it (it reports no batch figure)"
        elif max(seen) > 1.05:
            how = f"decoded in one batch (mean batch {max(seen):.1f}), so each lane's tokens/s is its share"
        else:
            how = "took turns on it (mean batch 1.0), so a lane's TTFT includes waiting for the other"
        names = " and ".join(str(i + 1) for i in members)
        notes.append(f"Lanes {names} shared the in-process engine `{group[0].backend}`: they {how}.")
    loaded = [lane for lane in lanes if lane.load_s]
    if loaded:
        each = ", ".join(f"lane {lane.index + 1} in {lane.load_s:.1f} s" for lane in loaded)
        notes.append(f"Models were loaded before the clock started ({each}); TTFT and total time exclude it.")
    return notes


# --- Markdown ------------------------------------------------------------------------------


def _fmt(value: float | int | None, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value}{unit}"
    return f"{value:.3g}{unit}" if abs(value) < 100 else f"{value:.0f}{unit}"


def _quote(text: str) -> str:
    return "\n".join("> " + line for line in (text or "(empty)").splitlines()) or "> (empty)"


def metrics_markdown(card: RunCard) -> list[str]:
    """The metrics table (median / p95 per lane) and the servers' own figures."""
    header = "| metric | " + " | ".join(f"{lane.index + 1}: {lane.backend}" for lane in card.lanes) + " |"
    lines = [header, "|---|" + "---|" * len(card.lanes)]
    for name, label in METRICS.items():
        cells = []
        for lane in card.lanes:
            s = lane.stats.get(name)
            cells.append("–" if s is None else f"{_fmt(s.median)} / {_fmt(s.p95)}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append(
        "| model load before the clock (s) | " + " | ".join(_fmt(lane.load_s) for lane in card.lanes) + " |"
    )
    lines.append(
        "| ran | " + " | ".join(lane.schedule.short if lane.schedule else "–" for lane in card.lanes) + " |"
    )
    lines.append(
        "| status | "
        + " | ".join(f"{lane.status} ({lane.runs_ok}/{card.runs} ok)" for lane in card.lanes)
        + " |"
    )
    servers = [lane for lane in card.lanes if lane.metrics and lane.metrics.server]
    if servers:
        lines += ["", "Server-reported (last run):", ""]
        for lane in servers:
            assert lane.metrics is not None
            figures = ", ".join(f"{k} {_fmt(v)}" for k, v in lane.metrics.server.items())
            lines.append(f"- lane {lane.index + 1} ({lane.backend}): {figures}")
    return lines


def verdicts_markdown(card: RunCard) -> list[str]:
    if not any(lane.verdict for lane in card.lanes):
        return []
    lines = []
    for lane in card.lanes:
        v = lane.verdict
        text = "–" if v is None else f"**{v.verdict}**" + (f", answer {v.answer}" if v.answer else "")
        lines.append(f"- lane {lane.index + 1}: {text}")
    if card.answers_agree is not None:
        lines.append(f"- lanes agree: **{'yes' if card.answers_agree else 'no'}**")
    return lines


def differences_markdown(card: RunCard) -> list[str]:
    lines = []
    for d in card.diffs:
        if d.identical:
            lines.append(f"- lane {d.b + 1}: identical to lane 1")
        else:
            lines.append(
                f"- lane {d.b + 1}: first differs at word {d.word_index} (character {d.char_index}): "
                f"“{d.a_context}” vs “{d.b_context}”; {d.similarity:.0%} of words in common"
            )
    return lines


def render_markdown(card: RunCard) -> str:
    lines = [
        "# Comparison run card",
        "",
        f"{card.created} · {len(card.lanes)} lanes · {card.runs} run{'s' if card.runs != 1 else ''}"
        + (f" · preset **{card.preset}**" if card.preset else ""),
        "",
        "## Prompt",
        "",
        _quote(card.prompt),
        "",
    ]
    if card.system_prompt:
        lines += ["System prompt:", "", _quote(card.system_prompt), ""]
    if card.notes:
        lines += ["## Notes", "", *[f"- {note}" for note in card.notes], ""]
    lines += ["## Settings", "", "```json", json.dumps(card.options, ensure_ascii=False), "```", ""]
    lines += [
        "## Lanes",
        "",
        "| # | backend | kind | model | details | override | status |",
        "|---|---|---|---|---|---|---|",
    ]
    for lane in card.lanes:
        details = ", ".join(f"{k}: {v}" for k, v in lane.model_details.items()) or "–"
        status = lane.status + (f": {lane.error}" if lane.error else "")
        lines.append(
            f"| {lane.index + 1} | {lane.backend} | {lane.backend_kind} | {lane.model or '–'} | {details} "
            f"| {lane.override or '–'} | {status.replace('|', '/')} |"
        )
    lines += ["", "## Metrics (median / p95 over runs that finished)", "", *metrics_markdown(card)]
    if verdicts := verdicts_markdown(card):
        lines += ["", "## Verdicts", "", *verdicts]
    if card.diffs:
        lines += ["", "## Differences (against lane 1)", "", *differences_markdown(card)]
    lines += ["", "## Answers", ""]
    for lane in card.lanes:
        answer = shown(lane.answer) if lane.answer else "(no answer)"  # renders as written
        lines += [f"### Lane {lane.index + 1}: {lane.title}", "", answer, ""]
    lines += ["", f"Reopen this setup: `?{card.share_query}`", ""]
    return "\n".join(lines)
