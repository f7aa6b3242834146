"""compose.yaml: compose-spec schema (check-jsonschema) plus the wiring the app depends on."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("check-jsonschema") or shutil.which(
        "check-jsonschema", path=str(Path(sys.executable).parent)
    )
    if exe is None:
        pytest.fail("check-jsonschema is not installed: pip install check-jsonschema (a dev dependency)")
    # the compose-spec schema ships inside the check-jsonschema wheel: no download needed
    return subprocess.run(
        [exe, "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_compose_file_matches_the_compose_spec() -> None:
    result = check_jsonschema(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("original", "broken"),
    [
        ("    ipc: host\n", "    ipc: host\n    gpus_please: true\n"),
        ("              capabilities: [gpu]\n", "              capabilities: gpu\n"),
        ('    restart: "no"\n', "    restart: [no]\n"),
    ],
)
def test_the_schema_check_catches_mistakes(tmp_path: Path, original: str, broken: str) -> None:
    text = COMPOSE.read_text()
    assert original in text
    bad = tmp_path / "compose.yaml"
    bad.write_text(text.replace(original, broken, 1))
    assert check_jsonschema(bad).returncode != 0


def default_of(value: str) -> str:
    """The default in ${VAR-default} / ${VAR:-default}, else the value itself."""
    match = re.fullmatch(r"\$\{\w+:?-(.*)\}", value)
    return match.group(1) if match else value


def names_on_network(services: dict) -> dict[str, str]:
    names = {name: name for name in services}
    for name, service in services.items():
        for network in (service.get("networks") or {}).values():
            for alias in (network or {}).get("aliases", []):
                names[alias] = name
    return names


def container_port(service: dict) -> set[int]:
    ports = set()
    for mapping in service.get("ports", []):
        ports.add(int(str(mapping).rsplit(":", 1)[-1].split("/")[0]))
    return ports


def test_every_backend_the_app_points_at_exists_on_the_right_port() -> None:
    services = compose()["services"]
    env = services["app"]["environment"]
    names = names_on_network(services)
    for variable in ("OPENAI_BASE_URL", "VLLM_BASE_URL", "OLLAMA_HOST"):
        url = urlsplit(default_of(env[variable]))
        assert url.hostname in names, f"{variable} points at {url.hostname}, which is not a service"
        target = services[names[url.hostname]]
        assert url.port in container_port(target), f"{variable}: {url.port} is not a port of {url.hostname}"
    assert default_of(env["OPENAI_BASE_URL"]).endswith("/v1")
    assert default_of(env["VLLM_BASE_URL"]).endswith("/v1")


def test_plain_up_needs_no_gpu_and_no_profiled_service() -> None:
    services = compose()["services"]
    default = {name for name, s in services.items() if not s.get("profiles")}
    assert default == {"app", "engine"}
    for name in default:
        assert "deploy" not in services[name]
        assert set(services[name].get("depends_on") or {}) <= default
    assert services["vllm"]["profiles"] == ["gpu"]
    assert services["vllm-cpu"]["profiles"] == ["cpu"]
    assert services["ollama"]["profiles"] == services["ollama-init"]["profiles"] == ["ollama"]


def test_long_running_services_have_healthchecks() -> None:
    for name, service in compose()["services"].items():
        if service.get("restart") == "no":
            continue  # one-shot jobs
        test = service.get("healthcheck", {}).get("test") or ["missing"]
        assert test[0] in ("CMD", "CMD-SHELL"), f"{name} has no healthcheck"
    engine = compose()["services"]["engine"]
    assert engine["environment"]["HEALTHCHECK_URL"].endswith(":8000/health")


def test_vllm_serves_phi4_mini_with_tool_calling_on_a_gpu() -> None:
    services = compose()["services"]
    for name in ("vllm", "vllm-cpu"):
        args = services[name]["command"]
        assert "--model=microsoft/Phi-4-mini-instruct" in args
        assert "--enable-auto-tool-choice" in args
        assert "--tool-call-parser=phi4_mini_json" in args
    assert services["vllm"]["image"].startswith("vllm/vllm-openai:")
    (device,) = services["vllm"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert device["capabilities"] == ["gpu"]
    assert "deploy" not in services["vllm-cpu"]
    assert services["vllm-cpu"]["networks"]["default"]["aliases"] == ["vllm"]


def test_ollama_has_a_volume_and_the_init_job_waits_for_it() -> None:
    spec = compose()
    services = spec["services"]
    assert "ollama:/root/.ollama" in services["ollama"]["volumes"]
    assert "ollama" in spec["volumes"]
    init = services["ollama-init"]
    assert init["depends_on"]["ollama"]["condition"] == "service_healthy"
    host_path = init["volumes"][0].split(":")[0]
    assert (ROOT / host_path).is_file()


def test_app_and_engine_share_the_model_volume() -> None:
    services = compose()["services"]
    assert "models:/models" in services["app"]["volumes"]
    assert "models:/models" in services["engine"]["volumes"]
    assert services["app"]["depends_on"]["engine"]["condition"] == "service_healthy"
