"""The same model on two real backends side by side: llama.cpp's server (Q4_1 GGUF over HTTP)
and the in-process ONNX engine (the same weights, converted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compare.service import run_card_for
from compare.share import ComparisonSetup
from engines.onnx_engine import OnnxBackend
from runtime.registry import BackendRegistry
from runtime.settings import Settings
from tests.remote.test_llamacpp_server import ALIAS, llamacpp_url  # noqa: F401 (fixture)

pytestmark = [pytest.mark.llamacpp, pytest.mark.model]


async def test_llamacpp_server_and_onnx_lanes_both_answer_with_the_same_metrics(
    llamacpp_url: str,  # noqa: F811
    default_model_dir: Path,
) -> None:
    registry = BackendRegistry(
        Settings(read_timeout_s=60), in_process=lambda: OnnxBackend("onnx", default_model_dir)
    )
    try:
        setup = ComparisonSetup(
            [f"openai:{ALIAS}@{llamacpp_url}/v1", "onnx"],
            "What is the capital of France? Answer in one sentence.",
            options={"temperature": 0.0, "max_new_tokens": 24},
        )
        card = await run_card_for(setup, registry)
    finally:
        await registry.aclose()
    assert [lane.status for lane in card.lanes] == ["done", "done"]
    for lane in card.lanes:
        assert "Paris" in lane.answer
        metrics = lane.metrics
        assert metrics is not None
        assert metrics.ttft_s > 0 and metrics.completion_tokens > 1


def test_the_same_model_on_two_in_process_engines_from_the_cli(
    default_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`slm-playground compare --lane onnx --lane llamacpp:FILE.gguf`: offline, side by side."""
    pytest.importorskip("llama_cpp")
    from compare.cli import main
    from models.convert import find_default_gguf

    gguf = find_default_gguf()
    code = main(
        [
            *("--lane", "onnx", "--lane", f"llamacpp:{gguf}", "--preset", "math"),
            *(
                "--prompt",
                "What is 17*23?",
                "--temperature",
                "0",
                "--max-new-tokens",
                "48",
                "--json",
                "--quiet",
            ),
        ]
    )
    card = json.loads(capsys.readouterr().out)
    assert code == 0
    onnx, llamacpp = card["lanes"]
    assert (onnx["backend_kind"], llamacpp["backend_kind"]) == ("onnx", "llamacpp")
    assert llamacpp["model_details"]["runtime"] == "llama.cpp"
    # one chat template (the GGUF's and the converted folder's), so the same prompt tokens
    assert onnx["metrics"]["prompt_tokens"] == llamacpp["metrics"]["prompt_tokens"]
    for lane in card["lanes"]:  # the math preset: both answers are checked
        assert lane["status"] == "done" and lane["answer"].strip() and lane["verdict"] is not None
