"""The JSON output setting (SamplingOptions.json_output / json_schema) as each remote backend
sends it: OpenAI's response_format to vLLM and other OpenAI-compatible servers, ``format`` to
Ollama, and nothing at all when it is off."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from backends.base import SamplingOptions
from tests.remote.helpers import ask, collect

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


async def test_openai_compat_sends_json_object_and_json_schema(vllm, vllm_backend):
    await collect(vllm_backend, ask(json_output=True))
    await collect(vllm_backend, ask(json_output=True, json_schema=SCHEMA))
    await collect(vllm_backend, ask())
    first, second, third = vllm.bodies("/v1/chat/completions")
    assert first["response_format"] == {"type": "json_object"}
    assert second["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True},
    }
    assert "response_format" not in third


async def test_ollama_sends_format_json_or_the_schema(ollama_standin, ollama_backend):
    await collect(ollama_backend, ask(json_output=True))
    await collect(ollama_backend, ask(json_output=True, json_schema=SCHEMA))
    await collect(ollama_backend, ask())
    first, second, third = ollama_standin.bodies("/api/chat")
    assert first["format"] == "json"
    assert second["format"] == SCHEMA
    assert "format" not in third


def test_a_schema_without_json_output_is_refused() -> None:
    with pytest.raises(ValidationError, match="turn json_output on"):
        SamplingOptions(json_schema=SCHEMA)
    assert SamplingOptions.model_validate({"json_output": True, "json_schema": SCHEMA}).json_schema == SCHEMA


def test_presets_carry_the_json_output_setting() -> None:
    from presets import parse_preset

    text = '{"name": "json-city", "options": {"temperature": 0, "json_output": true, "json_schema": %s}}'
    preset = parse_preset(text % json.dumps(SCHEMA))
    assert (preset.options.json_output, preset.options.json_schema) == (True, SCHEMA)
    assert parse_preset(preset.to_json()) == preset  # saved and loaded again, unchanged


def test_compare_lanes_hold_the_json_output_setting_fixed() -> None:
    from compare.lanes import LaneSpecError, SettingOverride, parse_override

    with pytest.raises(LaneSpecError, match="cannot vary 'json_output'"):
        parse_override("json_output=0")
    shared = SamplingOptions(json_output=True, json_schema=SCHEMA)
    varied = SettingOverride("temperature", 0.0).apply(shared)
    assert (varied.temperature, varied.json_output, varied.json_schema) == (0.0, True, SCHEMA)
