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
from typing import Any

import gradio as gr
import pandas as pd

from app.api import api_error, client_of, session_of
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
SHARE_JS = "(q) => q ? window.location.origin + window.location.pathname + q : ''"
_ACTIVE: dict[str, Evaluation] = {}
"""The evaluation each browser session is running, so Stop can reach it."""


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


def build_eval_tab(
    settings: Settings, registry: BackendRegistry, presets: Any, admission: Admission | None = None
) -> None:
    """Build the tab's components and events (call inside ``with gr.Tab("Eval"):``) and the API."""
    admission = admission or Admission.of(settings)
    labels = registry.labels()
    preset_names = [OWN_PRESET, *(presets.names() if presets is not None else [])]
    gr.Markdown(
        "Run a prompt set on 1-4 backends and rank them by **verified** correctness (sympy checks "
        "the final answer and every step of math answers) and by the same timing for every backend. "
        "Runs are uncached and seeded; lanes run one after another, each lane's items together."
    )
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
    with gr.Row():
        lanes = [
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
    card_state = gr.State(None)

    quiet: dict[str, Any] = {"api_visibility": "private", "concurrency_limit": None, "queue": False}

    def check_upload(path: str | None, name: str) -> str:
        try:
            return _set_note(_set_from(name, path))
        except SetError as exc:
            return f"⚠ **This set cannot be used:** {exc}"

    upload.change(check_upload, [upload, set_pick], set_note, **quiet)
    set_pick.change(check_upload, [upload, set_pick], set_note, **quiet)

    outputs = [progress, leaderboard, frameworks, matrix, card_state, csv_btn, json_btn, md_btn, set_note]

    async def run(request: gr.Request, *args: Any) -> AsyncIterator[list[Any]]:
        set_name, path, preset_name, count, conc, shown, *lane_values = args
        session = session_of(request) or ""
        try:
            setup = EvalSetup(
                _set_from(set_name, path),
                [v.strip() for v in lane_values if v and v.strip()],
                preset="" if preset_name == OWN_PRESET else preset_name or "",
                limit=int(count) if count else None,
                concurrency=int(conc or 0),
                timeout_s=settings.read_timeout_s,
            )
            evaluation = prepare(setup, registry, presets, session=session or None)
            with admission.enter(client_of(request)):
                _ACTIVE[session] = evaluation
                task = asyncio.create_task(evaluation.execute())
                try:
                    while not task.done():
                        await asyncio.wait({task}, timeout=REFRESH_S)
                        yield _live(evaluation, shown)
                    card = task.result()
                finally:
                    _ACTIVE.pop(session, None)
                    if not task.done():  # the browser went away: stop, keep what finished
                        evaluation.run.stop()
                        await asyncio.gather(task, return_exceptions=True)
        except (SetError, EvalSetupError, Busy) as exc:
            yield [*[gr.skip()] * (len(outputs) - 1), f"⚠ {exc}"]
            return
        files = _exports(card, evaluation)
        p = evaluation.run.progress()
        bar = progress_html(p.done, p.total, p.elapsed_s, None, "stopped" if card.stopped else "finished")
        yield [
            bar,
            _summary(card),
            _frameworks(card),
            _matrix(card, shown),
            card,
            *[gr.DownloadButton(value=f, interactive=True) for f in files],
            gr.skip(),
        ]

    def _live(evaluation: Evaluation, shown: str) -> list[Any]:
        p = evaluation.run.progress()
        lane = evaluation.card.lanes[p.lane].title
        card = evaluation.card
        bar = progress_html(p.done, p.total, p.elapsed_s, p.eta_s, f"lane {p.lane + 1}: {lane}")
        return [bar, _summary(card), gr.skip(), _matrix(card, shown), gr.skip(), *[gr.skip()] * 4]

    inputs = [set_pick, upload, preset, limit, concurrency, which, *lanes]
    run_btn.click(
        run, inputs, outputs, api_visibility="private", concurrency_limit=None, show_progress="hidden"
    )

    def stop(request: gr.Request) -> None:
        evaluation = _ACTIVE.get(session_of(request) or "")
        if evaluation is not None:
            evaluation.run.stop()

    stop_btn.click(stop, None, None, **quiet)
    which.change(lambda shown, card: _matrix(card, shown), [which, card_state], matrix, **quiet)

    def open_item(card: EvalCard | None, evt: gr.SelectData) -> str:
        row = evt.row_value or []
        if card is None or not row or not str(row[0]).isdigit():
            return gr.skip()
        return item_markdown(card, int(row[0]) - 1)

    matrix.select(open_item, card_state, detail, **quiet)

    def share(
        set_name: str, path: str | None, preset_name: str, count: float, conc: float, *lane_values: str
    ):
        config = EvalConfig(
            "" if path else set_name,
            [v for v in lane_values if v],
            "" if preset_name == OWN_PRESET else preset_name,
            int(count) if count else None,
            int(conc or 0),
        )
        return "?" + encode_config(config)

    share_btn.click(share, [set_pick, upload, preset, limit, concurrency, *lanes], share_box, **quiet).then(
        None, share_box, share_box, js=SHARE_JS
    )

    def restore(request: gr.Request) -> list[Any]:
        skip = [gr.skip()] * (5 + MAX_LANES)
        params = list(request.query_params.multi_items()) if request is not None else []
        if dict(params).get("tab", "").lower() != "eval":
            return skip
        try:
            config = decode_config(params)
        except EvalLinkError as exc:
            gr.Warning(f"This evaluation link cannot be opened: {exc}")
            return skip
        for problem in config.problems:
            gr.Warning(problem)
        lane_values = [config.lanes[i] if i < len(config.lanes) else "" for i in range(MAX_LANES)]
        return [
            config.set_name or gr.skip(),
            config.preset or gr.skip(),
            config.limit or gr.skip(),
            config.concurrency,
            _set_note(load_builtin(config.set_name)) if config.set_name else gr.skip(),
            *(lane_values if config.lanes else [gr.skip()] * MAX_LANES),
        ]

    gr.on(
        None,
        restore,
        None,
        [set_pick, preset, limit, concurrency, set_note, *lanes],
        api_visibility="private",
    )
    register_api(settings, registry, presets, admission)


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
            with admission.enter(client_of(request)):
                card = await evaluation.execute()
            return card.contract()
        except Exception as exc:  # the API's one error boundary
            raise api_error(exc) from None

    gr.api(eval, api_name="eval", concurrency_limit=None)
