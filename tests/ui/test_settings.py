"""Settings precedence: CLI flag > environment variable > default."""

from __future__ import annotations

import argparse

import pytest

from app.cli import _add_ui_arguments, settings_from_args
from runtime.settings import settings_from_env


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    _add_ui_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults_when_nothing_is_set() -> None:
    settings = settings_from_env({})
    assert (settings.host, settings.port, settings.onnx_threads, settings.endpoints) == (
        "127.0.0.1",
        7860,
        0,
        (),
    )


def test_environment_then_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLM_ONNX_THREADS", "1")
    monkeypatch.setenv("SLM_UI_REFRESH_S", "0")
    monkeypatch.setenv("SLM_PORT", "9000")
    monkeypatch.setenv("OLLAMA_HOST", "localhost:11434")
    from_env = settings_from_args(_args())
    assert (from_env.onnx_threads, from_env.port, from_env.ui_refresh_s) == (1, 9000, 0.0)
    assert [(e.kind, e.url) for e in from_env.endpoints] == [("ollama", "http://localhost:11434")]
    flagged = settings_from_args(_args("--threads", "2", "--port", "7000"))
    assert (flagged.onnx_threads, flagged.port) == (2, 7000)
