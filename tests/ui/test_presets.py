"""Preset schema and loader: shipped presets from the seed, user folders, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from presets import Preset, PresetError, load_catalog, parse_preset, shipped_presets


def test_shipped_presets_follow_the_seed_variants() -> None:
    presets = shipped_presets()
    assert {"reasoning", "coding", "math"} <= set(presets)
    reasoning, coding = presets["reasoning"].options, presets["coding"].options
    assert (reasoning.temperature, reasoning.top_p) == (0.3, 0.8)
    assert (coding.temperature, coding.top_p) == (0.5, 0.9)
    assert "step by step" in presets["reasoning"].system_prompt
    assert "comments" in presets["coding"].system_prompt
    assert "each calculation" in presets["math"].system_prompt


@pytest.mark.parametrize(
    ("fragment", "reference"),
    [
        ("240 km in 3 hours", "2.4"),
        ("compound interest on $5000", "5955.08"),
        ("length 15cm and width 8cm", "44"),
        ("60 mph for 2.5 hours", "270"),
    ],
)
def test_math_examples_carry_reference_answers(fragment: str, reference: str) -> None:
    math = shipped_presets()["math"]
    example = next(e for e in math.examples if fragment in e.prompt)
    assert example.reference == reference
    assert math.reference_for("  " + example.prompt + "\n") == reference


def test_coding_and_reasoning_examples_from_the_seed() -> None:
    presets = shipped_presets()
    coding = " ".join(e.prompt for e in presets["coding"].examples)
    for topic in ("Fibonacci", "binary search", "greatest common divisor", "binary tree"):
        assert topic in coding
    assert any("All cats are mammals" in e.prompt for e in presets["reasoning"].examples)


def test_round_trip_through_json() -> None:
    preset = shipped_presets()["coding"]
    assert parse_preset(preset.to_json()) == preset


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "a preset is a JSON object"),
        ('{"name": "x", "options": {"temperature": 5}}', "options.temperature"),
        ('{"name": "x", "colour": "red"}', "colour"),
        ('{"tab": "math"}', "name"),
        ('{"name": "x", "tab": "poetry"}', "tab"),
    ],
)
def test_malformed_presets_fail_with_the_field_named(text: str, message: str) -> None:
    with pytest.raises(PresetError, match=r"upload\.json") as info:
        parse_preset(text, source="upload.json")
    assert message in str(info.value)


def test_user_folder_adds_and_overrides_and_reports_bad_files(tmp_path: Path) -> None:
    mine = Preset(name="terse", tab="math", system_prompt="Be brief.")
    (tmp_path / "terse.json").write_text(mine.to_json())
    override = shipped_presets()["math"].model_copy(update={"description": "my math"})
    (tmp_path / "math.json").write_text(override.to_json())
    (tmp_path / "broken.json").write_text(json.dumps({"name": "broken", "options": {"top_p": 0}}))

    catalog = load_catalog(tmp_path)

    assert catalog.get("terse").system_prompt == "Be brief."
    assert catalog.get("math").description == "my math"
    assert "broken" not in catalog.presets
    assert len(catalog.problems) == 1
    assert "broken.json" in catalog.problems[0]
    assert catalog.names("math")[:2] == ["math", "terse"]


def test_missing_folder_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    catalog = load_catalog(tmp_path / "nope")
    assert "reasoning" in catalog.presets
    assert "does not exist" in catalog.problems[0]
