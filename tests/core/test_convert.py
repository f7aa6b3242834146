"""`slm-playground convert` on the default model's GGUF, for real (about a minute and a half)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import main
from models.convert import ConversionError, convert
from models.model_store import check_model_dir


@pytest.mark.slow
def test_convert_the_gguf_into_a_model_that_loads_and_generates(tmp_path: Path, capsys) -> None:
    from models.convert import find_default_gguf

    out = tmp_path / "smollm2-int4"
    assert main(["convert", str(find_default_gguf()), "--out", str(out), "--precision", "int4"]) == 0
    folder = check_model_dir(out)
    assert folder.context_length == 8192
    printed = capsys.readouterr().out
    assert "generated:" in printed and f"ready: {out}" in printed
    # idempotent: a second run finds the folder and does nothing
    assert main(["convert", str(find_default_gguf()), "--out", str(out), "--precision", "int4"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    # only the model folder and the reusable dequantized copy remain: no half-built folders
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hf-cache", "smollm2-int4"]


def test_a_failed_conversion_leaves_nothing_that_looks_ready(tmp_path: Path) -> None:
    source = tmp_path / "not-a-model"
    source.mkdir()
    (source / "config.json").write_text('{"architectures": ["NoSuchModelForCausalLM"]}')
    out = tmp_path / "models" / "broken"
    with pytest.raises(ConversionError):
        convert(source, out, "int4")
    assert not out.exists()
    assert list((tmp_path / "models").iterdir()) == []


def test_a_folder_without_config_is_refused_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConversionError, match=r"no config\.json"):
        convert(tmp_path / "empty", tmp_path / "out", "int4")
