"""The Compare tab: Gradio wiring over compare/ (which never imports gradio).

2-4 lanes (backend + model + one setting varied on purpose), one preset and prompt for all.
Run streams every lane at once; Stop on a lane stops only that lane (the runner cancels its
task, so the backend stops generating); Run ×N repeats for median/p95. Afterwards: tokens over
time per lane, where the answers diverge, math verdicts, the run card (JSON/Markdown) and a
share link. API: ``/compare`` (lanes, prompt, preset, ...) returns the run card as JSON.

:class:`CompareTab` holds the components; :class:`CompareActions` the handlers, which take the
inputs as one ``{component: value}`` mapping (Gradio's set-of-inputs form) and return updates
by component, so no handler depends on the order of a list. The comparisons running now are
kept per browser session by :class:`RunningComparisons`, owned by the tab.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from app.chat_tab import prompt_box
from app.compare_actions import CompareActions
from app.compare_view import NO_OVERRIDE
from app.panel_controls import SHARE_JS, build_controls
from compare.lanes import MAX_LANES
from runtime.limits import Admission
from runtime.markdown_text import LATEX_DELIMITERS
from runtime.panel_fields import PanelValues, compare_options, overridable
from runtime.registry import BackendRegistry
from runtime.settings import Settings


@dataclass
class LaneControls:
    column: gr.Column
    backend: gr.Dropdown
    model: gr.Textbox
    vary: gr.Dropdown
    vary_value: gr.Number
    readout: gr.Markdown
    output: gr.Markdown
    stop: gr.Button

    def pickers(self) -> list[Any]:
        return [self.backend, self.model, self.vary, self.vary_value]


@dataclass
class CompareTab:
    """The tab's components."""

    preset: gr.Dropdown
    lane_count: gr.Radio
    runs: gr.Number
    timeout: gr.Number
    prompt: gr.Textbox
    system: gr.Textbox
    options: dict[str, Any]
    """Field name -> control, for every setting of the panel table Compare holds for all lanes."""
    link_warning: gr.Markdown
    trust: gr.Checkbox
    untrusted: gr.State
    """Lane specs a share link brought that this app has not configured (URLs, folders)."""
    run_btn: gr.Button
    run_n_btn: gr.Button
    stop_all_btn: gr.Button
    lanes: list[LaneControls]
    chart: gr.LinePlot
    diff: gr.HighlightedText
    summary: gr.Markdown
    card_json: gr.DownloadButton
    card_md: gr.DownloadButton
    share_btn: gr.Button
    share_box: gr.Textbox

    def setup_inputs(self) -> set[Any]:
        """What a comparison's setup is read from (the Run and Share handlers' inputs)."""
        pickers = [c for lane in self.lanes for c in lane.pickers()]
        return {
            self.lane_count,
            self.prompt,
            self.preset,
            self.system,
            self.runs,
            *self.options.values(),
            *pickers,
        }

    def run_inputs(self) -> set[Any]:
        return self.setup_inputs() | {self.trust, self.untrusted, self.timeout}

    def columns(self) -> list[gr.Column]:
        return [lane.column for lane in self.lanes]

    def result_outputs(self) -> list[Any]:
        lanes = [c for lane in self.lanes for c in (lane.output, lane.readout)]
        return [*lanes, self.chart, self.diff, self.summary, self.card_json, self.card_md, self.share_box]


# --- layout -----------------------------------------------------------------------------------


def _setup_rows(settings: Settings, preset_names: list[str], first_preset: Any) -> dict[str, Any]:
    default_preset = first_preset.name if first_preset is not None else None
    with gr.Row():
        preset = gr.Dropdown(preset_names, value=default_preset, label="Preset", elem_id="cmp-preset")
        lane_count = gr.Radio([2, 3, 4], value=2, label="Lanes", elem_id="cmp-lanes")
        runs = gr.Number(3, precision=0, minimum=1, maximum=20, label="N for Run ×N", elem_id="cmp-runs")
        timeout = gr.Number(
            settings.read_timeout_s, minimum=1, label="Lane timeout (s)", elem_id="cmp-timeout"
        )
    hint = "One prompt for every lane (Enter runs, Shift+Enter for a new line)"
    prompt = prompt_box("cmp-prompt", hint, "Prompt")
    values = PanelValues.of(first_preset) if first_preset is not None else PanelValues()
    with gr.Accordion("System prompt and shared settings", open=False):
        system = gr.Textbox(values.system_prompt, label="System prompt", lines=3, elem_id="cmp-system")
        specs = compare_options()
        in_row = [s for s in specs if s.control.component in ("slider", "number")]
        with gr.Row():
            row = build_controls(in_row, values, "cmp", settings.max_new_tokens_cap)
        rest = build_controls(
            [s for s in specs if s not in in_row], values, "cmp", settings.max_new_tokens_cap
        )
    controls = dict(
        zip([s.name for s in in_row] + [s.name for s in specs if s not in in_row], row + rest, strict=True)
    )
    return {
        "preset": preset,
        "lane_count": lane_count,
        "runs": runs,
        "timeout": timeout,
        "prompt": prompt,
        "system": system,
        "options": controls,
    }


def _lane_column(i: int, labels: list[str], settings: Settings) -> LaneControls:
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
            vary = gr.Dropdown([NO_OVERRIDE, *overridable()], value=NO_OVERRIDE, label="Vary", min_width=100)
            vary_value = gr.Number(None, label="to", min_width=80)
        lane_readout = gr.Markdown("", elem_id=f"cmp-readout-{i}", elem_classes=["metrics-line"])
        output = gr.Markdown(
            "",
            height=360,
            latex_delimiters=LATEX_DELIMITERS,  # no single "$": prices stay prices
            container=True,
            elem_id=f"cmp-output-{i}",
        )
        stop = gr.Button(f"Stop lane {i + 1}", size="sm", variant="stop", elem_id=f"cmp-stop-{i}")
    return LaneControls(column, backend, model, vary, vary_value, lane_readout, output, stop)


def _result_components() -> dict[str, Any]:
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
    return {
        "chart": chart,
        "diff": diff,
        "summary": summary,
        "card_json": card_json,
        "card_md": card_md,
        "share_btn": share_btn,
        "share_box": share_box,
    }


def layout(settings: Settings, labels: list[str], presets: Any) -> CompareTab:
    """The tab's components (call inside ``with gr.Tab("Compare"):``)."""
    preset_names = list(presets.names()) if presets is not None else []
    default_preset = "math" if "math" in preset_names else (preset_names[0] if preset_names else None)
    first_preset = presets.get(default_preset) if default_preset else None
    gr.Markdown(
        "Same prompt and settings on 2-4 backends; every lane is timed the same way, after its "
        "model has loaded. Remote lanes run at once; in-process engines of different kinds take "
        "turns (they would share the same cores). Vary one setting per lane on purpose with *Vary*."
    )
    setup = _setup_rows(settings, preset_names, first_preset)
    link_warning = gr.Markdown("", visible=False, elem_id="cmp-link-warning")
    trust = gr.Checkbox(
        False, visible=False, label="I checked these servers: run against them", elem_id="cmp-trust"
    )
    untrusted = gr.State([])
    with gr.Row():
        run_btn = gr.Button("Run", variant="primary", elem_id="cmp-run")
        run_n_btn = gr.Button("Run ×N", elem_id="cmp-run-n")
        stop_all_btn = gr.Button("Stop all", variant="stop", elem_id="cmp-stop-all")
    with gr.Row(equal_height=False):
        lanes = [_lane_column(i, labels, settings) for i in range(MAX_LANES)]
    return CompareTab(
        **setup,
        link_warning=link_warning,
        trust=trust,
        untrusted=untrusted,
        run_btn=run_btn,
        run_n_btn=run_n_btn,
        stop_all_btn=stop_all_btn,
        lanes=lanes,
        **_result_components(),
    )


# --- wiring -----------------------------------------------------------------------------------


def build_compare_tab(
    settings: Settings,
    registry: BackendRegistry,
    presets: Any,
    admission: Admission | None = None,
    last_run: gr.BrowserState | None = None,
    on_load: Any = None,
) -> CompareTab:
    """Build the tab's components and events; call inside ``with gr.Tab("Compare"):``.

    ``admission`` counts comparisons with the chats (the app passes the chat service's);
    ``last_run``, a browser store made outside the tabs, keeps the last comparison across a reload,
    shown again by ``on_load`` (the app's ``demo.load``) when the page opens."""
    tab = layout(settings, registry.labels(), presets)
    actions = CompareActions(tab, settings, registry, presets, admission or Admission.of(settings), last_run)
    _wire_runs(tab, actions)
    _wire_setup(tab, actions, on_load)
    gr.api(actions.compare, api_name="compare", concurrency_limit=None)
    return tab


QUIET: dict[str, Any] = {"api_visibility": "private", "concurrency_limit": None, "queue": False}


def _wire_runs(tab: CompareTab, actions: CompareActions) -> None:
    """Run, Run ×N (and Enter in the prompt), the Stop buttons and the lane count."""
    outputs = tab.result_outputs() + ([actions.last_run] if actions.last_run is not None else [])
    run: dict[str, Any] = {"api_visibility": "private", "concurrency_limit": None, "show_progress": "hidden"}
    inputs = tab.run_inputs()
    for trigger, fn in (
        (tab.run_btn.click, actions.run_once),
        (tab.run_n_btn.click, actions.run_n),
        (tab.prompt.submit, actions.run_once),
    ):
        trigger(fn, inputs, outputs, **run).then(None, tab.share_box, tab.share_box, js=SHARE_JS)
    for i, lane in enumerate(tab.lanes):
        lane.stop.click(actions.stopper(i), None, None, **QUIET)
    tab.stop_all_btn.click(actions.stopper(None), None, None, **QUIET)
    tab.lane_count.change(_lane_columns, tab.lane_count, tab.columns(), **QUIET)


def _lane_columns(count: int) -> list[gr.Column]:
    return [gr.Column(visible=i < int(count)) for i in range(MAX_LANES)]


def _wire_setup(tab: CompareTab, actions: CompareActions, on_load: Any) -> None:
    """The preset, Share link, a link's setup on load and the last run kept in the browser."""
    options = list(tab.options.values())
    tab.preset.input(actions.apply_preset, tab.preset, [tab.system, *options], **QUIET)
    tab.share_btn.click(actions.share, tab.setup_inputs(), tab.share_box, **QUIET).then(
        None, tab.share_box, tab.share_box, js=SHARE_JS
    )
    pickers = [c for lane in tab.lanes for c in lane.pickers()]
    restored: list[Any] = [tab.link_warning, tab.trust, tab.untrusted, tab.lane_count, tab.prompt, tab.preset]
    restored += [tab.system, tab.runs, *options, *pickers, *tab.columns()]
    gr.on(None, actions.restore, None, restored, api_visibility="private")
    # on page load only: a trigger-less gr.on would also fire on every change of the store, that
    # is after every run, redrawing the lanes and writing the run card's files a second time
    if actions.last_run is not None and on_load is not None:
        lanes = [c for lane in tab.lanes for c in (lane.output, lane.readout)]
        shown_again: list[Any] = [
            *lanes,
            *tab.columns(),
            tab.lane_count,
            tab.prompt,
            tab.summary,
            tab.card_json,
        ]
        shown_again += [tab.card_md, tab.share_box]
        on_load(actions.show_last_run, actions.last_run, shown_again, api_visibility="private").then(
            None, tab.share_box, tab.share_box, js=SHARE_JS
        )
