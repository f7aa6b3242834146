"""`slm-playground engine`: an in-process model behind an OpenAI-compatible API.

    slm-playground engine --port 8000                      # the embedded default model
    slm-playground engine --model /models/phi4-cpu-int4 --served-model-name phi-4-mini
    slm-playground engine --lane llamacpp:/models/smollm2.gguf  # any in-process kind (runtime.kinds)

Settings shared with the app (model, home, threads, limits) are declared once in
runtime.settings: the same environment variables (SLM_MODEL, SLM_HOME, SLM_ONNX_THREADS,
SLM_MAX_PROMPT_CHARS, SLM_MAX_NEW_TOKENS, SLM_QUEUE_SIZE, ...) and flags.
Heavy imports (onnxruntime-genai, uvicorn) happen in run() so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from typing import Any

from runtime.kinds import Target, available_kinds, default_in_process, kind, queue_of
from runtime.settings import Settings, add_flags, load_settings

log = logging.getLogger("slm_playground.serve")
# `docker stop` waits 10 s before it kills: streams still running when SIGTERM comes get 3 s
GRACEFUL_SHUTDOWN_S = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flags(parser, "engine")  # model, home, threads, concurrency, limits: declared in runtime.settings
    parser.add_argument("--host", default="127.0.0.1", help="use 0.0.0.0 inside a container")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--served-model-name", default=None, help="the model id clients send (default: the folder's name)"
    )
    parser.add_argument("--default-max-tokens", type=int, default=512)
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument(
        "--lane",
        default="",
        metavar="KIND[:PATH]",
        help="the in-process kind and model to serve, e.g. llamacpp:FILE.gguf "
        f"(kinds: {', '.join(available_kinds(in_process=True))}; default: {default_in_process()} "
        "with --model)",
    )


@dataclass
class Engine:
    """What `engine` serves: the backend, the model id clients send, the ASGI app."""

    backend: Any
    model_id: str
    app: Any


class LaneError(ValueError):
    """A --lane that names no in-process kind."""


def build_engine(args: argparse.Namespace, settings: Settings) -> Engine:
    """The backend ``--lane`` names (BackendError when its model is unusable) behind the server."""
    from serve.protocol import RequestLimits
    from serve.server import create_app

    name, _, path = (args.lane or default_in_process()).partition(":")
    try:
        spec = kind(name)
    except ValueError as exc:
        raise LaneError(str(exc)) from None
    if not spec.in_process or not spec.available:
        raise LaneError(
            f"{name} is not an in-process kind here; serve one of {available_kinds(in_process=True)}"
        )
    backend = spec.build(name, Target(path=path), settings)
    model_id = args.served_model_name or backend.default_model()
    backend.name = f"{name} · {model_id}"
    queue = queue_of(backend)
    limits = RequestLimits(
        max_prompt_chars=settings.max_prompt_chars,
        max_tokens_cap=settings.max_new_tokens_cap,
        default_max_tokens=args.default_max_tokens,
    )
    app = create_app(
        backend,
        model_id=model_id,
        # the backend's scheduler batches and queues (fairly across clients); the server only
        # turns away what neither the batch nor the queue can take (429)
        max_concurrency=(queue.capacity() if queue is not None else 1) + settings.queue_size,
        max_queue=0,
        limits=limits,
        close_backend=True,
    )
    return Engine(backend, model_id, app)


def run(args: argparse.Namespace) -> int:
    from runtime.shutdown import Terminated, stop_on_sigterm

    stop_on_sigterm()  # `docker stop` while the model loads exits 0 too (uvicorn handles it later)
    try:
        return _serve(args)
    except Terminated:
        return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from backends.errors import BackendError
    from serve.safety import install_redaction

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    install_redaction()
    settings = load_settings(args=args)
    try:
        engine = build_engine(args, settings)
    except LaneError as exc:
        print(f"error: --lane: {exc}")
        return 2
    except BackendError as exc:
        print(f"error: {exc.message}" + (f"\n  hint: {exc.hint}" if exc.hint else ""))
        return 2
    log.info(
        "serving %s as %r on http://%s:%d/v1", engine.backend.name, engine.model_id, args.host, args.port
    )
    uvicorn.run(
        engine.app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m serve.cli`` works without the app's CLI (the container's engine service uses it)."""
    parser = argparse.ArgumentParser(prog="slm-playground engine", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
