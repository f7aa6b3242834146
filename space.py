"""Hugging Face Spaces entry point (`app_file` in the README front matter).

On a Space (SPACE_ID set) the app serves Phi-4-mini-instruct's official ONNX CPU int4 folder,
downloaded once with huggingface_hub; if that fails it falls back to the small embedded
default. Public mode is on: no user-entered backend URLs, capped prompt and answer sizes.
"""

from __future__ import annotations

import os

from app.server import run_ui
from models.model_store import model_home
from runtime.settings import settings_from_env
from serve.safety import install_redaction
from serve.spaces import fetch_planned_model, plan_model


def main() -> int:
    install_redaction()
    settings = settings_from_env()
    plan = fetch_planned_model(
        plan_model(os.environ),
        home=model_home(settings.model_home),
        progress=lambda text, _fraction: print(text, flush=True),
    )
    print(f"model: {plan.spec or 'embedded default'} ({plan.reason})", flush=True)
    return run_ui(settings.with_overrides(model=plan.spec))


if __name__ == "__main__":
    raise SystemExit(main())
