"""The same input gets the same verdict on a busy machine: every limit in the worker counts CPU
time, so two processes spinning beside it slow the check down without changing what it says."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path
from typing import Any

import pytest

from mathcheck.sandbox import shutdown, verify_response, warm_up

DATA = Path(__file__).parent / "data"
WALL_S = 120.0
"""The wall backstop far away: this test is about the CPU-time limits, not about the backstop."""


def _spin(ready: Any, stop: Any) -> None:
    ready.set()
    while not stop.is_set():
        sum(range(10_000))


def _inputs() -> list[dict[str, Any]]:
    rows = []
    for name, step in (("answers.jsonl", 23), ("worked.jsonl", 41), ("answers_fresh.jsonl", 17)):
        lines = (DATA / name).read_text(encoding="utf-8").splitlines()
        rows += [json.loads(line) for line in lines[::step]]
    rows.append({"response": r"We get $x = 1/3 \approx 0.33$, so $\boxed{(1, 2)}, \boxed{(2, 1)}$.",
                 "gold": "(2,1),(1,2)", "prompt": None})  # fmt: skip
    return rows


def _verdicts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        result = verify_response(
            row["response"], prompt=row.get("prompt"), gold=row.get("gold"), wall_s=WALL_S
        )
        out.append(result.to_json())
    return out


@pytest.fixture(scope="module", autouse=True)
def _workers() -> Any:
    warm_up()
    yield
    shutdown()


def test_same_verdicts_beside_two_busy_loops() -> None:
    rows = _inputs()
    assert len(rows) >= 25
    quiet = _verdicts(rows)
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    readies = [ctx.Event() for _ in range(2)]
    spinners = [ctx.Process(target=_spin, args=(ready, stop), daemon=True) for ready in readies]
    for proc in spinners:
        proc.start()
    try:
        assert all(ready.wait(30) for ready in readies)
        busy = _verdicts(rows)
    finally:
        stop.set()
        for proc in spinners:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
    for row, a, b in zip(rows, quiet, busy, strict=True):
        assert a == b, row["response"][:80]
    assert not any(v["timed_out"] for v in busy)
