"""An evaluation's record: what ran (set, lanes, settings, machine) and every cell (item x lane).

The card is the one source for everything shown: the leaderboard, the framework table, the
matrix, the exports and the CLI/API JSON are all computed from it, so ``--recheck`` can regrade
a stored card and compare. Cells are also appended to a JSONL file as they finish
(:class:`CellLog`), so a crash loses nothing measured; :meth:`EvalCard.from_log` rebuilds a card.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from statistics import median
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from evals.stats import p50_p95, wilson_interval

SCHEMA_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ItemRecord(_Model):
    index: int
    prompt: str
    reference: str | None = None
    checks: list[dict[str, Any]] = Field(default_factory=list)
    id: str | None = None


class LaneRecord(_Model):
    index: int
    spec: str
    title: str
    kind: str
    backend: str
    model: str
    concurrency: int
    options: dict[str, Any]
    details: dict[str, str] = Field(default_factory=dict)
    """What the backend says about itself and the model (versions, format, quantization)."""
    probes: dict[str, str] = Field(default_factory=dict)
    """Support found by asking: tools, json, logprobs."""
    wall_s: float | None = None
    memory_mib: float | None = None
    """In-process lanes: this process's resident memory after the lane ran."""


class Cell(_Model):
    item: int
    lane: int
    status: str
    """The runner's lane status: done, error, timeout (stopped cells are not kept)."""
    text: str = ""
    reasoning: str = ""
    error: str | None = None
    verdict: str
    answer: str | None = None
    detail: str = ""
    steps: list[dict[str, Any]] = Field(default_factory=list)
    ttft_s: float | None = None
    total_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    tokens_per_s: float | None = None
    finish_reason: str | None = None


class EvalCard(_Model):
    schema_version: int = SCHEMA_VERSION
    set_name: str
    set_sha256: str
    set_origin: str
    preset: str = ""
    preset_is_math: bool = False
    system_prompt: str = ""
    options: dict[str, Any] = Field(default_factory=dict)
    items: list[ItemRecord]
    lanes: list[LaneRecord]
    cells: list[Cell] = Field(default_factory=list)
    started: str = ""
    wall_s: float | None = None
    stopped: bool = False
    how: str = ""
    """How it ran, in words: uncached, seeded, lanes one after another, each lane's concurrency."""
    machine: dict[str, Any] = Field(default_factory=dict)
    """CPU model, kernel, cores and load average at the start and the end."""

    # --- reading ----------------------------------------------------------------------

    def cell(self, item: int, lane: int) -> Cell | None:
        return next((c for c in self.cells if c.item == item and c.lane == lane), None)

    def lane_summary(self, lane: int) -> dict[str, Any]:
        record = self.lanes[lane]
        cells = [c for c in self.cells if c.lane == lane]
        correct = sum(c.verdict == "correct" for c in cells)
        total = len(cells)
        ci = wilson_interval(correct, total)
        ttft_p50, ttft_p95 = p50_p95([c.ttft_s for c in cells if c.ttft_s is not None])
        rates = [c.tokens_per_s for c in cells if c.tokens_per_s is not None]
        tokens = sum(c.completion_tokens or 0 for c in cells)
        return {
            "spec": record.spec,
            "kind": record.kind,
            "model": record.model,
            "title": record.title,
            "concurrency": record.concurrency,
            "correct": correct,
            "total": total,
            "accuracy": correct / total if total else None,
            "ci95": list(ci) if ci else None,
            "ttft_p50_s": ttft_p50,
            "ttft_p95_s": ttft_p95,
            "tokens_per_s": median(rates) if rates else None,
            "tokens_per_correct": tokens / correct if correct else None,
            "seconds_per_correct": record.wall_s / correct if correct and record.wall_s else None,
            "incorrect": sum(c.verdict == "incorrect" for c in cells),
            "unverifiable": sum(c.verdict == "unverifiable" for c in cells),
            "errors": sum(c.verdict == "error" for c in cells),
            "wall_s": record.wall_s,
        }

    def leaderboard(self) -> list[dict[str, Any]]:
        return [self.lane_summary(i) for i in range(len(self.lanes))]

    def contract(self) -> dict[str, Any]:
        """The CLI's ``--json``, the API's and the MCP tool's answer: ``lanes`` and ``items``."""
        items = []
        for record in self.items:
            per_lane = [_cell_json(self.cell(record.index, lane)) for lane in range(len(self.lanes))]
            items.append(
                {
                    "index": record.index,
                    "prompt": record.prompt,
                    "reference": record.reference,
                    "lanes": per_lane,
                }
            )
        return {
            "set": self.set_name,
            "preset": self.preset,
            "how": self.how,
            "wall_s": self.wall_s,
            "stopped": self.stopped,
            "lanes": self.leaderboard(),
            "items": items,
            "frameworks": self.framework_table(),
        }

    def framework_table(self) -> list[dict[str, Any]]:
        """The seed's table (speed, memory, API, tools, quantization), from what this run measured."""
        rows = []
        for record, summary in zip(self.lanes, self.leaderboard(), strict=True):
            details = record.details
            fmt = " ".join(
                v for k in ("format", "quantization", "precision", "file_type") if (v := details.get(k))
            )
            rows.append(
                {
                    "lane": record.title,
                    "kind": record.kind,
                    "server": details.get("server") or details.get("runtime_version") or "",
                    "format": fmt or "unknown",
                    "tokens_per_s": summary["tokens_per_s"],
                    "ttft_p50_s": summary["ttft_p50_s"],
                    "memory_mib": record.memory_mib,
                    "tools": record.probes.get("tools", "not probed"),
                    "json": record.probes.get("json", "not probed"),
                    "logprobs": record.probes.get("logprobs", "not probed"),
                    "accuracy": summary["accuracy"],
                }
            )
        return rows

    # --- files --------------------------------------------------------------------------

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def load(cls, path: str | Path) -> EvalCard:
        """A card from its JSON file, or rebuilt from its cell log (``.jsonl``) after a crash."""
        file = Path(path)
        if file.suffix == ".jsonl":
            return cls.from_log(file)
        return cls.model_validate_json(file.read_text(encoding="utf-8"))

    @classmethod
    def from_log(cls, path: Path) -> EvalCard:
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not lines or lines[0].get("type") != "header":
            raise ValueError(f"{path.name}: not an eval log (its first line is not the header)")
        card = cls.model_validate(lines[0]["card"])
        card.cells = [Cell.model_validate(line["cell"]) for line in lines[1:] if line.get("type") == "cell"]
        return card

    # --- exports --------------------------------------------------------------------------

    def to_csv(self) -> str:
        """One row per cell: item, lane and every measured figure."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            [
                "item",
                "prompt",
                "reference",
                "lane",
                "spec",
                "verdict",
                "answer",
                "ttft_s",
                "tokens_per_s",
                "completion_tokens",
                "total_s",
                "status",
                "error",
            ]
        )
        for c in sorted(self.cells, key=lambda c: (c.item, c.lane)):
            record, lane = self.items[c.item], self.lanes[c.lane]
            writer.writerow(
                [
                    c.item,
                    record.prompt,
                    record.reference or "",
                    lane.title,
                    lane.spec,
                    c.verdict,
                    c.answer or "",
                    _num(c.ttft_s),
                    _num(c.tokens_per_s),
                    c.completion_tokens or "",
                    _num(c.total_s),
                    c.status,
                    c.error or "",
                ]
            )
        return out.getvalue()

    def to_markdown(self) -> str:
        return "\n".join(
            [
                f"# Evaluation: {self.set_name} ({len(self.items)} items)",
                "",
                f"{self.how}",
                "",
                leaderboard_markdown(self),
                "",
                "## Frameworks, as measured",
                "",
                frameworks_markdown(self),
                "",
                machine_line(self),
            ]
        )


class CellLog:
    """Appends the card's header, then each cell as it finishes, one JSON line each (flushed)."""

    def __init__(self, path: Path, card: EvalCard) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("w", encoding="utf-8")
        header = card.model_dump(mode="json", exclude={"cells"})
        self._write({"type": "header", "card": header})

    def add(self, cell: Cell) -> None:
        self._write({"type": "cell", "cell": cell.model_dump(mode="json")})

    def _write(self, line: dict[str, Any]) -> None:
        self._file.write(json.dumps(line) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _cell_json(c: Cell | None) -> dict[str, Any]:
    if c is None:  # stopped before this item ran on this lane
        return {"answer": None, "verdict": "not run", "ttft_s": None, "completion_tokens": None}
    tokens = c.completion_tokens
    return {"answer": c.answer, "verdict": c.verdict, "ttft_s": c.ttft_s, "completion_tokens": tokens}


def _num(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "–" if value is None else f"{value:{spec}}{unit}"


def leaderboard_markdown(card: EvalCard) -> str:
    rows = [
        "| lane | accuracy (95% CI) | correct/total | TTFT p50 / p95 | decode tok/s | tokens per correct "
        "| s per correct | errors | concurrency | wall |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in sorted(card.leaderboard(), key=lambda s: -(s["accuracy"] or 0)):
        ci = s["ci95"]
        accuracy = "–" if s["accuracy"] is None else f"{s['accuracy']:.1%}"
        interval = f" ({ci[0]:.1%}–{ci[1]:.1%})" if ci else ""
        rows.append(
            f"| {s['title']} | {accuracy}{interval} | {s['correct']}/{s['total']} "
            f"| {_fmt(s['ttft_p50_s'], '.2f')} / {_fmt(s['ttft_p95_s'], '.2f', ' s')} "
            f"| {_fmt(s['tokens_per_s'], '.1f')} | {_fmt(s['tokens_per_correct'], '.0f')} "
            f"| {_fmt(s['seconds_per_correct'], '.1f')} | {s['errors']} | {s['concurrency']} "
            f"| {_fmt(s['wall_s'], '.1f', ' s')} |"
        )
    return "\n".join(rows)


def frameworks_markdown(card: EvalCard) -> str:
    rows = [
        "| lane | kind | server / runtime | format | decode tok/s | TTFT p50 | memory | tools | JSON "
        "| logprobs | accuracy |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in card.framework_table():
        memory = "unknown" if r["memory_mib"] is None else f"{r['memory_mib']:.0f} MiB (process RSS)"
        rows.append(
            f"| {r['lane']} | {r['kind']} | {r['server'][:60] or 'unknown'} | {r['format']} "
            f"| {_fmt(r['tokens_per_s'], '.1f')} | {_fmt(r['ttft_p50_s'], '.2f', ' s')} | {memory} "
            f"| {r['tools']} | {r['json']} | {r['logprobs']} "
            f"| {'–' if r['accuracy'] is None else format(r['accuracy'], '.1%')} |"
        )
    return "\n".join(rows)


def machine_line(card: EvalCard) -> str:
    m = card.machine
    if not m:
        return ""
    return (
        f"Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, kernel {m.get('kernel', '?')}; "
        f"load average {m.get('load_start', '?')} at the start, {m.get('load_end', '?')} at the end; "
        f"wall {_fmt(card.wall_s, '.1f', ' s')}."
    )
