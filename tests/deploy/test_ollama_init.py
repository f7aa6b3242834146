"""docker/ollama-init.sh against a stand-in Ollama that speaks the documented /api/pull and /api/create."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from serve.threaded import ServerThread

SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "ollama-init.sh"


def stand_in(create_error: str | None = None) -> tuple[Starlette, list[tuple[str, dict]]]:
    seen: list[tuple[str, dict]] = []

    async def version(request: Request) -> JSONResponse:
        return JSONResponse({"version": "0.12.6"})

    async def pull(request: Request) -> JSONResponse:
        seen.append(("pull", await request.json()))
        return JSONResponse({"status": "success"})

    async def create(request: Request) -> JSONResponse:
        body = await request.json()
        seen.append(("create", body))
        if create_error:
            return JSONResponse({"error": create_error}, status_code=400)
        return JSONResponse({"status": "success"})

    routes = [
        Route("/api/version", version),
        Route("/api/pull", pull, methods=["POST"]),
        Route("/api/create", create, methods=["POST"]),
    ]
    return Starlette(routes=routes), seen


def run_script(base_url: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("curl") is None:
        pytest.skip("curl is needed to run the init script (the curlimages/curl container has it)")
    return subprocess.run(
        ["sh", str(SCRIPT)],
        env={"PATH": "/usr/bin:/bin", "OLLAMA_HOST": base_url},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_pulls_phi4_mini_and_creates_the_two_presets() -> None:
    app, seen = stand_in()
    with ServerThread(app) as server:
        result = run_script(server.base_url)
    assert result.returncode == 0, result.stderr
    assert seen[0] == ("pull", {"model": "phi4-mini", "stream": False})
    created = {body["model"]: body for kind, body in seen[1:] if kind == "create"}
    assert set(created) == {"phi4-mini-reasoning", "phi4-mini-coder"}
    for body in created.values():
        assert body["from"] == "phi4-mini"
        assert body["stream"] is False
        assert len(body["system"]) > 40
        assert set(body["parameters"]) == {"temperature", "top_p"}
    assert created["phi4-mini-reasoning"]["parameters"]["temperature"] == 0.3
    assert "ready: phi4-mini, phi4-mini-reasoning, phi4-mini-coder" in result.stdout


def test_a_refused_create_fails_the_job_with_the_message() -> None:
    app, seen = stand_in(create_error="model 'phi4-mini' not found")
    with ServerThread(app) as server:
        result = run_script(server.base_url)
    assert result.returncode != 0
    assert "model 'phi4-mini' not found" in result.stderr
    assert [kind for kind, _ in seen] == ["pull", "create"]  # stopped at the first failure


def test_script_is_valid_posix_sh() -> None:
    result = subprocess.run(
        ["sh", "-n", str(SCRIPT)], capture_output=True, text=True, check=False, timeout=10
    )
    assert result.returncode == 0, result.stderr
