"""docker/prepare_model.py: the image keeps the model folder and drops the dequantized float copy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.model
def test_the_float_copy_is_removed_and_the_model_kept(tmp_path: Path, default_model_dir: Path) -> None:
    home = tmp_path / "models"
    home.mkdir()
    (home / default_model_dir.name).symlink_to(default_model_dir, target_is_directory=True)
    float_copy = home / ".hf-cache" / "SmolLM2-135M-Instruct.Q4_1"
    float_copy.mkdir(parents=True)
    (float_copy / "model.safetensors").write_bytes(b"\0" * 1024)
    result = subprocess.run(
        [sys.executable, "docker/prepare_model.py", str(home)],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the default model is ready" in result.stdout  # not rebuilt
    assert sorted(p.name for p in home.iterdir()) == [default_model_dir.name]
    assert (home / default_model_dir.name / "genai_config.json").is_file()
