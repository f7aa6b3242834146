"""Model choice on Hugging Face Spaces and the download with fallback (no network needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from serve.spaces import PHI4_CPU_INT4, PHI4_ONNX_REPO, ModelPlan, fetch_planned_model, plan_model


def test_plan_off_spaces_is_the_default_model() -> None:
    assert plan_model({}) == ModelPlan("default", "", reason="not on a Space and no model configured")


def test_plan_on_spaces_is_the_official_phi4_cpu_int4_folder() -> None:
    plan = plan_model({"SPACE_ID": "someone/slm-playground"})
    assert (plan.source, plan.repo_id, plan.subfolder) == ("spaces", PHI4_ONNX_REPO, PHI4_CPU_INT4)
    assert plan.spec == f"{PHI4_ONNX_REPO}:{PHI4_CPU_INT4}"
    assert PHI4_CPU_INT4 == "cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4"


def test_configured_model_wins_and_spaces_can_opt_out() -> None:
    assert plan_model({"SPACE_ID": "a/b", "SLM_MODEL": "/models/mine"}).spec == "/models/mine"
    assert plan_model({"SPACE_ID": "a/b", "SLM_SPACES_MODEL": "default"}).source == "default"


def fake_download(files: list[str]):
    calls: list[dict] = []

    def download(repo_id: str, **kwargs):
        calls.append({"repo_id": repo_id, **kwargs})
        root = Path(kwargs["local_dir"])
        bar = kwargs["tqdm_class"](total=2_000_000, unit="B", desc="Downloading bytes", disable=True)
        for name in files:
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}")
            bar.update(1_000_000)
        bar.close()
        return str(root)

    return download, calls


def test_fetch_downloads_only_the_cpu_folder_and_reports_progress(tmp_path: Path) -> None:
    download, calls = fake_download([f"{PHI4_CPU_INT4}/genai_config.json", f"{PHI4_CPU_INT4}/model.onnx"])
    seen: list[tuple[str, float | None]] = []
    plan = fetch_planned_model(
        plan_model({"SPACE_ID": "a/b"}),
        home=tmp_path,
        download=download,
        progress=lambda text, fraction: seen.append((text, fraction)),
    )
    assert plan.source == "spaces"
    assert Path(plan.spec) == tmp_path / "microsoft--Phi-4-mini-instruct-onnx" / PHI4_CPU_INT4
    (call,) = calls
    assert call["repo_id"] == PHI4_ONNX_REPO
    assert call["allow_patterns"] == [f"{PHI4_CPU_INT4}/*"]
    fractions = [f for _, f in seen]
    assert fractions[0] == 0.0
    assert 0.5 in fractions
    assert fractions[-1] == 1.0
    assert any("1 of 2 MB" in text for text, _ in seen)


@pytest.mark.parametrize("failure", [OSError("Network is unreachable"), RuntimeError("401 gated repo"), None])
def test_fetch_falls_back_to_the_default_model(tmp_path: Path, failure: Exception | None) -> None:
    def download(repo_id: str, **kwargs):
        if failure is not None:
            raise failure
        return str(kwargs["local_dir"])  # "succeeds" but leaves no model folder

    seen: list[str] = []
    plan = fetch_planned_model(
        plan_model({"SPACE_ID": "a/b"}),
        home=tmp_path,
        download=download,
        progress=lambda t, f: seen.append(t),
    )
    assert (plan.source, plan.spec) == ("default", "")
    assert "small default model" in seen[-1]


def test_fetch_leaves_non_spaces_plans_alone(tmp_path: Path) -> None:
    def download(repo_id: str, **kwargs):
        raise AssertionError("no download expected")

    plan = ModelPlan("configured", "/models/x")
    assert fetch_planned_model(plan, home=tmp_path, download=download) is plan
