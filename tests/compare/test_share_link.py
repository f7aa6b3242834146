"""Compare's share link carries every setting Compare holds for all lanes (the panel table's)."""

from __future__ import annotations

import pytest

from compare.lanes import LaneSpecError, parse_override
from compare.share import ComparisonSetup, ShareLinkError, decode_setup, encode_setup
from runtime.panel_fields import compare_options, overridable


def test_json_output_and_schema_survive_the_link() -> None:
    options = {
        "temperature": 0.0,
        "top_p": 0.9,
        "top_k": 40,
        "max_new_tokens": 64,
        "seed": None,
        "json_output": True,
        "json_schema": {"type": "object", "required": ["answer"]},
    }
    assert set(options) == {f.name for f in compare_options()}  # a new shared setting belongs here
    setup = ComparisonSetup(["onnx", "vllm"], "17*23?", preset="math", options=options, runs=3)
    again = decode_setup(encode_setup(setup), known_labels=["onnx", "vllm"])
    assert again == setup
    assert again.sampling().json_schema == {"type": "object", "required": ["answer"]}


def test_a_bad_setting_in_the_link_is_named() -> None:
    with pytest.raises(ShareLinkError, match="schema"):
        decode_setup("lane=onnx&lane=vllm&prompt=x&json=1&schema=[1]", known_labels=["onnx", "vllm"])
    with pytest.raises(ShareLinkError, match="top_k"):
        decode_setup("lane=onnx&lane=vllm&prompt=x&top_k=many", known_labels=["onnx", "vllm"])


def test_lanes_vary_only_what_the_table_lets_them() -> None:
    assert overridable() == ("temperature", "top_p", "top_k", "max_new_tokens", "seed")
    assert parse_override("seed=random").value is None
    assert parse_override("top-k=5").value == 5
    with pytest.raises(LaneSpecError, match="cannot vary 'json_output'"):
        parse_override("json_output=1")
    with pytest.raises(LaneSpecError, match="must be a whole number"):
        parse_override("max_new_tokens=1.5")
