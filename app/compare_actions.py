"""The Compare tab's handlers: run (once or ×N), stop, apply a preset, share, reopen a link, show
the last run again, and the ``/compare`` API. Each reads its inputs by component from one
mapping and returns its updates by component (see :mod:`app.compare_tab`)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import gradio as gr

from app.api import api_error, client_of, session_of
from app.compare_view import (
    SavedRun,
    lane_spec,
    pickers_for,
    restored_run,
    summary_markdown,
    timeline_frame,
    unconfigured,
    write_card_files,
)
from app.render import lane_readout
from compare.diff import highlighted, word_diff
from compare.lanes import MAX_LANES, LaneSpecError
from compare.runcard import RunCard
from compare.runner import Comparison, ComparisonResult
from compare.service import Prepared, SetupError, card_for, prepare
from compare.share import ComparisonSetup, ShareLinkError, decode_setup, encode_setup
from runtime.errors import Busy, InputError
from runtime.gate import BackendGate
from runtime.kinds import KINDS
from runtime.limits import Admission
from runtime.markdown_text import shown
from runtime.panel_fields import PanelValues, compare_options, to_panel
from runtime.registry import BackendRegistry
from runtime.settings import Settings

if TYPE_CHECKING:
    from app.compare_tab import CompareTab

REFRESH_S = 0.1
"""Redraw at most this often while streaming (4 lanes x every token would flood the browser)."""
Inputs = dict[Any, Any]
"""A handler's inputs: component -> value (Gradio passes a set of inputs this way)."""


class RunningComparisons:
    """The comparison each browser session is running, so its Stop buttons can reach it."""

    def __init__(self) -> None:
        self._by_session: dict[str, Comparison] = {}

    @contextmanager
    def running(self, key: str, comparison: Comparison) -> Iterator[None]:
        self._by_session[key] = comparison
        try:
            yield
        finally:
            if self._by_session.get(key) is comparison:
                del self._by_session[key]

    def stop(self, key: str, lane: int | None = None) -> None:
        """Stop one lane (or every lane) of the session's comparison, if one is running."""
        comparison = self._by_session.get(key)
        if comparison is None:
            return
        if lane is None:
            comparison.stop_all()
        else:
            comparison.stop(lane)


Updates = dict[Any, Any]
"""A handler's updates: component -> new value (components left out stay as they are)."""


@dataclass
class CompareActions:
    tab: CompareTab
    settings: Settings
    registry: BackendRegistry
    presets: Any
    admission: Admission
    last_run: gr.BrowserState | None = None
    """A browser store made outside the tabs: the last comparison, shown again after a reload."""
    running: RunningComparisons = field(default_factory=RunningComparisons)
    gate: BackendGate = field(init=False)

    def __post_init__(self) -> None:
        self.gate = BackendGate(self.settings)

    def preset_named(self, name: str) -> Any:
        return self.presets.get(name) if self.presets is not None and name else None

    # --- the setup ----------------------------------------------------------------------------

    def lane_specs(self, data: Inputs, session: str | None) -> list[str]:
        known = self.registry.labels(session)
        specs = []
        for i, lane in enumerate(self.tab.lanes[: int(data[self.tab.lane_count])]):
            backend, model, override, value = (data[c] for c in lane.pickers())
            if self.settings.public and backend not in known:
                raise LaneSpecError(f"lane {i + 1}: choose one of the configured backends")
            in_process = getattr(KINDS.get(backend), "in_process", False)
            try:
                spec = lane_spec(
                    backend, model, override, value, labels=known, gate=self.gate, in_process=in_process
                )
            except InputError as exc:
                raise LaneSpecError(f"lane {i + 1}: {exc}") from None
            if not spec:
                raise LaneSpecError(f"lane {i + 1}: choose a backend")
            specs.append(spec)
        return specs

    def shared_options(self, data: Inputs, preset: Any) -> dict[str, Any]:
        """The settings every lane shares, as options; only those that differ from the preset's
        (links stay short). Raises InputError for a schema that is not JSON."""
        panel = PanelValues(**{name: data[control] for name, control in self.tab.options.items()})
        options = {}
        for spec in compare_options():
            off = spec.only_with and not getattr(panel, spec.only_with)
            options[spec.name] = None if off else spec.to_option(getattr(panel, spec.name))
        if preset is not None:
            options = {k: v for k, v in options.items() if getattr(preset.options, k) != v}
        return options

    def setup_from(self, data: Inputs, runs: int, session: str | None) -> ComparisonSetup:
        tab = self.tab
        preset_name, system = data[tab.preset], data[tab.system]
        preset = self.preset_named(preset_name)
        return ComparisonSetup(
            lanes=self.lane_specs(data, session),
            prompt=data[tab.prompt] or "",
            preset=preset_name or "",
            system_prompt=None if preset is not None and system == preset.system_prompt else system,
            options=self.shared_options(data, preset),
            runs=max(1, min(int(runs or 1), self.settings.max_runs)),
        )

    # --- running ------------------------------------------------------------------------------

    async def run_once(self, data: Inputs, request: gr.Request) -> AsyncIterator[Updates]:
        async for update in self.run(data, request, runs=1):
            yield update

    async def run_n(self, data: Inputs, request: gr.Request) -> AsyncIterator[Updates]:
        async for update in self.run(data, request, runs=int(data[self.tab.runs] or 1)):
            yield update

    def prepared(self, data: Inputs, runs: int, session: str | None) -> Prepared:
        try:
            setup = self.setup_from(data, runs, session)
            untrusted = data[self.tab.untrusted] or []
            if not data[self.tab.trust] and (named := [s for s in setup.lanes if s in untrusted]):
                raise SetupError(
                    f"the link you opened points lanes at {', '.join(named)}, which this app has not "
                    "configured: check them, then tick the box under the warning to run"
                )
            return prepare(setup, self.registry, self.presets, session=session)
        except (SetupError, ValueError, KeyError) as exc:
            raise gr.Error(str(exc).strip("'\"")) from None

    async def run(self, data: Inputs, request: gr.Request | None, runs: int) -> AsyncIterator[Updates]:
        session = session_of(request)
        prepared = self.prepared(data, runs, session)
        timeout_s = float(data[self.tab.timeout] or self.settings.read_timeout_s)
        results: list[ComparisonResult] = []
        texts, notes = [""] * MAX_LANES, [""] * MAX_LANES
        try:
            with self.admission.enter(client_of(request), session_of(request)):
                async for texts, notes, result in self.stream_runs(prepared, timeout_s, session or "api"):
                    if result is not None:
                        results.append(result)
                    else:
                        yield self.every_output(self.lane_updates(texts, notes))
        except Busy as exc:
            raise api_error(exc) from None
        card = await card_for(prepared, results)
        yield self.finished(card, results[-1], texts, notes, data[self.tab.prompt])

    async def stream_runs(
        self, prepared: Prepared, timeout_s: float, key: str
    ) -> AsyncIterator[tuple[list[str], list[str], ComparisonResult | None]]:
        """Run the prepared comparison ``runs`` times: (texts, readouts, None) while streaming, at
        most every REFRESH_S, then (texts, readouts, result) after each run."""
        texts, notes = [""] * MAX_LANES, [""] * MAX_LANES
        runs = prepared.setup.runs
        for run_index in range(runs):
            comparison = prepared.comparison(timeout_s)
            last_draw = 0.0
            with self.running.running(key, comparison):
                async for update in comparison.stream():
                    texts[update.lane] = shown(update.text) or (  # Markdown that shows it as written
                        "*thinking…*\n\n" + shown(update.reasoning) if update.reasoning else ""
                    )
                    label = f"run {run_index + 1}/{runs} · " if runs > 1 else ""
                    notes[update.lane] = label + lane_readout(update)
                    now = time.monotonic()
                    if update.finished or now - last_draw >= REFRESH_S:
                        last_draw = now
                        yield texts, notes, None
            result = comparison.result()
            yield texts, notes, result
            if all(lane.status == "stopped" for lane in result.lanes):
                break  # Stop all: no further runs

    def every_output(self, updates: Updates) -> Updates:
        """``updates`` with a skip for every other output of a run (what is left out of a
        streamed update is otherwise shown as pending, and the Stop buttons move under it)."""
        outputs = self.tab.result_outputs() + ([self.last_run] if self.last_run is not None else [])
        return {component: updates.get(component, gr.skip()) for component in outputs}

    def lane_updates(self, texts: list[str], notes: list[str]) -> Updates:
        updates: Updates = {}
        for lane, text, note in zip(self.tab.lanes, texts, notes, strict=True):
            updates[lane.output], updates[lane.readout] = text, note
        return updates

    def finished(
        self, card: RunCard, last: ComparisonResult, texts: list[str], notes: list[str], prompt: str
    ) -> Updates:
        tab = self.tab
        json_path, md_path = write_card_files(card)
        pair = highlighted(word_diff(last.lanes[0].text, last.lanes[1].text)) if len(last.lanes) > 1 else []
        updates = self.lane_updates(texts, notes) | {
            tab.chart: timeline_frame(last),
            tab.diff: pair,
            tab.summary: summary_markdown(card),
            tab.card_json: gr.DownloadButton(value=json_path, interactive=True),
            tab.card_md: gr.DownloadButton(value=md_path, interactive=True),
            tab.share_box: "?" + card.share_query,
        }
        if self.last_run is not None:
            updates[self.last_run] = SavedRun(
                prompt=prompt,
                lanes=max(2, len(last.lanes)),
                texts=texts,
                notes=notes,
                summary=summary_markdown(card),
                share="?" + card.share_query,
                card_json=card.to_json(),
            ).model_dump()
        return updates

    def stopper(self, lane: int | None):
        """Stop one lane (an index) or all of them (None) of this session's comparison."""

        def stop(request: gr.Request) -> None:
            self.running.stop(request.session_hash or "", lane)

        return stop

    # --- presets, links and the last run ------------------------------------------------------

    def apply_preset(self, name: str) -> Updates:
        preset = self.preset_named(name)
        if preset is None:
            return {self.tab.system: gr.skip()}  # an empty dict would read as one value
        values = PanelValues.of(preset)
        updates: Updates = {self.tab.system: values.system_prompt}
        for spec_name, control in self.tab.options.items():
            updates[control] = getattr(values, spec_name)
        return updates

    def share(self, data: Inputs, request: gr.Request) -> str:
        try:
            return "?" + encode_setup(
                self.setup_from(data, int(data[self.tab.runs] or 1), session_of(request))
            )
        except ValueError as exc:
            raise gr.Error(str(exc)) from None

    def restore(self, request: gr.Request) -> Updates:
        """App load: reopen the setup a share link describes (?tab=compare&lane=...).

        Lanes the link points at servers or folders this app has not configured are filled in
        but do not run until the user ticks the box under the warning; a public instance does
        not open such a link at all."""
        if request is None or not request.query_params.get("lane"):
            return {self.tab.prompt: gr.skip()}  # an empty dict would read as one value
        known = self.registry.labels(session_of(request))
        try:
            setup = decode_setup(request.query_params, known_labels=known)
            lanes = [pickers_for(spec, known) for spec in setup.lanes]
            foreign = [spec for spec in setup.lanes if unconfigured(spec, known)]
            if foreign and self.settings.public:
                raise ShareLinkError(
                    f"it names backends this public instance does not have: {', '.join(foreign)}"
                    f"; it compares only {', '.join(known)}"
                )
        except (ShareLinkError, LaneSpecError) as exc:
            gr.Warning(f"This comparison link cannot be opened: {exc}")
            return {self.tab.prompt: gr.skip()}  # an empty dict would read as one value
        return self.restored_setup(setup, lanes, foreign)

    def restored_setup(self, setup: ComparisonSetup, lanes: list[tuple], foreign: list[str]) -> Updates:
        tab = self.tab
        preset = self.preset_named(setup.preset)
        options = setup.sampling(preset.options if preset is not None else None)
        updates: Updates = {
            tab.untrusted: foreign,
            tab.lane_count: max(2, len(setup.lanes)),
            tab.prompt: setup.prompt,
            tab.system: setup.system_prompt
            if setup.system_prompt is not None
            else (preset.system_prompt if preset else ""),
            tab.runs: setup.runs,
        }
        if setup.preset:
            updates[tab.preset] = setup.preset
        if foreign:
            warning = (
                "⚠ **This link points lanes at servers or folders this app has not configured:** "
                + ", ".join(f"`{spec}`" for spec in foreign)
                + ". Nothing has been sent to them. Check them, then tick the box below to run."
            )
            updates[tab.link_warning] = gr.Markdown(warning, visible=True)
            updates[tab.trust] = gr.Checkbox(False, visible=True)
        for spec in compare_options():
            updates[tab.options[spec.name]] = to_panel(spec.kind, getattr(options, spec.name))
        for i, lane in enumerate(tab.lanes):
            if i < len(lanes):
                updates.update(zip(lane.pickers(), lanes[i], strict=True))
            updates[lane.column] = gr.Column(visible=i < max(2, len(setup.lanes)))
        return updates

    def show_last_run(self, saved: Any, request: gr.Request) -> Updates:
        """App load: the last comparison again, unless the page is a share link (which sets up
        its own); one that no longer validates says why and stays in the browser untouched."""
        restored, problem = restored_run(saved)
        if restored is None or (request is not None and request.query_params.get("lane")):
            if problem:
                gr.Warning(problem)
            return {self.tab.prompt: gr.skip()}  # an empty dict would read as one value
        run, card = restored
        tab = self.tab
        texts = [*run.texts, *[""] * MAX_LANES][:MAX_LANES]
        notes = [*run.notes, *[""] * MAX_LANES][:MAX_LANES]
        json_path, md_path = write_card_files(card)
        updates = self.lane_updates(texts, notes)
        updates.update({lane.column: gr.Column(visible=i < run.lanes) for i, lane in enumerate(tab.lanes)})
        return updates | {
            tab.lane_count: run.lanes,
            tab.prompt: run.prompt,
            tab.summary: run.summary,
            tab.card_json: gr.DownloadButton(value=json_path, interactive=True),
            tab.card_md: gr.DownloadButton(value=md_path, interactive=True),
            tab.share_box: run.share,  # the query; SHARE_JS puts the page's address before it
        }

    # --- the API ------------------------------------------------------------------------------

    async def compare(
        self,
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
        settings_override: {setting_keys} on top of the preset's.
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
            prepared = prepare(setup, self.registry, self.presets, session=session)
            with self.admission.enter(client_of(request), session_of(request)):
                results = []
                for _ in range(prepared.setup.runs):
                    results.append(await prepared.comparison(self.settings.read_timeout_s).run())
            return (await card_for(prepared, results)).model_dump(mode="json")
        except Exception as exc:  # the API's one error boundary
            raise api_error(exc) from None


def _documented(doc: str) -> str:
    names = [spec.name for spec in compare_options()]
    return doc.replace("{setting_keys}", ", ".join(names))


CompareActions.compare.__doc__ = _documented(CompareActions.compare.__doc__ or "")
