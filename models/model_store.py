"""Where ONNX Runtime GenAI model folders live, and how a model spec becomes a checked folder.

A spec is one of:
  ""                         the embedded default (SmolLM2-135M-Instruct, prepared locally)
  /path/to/folder            any onnxruntime-genai folder (e.g. Phi-4-mini-instruct's cpu-int4 export)
  org/repo[:subfolder]       a Hugging Face repo, fetched with huggingface_hub when the network allows
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from backends.errors import BackendUnavailable

DEFAULT_MODEL = "smollm2-135m-instruct"
DEFAULT_PRECISION = "q4_1"
"""Chosen by measurement (README: "Choosing the default precision"); see models/convert.py.
It runs native kernels; where they cannot be built or run, the default is FALLBACK_PRECISION."""
FALLBACK_PRECISION = "int8"

_BACKEND = "onnx"


class ModelFolderError(BackendUnavailable):
    """Raised when a folder is not a usable onnxruntime-genai model; says what is missing."""

    def __init__(self, folder: Path, problem: str, *, hint: str = "", prefix: str = "") -> None:
        self.folder = folder
        prefix = prefix or "is not an ONNX Runtime GenAI model folder"
        super().__init__(_BACKEND, f"{folder} {prefix}: {problem}", hint=hint)


class OutdatedModelFolder(ModelFolderError):
    """A complete folder that an older version of this code built: its GGUF block layout is
    not the one the current ops expect, so it must be rebuilt rather than loaded."""


def model_home(home: Path | None = None) -> Path:
    """The folder prepared models are kept in: ``home`` (runtime.settings reads SLM_HOME into
    Settings.model_home), else the platform's per-user cache."""
    if home is not None:
        return Path(home).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.environ.get("LOCALAPPDATA") or "~/.cache"
    return Path(cache).expanduser() / "slm-playground" / "models"


def default_model_dir(home: Path | None = None, precision: str | None = None) -> Path:
    return model_home(home) / f"{DEFAULT_MODEL}-{precision or default_precision(home)}"


def default_precision(home: Path | None = None) -> str:
    """The default model's precision here: the one already prepared that runs on this machine
    (q4_1 before int8), else the one `model prepare` would build."""
    from models import native_ops

    def prepared(precision: str) -> bool:
        return (default_model_dir(home, precision) / "genai_config.json").is_file()

    if native_ops.cpu_problem() is None and prepared(DEFAULT_PRECISION):
        return DEFAULT_PRECISION
    if prepared(FALLBACK_PRECISION):
        return FALLBACK_PRECISION
    return precision_to_build()[0]


def precision_to_build() -> tuple[str, str | None]:
    """What `model prepare` builds here, and why it is not DEFAULT_PRECISION (None when it is)."""
    from models.native_ops import missing_requirement

    problem = missing_requirement()
    return (FALLBACK_PRECISION, problem) if problem else (DEFAULT_PRECISION, None)


@dataclass(frozen=True)
class ModelFolder:
    path: Path
    model_type: str
    context_length: int
    onnx_file: str
    eos_token_ids: tuple[int, ...]

    @property
    def name(self) -> str:
        return self.path.name


def check_model_dir(folder: Path) -> ModelFolder:
    """Validate a model folder without loading it; the error names the missing piece."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ModelFolderError(folder, "the folder does not exist", hint=_prepare_hint(folder))
    config_path = folder / "genai_config.json"
    if not config_path.is_file():
        present = ", ".join(sorted(p.name for p in folder.iterdir())[:8]) or "nothing"
        raise ModelFolderError(
            folder,
            f"genai_config.json is missing (found: {present})",
            hint="convert a Hugging Face model with `slm-playground convert SOURCE --out DIR`",
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        model = config["model"]
        decoder = model["decoder"]
        onnx_file = decoder["filename"]
        context_length = int(model["context_length"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelFolderError(folder, f"genai_config.json is malformed ({exc!r})") from exc
    if not (folder / onnx_file).is_file():
        raise ModelFolderError(folder, f"the decoder file {onnx_file} named in genai_config.json is missing")
    if not any((folder / name).is_file() for name in ("tokenizer.json", "tokenizer.model")):
        raise ModelFolderError(folder, "no tokenizer (tokenizer.json or tokenizer.model)")
    _check_native_ops(folder, decoder.get("session_options") or {})
    eos = model.get("eos_token_id", [])
    return ModelFolder(
        path=folder,
        model_type=str(model.get("type", "?")),
        context_length=context_length,
        onnx_file=onnx_file,
        eos_token_ids=tuple(eos if isinstance(eos, list) else [eos]),
    )


def _check_native_ops(folder: Path, session_options: dict[str, object]) -> None:
    """A folder whose graph needs a native ops library (precision q4_1) must have it, and a CPU
    it runs on: onnxruntime would otherwise fail on an unknown op, or crash on an instruction."""
    library = session_options.get("custom_ops_library")
    if not library:
        return
    from models import native_ops

    if not (folder / str(library)).is_file():
        raise ModelFolderError(
            folder,
            f"the native ops library {library} named in genai_config.json is missing",
            hint="rebuild the folder (`slm-playground model prepare --force` for the default model)",
        )
    if library == native_ops.LIBRARY_NAME:
        layout = _layout_version(folder / native_ops.LAYOUT_FILE)
        if layout != native_ops.LAYOUT_VERSION:
            raise OutdatedModelFolder(
                folder,
                f"its GGUF block layout is {layout}, this version reads {native_ops.LAYOUT_VERSION}",
                prefix="was built by an older version of slm-playground",
                hint=_rebuild_hint(folder),
            )
        native_ops.refresh_library(folder)
    if problem := native_ops.cpu_problem():
        raise ModelFolderError(
            folder,
            f"its ops library does not run on this machine: {problem}",
            hint=f"prepare the {FALLBACK_PRECISION} model instead: "
            f"`slm-playground model prepare --precision {FALLBACK_PRECISION}`",
        )


def _layout_version(marker: Path) -> int:
    """The block layout a q4_1 folder was written with; 1 for folders from before it was recorded."""
    try:
        return int(json.loads(marker.read_text(encoding="utf-8"))["layout_version"])
    except FileNotFoundError:
        return 1
    except (ValueError, KeyError, TypeError):
        return 0


def _rebuild_hint(folder: Path) -> str:
    if folder.name.startswith(DEFAULT_MODEL):
        return "rebuild with `slm-playground model prepare --force`"
    return "rebuild with `slm-playground convert GGUF --out FOLDER --precision q4_1 --force`"


def _prepare_hint(folder: Path) -> str:
    if folder.name.startswith(DEFAULT_MODEL):
        return "prepare the embedded default model with `slm-playground model prepare`"
    return "check the path, or convert a model with `slm-playground convert`"


def is_hub_spec(spec: str) -> bool:
    """'org/repo' or 'org/repo:sub/folder' that is not an existing local path."""
    repo = spec.split(":", 1)[0]
    return (
        repo.count("/") == 1
        and not spec.startswith((".", "/", "~"))
        and not Path(spec).expanduser().exists()
        and all(part and " " not in part for part in repo.split("/"))
    )


Downloader = Callable[..., str]


def resolve_model_dir(
    spec: str = "", *, home: Path | None = None, download: Downloader | None = None
) -> Path:
    """Turn a model spec into a checked local folder (downloading a hub repo when needed)."""
    spec = spec.strip()
    if not spec:
        return check_model_dir(default_model_dir(home)).path
    if is_hub_spec(spec):
        repo_id, _, subfolder = spec.partition(":")
        subfolder = subfolder.strip("/")
        if download is None:
            from huggingface_hub import snapshot_download

            download = snapshot_download
        try:
            root = download(
                repo_id=repo_id,
                allow_patterns=[f"{subfolder}/*"] if subfolder else None,
                cache_dir=str(model_home(home) / "hub"),
            )
        except Exception as exc:
            raise BackendUnavailable(
                _BACKEND,
                f"could not fetch {repo_id} from the Hugging Face Hub ({type(exc).__name__}: {exc})",
                hint="check the network, or download the folder yourself and pass its path with --model",
            ) from exc
        return check_model_dir(Path(root) / subfolder if subfolder else Path(root)).path
    return check_model_dir(Path(spec)).path


def list_model_dirs(home: Path | None = None) -> list[ModelFolder]:
    """Prepared model folders under the model home (unfinished temporary folders skipped)."""
    root = model_home(home)
    found = []
    if root.is_dir():
        for child in sorted(root.iterdir()):
            if child.name.startswith(".") or not child.is_dir():
                continue
            try:
                found.append(check_model_dir(child))
            except ModelFolderError:
                continue
    return found
