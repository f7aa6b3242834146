"""Print which top-level packages import which, and check the layering rules.

    python scripts/import_graph.py          # the graph as "package -> imported packages" lines
    python scripts/import_graph.py --check  # exit 1, naming the file and line, if a rule is broken

Layers, lowest first: backends (the contract and the remote clients) -> models (building and
storing model files, the native ops) -> engines (the in-process engines and their scheduler) ->
presets, mathcheck, runtime -> compare, serve -> evals -> app -> bench.
A package imports only layers below its own (compare and serve may also import each other);
nothing imports tests/.
Imports under ``if TYPE_CHECKING:`` count too: they are still a dependency of the design.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "presets", "backends", "models", "engines", "mathcheck", "runtime",
    "compare", "serve", "evals", "app", "bench", "tests",
)  # fmt: skip
LAYER = {
    "backends": 0,
    "models": 1,
    "engines": 2,
    "presets": 3,
    "mathcheck": 3,
    "runtime": 3,
    "compare": 4,
    "serve": 4,
    "evals": 5,
    "app": 6,
    "bench": 7,
    "tests": 8,
}
SIDE_BY_SIDE = {"compare", "serve"}
"""The one layer whose packages may import each other."""


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module.split(".")[0]))
    return [(line, name) for line, name in found if name in PACKAGES]


def graph() -> tuple[dict[str, set[str]], list[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    problems = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, imported in imports_of(path):
                if imported == package:
                    continue
                edges[package].add(imported)
                where = f"{path.relative_to(ROOT)}:{line}"
                if imported == "tests":
                    problems.append(f"{where}: {package} imports tests")
                elif LAYER[imported] > LAYER[package]:
                    problems.append(f"{where}: {package} imports {imported}, a layer above it")
                elif LAYER[imported] == LAYER[package] and package not in SIDE_BY_SIDE:
                    problems.append(f"{where}: {package} imports {imported}, beside it")
    return edges, problems


def main(argv: list[str]) -> int:
    edges, problems = graph()
    for package in PACKAGES:
        print(f"{package:10} -> {', '.join(sorted(edges.get(package, ()))) or '-'}")
    if problems:
        print(f"\n{len(problems)} import(s) against the layers:")
        print("\n".join(f"  {p}" for p in problems))
    return 1 if problems and "--check" in argv else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
