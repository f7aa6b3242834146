"""`slm-playground engine`: the in-process ONNX model behind an OpenAI-compatible API.

    slm-playground engine --port 8000                      # the embedded default model
    slm-playground engine --model /models/phi4-cpu-int4 --served-model-name phi-4-mini

Defaults come from the same environment variables as the app (SLM_MODEL, SLM_HOME,
SLM_MAX_PROMPT_CHARS, SLM_MAX_NEW_TOKENS, SLM_QUEUE_SIZE); flags override them.
Heavy imports (onnxruntime-genai, uvicorn) happen in run() so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger("slm_playground.serve")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=None,
        help="ONNX Runtime GenAI folder or Hugging Face 'org/repo:subfolder' (default: $SLM_MODEL, "
        "else the embedded default model)",
    )
    parser.add_argument("--home", type=Path, default=None, help="model folder home (default: $SLM_HOME)")
    parser.add_argument("--host", default="127.0.0.1", help="use 0.0.0.0 inside a container")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--served-model-name", default=None, help="the model id clients send (default: the folder's name)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=0,
        help="sequences decoded together in one batch (default: chosen from the model and memory)",
    )
    parser.add_argument(
        "--no-batching", action="store_true", help="one request at a time on onnxruntime-genai's Generator"
    )
    parser.add_argument("--max-queue", type=int, default=None, help="requests waiting beyond that get 429")
    parser.add_argument("--max-prompt-chars", type=int, default=None)
    parser.add_argument(
        "--max-tokens-cap", type=int, default=None, help="largest max_tokens a client may ask"
    )
    parser.add_argument("--default-max-tokens", type=int, default=512)
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from app.settings import settings_from_env
    from backends.errors import BackendError
    from backends.model_store import resolve_model_dir
    from backends.onnx_engine import OnnxBackend
    from serve.protocol import Limits
    from serve.safety import install_redaction
    from serve.server import create_app

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    install_redaction()
    settings = settings_from_env()
    spec = args.model if args.model is not None else settings.model
    try:
        model_dir = resolve_model_dir(spec, home=args.home or settings.model_home)
    except BackendError as exc:
        print(f"error: {exc.message}" + (f"\n  hint: {exc.hint}" if exc.hint else ""))
        return 2
    model_id = args.served_model_name or model_dir.name
    queue = args.max_queue if args.max_queue is not None else settings.queue_size
    backend = OnnxBackend(
        f"onnx · {model_id}",
        model_dir,
        concurrency=args.concurrency,
        max_queue=queue,
        batching=not args.no_batching,
    )
    limits = Limits(
        max_prompt_chars=args.max_prompt_chars or settings.max_prompt_chars,
        max_tokens_cap=args.max_tokens_cap or settings.max_new_tokens_cap,
        default_max_tokens=args.default_max_tokens,
    )
    app = create_app(
        backend,
        model_id=model_id,
        # the backend's scheduler batches and queues (fairly across clients); the server only
        # turns away what neither the batch nor the queue can take (429)
        max_concurrency=backend.capacity() + queue,
        max_queue=0,
        limits=limits,
        close_backend=True,
    )
    log.info("serving %s as %r on http://%s:%d/v1", model_dir, model_id, args.host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m serve.cli`` works without the app's CLI (the container's engine service uses it)."""
    parser = argparse.ArgumentParser(prog="slm-playground engine", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
