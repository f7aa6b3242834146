"""Which model a Hugging Face Space runs, and fetching it with progress.

On a Space (``SPACE_ID`` is set) the demo runs the official Phi-4-mini-instruct ONNX CPU int4
export; everywhere else, and whenever that download fails (no network, gated, disk full), the
small embedded default model runs instead, so the Space always starts. A model named
explicitly (``SLM_MODEL``) always wins.

:func:`plan_model` is pure (env in, decision out); :func:`fetch_planned_model` does the
download through an injectable ``download`` function so both are tested without a network.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger("slm_playground.spaces")

PHI4_ONNX_REPO = "microsoft/Phi-4-mini-instruct-onnx"
PHI4_CPU_INT4 = "cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4"

Progress = Callable[[str, float | None], None]
"""Called with a line of text and the fraction done (None when unknown)."""


@dataclass(frozen=True)
class ModelPlan:
    source: Literal["configured", "spaces", "default"]
    spec: str
    """What Settings.model gets: a folder, "repo:subfolder", or "" for the embedded default."""
    repo_id: str = ""
    subfolder: str = ""
    reason: str = ""


def plan_model(env: Mapping[str, str]) -> ModelPlan:
    """Decide the model from the environment alone (no I/O)."""
    if configured := env.get("SLM_MODEL", "").strip():
        return ModelPlan("configured", configured, reason="SLM_MODEL is set")
    if env.get("SPACE_ID", "").strip():
        if env.get("SLM_SPACES_MODEL", "").strip().lower() == "default":
            return ModelPlan("default", "", reason="SLM_SPACES_MODEL=default keeps the small model")
        return ModelPlan(
            "spaces",
            f"{PHI4_ONNX_REPO}:{PHI4_CPU_INT4}",
            repo_id=PHI4_ONNX_REPO,
            subfolder=PHI4_CPU_INT4,
            reason=f"running on Space {env['SPACE_ID']}",
        )
    return ModelPlan("default", "", reason="not on a Space and no model configured")


def _progress_tqdm(progress: Progress) -> type:
    """A tqdm class that reports to ``progress`` (huggingface_hub accepts a tqdm_class).

    A plain tqdm subclass, not huggingface_hub's own, so it is never silenced off a terminal;
    it reports at most once per percent per bar, as the bars tick once per network chunk.
    """
    from tqdm.auto import tqdm

    class ReportingTqdm(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            # a disabled tqdm keeps none of these, so they are kept here
            self._unit, self._label = kwargs.get("unit", "it"), kwargs.get("desc") or "downloading"
            self._last_percent, self._done = -2, 0.0
            super().__init__(*args, **kwargs)
            self.total = kwargs.get("total", getattr(self, "total", None))

        def update(self, n: float | None = 1) -> bool | None:
            shown = super().update(n)
            self._done += n or 0  # counted here too: a disabled tqdm does not count
            total = getattr(self, "total", None) or 0
            fraction = min(self._done / total, 1.0) if total else None
            percent = int(fraction * 100) if fraction is not None else -1
            if percent != self._last_percent:
                self._last_percent = percent
                if self._unit == "B":
                    done = f"{self._done / 1e6:,.0f} of {total / 1e6:,.0f} MB"
                else:
                    done = f"{self._done:.0f} of {total:.0f} {self._unit}"
                progress(f"{self._label}: {done}", fraction)
            return shown

    return ReportingTqdm


def fetch_planned_model(
    plan: ModelPlan,
    *,
    home: Path,
    download: Callable[..., Any] | None = None,
    progress: Progress | None = None,
) -> ModelPlan:
    """Download what ``plan`` needs into ``home``; on failure fall back to the default plan.

    Returns the plan to run: for a Space, ``spec`` becomes the local model folder.
    """
    if plan.source != "spaces":
        return plan
    report: Progress = progress or (lambda text, fraction: log.info("%s", text))
    if download is None:
        from huggingface_hub import snapshot_download

        download = snapshot_download
    target = home / plan.repo_id.replace("/", "--")
    report(f"downloading {plan.repo_id}/{plan.subfolder} (about 4.9 GB) into {target}", 0.0)
    try:
        download(
            plan.repo_id,
            allow_patterns=[f"{plan.subfolder}/*"],
            local_dir=target,
            tqdm_class=_progress_tqdm(report),
        )
    except Exception as exc:  # offline, gated, rate-limited, disk full: the small model still runs
        log.warning(
            "could not download %s (%s); falling back to the embedded default model", plan.repo_id, exc
        )
        report(f"download failed ({type(exc).__name__}); using the small default model", None)
        return ModelPlan("default", "", reason=f"download of {plan.repo_id} failed: {exc}")
    folder = target / plan.subfolder
    if not (folder / "genai_config.json").is_file():
        report("the download has no genai_config.json; using the small default model", None)
        return ModelPlan("default", "", reason=f"{folder} is not an onnxruntime-genai model folder")
    report(f"model ready in {folder}", 1.0)
    return ModelPlan("spaces", str(folder), plan.repo_id, plan.subfolder, reason=plan.reason)
