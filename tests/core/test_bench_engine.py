import json
from pathlib import Path

import pytest

from backends.scripted import ScriptedBackend
from bench import steps
from bench.engine import measure_backend
from bench.prompts import PROMPTS
from models import native_ops


async def test_any_backend_gets_the_same_measurements() -> None:
    backend = ScriptedBackend(delay_s=0.005)
    row = await measure_backend(backend, runs=1, max_new=16)
    # warm-up + the prompt set + an 8-turn chat, all through Backend.chat
    assert len(backend.requests) == 1 + len(PROMPTS) + 8
    assert len(row["turn_ttft_s"]) == 8
    assert row["turn_prompt_tokens"] == sorted(row["turn_prompt_tokens"])  # the chat grows
    assert row["decode_tok_s"] > 0 and row["ttft_s"] >= 0
    assert row["tokens"] == len(PROMPTS) * 4  # the scripted reply has 4 chunks


def _event(name: str, ts: int, dur: int, op: str = "") -> dict:
    """One event as onnxruntime's profiler writes it (fields the split reads, and a few more)."""
    if not op:
        return {
            "cat": "Session",
            "pid": 1,
            "tid": 1,
            "dur": dur,
            "ts": ts,
            "ph": "X",
            "name": name,
            "args": {},
        }
    args = {"op_name": op, "provider": "CPUExecutionProvider"}
    return {"cat": "Node", "pid": 1, "tid": 1, "dur": dur, "ts": ts, "ph": "X", "name": name, "args": args}


def test_a_profile_is_split_by_op_per_batch_size(tmp_path: Path) -> None:
    events = [
        _event("model_run", 0, 900),  # a prefill run: not a measured step
        _event("/model/layers.0/mlp/up_proj/MatMul_kernel_time", 10, 800, "MatMulQ4_1"),
        _event("model_run", 1000, 100),  # a step of 1 row
        _event("/model/layers.0/mlp/up_proj/MatMul_kernel_time", 1010, 40, "MatMulQ4_1"),
        _event("/model/layers.0/attn/GroupQueryAttention_kernel_time", 1050, 20, "CausalAttentionF16"),
        _event("/lm_head/MatMul_kernel_time", 1070, 25, "MatMulQ8_0"),
        _event("/model/layers.0/mlp/act_fn/Sigmoid_kernel_time", 1095, 5, "Sigmoid"),
        _event("/model/layers.0/mlp/act_fn/Sigmoid_fence_before", 1095, 0, "Sigmoid"),
        _event("model_run", 2000, 300),  # two steps of 4 rows
        _event("/model/layers.0/mlp/up_proj/MatMul_kernel_time", 2010, 200, "MatMulQ4_1"),
        _event("model_run", 3000, 300),
        _event("/model/layers.0/mlp/up_proj/MatMul_kernel_time", 3010, 100, "MatMulQ4_1"),
    ]
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps(events))
    split = steps._op_split(profile, [None, 1, 4, 4])
    assert split[1] == pytest.approx(
        {
            "q4_1 matmuls": 0.04,
            "attention": 0.02,
            "lm_head q8_0": 0.025,
            "other ops": 0.005,
            "between ops": 0.01,
        }
    )
    assert split[4] == pytest.approx({"q4_1 matmuls": 0.15, "between ops": 0.15})
    with pytest.raises(RuntimeError, match="the profile holds 4 runs, 3 were made"):
        steps._op_split(profile, [None, 1, 4])


def test_the_step_table_gives_ratios_to_one_row() -> None:
    row = {"python_ms": 0.3, "cpu_ms": 9.0, **dict.fromkeys(steps.COLUMNS, 1.0)}
    text = steps.table([{**row, "rows": 1, "step_ms": 10.0}, {**row, "rows": 4, "step_ms": 16.0}])
    lines = text.splitlines()
    assert lines[0].startswith("| rows | step ms | vs 1 row | ms per row | CPU ms | q4_1 matmuls")
    assert lines[3].startswith("| 4 | 16.00 | 1.60x | 4.00 | 9.00 |") and lines[3].endswith("| 0.30 | 250 |")


def test_the_kernel_table_holds_every_gguf_matmul_of_the_graph(default_model_dir: Path) -> None:
    config = json.loads((default_model_dir / "genai_config.json").read_text())
    layers, vocab = config["model"]["decoder"]["num_hidden_layers"], config["model"]["vocab_size"]
    shapes = steps.matmul_shapes(default_model_dir)
    q4_1 = [s for s in shapes if s["op"] == "MatMulQ4_1"]
    assert sum(s["nodes"] for s in q4_1) == 5 * layers  # qkv, o, gate, up, down
    assert [(s["n"], s["nodes"]) for s in shapes if s["op"] == "MatMulQ8_0"] == [(vocab, 1)]  # the lm_head
    assert all(s["n"] % 8 == 0 and s["k"] % 32 == 0 and s["levels"] in (1, 2) for s in shapes)


def test_the_kernel_table_times_each_shape_at_each_batch_size(default_model_dir: Path) -> None:
    shapes = [{"op": "MatMulQ4_1", "n": 64, "k": 96, "levels": 2, "nodes": 30}]
    shapes.append({"op": "MatMulQ8_0", "n": 16, "k": 64, "levels": 1, "nodes": 1})
    timed = steps.kernel_times(default_model_dir / native_ops.LIBRARY_NAME, shapes, [1, 4], calls=3)
    assert [sorted(t["us"]) for t in timed] == [[1, 4], [1, 4]]
    assert all(us > 0 for t in timed for us in t["us"].values())
    lines = steps.kernel_table(timed, [1, 4]).splitlines()
    head = "| matmul | N x K | levels | per step | 1 row us | 4 rows us | vs 1 row | ms a step at 1 |"
    assert lines[0] == head + " ms a step at 4 |"
    q4_1 = timed[0]["us"]
    assert lines[2].startswith(
        f"| Q4_1 | 64 x 96 | 2 | 30 | {q4_1[1]:.1f} | {q4_1[4]:.1f} | {q4_1[4] / q4_1[1]:.2f}x |"
    )
    assert lines[4].startswith("| all |  |  | 31 |")


def test_the_prompt_chunk_leaves_the_row_as_the_steps_found_it(default_model_dir: Path) -> None:
    """Timed between the rounds' steps: the row must hold the same tokens afterwards, or every
    later step would read a longer cache than the table says."""
    config = json.loads((default_model_dir / "genai_config.json").read_text())
    graph = steps._filled_graph(default_model_dir, config, rows=2, context=70, threads=1)
    held = [list(r.tokens) for r in graph.rows]
    assert steps._prompt_chunk(graph, context=70) > 0
    assert [list(r.tokens) for r in graph.rows] == held
