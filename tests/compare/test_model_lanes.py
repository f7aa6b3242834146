"""The real in-process model as a lane beside a scripted one (skipped when the model is not prepared)."""

from __future__ import annotations

import pytest

from compare.service import run_card_for
from compare.share import ComparisonSetup
from models.model_store import default_model_dir
from runtime.registry import BackendRegistry
from runtime.settings import Settings
from tests.compare.conftest import paced

pytestmark = pytest.mark.model


async def test_onnx_lane_and_scripted_lane_side_by_side() -> None:
    folder = default_model_dir()
    if not (folder / "genai_config.json").exists():
        pytest.skip(f"default model not prepared at {folder} (slm-playground model prepare)")
    registry = BackendRegistry.with_backends(Settings(), paced("scripted", "one two three", 0.01))
    try:
        setup = ComparisonSetup(
            ["onnx", "scripted"], "Say hello in five words.", options={"max_new_tokens": 24}
        )
        card = await run_card_for(setup, registry, timeout_s=120)
    finally:
        await registry.aclose()
    onnx, scripted = card.lanes
    assert onnx.backend_kind == "onnx"
    assert onnx.status == "done", onnx.error
    assert onnx.answer.strip()
    assert onnx.metrics is not None
    assert onnx.metrics.completion_tokens
    assert onnx.model_details.get("runtime") == "onnxruntime-genai"
    assert scripted.status == "done"
