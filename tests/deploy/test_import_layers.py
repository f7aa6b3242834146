"""The layering holds: nothing below app/ imports app/, nothing imports tests/ (scripts/import_graph.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "import_graph.py"


def test_no_import_runs_against_the_layers() -> None:
    spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    edges, problems = module.graph()
    assert "app" in edges["bench"]  # the graph is real: the benchmarks drive the app
    assert problems == []
