"""`slm-playground`: one console script; `ui` is the default subcommand.

Subcommands owned by other packages are registered by module path; each such module has
`add_arguments(parser)` and `run(args) -> int` and keeps heavy imports inside `run`, so
`slm-playground --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from runtime.settings import Settings, add_flags, load_settings

EXTERNAL_COMMANDS = {
    # name: (module, help)
    "engine": ("serve.cli", "serve the in-process model over an OpenAI-compatible HTTP API"),
    "verify": ("mathcheck.cli", "check math answers in JSON lines (prompt, gold, response)"),
    "compare": ("compare.cli", "run one prompt on several backends side by side and print the run card"),
    "eval": ("evals.cli", "run a prompt set on 1-4 backends: verified accuracy and speed per backend"),
}
BENCH_COMMANDS = {
    "engine": ("bench.engine", "in-process engine vs llama.cpp: TTFT, decode tok/s, RSS, multi-turn"),
    "precision": ("bench.precision", "quality and speed of each ONNX precision vs fp32 and llama.cpp"),
    "app": ("bench.app", "the running app through gradio_client vs the raw backend; load; cold start"),
    "browser": ("bench.browser", "decode tok/s while headless chromium shows the stream, per turn"),
    "math": ("bench.math", "math preset problems through backends, verified with sympy"),
    "verify": ("bench.verify", "mathcheck beside Math-Verify alone on any labelled set (--set FILE)"),
    "compare": ("compare.bench", "wall time of 2- and 3-lane comparisons vs the slowest lane alone"),
    "engine-server": ("serve.bench", "concurrent clients against the engine server"),
    "concurrency": (
        "bench.concurrency",
        "1-8 streams at once: engine server, app API, llama.cpp; tok/s, TTFT",
    ),
}


def _add_ui_arguments(parser: argparse.ArgumentParser) -> None:
    add_flags(parser, "ui")


def settings_from_args(args: argparse.Namespace) -> Settings:
    return load_settings(args=args)


def _run_ui(args: argparse.Namespace) -> int:
    from app.server import run_ui
    from runtime.shutdown import Terminated, stop_on_sigterm

    stop_on_sigterm()  # `docker stop` ends the app like Ctrl-C, with exit 0
    try:
        return run_ui(settings_from_args(args))
    except Terminated:  # stopped while starting up
        return 0


def _run_model(args: argparse.Namespace) -> int:
    from models import model_store

    settings = settings_from_args(args)
    if args.model_command == "prepare":
        from models.convert import ConversionError, prepare_default

        try:
            path = prepare_default(settings.model_home, args.precision, progress=print, force=args.force)
        except ConversionError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(path)
        return 0
    if args.model_command == "list":
        folders = model_store.list_model_dirs(settings.model_home)
        print(f"models in {model_store.model_home(settings.model_home)}:")
        for folder in folders:
            print(f"  {folder.name:40} {folder.model_type:10} context {folder.context_length}")
        if not folders:
            print("  (none yet: run `slm-playground model prepare`)")
        return 0
    # path: where the app would load its model from; prints even before it is prepared
    if settings.model and not model_store.is_hub_spec(settings.model):
        print(Path(settings.model).expanduser().resolve())
    elif settings.model:
        print(model_store.resolve_model_dir(settings.model, home=settings.model_home))
    else:
        print(model_store.default_model_dir(settings.model_home))
    return 0


def _run_convert(args: argparse.Namespace) -> int:
    from models.convert import ConversionError, convert

    try:
        convert(args.source, args.out, args.precision, progress=print, force=args.force)
    except ConversionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    from models.convert import PRECISIONS
    from models.model_store import DEFAULT_PRECISION, FALLBACK_PRECISION

    parser = argparse.ArgumentParser(prog="slm-playground", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    ui = commands.add_parser("ui", help="start the web app (the default)")
    _add_ui_arguments(ui)
    ui.set_defaults(handler=_run_ui)

    model = commands.add_parser("model", help="prepare, list or locate ONNX models")
    model_commands = model.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    prepare = model_commands.add_parser("prepare", help="build the embedded default model (offline)")
    prepare.add_argument(
        "--precision",
        choices=sorted(PRECISIONS),
        help=f"default: {DEFAULT_PRECISION} where its native kernels build and run, "
        f"else {FALLBACK_PRECISION}",
    )
    prepare.add_argument("--force", action="store_true", help="rebuild even if it is ready")
    model_commands.add_parser("list", help="list prepared model folders")
    path = model_commands.add_parser("path", help="print the folder of the model the app would load")
    path.add_argument("--model", help="model spec (default: the embedded default)")
    for sub in model_commands.choices.values():
        sub.add_argument("--home", dest="model_home", type=Path, help="model folder home (SLM_HOME)")
    model.set_defaults(handler=_run_model)

    convert = commands.add_parser("convert", help="convert a GGUF, HF folder or hub id to ONNX")
    convert.add_argument(
        "source", help="GGUF file, local Hugging Face folder, or hub id (e.g. microsoft/Phi-4-mini-instruct)"
    )
    convert.add_argument("--out", type=Path, required=True, help="output model folder")
    convert.add_argument("--precision", default="int4", choices=sorted(PRECISIONS))
    convert.add_argument("--force", action="store_true")
    convert.set_defaults(handler=_run_convert)

    for name, (module_name, help_text) in EXTERNAL_COMMANDS.items():
        _register(commands, name, module_name, help_text)
    bench = commands.add_parser("bench", help="benchmarks that print tables")
    bench_commands = bench.add_subparsers(dest="bench_command", required=True, metavar="WHAT")
    for name, (module_name, help_text) in BENCH_COMMANDS.items():
        _register(bench_commands, name, module_name, help_text)
    return parser


def _register(commands: argparse._SubParsersAction, name: str, module_name: str, help_text: str) -> None:
    sub = commands.add_parser(name, help=help_text)
    module = importlib.import_module(module_name)  # our own module: an ImportError is a bug to see
    module.add_arguments(sub)
    sub.set_defaults(handler=module.run)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv.insert(0, "ui")
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
