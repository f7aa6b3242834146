import json
from pathlib import Path

import pytest

from backends.errors import BackendUnavailable
from models.model_store import (
    ModelFolderError,
    check_model_dir,
    default_model_dir,
    is_hub_spec,
    list_model_dirs,
    resolve_model_dir,
)


def make_folder(root: Path, *, config: object = None, onnx: bool = True, tokenizer: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if config is None:
        config = {
            "model": {
                "type": "llama",
                "context_length": 2048,
                "eos_token_id": 2,
                "decoder": {"filename": "model.onnx"},
            }
        }
    if config is not False:
        (root / "genai_config.json").write_text(json.dumps(config) if not isinstance(config, str) else config)
    if onnx:
        (root / "model.onnx").write_bytes(b"\0")
    if tokenizer:
        (root / "tokenizer.json").write_text("{}")
    return root


def test_a_complete_folder_checks_out(tmp_path: Path) -> None:
    folder = check_model_dir(make_folder(tmp_path / "m"))
    assert folder.context_length == 2048 and folder.eos_token_ids == (2,) and folder.model_type == "llama"


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"config": False}, "genai_config.json is missing"),
        ({"config": "{not json"}, "malformed"),
        ({"config": {"model": {}}}, "malformed"),
        ({"onnx": False}, "model.onnx named in genai_config.json is missing"),
        ({"tokenizer": False}, "no tokenizer"),
    ],
)
def test_a_folder_that_is_not_a_model_says_what_is_missing(tmp_path: Path, kwargs: dict, names: str) -> None:
    with pytest.raises(ModelFolderError, match=names) as info:
        check_model_dir(make_folder(tmp_path / "m", **kwargs))
    assert isinstance(info.value, BackendUnavailable)


def test_missing_default_model_says_how_to_prepare_it(tmp_path: Path) -> None:
    with pytest.raises(ModelFolderError, match="does not exist") as info:
        resolve_model_dir("", home=tmp_path)
    assert "slm-playground model prepare" in info.value.hint


def test_local_folder_beats_hub_interpretation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    make_folder(tmp_path / "org" / "repo")
    assert not is_hub_spec("org/repo")  # exists locally
    assert resolve_model_dir("org/repo") == Path("org/repo")
    assert is_hub_spec("microsoft/Phi-4-mini-instruct-onnx:cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4")
    assert not is_hub_spec("./relative") and not is_hub_spec("/abs/path/x")


def test_hub_spec_downloads_only_the_subfolder(tmp_path: Path) -> None:
    calls = []

    def fake_download(**kwargs: object) -> str:  # stands in for huggingface_hub.snapshot_download
        calls.append(kwargs)
        make_folder(tmp_path / "snap" / "cpu" / "int4")
        return str(tmp_path / "snap")

    path = resolve_model_dir("org/model-onnx:cpu/int4", home=tmp_path, download=fake_download)
    assert path == tmp_path / "snap" / "cpu" / "int4"
    assert calls[0]["repo_id"] == "org/model-onnx" and calls[0]["allow_patterns"] == ["cpu/int4/*"]


def test_hub_failure_is_an_actionable_unavailable_error(tmp_path: Path) -> None:
    def offline(**_: object) -> str:
        raise OSError("network is unreachable")

    with pytest.raises(BackendUnavailable, match="could not fetch org/model") as info:
        resolve_model_dir("org/model", home=tmp_path, download=offline)
    assert "--model" in info.value.hint


def test_list_skips_unfinished_and_hidden_folders(tmp_path: Path) -> None:
    make_folder(default_model_dir(tmp_path))
    make_folder(tmp_path / ".smollm2.tmp123")
    (tmp_path / "half-built").mkdir()
    assert [f.name for f in list_model_dirs(tmp_path)] == [default_model_dir(tmp_path).name]
