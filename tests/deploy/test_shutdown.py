"""`docker stop` sends SIGTERM: the app and the engine server, run as real processes, exit 0 soon
after it, having answered before (runtime/shutdown.py)."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 180  # a busy 2-core machine imports gradio slowly
# `docker stop` kills after 10 s: the whole stop, process exit included, must fit well inside
STOP_TIMEOUT_S = 8


class Server:
    """A CLI server as a subprocess; its output lines are collected by a thread, so waiting for a
    line is waiting on an event with a deadline."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip())
        self.lines.put(None)

    def wait_for(self, text: str, timeout: float = STARTUP_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                pytest.fail(f"exited ({self.proc.wait()}) before {text!r}:\n" + "\n".join(self.seen[-30:]))
            self.seen.append(line)
            if text in line:
                return
        pytest.fail(f"no {text!r} within {timeout} s:\n" + "\n".join(self.seen[-30:]))

    def stop(self) -> tuple[int, float]:
        """SIGTERM, then the exit status and the seconds it took to exit."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"still running {STOP_TIMEOUT_S} s after SIGTERM:\n" + "\n".join(self.seen[-30:]))
        return status, time.monotonic() - started


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def wait_until_ready(url: str, timeout: float = STARTUP_TIMEOUT_S) -> None:
    """Poll a readiness endpoint (503 while the model loads) as a load balancer would."""
    deadline = time.monotonic() + timeout
    while (status := get(url)) != 200:
        assert status == 503, f"{url} answered {status}"
        assert time.monotonic() < deadline, f"{url} not ready within {timeout} s"
        time.sleep(0.2)


@pytest.mark.slow
def test_the_app_exits_0_soon_after_sigterm(servers: list[Server], free_port: int, tmp_path: Path) -> None:
    app = Server(["-m", "app", "ui", "--port", str(free_port)], {"SLM_HOME": str(tmp_path)})
    servers.append(app)
    app.wait_for("SLM Playground on http://")
    assert get(f"http://127.0.0.1:{free_port}/") == 200
    status, seconds = app.stop()
    assert status == 0, "\n".join(app.seen[-30:])
    print(f"app: exit {status} {seconds:.2f} s after SIGTERM")


@pytest.mark.slow
@pytest.mark.model
def test_the_engine_server_exits_0_soon_after_sigterm(
    servers: list[Server], free_port: int, default_model_dir: Path
) -> None:
    engine = Server(["-m", "serve.cli", "--port", str(free_port), "--model", str(default_model_dir)], {})
    servers.append(engine)
    engine.wait_for("Uvicorn running on")  # the socket is bound
    wait_until_ready(f"http://127.0.0.1:{free_port}/health")
    status, seconds = engine.stop()
    assert status == 0, "\n".join(engine.seen[-30:])
    print(f"engine: exit {status} {seconds:.2f} s after SIGTERM")


def test_without_the_handler_sigterm_kills_python() -> None:
    """The reason for runtime/shutdown.py: plain Python dies of SIGTERM (no cleanup, not exit 0)."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; print('up', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "up"
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=STOP_TIMEOUT_S) == -signal.SIGTERM
