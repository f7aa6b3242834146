"""Two Compare lanes on the one in-process model run side by side through its scheduler."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.base import SamplingOptions
from compare.lanes import SettingOverride
from compare.runner import Comparison, Lane
from engines.onnx_engine import OnnxBackend

pytestmark = pytest.mark.model


async def test_two_in_process_lanes_get_first_tokens_together(default_model_dir: Path) -> None:
    backend = OnnxBackend("onnx", default_model_dir)  # one model, as the registry shares it
    try:
        lanes = [
            Lane(backend, title="greedy"),
            Lane(backend, title="warm", override=SettingOverride("temperature", 0.8)),
        ]
        options = SamplingOptions(temperature=0.0, max_new_tokens=64, seed=1)
        warm_up = Comparison(lanes[:1], prompt="Hi", options=SamplingOptions(max_new_tokens=2))
        await warm_up.run()
        result = await Comparison(lanes, prompt="Describe a rainy day in the city.", options=options).run()
    finally:
        await backend.aclose()
    first, second = result.lanes
    assert first.status == second.status == "done"
    assert first.first_token_at is not None and second.first_token_at is not None
    gap = abs(first.first_token_at - second.first_token_at)
    assert gap < 0.5, f"first tokens {gap:.2f} s apart"
    # and both finished in about the time of one: they shared decoding steps
    assert first.metrics is not None and second.metrics is not None
    assert first.metrics.server["mean_batch"] > 1.5 or second.metrics.server["mean_batch"] > 1.5
