"""`slm-playground bench engine --steps 1,4,8`: where one decoding step's time goes, by batch size.

The engine's batched path (engines/onnx_batch.Graph) runs steps of R rows, every row holding
``--context`` tokens (random ids: the work does not depend on them), as the scheduler does while
R streams decode. Each round times STEPS_PER_ROUND steps of every R in turn (interleaved, so the
shared machine's drift falls on every R alike); the table gives medians over the rounds. A
second session, with onnxruntime's profiler on, splits a step by op: the q4_1 matmuls, the
lm_head (q8_0), attention, every other op, and onnxruntime between ops; the profiler's own cost
is not in the step times, which come from the first session. "Python" is graph.run's own part
of a step (mask, ids, bindings, the logits array) plus a greedy pick of each row's token. "CPU
ms" is the process's CPU time per step, every thread's (onnxruntime's workers spin while they
wait, so it counts that too): with --threads 1, what a step costs when the shared machine's
other work preempts it, which wall times do not show.

Under the table, a PROMPT_CHUNK-token prompt chunk fed to one row holding ``--context`` tokens,
timed CHUNKS_PER_ROUND times a round between the steps (the least of each round, the median of
those): a prompt's cost per token, which batching does not share out (the lm_head of a folder
built with last_position_only multiplies only its last token).

Below it, the kernel table: every GGUF matmul shape of the graph (slm.gguf MatMulQ4_1 and
MatMulQ8_0 nodes: N x K, activation levels, nodes per step) called alone through the folder's
own library on one thread, at each batch size: the least thread CPU time of KERNEL_CALLS calls
(weights of random bytes, warm in the caches: the arithmetic, not the memory a real step also
waits on), and the step's share (times the nodes). Its ratios to one row hold up under load
better than wall times, but on a machine loaded well past its cores even the least of 25 calls
moved by ~30% between two runs of the same library: compare two builds' tables from one quiet
moment, or their calls interleaved in one process.
"""

from __future__ import annotations

import ctypes
import json
import statistics
import tempfile
import time
from bisect import bisect_right
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from engines.onnx_batch import Graph
from engines.onnx_jobs import PREFILL_CHUNK
from models.native_ops import LIBRARY_NAME, machine_line

STEPS_PER_ROUND = 8
WARM_UP = 2
PROMPT_CHUNK = PREFILL_CHUNK
"""Tokens of the prompt chunk timed beside the steps: what the engine feeds a row per run."""
CHUNKS_PER_ROUND = 3
"""Prompt chunks timed a round; the least counts (the host only ever adds time)."""
OP_COLUMNS = {
    "MatMulQ4_1": "q4_1 matmuls",
    "MatMulQ8_0": "lm_head q8_0",
    "CausalAttentionF16": "attention",
    "CausalAttention": "attention",
    "GroupQueryAttention": "attention",
}
COLUMNS = ["q4_1 matmuls", "lm_head q8_0", "attention", "other ops", "between ops"]


def _filled_graph(
    folder: Path, config: dict[str, Any], rows: int, context: int, threads: int, **kw: Any
) -> Graph:
    graph = Graph(folder, config, threads=threads, rows=rows, length=context + PROMPT_CHUNK + 16, **kw)
    vocab = int(config["model"]["vocab_size"])
    prompts = np.random.default_rng(0).integers(100, vocab, (rows, context))
    for row in range(rows):
        for start in range(0, context, 64):
            graph.run(row, prompts[row : row + 1, start : start + 64])
    return graph


def _step(graph: Graph, rows: int, context: int) -> tuple[float, float, float]:
    """One decoding step of ROWS rows at CONTEXT tokens each: (wall s, of which Python s, CPU s
    of every thread of this process)."""
    ids = np.full((rows, 1), 1000)
    cpu = time.process_time()
    start = time.perf_counter()
    logits = graph.run(0, ids)
    for r in range(rows):
        int(np.argmax(logits[r, 0]))  # the greedy pick the scheduler makes per row
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu
    for row in graph.rows[:rows]:
        del row.tokens[context:]  # the next step writes the same position again
    return wall, wall - graph.last_run_s, cpu


def _prompt_chunk(graph: Graph, context: int) -> float:
    """Seconds to feed one PROMPT_CHUNK-token chunk to row 0 holding CONTEXT tokens (a new
    prompt after a cached system prompt): a prompt's cost per token, which batching does not
    share out (the lm_head of folders built since last_position_only runs on its last token only)."""
    ids = np.random.default_rng(1).integers(100, graph.vocab, (1, PROMPT_CHUNK))
    start = time.perf_counter()
    graph.run(0, ids)
    wall = time.perf_counter() - start
    del graph.rows[0].tokens[context:]
    return wall


def _rounds(graph: Graph, counts: list[int], context: int, rounds: int) -> dict[int, list[tuple[float, ...]]]:
    """Per batch size, the median (wall, Python, CPU) of each round's steps."""
    out: dict[int, list[tuple[float, ...]]] = {n: [] for n in [*counts, 0]}  # 0: the prompt chunk
    for n in counts:
        for _ in range(WARM_UP):
            _step(graph, n, context)
    _prompt_chunk(graph, context)
    for _ in range(rounds):
        for n in counts:
            steps = [_step(graph, n, context) for _ in range(STEPS_PER_ROUND)]
            out[n].append(tuple(statistics.median(s[i] for s in steps) for i in range(3)))
        # least of a few: one chunk a round moved 30% between rounds on a shared host
        out[0].append((min(_prompt_chunk(graph, context) for _ in range(CHUNKS_PER_ROUND)),))
    return out


def _op_split(profile: Path, labels: list[int | None]) -> dict[int, dict[str, float]]:
    """Mean ms per step of each column, per batch size, from onnxruntime's profile: LABELS gives
    the batch size of each run in order (None: not a measured step)."""
    events = json.loads(profile.read_text())
    runs = sorted((e["ts"], e["dur"]) for e in events if e.get("name") == "model_run")
    if len(runs) != len(labels):
        raise RuntimeError(f"the profile holds {len(runs)} runs, {len(labels)} were made")
    starts = [ts for ts, _ in runs]
    totals: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"):
            continue
        label = labels[bisect_right(starts, e["ts"]) - 1]
        if label is not None:
            totals[label][OP_COLUMNS.get(e["args"].get("op_name", ""), "other ops")] += e["dur"]
    for (_, dur), label in zip(runs, labels, strict=True):
        if label is not None:
            totals[label]["run"] += dur
    steps = {n: labels.count(n) for n in set(labels) if n is not None}
    split = {}
    for n, t in totals.items():
        per = {k: v / steps[n] / 1000 for k, v in t.items()}
        per["between ops"] = per.pop("run") - sum(per.get(c, 0.0) for c in COLUMNS[:-1])
        split[n] = per
    return split


def measure_steps(
    folder: Path, counts: list[int], context: int, rounds: int, threads: int
) -> tuple[list[dict[str, Any]], float]:
    """The table's rows, and the median ms of a PROMPT_CHUNK-token prompt chunk."""
    config = json.loads((folder / "genai_config.json").read_text(encoding="utf-8"))
    graph = _filled_graph(folder, config, max(counts), context, threads)
    timed = _rounds(graph, counts, context, rounds)
    del graph
    with tempfile.TemporaryDirectory(prefix="slm-steps-") as tmp:
        graph = _filled_graph(folder, config, max(counts), context, threads, profile_prefix=f"{tmp}/steps")
        labels: list[int | None] = [None] * sum(-(-context // 64) for _ in range(max(counts)))
        for n in counts:
            for _ in range(WARM_UP + STEPS_PER_ROUND):
                _step(graph, n, context)
            labels += [None] * WARM_UP + [n] * STEPS_PER_ROUND
        split = _op_split(Path(graph.session.end_profiling()), labels)
    rows = []
    for n in counts:
        rows.append(
            {
                "rows": n,
                "step_ms": statistics.median(t[0] for t in timed[n]) * 1000,
                "python_ms": statistics.median(t[1] for t in timed[n]) * 1000,
                "cpu_ms": statistics.median(t[2] for t in timed[n]) * 1000,
                **{c: split[n].get(c, 0.0) for c in COLUMNS},
            }
        )
    return rows, statistics.median(t[0] for t in timed[0]) * 1000


def table(rows: list[dict[str, Any]]) -> str:
    one = next((r["step_ms"] for r in rows if r["rows"] == 1), None)
    head = ["rows", "step ms", "vs 1 row", "ms per row", "CPU ms", *COLUMNS, "Python", "tok/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        cells = [
            str(r["rows"]),
            f"{r['step_ms']:.2f}",
            f"{r['step_ms'] / one:.2f}x" if one else "-",
            f"{r['step_ms'] / r['rows']:.2f}",
            f"{r['cpu_ms']:.2f}",
            *(f"{r[c]:.2f}" for c in COLUMNS),
            f"{r['python_ms']:.2f}",
            f"{1000 * r['rows'] / r['step_ms']:.0f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


KERNEL_CALLS = 25
_FORMATS = {"MatMulQ4_1": (0, 128), "MatMulQ8_0": (1, 256)}  # slm_gguf_matmul's format, bytes a block


def matmul_shapes(folder: Path) -> list[dict[str, Any]]:
    """The graph's GGUF matmul shapes: op, n, k, levels, and how many nodes a step runs."""
    import onnx

    graph = onnx.load(str(folder / "model.onnx"), load_external_data=False).graph
    dims = {t.name: list(t.dims) for t in graph.initializer}
    seen: dict[tuple[str, int, int, int], int] = defaultdict(int)
    for node in graph.node:
        if node.domain == "slm.gguf" and node.op_type in _FORMATS:
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            groups, blocks, _ = dims[node.input[1]]
            seen[(node.op_type, 8 * groups, 32 * blocks, int(attrs.get("activation_levels", 1)))] += 1
    return [
        {"op": op, "n": n, "k": k, "levels": levels, "nodes": nodes}
        for (op, n, k, levels), nodes in seen.items()
    ]


def _least_cpu_us(call: Any, calls: int) -> float:
    """CALL's least thread CPU time in microseconds over CALLS calls (after one to warm up); it
    returns slm_gguf_matmul's status, 0 for done."""
    if call() != 0:
        raise RuntimeError("slm_gguf_matmul refused the shape")
    best = float("inf")
    for _ in range(calls):
        start = time.thread_time_ns()
        call()
        best = min(best, time.thread_time_ns() - start)
    return best / 1000


def kernel_times(
    library: Path, shapes: list[dict[str, Any]], counts: list[int], calls: int
) -> list[dict[str, Any]]:
    """Per shape, the least thread CPU microseconds of one call at each batch size."""
    lib = ctypes.CDLL(str(library))
    lib.slm_gguf_matmul.restype = ctypes.c_int
    lib.slm_gguf_matmul.argtypes = [ctypes.c_int] * 3 + [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64]
    lib.slm_gguf_matmul.argtypes += [ctypes.c_void_p] * 3 + [ctypes.c_int64, ctypes.c_void_p]
    rng = np.random.default_rng(0)
    out = []
    for shape in shapes:
        fmt, block_bytes = _FORMATS[shape["op"]]
        n, k = shape["n"], shape["k"]
        weights = rng.integers(0, 256, (n // 8, k // 32, block_bytes), dtype=np.uint8)
        scales = (rng.random((n // 8, k // 32, 8)) * 0.01).astype(np.float32)
        mins = (-scales * 8).ctypes.data if fmt == 0 else None
        times = {}
        for rows in counts:
            a = rng.standard_normal((rows, k)).astype(np.float32)
            result = np.empty((rows, n), np.float32)
            args = (fmt, shape["levels"], 0, a.ctypes.data, rows, k, weights.ctypes.data, scales.ctypes.data)
            times[rows] = _least_cpu_us(
                lambda args=(*args, mins, n, result.ctypes.data): lib.slm_gguf_matmul(*args), calls
            )
        out.append({**shape, "us": times})
    return out


def kernel_table(rows: list[dict[str, Any]], counts: list[int]) -> str:
    head = ["matmul", "N x K", "levels", "per step"]
    for c in counts:
        head += [f"{c} rows us", "vs 1 row"] if c != 1 else ["1 row us"]
    head += [f"ms a step at {c}" for c in counts]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    totals = dict.fromkeys(counts, 0.0)
    for r in rows:
        cells = [r["op"].removeprefix("MatMul"), f"{r['n']} x {r['k']}", str(r["levels"]), str(r["nodes"])]
        one = r["us"].get(1)
        for c in counts:
            cells.append(f"{r['us'][c]:.1f}")
            if c != 1:
                cells.append(f"{r['us'][c] / one:.2f}x" if one else "-")
            totals[c] += r["us"][c] * r["nodes"] / 1000
        cells += [f"{r['us'][c] * r['nodes'] / 1000:.2f}" for c in counts]
        lines.append("| " + " | ".join(cells) + " |")
    blank = ["all", "", "", str(sum(r["nodes"] for r in rows))] + [""] * (2 * len(counts) - (1 in counts))
    lines.append("| " + " | ".join(blank + [f"{totals[c]:.2f}" for c in counts]) + " |")
    return "\n".join(lines)


def run_steps(folder: Path, counts: list[int], context: int, runs: int, threads: int) -> int:
    if not counts or min(counts) < 1:
        print("error: --steps takes batch sizes of 1 or more, e.g. 1,4,8")
        return 2
    rounds = max(runs, 1)
    print(
        f"model: {folder}\ndecoding steps of {','.join(map(str, counts))} rows, {context} tokens held per "
        f"row; {rounds} rounds of {STEPS_PER_ROUND} steps each (medians); {threads} threads; op columns: ms "
        f"per step from a profiled session",
        flush=True,
    )
    rows, prompt_ms = measure_steps(folder, counts, context, rounds, threads)
    print(f"\n{machine_line()}\n{table(rows)}", flush=True)
    print(
        f"a {PROMPT_CHUNK}-token prompt chunk into a row holding {context}: {prompt_ms:.2f} ms "
        f"({prompt_ms / PROMPT_CHUNK:.2f} ms a token; median of the rounds' least of {CHUNKS_PER_ROUND})",
        flush=True,
    )
    shapes = matmul_shapes(folder)
    if shapes:
        timed = kernel_times(folder / LIBRARY_NAME, shapes, counts, KERNEL_CALLS)
        print(
            f"\nGGUF matmuls alone, one thread, weights warm: least thread CPU of {KERNEL_CALLS} calls\n"
            f"{kernel_table(timed, counts)}"
        )
    return 0
