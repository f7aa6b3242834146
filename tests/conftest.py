"""Shared fixtures: the real default model, and free loopback ports."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from models.model_store import ModelFolderError, resolve_model_dir

pytest_plugins = ["tests.support.browser"]  # the shared chromium of the browser tests


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    """The prepared embedded default model. Missing is a failure, not a skip: CI prepares it
    (scripts/dev.sh test), and a silently skipped model test proves nothing."""
    try:
        return resolve_model_dir(
            "", home=Path(os.environ["SLM_HOME"]) if os.environ.get("SLM_HOME") else None
        )
    except ModelFolderError as exc:
        pytest.fail(f"{exc} -- run `slm-playground model prepare` first")


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
