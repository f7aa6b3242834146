import json
from pathlib import Path

import pytest

from backends.scripted import ScriptedBackend
from bench import steps
from bench.engine import measure_backend
from bench.prompts import PROMPTS


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
