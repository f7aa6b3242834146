"""Lane specs: every form the CLI, share links and the API accept, and clear errors."""

from __future__ import annotations

import pytest

from backends.base import SamplingOptions
from compare.lanes import LaneSpec, LaneSpecError, SettingOverride, parse_lane, parse_lanes, parse_override


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("onnx", LaneSpec("onnx")),
        ("onnx:/models/phi4-int4", LaneSpec("onnx", model="/models/phi4-int4")),
        ("onnx:microsoft/Phi-4-mini:cpu-int4", LaneSpec("onnx", model="microsoft/Phi-4-mini:cpu-int4")),
        ("openai:gpt-x@http://h:8000/v1/", LaneSpec("openai", model="gpt-x", url="http://h:8000/v1")),
        ("vllm:microsoft/Phi-4-mini-instruct@https://gpu:8000/v1",
         LaneSpec("vllm", model="microsoft/Phi-4-mini-instruct", url="https://gpu:8000/v1")),
        ("ollama:qwen2.5:0.5b@localhost:11434", LaneSpec("ollama", model="qwen2.5:0.5b", url="http://localhost:11434")),
        ("ollama:@localhost:11434", LaneSpec("ollama", url="http://localhost:11434")),
        ("openai:m@http://u:p@h:1/v1", LaneSpec("openai", model="m", url="http://u:p@h:1/v1")),
    ],
)  # fmt: skip
def test_parses_every_lane_form(text: str, expected: LaneSpec) -> None:
    assert parse_lane(text) == expected
    assert parse_lane(str(expected)) == expected  # round-trip through the canonical form


def test_override_suffix_and_configured_labels() -> None:
    spec = parse_lane("ollama:llama3@h:11434#temperature=0", known_labels=["vllm"])
    assert spec.override == SettingOverride("temperature", 0.0)
    assert str(spec) == "ollama:llama3@http://h:11434#temperature=0.0"
    assert parse_lane(str(spec)) == spec
    assert parse_lane("vllm", known_labels=["vllm"]) == LaneSpec("label", label="vllm")
    assert parse_lane("vllm:phi", known_labels=["vllm"]) == LaneSpec("label", model="phi", label="vllm")
    assert parse_lane("my box#seed=3", known_labels=["my box"]).override == SettingOverride("seed", 3)
    assert "temperature=0.0" in parse_lane("onnx#temperature=0").title


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty lane"),
        ("llama", "unknown lane 'llama'"),
        ("openai:gpt", "need a server"),
        ("ollama:m@", "need a server"),
        ("onnx#stop=x", "cannot vary 'stop'"),
        ("onnx#temperature", "SETTING=VALUE"),
        ("onnx#temperature=hot", "must be a number"),
        ("onnx#top_k=0.5", "whole number"),
        ("onnx#temperature=9", "temperature=9.0"),
    ],
)
def test_bad_specs_say_how_to_fix_them(text: str, message: str) -> None:
    with pytest.raises(LaneSpecError, match=message):
        parse_lane(text)


def test_lane_count_and_override_application() -> None:
    with pytest.raises(LaneSpecError, match="2 to 4 lanes, got 1"):
        parse_lanes(["onnx"])
    with pytest.raises(LaneSpecError, match="got 5"):
        parse_lanes(["onnx"] * 5)
    assert len(parse_lanes(["onnx", "", "onnx#seed=1"])) == 2
    options = SamplingOptions(temperature=0.7, top_p=0.9)
    changed = parse_override("top-p=0.5").apply(options)
    assert changed.top_p == 0.5
    assert changed.temperature == 0.7
    assert parse_override("seed=none").apply(options).seed is None
