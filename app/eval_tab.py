"""The Eval tab and the ``/eval`` API: Gradio wiring over evals/ (which never imports gradio).

Pick or upload a set, choose 1-4 lanes, Run: a progress bar with items done and the time left,
the leaderboard and the matrix (item x lane) fill in as cells finish; filters for disagreements,
failures and unverifiable answers; a row opens the item's full answers with their step checks.
Stop keeps every finished cell (they are in the run's JSONL log as they come). Exports: CSV,
the run card (JSON, which ``slm-playground eval --recheck`` regrades) and Markdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
import pandas as pd

from app.api import api_error, client_of, session_of
from app.panel_controls import SHARE_JS
from compare.lanes import MAX_LANES
from evals.card import EvalCard, frameworks_markdown, leaderboard_markdown, machine_line
from evals.report import FILTERS, item_markdown, matrix_headers, matrix_rows, progress_html, shown_items
from evals.service import EvalSetup, EvalSetupError, Evaluation, prepare
from evals.sets import BUILTIN, EvalSet, SetError, load_builtin, load_path, parse_set
from evals.share import EvalConfig, EvalLinkError, decode_config, encode_config
from runtime.errors import Busy
from runtime.limits import Admission
from runtime.registry import BackendRegistry
from runtime.settings import Settings

OWN_PRESET = "(the set's own)"
REFRESH_S = 0.5


def _set_from(set_name: str, upload: str | None) -> EvalSet:
    return load_path(upload) if upload else load_builtin(set_name)


def _set_note(eval_set: EvalSet) -> str:
    preset = f", written for the {eval_set.preset} preset" if eval_set.preset else ""
    return f"✓ **{eval_set.name}**: {len(eval_set.items)} items{preset}."


def _matrix(card: EvalCard | None, which: str) -> pd.DataFrame:
    if card is None:
        return pd.DataFrame([], columns=["#", "prompt", "reference"])
    return pd.DataFrame(matrix_rows(card, shown_items(card, which)), columns=matrix_headers(card))


def _summary(card: EvalCard) -> str:
    return f"{card.how}\n\n{leaderboard_markdown(card)}"


def _frameworks(card: EvalCard) -> str:
    return f"{frameworks_markdown(card)}\n\n{machine_line(card)}"


def _exports(card: EvalCard, evaluation: Evaluation) -> tuple[str, str, str]:
    csv_path = evaluation.card_path.with_suffix(".csv")
    md_path = evaluation.card_path.with_suffix(".md")
    csv_path.write_text(card.to_csv(), encoding="utf-8")
    md_path.write_text(card.to_markdown(), encoding="utf-8")
    return str(csv_path), str(evaluation.card_path), str(md_path)


class RunningEvaluations:
    """The evaluation each browser session is running, so its Stop button can reach it."""

    def __init__(self) -> None:
        self._by_session: dict[str, Evaluation] = {}

    def start(self, key: str, evaluation: Evaluation) -> None:
        self._by_session[key] = evaluation

    def end(self, key: str, evaluation: Evaluation) -> None:
        if self._by_session.get(key) is evaluation:
            del self._by_session[key]

    def stop(self, key: str) -> None:
        if (evaluation := self._by_session.get(key)) is not None:
            evaluation.run.stop()


@dataclass
class EvalTab:
    """The tab's components."""

    set_pick: gr.Dropdown
    upload: gr.File
    preset: gr.Dropdown
    limit: gr.Number
    concurrency: gr.Number
    set_note: gr.Markdown
    lanes: list[gr.Dropdown]
    run_btn: gr.Button
    stop_btn: gr.Button
    share_btn: gr.Button
    progress: gr.HTML
    leaderboard: gr.Markdown
    frameworks: gr.Markdown
    which: gr.Radio
    matrix: gr.Dataframe
    detail: gr.Markdown
    csv_btn: gr.DownloadButton
    json_btn: gr.DownloadButton
    md_btn: gr.DownloadButton
    share_box: gr.Textbox
    card_state: gr.State

    def setup_inputs(self) -> set[Any]:
        return {self.set_pick, self.upload, self.preset, self.limit, self.concurrency, *self.lanes}

    def run_outputs(self) -> list[Any]:
        return [
            self.progress,
            self.leaderboard,
            self.frameworks,
            self.matrix,
            self.card_state,
            *self.exports(),
        ]

    def exports(self) -> list[gr.DownloadButton]:
        return [self.csv_btn, self.json_btn, self.md_btn]


def _setup_rows(settings: Settings, presets: Any) -> dict[str, Any]:
    preset_names = [OWN_PRESET, *(presets.names() if presets is not None else [])]
    with gr.Row():
        set_pick = gr.Dropdown(list(BUILTIN), value="math-word", label="Built-in set", elem_id="eval-set")
        upload = gr.File(
            label="…or upload a set (JSONL or CSV)",
            file_types=[".jsonl", ".csv", ".json", ".txt"],
            type="filepath",
            height=110,
            elem_id="eval-upload",
        )
        preset = gr.Dropdown(preset_names, value=OWN_PRESET, label="Preset", elem_id="eval-preset")
        limit = gr.Number(
            min(20, settings.max_eval_items),
            precision=0,
            minimum=1,
            maximum=settings.max_eval_items,
            label=f"Items (at most {settings.max_eval_items})",
            elem_id="eval-limit",
        )
        concurrency = gr.Number(
            0,
            precision=0,
            minimum=0,
            maximum=32,
            label="Items in flight per lane (0: 16 in-process, 4 remote)",
            elem_id="eval-concurrency",
        )
    set_note = gr.Markdown(_set_note(load_builtin("math-word")), elem_id="eval-set-note")
    return {
        "set_pick": set_pick,
        "upload": upload,
        "preset": preset,
        "limit": limit,
        "concurrency": concurrency,
        "set_note": set_note,
    }


def _lane_pickers(settings: Settings, labels: list[str]) -> list[gr.Dropdown]:
    with gr.Row():
        return [
            gr.Dropdown(
                ["", *labels],
                value=labels[i] if i < min(2, len(labels)) else "",
                label=f"Lane {i + 1}",
                allow_custom_value=not settings.public,
                info=None if settings.public or i else "a backend, or a spec such as ollama:MODEL@HOST",
                elem_id=f"eval-lane-{i}",
            )
            for i in range(MAX_LANES)
        ]


def _result_components() -> dict[str, Any]:
    with gr.Row():
        run_btn = gr.Button("Run", variant="primary", elem_id="eval-run")
        stop_btn = gr.Button("Stop", variant="stop", elem_id="eval-stop")
        share_btn = gr.Button("Share link", elem_id="eval-share")
    progress = gr.HTML("", elem_id="eval-progress")
    leaderboard = gr.Markdown("", elem_id="eval-leaderboard")
    with gr.Accordion("Frameworks, as measured (the seed's table, from this run)", open=True):
        frameworks = gr.Markdown("", elem_id="eval-frameworks")
    which = gr.Radio(list(FILTERS), value="all", label="Show", elem_id="eval-filter")
    matrix = gr.Dataframe(
        _matrix(None, "all"), interactive=False, wrap=True, max_height=480, elem_id="eval-matrix"
    )
    detail = gr.Markdown(
        "*Click a row to see the item's full answers and their step checks.*", elem_id="eval-detail"
    )
    with gr.Row():
        csv_btn = gr.DownloadButton("Export CSV", value=None, interactive=False, elem_id="eval-csv")
        json_btn = gr.DownloadButton("Run card (JSON)", value=None, interactive=False, elem_id="eval-json")
        md_btn = gr.DownloadButton("Markdown", value=None, interactive=False, elem_id="eval-md")
    share_box = gr.Textbox(
        label="Share link (reopens this setup)", buttons=["copy"], elem_id="eval-share-link"
    )
    return {
        "run_btn": run_btn,
        "stop_btn": stop_btn,
        "share_btn": share_btn,
        "progress": progress,
        "leaderboard": leaderboard,
        "frameworks": frameworks,
        "which": which,
        "matrix": matrix,
        "detail": detail,
        "csv_btn": csv_btn,
        "json_btn": json_btn,
        "md_btn": md_btn,
        "share_box": share_box,
        "card_state": gr.State(None),
    }


def layout(settings: Settings, labels: list[str], presets: Any) -> EvalTab:
    """The tab's components (call inside ``with gr.Tab("Eval"):``)."""
    gr.Markdown(
        "Run a prompt set on 1-4 backends and rank them by **verified** correctness (sympy checks "
        "the final answer and every step of math answers) and by the same timing for every backend. "
        "Runs are uncached and seeded; lanes run one after another, each lane's items together."
    )
    setup = _setup_rows(settings, presets)
    lanes = _lane_pickers(settings, labels)
    return EvalTab(**setup, lanes=lanes, **_result_components())


@dataclass
class EvalActions:
    """The tab's handlers; each reads its inputs by component from one mapping."""

    tab: EvalTab
    settings: Settings
    registry: BackendRegistry
    presets: Any
    admission: Admission
    running: RunningEvaluations = field(default_factory=RunningEvaluations)

    def lane_specs(self, data: dict[Any, Any]) -> list[str]:
        return [v.strip() for v in (data[lane] for lane in self.tab.lanes) if v and v.strip()]

    @staticmethod
    def check_upload(path: str | None, name: str) -> str:
        try:
            return _set_note(_set_from(name, path))
        except SetError as exc:
            return f"⚠ **This set cannot be used:** {exc}"

    async def run(self, data: dict[Any, Any], request: gr.Request) -> AsyncIterator[dict[Any, Any]]:
        tab, session = self.tab, session_of(request) or ""
        preset_name, count = data[tab.preset], data[tab.limit]
        try:
            setup = EvalSetup(
                _set_from(data[tab.set_pick], data[tab.upload]),
                self.lane_specs(data),
                preset="" if preset_name == OWN_PRESET else preset_name or "",
                limit=int(count) if count else None,
                concurrency=int(data[tab.concurrency] or 0),
                timeout_s=self.settings.read_timeout_s,
            )
            evaluation = prepare(setup, self.registry, self.presets, session=session or None)
            with self.admission.enter(client_of(request), session_of(request)):
                async for update in self.progress_of(evaluation, session, data[tab.which]):
                    yield update
        except (SetError, EvalSetupError, Busy) as exc:
            yield {tab.set_note: f"⚠ {exc}"}

    async def progress_of(
        self, evaluation: Evaluation, session: str, shown: str
    ) -> AsyncIterator[dict[Any, Any]]:
        """The evaluation's progress every REFRESH_S, then its results; a browser that went away
        stops it, keeping what finished."""
        tab = self.tab
        self.running.start(session, evaluation)
        task = asyncio.create_task(evaluation.execute())
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=REFRESH_S)
                yield self.live(evaluation, shown)
            card = task.result()
        finally:
            self.running.end(session, evaluation)
            if not task.done():
                evaluation.run.stop()
                await asyncio.gather(task, return_exceptions=True)
        files = _exports(card, evaluation)
        p = evaluation.run.progress()
        state = "stopped" if card.stopped else "finished"
        yield {
            tab.progress: progress_html(p.done, p.total, p.elapsed_s, None, state),
            tab.leaderboard: _summary(card),
            tab.frameworks: _frameworks(card),
            tab.matrix: _matrix(card, shown),
            tab.card_state: card,
            **{
                button: gr.DownloadButton(value=f, interactive=True)
                for button, f in zip(tab.exports(), files, strict=True)
            },
        }

    def live(self, evaluation: Evaluation, shown: str) -> dict[Any, Any]:
        p = evaluation.run.progress()
        card = evaluation.card
        lane = card.lanes[p.lane].title
        bar = progress_html(p.done, p.total, p.elapsed_s, p.eta_s, f"lane {p.lane + 1}: {lane}")
        updates = {
            self.tab.progress: bar,
            self.tab.leaderboard: _summary(card),
            self.tab.matrix: _matrix(card, shown),
        }
        # a skip for every other output: one left out of a streamed update shows as pending
        return {c: updates.get(c, gr.skip()) for c in [*self.tab.run_outputs(), self.tab.set_note]}

    def stop(self, request: gr.Request) -> None:
        self.running.stop(session_of(request) or "")

    @staticmethod
    def open_item(card: EvalCard | None, evt: gr.SelectData) -> str:
        row = evt.row_value or []
        if card is None or not row or not str(row[0]).isdigit():
            return gr.skip()
        return item_markdown(card, int(row[0]) - 1)

    def share(self, data: dict[Any, Any]) -> str:
        tab = self.tab
        preset_name, count = data[tab.preset], data[tab.limit]
        config = EvalConfig(
            "" if data[tab.upload] else data[tab.set_pick],
            [v for v in (data[lane] for lane in tab.lanes) if v],
            "" if preset_name == OWN_PRESET else preset_name,
            int(count) if count else None,
            int(data[tab.concurrency] or 0),
        )
        return "?" + encode_config(config)

    def restore(self, request: gr.Request) -> dict[Any, Any]:
        tab = self.tab
        params = list(request.query_params.multi_items()) if request is not None else []
        if dict(params).get("tab", "").lower() != "eval":
            return {tab.set_note: gr.skip()}
        try:
            config = decode_config(params)
        except EvalLinkError as exc:
            gr.Warning(f"This evaluation link cannot be opened: {exc}")
            return {tab.set_note: gr.skip()}
        for problem in config.problems:
            gr.Warning(problem)
        updates: dict[Any, Any] = {tab.concurrency: config.concurrency}
        if config.set_name:
            updates |= {tab.set_pick: config.set_name, tab.set_note: _set_note(load_builtin(config.set_name))}
        if config.preset:
            updates[tab.preset] = config.preset
        if config.limit:
            updates[tab.limit] = config.limit
        if config.lanes:
            updates |= {
                lane: config.lanes[i] if i < len(config.lanes) else "" for i, lane in enumerate(tab.lanes)
            }
        return updates


def build_eval_tab(
    settings: Settings, registry: BackendRegistry, presets: Any, admission: Admission | None = None
) -> EvalTab:
    """Build the tab's components and events (call inside ``with gr.Tab("Eval"):``) and the API."""
    admission = admission or Admission.of(settings)
    tab = layout(settings, registry.labels(), presets)
    actions = EvalActions(tab, settings, registry, presets, admission)
    quiet: dict[str, Any] = {"api_visibility": "private", "concurrency_limit": None, "queue": False}
    for source in (tab.upload, tab.set_pick):
        source.change(actions.check_upload, [tab.upload, tab.set_pick], tab.set_note, **quiet)
    tab.run_btn.click(
        actions.run,
        tab.setup_inputs() | {tab.which},
        [*tab.run_outputs(), tab.set_note],
        api_visibility="private",
        concurrency_limit=None,
        show_progress="hidden",
    )
    tab.stop_btn.click(actions.stop, None, None, **quiet)
    tab.which.change(
        lambda shown, card: _matrix(card, shown), [tab.which, tab.card_state], tab.matrix, **quiet
    )
    tab.matrix.select(actions.open_item, tab.card_state, tab.detail, **quiet)
    tab.share_btn.click(actions.share, tab.setup_inputs(), tab.share_box, **quiet).then(
        None, tab.share_box, tab.share_box, js=SHARE_JS
    )
    restored = [tab.set_pick, tab.preset, tab.limit, tab.concurrency, tab.set_note, *tab.lanes]
    gr.on(None, actions.restore, None, restored, api_visibility="private")
    register_api(settings, registry, presets, admission)
    return tab


def register_api(settings: Settings, registry: BackendRegistry, presets: Any, admission: Admission) -> None:
    async def eval(  # the MCP tool takes the function's name
        lanes: list[str],
        set_name: str = "math-word",
        items_jsonl: str = "",
        preset: str = "",
        limit: int | None = None,
        settings_override: dict | None = None,
        concurrency: int = 0,
        request: gr.Request | None = None,
    ) -> dict:
        """Run a prompt set on 1-4 backends and rank them by verified correctness and measured speed.

        Args:
            lanes: 1-4 lane specs, e.g. ["onnx", "llamacpp"] (configured backend labels, or
                kind:MODEL@URL where the instance allows it), as in the compare tool.
            set_name: a built-in set: "math-word" (math word problems, checked with sympy),
                "json-output" (answers must be JSON for a schema) or "short-reasoning".
            items_jsonl: instead of a built-in set, the items as JSON lines: {"prompt": ...,
                "reference": ..., "checks": [{"type": "exact"|"contains"|"regex"|"math", "value": ...}
                or {"type": "json", "schema": {...}}]}.
            preset: preset name (system prompt + settings); default: the set's own.
            limit: run only the first N items.
            settings_override: temperature, top_p, top_k, max_new_tokens, seed on top of the preset's.
            concurrency: items in flight per lane (0: 8 for in-process lanes, 4 for remote ones).

        Returns:
            {"lanes": [{spec, kind, model, correct, total, accuracy, ci95, ttft_p50_s, ttft_p95_s,
            tokens_per_s, tokens_per_correct, errors, ...}], "items": [{index, prompt, reference,
            "lanes": [{answer, verdict: correct|incorrect|unverifiable|error, ttft_s,
            completion_tokens}]}], "frameworks": [...], "how": how it ran}.
        """
        try:
            eval_set = parse_set(items_jsonl) if items_jsonl.strip() else load_builtin(set_name)
            setup = EvalSetup(
                eval_set,
                list(lanes or []),
                preset=preset or "",
                options=dict(settings_override or {}),
                limit=limit,
                concurrency=int(concurrency or 0),
                timeout_s=settings.read_timeout_s,
            )
            evaluation = prepare(setup, registry, presets, session=session_of(request))
            with admission.enter(client_of(request), session_of(request)):
                card = await evaluation.execute()
            return card.contract()
        except Exception as exc:  # the API's one error boundary
            raise api_error(exc) from None

    gr.api(eval, api_name="eval", concurrency_limit=None)
