"""The onnx engine sizes its batch from the graph's real KV bytes per token: a q4_1 folder keeps
its cache in float16, so the same memory holds twice the rows a float32 cache would."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engines.onnx_batch import Graph
from engines.onnx_engine import KV_WINDOW, MAX_BATCH, OnnxBackend, rows_for_memory


def test_rows_follow_the_bytes_a_token_takes() -> None:
    per_token_fp32 = 2 * 30 * 3 * 64 * 4  # key and value, 30 layers, 3 KV heads of 64, float32
    free = 4 * per_token_fp32 * KV_WINDOW * 5  # a quarter of it holds 5 float32 rows
    assert rows_for_memory(per_token_fp32, free) == 5
    assert rows_for_memory(per_token_fp32 // 2, free) == 10  # float16: twice the rows
    assert rows_for_memory(per_token_fp32, free * 100) == MAX_BATCH
    assert rows_for_memory(per_token_fp32, 1) == 1


def test_a_q4_1_graph_is_sized_by_its_float16_cache(default_model_dir: Path) -> None:
    config = json.loads((default_model_dir / "genai_config.json").read_text(encoding="utf-8"))
    decoder = config["model"]["decoder"]
    graph = Graph(default_model_dir, config, threads=1, rows=4, length=64)
    float32_bytes = (
        2 * decoder["num_hidden_layers"] * decoder["num_key_value_heads"] * decoder["head_size"] * 4
    )
    assert graph.kv_dtype == np.float16  # what q4_1 folders use
    assert graph.bytes_per_token == float32_bytes // 2
    graph.keep_rows(2)  # what the engine does once it knows the bytes: keep the rows that fit
    assert len(graph.rows) == 2 and graph.buffers[0].shape[0] == 2
    backend = OnnxBackend("sizing", default_model_dir)
    assert backend.batch_size(graph.bytes_per_token) >= backend.batch_size(float32_bytes)
