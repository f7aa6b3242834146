"""The Compare tab: Gradio wiring over compare/ (which never imports gradio).

2-4 lanes (backend + model + one setting varied on purpose), one preset and prompt for all.
Run streams every lane at once; Stop on a lane stops only that lane (the runner cancels its
task, so the backend stops generating); Run ×N repeats for median/p95. Afterwards: tokens over
time per lane, where the answers diverge, math verdicts, the run card (JSON/Markdown) and a
share link. API: ``/compare`` (lanes, prompt, preset, ...) returns the run card as JSON.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.api import api_error, client_of, session_of
from app.chat_tab import json_controls, prompt_box
from app.turns import parse_schema
from compare.diff import highlighted, word_diff
from compare.lanes import MAX_LANES, OVERRIDABLE, LaneSpecError, parse_lane
from compare.runcard import RunCard, differences_markdown, metrics_markdown, verdicts_markdown
from compare.runner import Comparison, ComparisonResult, LaneUpdate
from compare.service import Prepared, SetupError, card_for, prepare
from compare.share import ComparisonSetup, ShareLinkError, decode_setup, encode_setup
from runtime.errors import Busy, InputError
from runtime.gate import BackendGate
from runtime.kinds import KINDS, default_in_process
from runtime.limits import Admission
from runtime.markdown_text import LATEX_DELIMITERS, shown
from runtime.registry import BackendRegistry
from runtime.settings import Settings

NO_OVERRIDE = "(none)"
REFRESH_S = 0.1
"""Redraw at most this often while streaming (4 lanes x every token would flood the browser)."""
SHARE_JS = "(q) => q ? window.location.origin + window.location.pathname + q : ''"
_ACTIVE: dict[str, Comparison] = {}
"""The comparison each browser session is running, so Stop buttons can reach it."""


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
        shown = int(value) if override in ("top_k", "max_new_tokens", "seed") else value
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


def _readout(update: LaneUpdate) -> str:
    if update.metrics is not None:
        m = update.metrics
        line = f"✓ {m.summary()}"
        if m.server:
            line += "  \nserver: " + ", ".join(f"{k} {v:.3g}" for k, v in m.server.items())
        return line
    icon = {"waiting": "…", "streaming": "▶", "stopped": "■", "timeout": "✗", "error": "✗"}[update.status]
    rate = f" · {update.tokens_per_s:.1f} tok/s" if update.tokens_per_s else ""
    text = f"{icon} {update.status} · {update.tokens} tokens{rate} · {update.elapsed_s:.1f} s"
    return text + (f"  \n{update.error}" if update.error else "")


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


async def stream_runs(
    prepared: Prepared, timeout_s: float, key: str
) -> AsyncIterator[tuple[list[str], list[str], ComparisonResult | None]]:
    """Run the prepared comparison ``runs`` times: (texts, readouts, None) while streaming, at
    most every REFRESH_S, then (texts, readouts, result) after each run. Stop buttons reach the
    running comparison through ``_ACTIVE[key]``."""
    texts, notes = [""] * MAX_LANES, [""] * MAX_LANES
    runs = prepared.setup.runs
    for run_index in range(runs):
        comparison = prepared.comparison(timeout_s)
        _ACTIVE[key] = comparison
        last_draw = 0.0
        try:
            async for update in comparison.stream():
                texts[update.lane] = shown(update.text) or (  # Markdown that shows it as written
                    "*thinking…*\n\n" + shown(update.reasoning) if update.reasoning else ""
                )
                label = f"run {run_index + 1}/{runs} · " if runs > 1 else ""
                notes[update.lane] = label + _readout(update)
                now = time.monotonic()
                if update.finished or now - last_draw >= REFRESH_S:
                    last_draw = now
                    yield texts, notes, None
        finally:
            if _ACTIVE.get(key) is comparison:
                del _ACTIVE[key]
        result = comparison.result()
        yield texts, notes, result
        if all(lane.status == "stopped" for lane in result.lanes):
            break  # Stop all: no further runs


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


def build_compare_tab(
    settings: Settings,
    registry: BackendRegistry,
    presets: Any,
    admission: Admission | None = None,
    last_run: gr.BrowserState | None = None,
) -> None:
    """Build the tab's components and events; call inside ``with gr.Tab("Compare"):``.

    ``admission`` counts comparisons with the chats (the app passes the chat service's);
    ``last_run``, a browser store made outside the tabs, keeps the last comparison across a reload."""
    admission = admission or Admission.of(settings)
    labels = registry.labels()
    preset_names = list(presets.names()) if presets is not None else []
    default_preset = "math" if "math" in preset_names else (preset_names[0] if preset_names else None)
    first_preset = presets.get(default_preset) if default_preset else None
    base = first_preset.options if first_preset is not None else None

    gr.Markdown(
        "Same prompt and settings on 2-4 backends at once; every lane is timed the same way. "
        "Vary one setting per lane on purpose with *Vary*."
    )
    with gr.Row():
        preset = gr.Dropdown(preset_names, value=default_preset, label="Preset", elem_id="cmp-preset")
        lane_count = gr.Radio([2, 3, 4], value=2, label="Lanes", elem_id="cmp-lanes")
        runs = gr.Number(3, precision=0, minimum=1, maximum=20, label="N for Run ×N", elem_id="cmp-runs")
        timeout = gr.Number(
            settings.read_timeout_s, minimum=1, label="Lane timeout (s)", elem_id="cmp-timeout"
        )
    hint = "One prompt for every lane (Enter runs, Shift+Enter for a new line)"
    prompt = prompt_box("cmp-prompt", hint, "Prompt")
    with gr.Accordion("System prompt and shared settings", open=False):
        system = gr.Textbox(
            first_preset.system_prompt if first_preset else "",
            label="System prompt",
            lines=3,
            elem_id="cmp-system",
        )
        with gr.Row():
            temperature = gr.Slider(0, 2, base.temperature if base else 0.7, step=0.05, label="Temperature")
            top_p = gr.Slider(0.05, 1, base.top_p if base else 1.0, step=0.05, label="Top p")
            top_k = gr.Slider(0, 200, base.top_k if base else 0, step=1, label="Top k (0 = off)")
            max_new = gr.Slider(
                16,
                settings.max_new_tokens_cap,
                min(base.max_new_tokens if base else 512, settings.max_new_tokens_cap),
                step=16,
                label="Max new tokens",
            )
            seed = gr.Number(
                -1 if base is None or base.seed is None else base.seed,
                precision=0,
                label="Seed (-1 = random)",
            )
        json_output, json_schema = json_controls(first_preset, "cmp")
    shared = [temperature, top_p, top_k, max_new, seed]
    link_warning = gr.Markdown("", visible=False, elem_id="cmp-link-warning")
    trust = gr.Checkbox(
        False, visible=False, label="I checked these servers: run against them", elem_id="cmp-trust"
    )
    untrusted = gr.State([])
    """Lane specs a share link brought that this app has not configured (URLs, folders)."""
    with gr.Row():
        run_btn = gr.Button("Run", variant="primary", elem_id="cmp-run")
        run_n_btn = gr.Button("Run ×N", elem_id="cmp-run-n")
        stop_all_btn = gr.Button("Stop all", variant="stop", elem_id="cmp-stop-all")

    columns, pickers, outputs, readouts, stops = [], [], [], [], []
    with gr.Row(equal_height=False):
        for i in range(MAX_LANES):
            with gr.Column(visible=i < 2, min_width=240) as column:
                gr.Markdown(f"**Lane {i + 1}**")
                backend = gr.Dropdown(
                    labels,
                    value=labels[min(i, len(labels) - 1)] if labels else None,
                    label="Backend",
                    allow_custom_value=not settings.public,
                    info=None if settings.public else "or type a spec, e.g. ollama:MODEL@HOST",
                    elem_id=f"cmp-backend-{i}",
                )
                model = gr.Textbox(label="Model (empty = backend default)", elem_id=f"cmp-model-{i}")
                with gr.Row():
                    vary = gr.Dropdown(
                        [NO_OVERRIDE, *OVERRIDABLE], value=NO_OVERRIDE, label="Vary", min_width=100
                    )
                    vary_value = gr.Number(None, label="to", min_width=80)
                readout = gr.Markdown("", elem_id=f"cmp-readout-{i}", elem_classes=["metrics-line"])
                output = gr.Markdown(
                    "",
                    height=360,
                    latex_delimiters=LATEX_DELIMITERS,  # no single "$": prices stay prices
                    container=True,
                    elem_id=f"cmp-output-{i}",
                )
                stop = gr.Button(f"Stop lane {i + 1}", size="sm", variant="stop", elem_id=f"cmp-stop-{i}")
            columns.append(column)
            pickers += [backend, model, vary, vary_value]
            outputs.append(output)
            readouts.append(readout)
            stops.append(stop)

    chart = gr.LinePlot(
        None,  # not an empty DataFrame: the plot would fix its (empty) color domain and never draw lines
        x="seconds",
        y="tokens",
        color="lane",
        title="Tokens over time (last run)",
        x_title="seconds since the lane started",
        y_title="tokens streamed",
        height=300,
        elem_id="cmp-chart",
    )
    diff = gr.HighlightedText(
        label="Word diff: lane 1 → lane 2 (− only in lane 1, + only in lane 2)",
        combine_adjacent=True,
        show_legend=True,
        color_map={"-": "#f8b4b4", "+": "#a7f3d0"},
        elem_id="cmp-diff",
    )
    summary = gr.Markdown("", elem_id="cmp-summary")
    with gr.Row():
        card_json = gr.DownloadButton(
            "Run card (JSON)", value=None, interactive=False, elem_id="cmp-card-json"
        )
        card_md = gr.DownloadButton(
            "Run card (Markdown)", value=None, interactive=False, elem_id="cmp-card-md"
        )
        share_btn = gr.Button("Share link", elem_id="cmp-share")
    share_box = gr.Textbox(
        label="Share link (reopens this setup)", buttons=["copy"], elem_id="cmp-share-link"
    )

    # --- handlers ------------------------------------------------------------------------

    gate = BackendGate(settings)

    def setup_from(
        count: int,
        prompt_text: str,
        preset_name: str,
        system_text: str,
        n: int,
        *rest: Any,
        session: str | None = None,
    ) -> ComparisonSetup:
        temp, tp, tk, mx, sd = rest[:5]
        lane_values = rest[5 : 5 + 4 * MAX_LANES]
        as_json, schema = rest[5 + 4 * MAX_LANES :] or (False, "")
        specs = []
        known = registry.labels(session)
        for i in range(int(count)):
            b, m, o, v = lane_values[4 * i : 4 * i + 4]
            if settings.public and b not in known:
                raise LaneSpecError(f"lane {i + 1}: choose one of the configured backends")
            in_process = getattr(KINDS.get(b), "in_process", False)
            try:
                spec = lane_spec(b, m, o, v, labels=known, gate=gate, in_process=in_process)
            except InputError as exc:
                raise LaneSpecError(f"lane {i + 1}: {exc}") from None
            if not spec:
                raise LaneSpecError(f"lane {i + 1}: choose a backend")
            specs.append(spec)
        preset_obj = presets.get(preset_name) if (presets is not None and preset_name) else None
        options = {"temperature": temp, "top_p": tp, "top_k": int(tk), "max_new_tokens": int(mx)}
        options["seed"] = None if sd is None or int(sd) < 0 else int(sd)
        options["json_output"] = bool(as_json)  # held fixed across lanes, like the other settings
        options["json_schema"] = parse_schema(schema) if as_json else None
        if preset_obj is not None:  # keep links short: only what differs from the preset
            options = {k: v for k, v in options.items() if getattr(preset_obj.options, k) != v}
        return ComparisonSetup(
            lanes=specs,
            prompt=prompt_text or "",
            preset=preset_name or "",
            system_prompt=None
            if preset_obj is not None and system_text == preset_obj.system_prompt
            else system_text,
            options=options,
            runs=max(1, min(int(n or 1), settings.max_runs)),
        )

    async def run_comparison(
        n_runs: int, request: gr.Request | None, args: tuple[Any, ...]
    ) -> AsyncIterator[list[Any]]:
        trusted, untrusted, count, prompt_text, preset_name, system_text, n, time_limit, *rest = args
        session = session_of(request)
        key = session or "api"
        try:
            runs_asked = n if n_runs != 1 else 1
            setup = setup_from(
                count, prompt_text, preset_name, system_text, runs_asked, *rest, session=session
            )
            if not trusted and (named := [s for s in setup.lanes if s in (untrusted or [])]):
                raise SetupError(
                    f"the link you opened points lanes at {', '.join(named)}, which this app has not "
                    "configured: check them, then tick the box under the warning to run"
                )
            prepared: Prepared = prepare(setup, registry, presets, session=session)
        except (SetupError, ValueError, KeyError) as exc:
            raise gr.Error(str(exc).strip("'\"")) from None
        results: list[ComparisonResult] = []
        texts, notes = [""] * MAX_LANES, [""] * MAX_LANES
        saved_skip = [gr.skip()] if last_run is not None else []
        try:
            with admission.enter(client_of(request)):
                async for value in stream_runs(prepared, float(time_limit or settings.read_timeout_s), key):
                    texts, notes, result = value
                    if result is not None:
                        results.append(result)
                    else:
                        yield [*texts, *notes, *[gr.skip()] * 6, *saved_skip]
        except Busy as exc:
            raise api_error(exc) from None
        card = await card_for(prepared, results)
        json_path, md_path = write_card_files(card)
        last = results[-1]
        pair = highlighted(word_diff(last.lanes[0].text, last.lanes[1].text)) if len(last.lanes) > 1 else []
        saved = SavedRun(
            prompt=prompt_text,
            lanes=max(2, len(last.lanes)),
            texts=texts,
            notes=notes,
            summary=summary_markdown(card),
            share="?" + card.share_query,
            card_json=card.to_json(),
        )
        yield [
            *texts,
            *notes,
            timeline_frame(last),
            pair,
            summary_markdown(card),
            gr.DownloadButton(value=json_path, interactive=True),
            gr.DownloadButton(value=md_path, interactive=True),
            "?" + card.share_query,
            *([saved.model_dump()] if last_run is not None else []),
        ]

    inputs = [trust, untrusted, lane_count, prompt, preset, system, runs, timeout, *shared, *pickers]
    inputs += [json_output, json_schema]  # after the lanes: restore's list stays as it was
    results_out = [*outputs, *readouts, chart, diff, summary, card_json, card_md, share_box]
    if last_run is not None:
        results_out.append(last_run)

    async def run_once(request: gr.Request, *args: Any) -> AsyncIterator[list[Any]]:
        async for value in run_comparison(1, request, args):
            yield value

    async def run_n(request: gr.Request, *args: Any) -> AsyncIterator[list[Any]]:
        async for value in run_comparison(0, request, args):
            yield value

    for trigger, fn in ((run_btn.click, run_once), (run_n_btn.click, run_n), (prompt.submit, run_once)):
        trigger(
            fn, inputs, results_out, api_visibility="private", concurrency_limit=None, show_progress="hidden"
        ).then(None, share_box, share_box, js=SHARE_JS)

    def stopper(index: int | None):
        def stop(request: gr.Request) -> None:
            comparison = _ACTIVE.get(request.session_hash or "")
            if comparison is None:
                return
            if index is None:
                comparison.stop_all()
            else:
                comparison.stop(index)

        return stop

    quiet: dict[str, Any] = {"api_visibility": "private", "concurrency_limit": None, "queue": False}
    for i, button in enumerate(stops):
        button.click(stopper(i), None, None, **quiet)
    stop_all_btn.click(stopper(None), None, None, **quiet)

    lane_count.change(
        lambda n: [gr.Column(visible=i < int(n)) for i in range(MAX_LANES)], lane_count, columns, **quiet
    )

    def apply_preset(name: str) -> list[Any]:
        if presets is None or not name:
            return [gr.skip()] * 6
        p = presets.get(name)
        o = p.options
        max_new_tokens = min(o.max_new_tokens, settings.max_new_tokens_cap)
        seed_value = -1 if o.seed is None else o.seed
        return [p.system_prompt, o.temperature, o.top_p, o.top_k, max_new_tokens, seed_value]

    preset.input(apply_preset, preset, [system, *shared], **quiet)

    def share(request: gr.Request, *args: Any) -> str:
        _trusted, _untrusted, count, prompt_text, preset_name, system_text, n, _time_limit, *rest = args
        try:
            setup = setup_from(
                count, prompt_text, preset_name, system_text, n, *rest, session=session_of(request)
            )
            return "?" + encode_setup(setup)
        except ValueError as exc:
            raise gr.Error(str(exc)) from None

    share_btn.click(share, inputs, share_box, **quiet).then(None, share_box, share_box, js=SHARE_JS)

    def restore(request: gr.Request) -> list[Any]:
        """App load: reopen the setup a share link describes (?tab=compare&lane=...).

        Lanes the link points at servers or folders this app has not configured are filled in
        but do not run until the user ticks the box under the warning; a public instance does
        not open such a link at all."""
        params = dict(request.query_params) if request is not None else {}
        skip = [gr.skip()] * (9 + len(shared) + len(pickers) + len(columns))
        if not params.get("lane"):
            return skip
        known = registry.labels(session_of(request))
        try:
            setup = decode_setup(request.query_params, known_labels=known)
            lanes = [pickers_for(spec, known) for spec in setup.lanes]
            foreign = [spec for spec in setup.lanes if _unconfigured(spec, known)]
            if foreign and settings.public:
                raise ShareLinkError(
                    "it names backends this public instance does not have: "
                    + ", ".join(foreign)
                    + f"; it compares only {', '.join(known)}"
                )
        except (ShareLinkError, LaneSpecError) as exc:
            gr.Warning(f"This comparison link cannot be opened: {exc}")
            return skip
        warning = (
            "⚠ **This link points lanes at servers or folders this app has not configured:** "
            + ", ".join(f"`{spec}`" for spec in foreign)
            + ". Nothing has been sent to them. Check them, then tick the box below to run."
        )
        options = setup.sampling(presets.get(setup.preset).options if presets and setup.preset else None)
        preset_obj = presets.get(setup.preset) if presets and setup.preset else None
        system_text = (
            setup.system_prompt
            if setup.system_prompt is not None
            else (preset_obj.system_prompt if preset_obj else "")
        )
        lane_values: list[Any] = []
        for i in range(MAX_LANES):
            lane_values += list(lanes[i]) if i < len(lanes) else [gr.skip()] * 4
        return [
            gr.Markdown(warning, visible=True) if foreign else gr.skip(),
            gr.Checkbox(False, visible=True) if foreign else gr.skip(),
            foreign,
            len(setup.lanes) if len(setup.lanes) >= 2 else 2,
            setup.prompt,
            setup.preset or gr.skip(),
            system_text,
            setup.runs,
            gr.skip(),
            options.temperature, options.top_p, options.top_k, options.max_new_tokens,
            -1 if options.seed is None else options.seed,
            *lane_values,
            *[gr.Column(visible=i < max(2, len(setup.lanes))) for i in range(MAX_LANES)],
        ]  # fmt: skip

    restored = [link_warning, trust, untrusted, *inputs[2:8], *shared, *pickers, *columns]
    gr.on(None, restore, None, restored, api_visibility="private")

    def show_last_run(saved: Any, request: gr.Request) -> list[Any]:
        """App load: the last comparison again, unless the page is a share link (which sets up
        its own); one that no longer validates says why and stays in the browser untouched."""
        restored, problem = restored_run(saved)
        if restored is None or (request is not None and request.query_params.get("lane")):
            if problem:
                gr.Warning(problem)
            return [gr.skip()] * (3 * MAX_LANES + 6)
        run, card = restored
        texts = [*run.texts, *[""] * MAX_LANES][:MAX_LANES]
        notes = [*run.notes, *[""] * MAX_LANES][:MAX_LANES]
        json_path, md_path = write_card_files(card)
        return [
            *texts,
            *notes,
            *[gr.Column(visible=i < run.lanes) for i in range(MAX_LANES)],
            run.lanes,
            run.prompt,
            run.summary,
            gr.DownloadButton(value=json_path, interactive=True),
            gr.DownloadButton(value=md_path, interactive=True),
            run.share,  # the query; SHARE_JS puts the page's address before it
        ]

    if last_run is not None:
        shown_again = [*outputs, *readouts, *columns, lane_count, prompt, summary, card_json, card_md]
        gr.on(None, show_last_run, last_run, [*shown_again, share_box], api_visibility="private").then(
            None, share_box, share_box, js=SHARE_JS
        )

    async def compare(
        lanes: list[str],
        prompt: str,
        preset: str = "",
        system_prompt: str | None = None,
        settings_override: dict | None = None,
        runs: int = 1,
        request: gr.Request | None = None,
    ) -> dict:
        """Run one prompt on 2-4 lanes in parallel and return the run card (JSON object).

        lanes: lane specs, e.g. ["onnx", "vllm", "ollama:qwen2.5:0.5b@http://host:11434#temperature=0"]
        (configured backend labels, or kind:MODEL@URL where the instance allows it; "#SETTING=VALUE"
        varies one setting on a lane).
        settings_override: temperature, top_p, top_k, max_new_tokens, seed on top of the preset's.
        runs: repeat count (1 to the instance's limit); the card has median and p95 per lane and metric.
        """
        session = session_of(request)
        try:
            setup = ComparisonSetup(
                lanes=lanes,
                prompt=prompt,
                preset=preset or "",
                system_prompt=system_prompt,
                options=settings_override if settings_override is not None else {},
                runs=runs,  # prepare checks the range
            )
            prepared = prepare(setup, registry, presets, session=session)
            with admission.enter(client_of(request)):
                results = []
                for _ in range(prepared.setup.runs):
                    results.append(await prepared.comparison(settings.read_timeout_s).run())
            return (await card_for(prepared, results)).model_dump(mode="json")
        except Exception as exc:  # the API's one error boundary
            raise api_error(exc) from None

    gr.api(compare, api_name="compare", concurrency_limit=None)


def _unconfigured(spec: str, known: list[str]) -> bool:
    """Whether a lane spec from a link names a server or folder rather than a configured backend."""
    parsed = parse_lane(spec, known_labels=known)
    if parsed.kind == "label":
        # a model beside an in-process label is a file or folder to load
        return bool(parsed.model) and getattr(KINDS.get(parsed.label), "in_process", False)
    return bool(parsed.url) or bool(parsed.model) or parsed.kind != default_in_process()
