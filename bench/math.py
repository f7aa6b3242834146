"""`slm-playground bench math`: the math preset's example problems through one or more backends.

Backends are registry labels (`onnx` is the in-process default model; endpoints come from
VLLM_BASE_URL / OLLAMA_HOST / OPENAI_BASE_URL). Without --problems, the problems are the math
preset's examples that carry a reference answer.
"""

from __future__ import annotations

import argparse

from mathcheck import bench as math_bench


def add_arguments(parser: argparse.ArgumentParser) -> None:
    math_bench.add_arguments(parser)
    parser.add_argument("--preset", default="math", help="preset whose examples are the problems")


def run(args: argparse.Namespace) -> int:
    from app.cli import settings_from_args
    from presets import load_catalog
    from runtime.kinds import default_in_process
    from runtime.registry import BackendRegistry

    settings = settings_from_args(args)
    registry = BackendRegistry(settings, defaults=True)  # the in-process kinds, built from the table
    labels = args.backend or [default_in_process()]
    try:
        backends = [registry.get(label) for label in labels]
    except KeyError as exc:
        print(f"bench math: {exc.args[0]}")
        return 2
    preset = load_catalog(settings.presets_dir).get(args.preset)
    problems = [(e.prompt, e.reference) for e in preset.examples if e.reference]
    return math_bench.run(args, backends, problems)
