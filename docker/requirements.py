#!/usr/bin/env python3
"""Print the requirements pyproject.toml declares (the dependencies, plus the extras named as
arguments), one per line, for `pip install -r - -c constraints.txt`.

The image installs its dependencies from pyproject.toml and constraints.txt alone, before the
source is copied, so a source change reuses those layers.
"""

import sys
import tomllib
from pathlib import Path


def requirements(pyproject: Path, extras: list[str]) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    optional = project.get("optional-dependencies", {})
    unknown = [name for name in extras if name not in optional]
    if unknown:
        raise SystemExit(f"no such extra in {pyproject}: {', '.join(unknown)} (has {', '.join(optional)})")
    return [*project["dependencies"], *(req for name in extras for req in optional[name])]


if __name__ == "__main__":
    print("\n".join(requirements(Path("pyproject.toml"), sys.argv[1:])))
