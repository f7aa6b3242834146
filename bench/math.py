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
    from engines.onnx_engine import OnnxBackend
    from models.model_store import resolve_model_dir
    from presets import load_catalog
    from runtime.registry import IN_PROCESS, BackendRegistry

    settings = settings_from_args(args)
    registry = BackendRegistry(
        settings,
        in_process=lambda: OnnxBackend(
            IN_PROCESS, resolve_model_dir(settings.model, home=settings.model_home)
        ),
    )
    labels = args.backend or [IN_PROCESS]
    try:
        backends = [registry.get(label) for label in labels]
    except KeyError as exc:
        print(f"bench math: {exc.args[0]}")
        return 2
    preset = load_catalog(settings.presets_dir).get(args.preset)
    problems = [(e.prompt, e.reference) for e in preset.examples if e.reference]
    return math_bench.run(args, backends, problems)
