"""Loading sets: JSONL, CSV, the built-in ones, and bad files refused with their line number."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.sets import BUILTIN, SetError, load_builtin, load_path, parse_set


def test_builtin_sets_load_and_the_math_set_has_fifty_items_with_references() -> None:
    for name in BUILTIN:
        assert load_builtin(name).items
    math = load_builtin("math-word")
    assert len(math.items) >= 50
    assert all(item.reference for item in math.items)
    assert math.preset == "math"
    assert all(c.type == "json" for item in load_builtin("json-output").items for c in item.checks)


def test_jsonl_and_csv_sets_give_the_same_items(tmp_path: Path) -> None:
    jsonl = tmp_path / "s.jsonl"
    jsonl.write_text(
        '{"prompt": "2+2?", "reference": 4}\n\n'
        '{"prompt": "Capital of France?", "checks": [{"type": "contains", "value": "Paris"}]}\n'
    )
    csv = tmp_path / "s.csv"
    csv.write_text('prompt,reference,check,value\n2+2?,4,,\n"Capital of France?",,contains,Paris\n')
    a, b = load_path(jsonl), load_path(csv)
    assert a.items == b.items
    assert a.items[0].reference == "4"
    assert a.items[0].checks_for(preset_is_math=False)[0].type == "math"
    assert a.items[1].checks_for(preset_is_math=True)[0].value == "Paris"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"prompt": "a"}\n{"prompt": "b"\n', "line 2: not valid JSON"),
        ('{"prompt": "a"}\n\n{"prompt": "b", "url": "http://x"}\n', 'line 3: unknown field "url"'),
        ('{"prompt": "  "}\n', 'line 1: "prompt": the prompt is blank'),
        ('{"reference": "3"}\n', 'line 1: "prompt" is missing'),
        ('{"prompt": "a", "checks": [{"type": "regex", "value": "("}]}\n', "line 1:"),
        ('{"prompt": "a", "checks": [{"type": "exact"}]}\n', 'needs a non-empty "value"'),
        ('{"prompt": "a", "checks": [{"type": "run", "value": "x"}]}\n', "line 1:"),
        ("[1, 2]\n", "line 1: expected a JSON object"),
        ("", "no items"),
    ],
)
def test_a_bad_jsonl_set_is_refused_with_its_line(text: str, message: str) -> None:
    with pytest.raises(SetError, match=message.replace("(", r"\(")):
        parse_set(text)


def test_a_schema_may_not_point_outside_itself() -> None:
    remote = '{"prompt": "a", "checks": [{"type": "json", "schema": {"$ref": "https://evil/x.json"}}]}'
    with pytest.raises(SetError, match="refers outside itself"):
        parse_set(remote)
    local = (
        '{"prompt": "a", "checks": [{"type": "json", "schema": '
        '{"$defs": {"n": {"type": "integer"}}, "$ref": "#/$defs/n"}}]}'
    )
    assert parse_set(local).items[0].checks[0].json_schema is not None


def test_a_bad_csv_set_names_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text('prompt,check,value\n"ok",,\n"fine",regex,"(unclosed"\n')
    with pytest.raises(SetError, match="line 3"):
        load_path(bad)
    headless = tmp_path / "headless.csv"
    headless.write_text("question,answer\nwhat,that\n")
    with pytest.raises(SetError, match="prompt"):
        load_path(headless)
    folder = tmp_path / "columns.csv"
    folder.write_text("prompt,model\nhi,/etc\n")
    with pytest.raises(SetError, match="unknown column"):
        load_path(folder)
