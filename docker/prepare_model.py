#!/usr/bin/env python3
"""Build the embedded default model into a model home for the image, keeping only what runs.

Usage (the builder stage, with the convert dependencies and only models/ and backends/ on the path):
    python docker/prepare_model.py /models

Runs the same preparation as `slm-playground model prepare --home HOME`, then removes the
dequantized float32 copy (HOME/.hf-cache, about 517 MB) that preparation keeps so that other
precisions can be built later without dequantizing again: the image has no converter to use it.
Importing models/ alone (not the app) lets the model layer survive changes to the rest of the
source.
"""

import shutil
import sys
from pathlib import Path

from models.convert import ConversionError, prepare_default

HF_CACHE = ".hf-cache"


def main(home: Path) -> int:
    try:
        folder = prepare_default(home, progress=print)
    except ConversionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    shutil.rmtree(home / HF_CACHE, ignore_errors=True)
    print(f"prepared {folder}; kept: {', '.join(sorted(p.name for p in home.iterdir()))}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: prepare_model.py MODEL_HOME")
    raise SystemExit(main(Path(sys.argv[1])))
