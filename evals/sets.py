"""Prompt sets: JSONL or CSV files, or the team-written sets shipped with the package.

Each item is a prompt with an optional reference answer and optional checks::

    {"prompt": "A shop sells 3 pens for $4. How much do 12 pens cost?", "reference": "16"}
    {"prompt": "Capital of France? One word.", "checks": [{"type": "exact", "value": "Paris"}]}
    {"prompt": "...", "checks": [{"type": "json", "schema": {"type": "object", ...}}]}

CSV has the columns ``prompt`` (required), ``reference``, ``check`` (math|exact|contains|regex|
json) and ``value`` (the expected text, pattern or, for json, the schema as JSON).

An item holds text and checks only: unknown keys are refused, so nothing in a file can name a
backend, a URL or a folder; a JSON schema may only refer inside itself (``$ref: "#/..."``).
A bad file is refused whole with the line number and what is wrong, before anything runs.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

MAX_FILE_BYTES = 2_000_000
MAX_PATTERN_CHARS = 300
CheckType = Literal["math", "exact", "contains", "regex", "json"]


class SetError(ValueError):
    """A set that cannot be used; the message names the line and what is wrong."""


class Check(BaseModel):
    """One test an answer must pass. ``value`` is the expected text (exact/contains), the pattern
    (regex) or, for math, the reference (default: the item's); ``schema`` is for json."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: CheckType
    value: str | None = Field(None, max_length=MAX_PATTERN_CHARS)
    json_schema: dict[str, Any] | None = Field(None, alias="schema")

    @model_validator(mode="after")
    def _complete(self) -> Check:
        if self.type in ("exact", "contains", "regex") and not (self.value or "").strip():
            raise ValueError(f'a "{self.type}" check needs a non-empty "value"')
        if self.type == "regex":
            try:
                re.compile(self.value or "")
            except re.error as exc:
                raise ValueError(f"the regex {self.value!r} does not compile: {exc}") from None
        if self.type == "json":
            _check_schema(self.json_schema or {"type": "object"})
        elif self.json_schema is not None:
            raise ValueError(f'"schema" belongs to json checks, not {self.type}')
        return self

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = Field(min_length=1)
    reference: str | None = Field(None, max_length=500)
    checks: tuple[Check, ...] = Field((), max_length=8)
    id: str | None = Field(None, max_length=80)

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the prompt is blank")
        return value.strip()

    @field_validator("reference", mode="before")
    @classmethod
    def _reference_text(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return None if isinstance(value, str) and not value.strip() else value

    def checks_for(self, preset_is_math: bool) -> tuple[Check, ...]:
        """The checks that grade this item: its own, else math when it has a reference or the
        preset is math, else none (the answer is then unverifiable)."""
        if self.checks:
            return self.checks
        if self.reference is not None or preset_is_math:
            return (Check(type="math"),)
        return ()


@dataclass(frozen=True)
class EvalSet:
    name: str
    items: tuple[Item, ...]
    sha256: str
    origin: Literal["builtin", "file", "inline"]
    preset: str = ""
    """The preset the set was written for (built-in sets); empty: the caller chooses."""

    def limited(self, limit: int | None) -> EvalSet:
        if limit is None or limit >= len(self.items):
            return self
        return EvalSet(self.name, self.items[:limit], self.sha256, self.origin, self.preset)


BUILTIN: dict[str, tuple[str, str, str]] = {
    # name: (file in evals/data, preset, description)
    "math-word": ("math_word.jsonl", "math", "60 arithmetic word problems with references (sympy-checked)"),
    "json-output": ("json_output.jsonl", "coding", "12 tasks whose answer must be JSON for a schema"),
    "short-reasoning": ("short_reasoning.jsonl", "reasoning", "16 short questions with one-word answers"),
}


def builtin_names() -> list[str]:
    return list(BUILTIN)


def load_builtin(name: str) -> EvalSet:
    if name not in BUILTIN:
        raise SetError(f"no built-in set {name!r}; choose one of: {', '.join(BUILTIN)}")
    file, preset, _ = BUILTIN[name]
    text = resources.files("evals").joinpath("data", file).read_text(encoding="utf-8")
    return parse_set(text, name=name, origin="builtin", fmt="jsonl", preset=preset)


def load_path(path: str | Path, *, name: str | None = None) -> EvalSet:
    """A set from a local file (the CLI, or a file the browser uploaded); .csv is CSV, else JSONL."""
    file = Path(path)
    try:
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SetError(f"{file.name}: {size:,} bytes; a set file may have at most {MAX_FILE_BYTES:,}")
        data = file.read_bytes()
    except OSError as exc:
        raise SetError(f"cannot read {file.name}: {exc.strerror or exc}") from None
    fmt: Literal["jsonl", "csv"] = "csv" if file.suffix.lower() == ".csv" else "jsonl"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SetError(f"line {line}: not UTF-8 text") from None
    return parse_set(text, name=name or file.stem, origin="file", fmt=fmt)


def resolve_set(spec: str) -> EvalSet:
    """The CLI's SET: a built-in name, else a local file path."""
    if spec in BUILTIN:
        return load_builtin(spec)
    if not Path(spec).is_file():
        raise SetError(f"{spec!r} is neither a built-in set ({', '.join(BUILTIN)}) nor a file")
    return load_path(spec)


def parse_set(
    text: str,
    *,
    name: str = "inline",
    origin: Literal["builtin", "file", "inline"] = "inline",
    fmt: Literal["jsonl", "csv"] = "jsonl",
    preset: str = "",
) -> EvalSet:
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise SetError(f"the set is larger than {MAX_FILE_BYTES:,} bytes")
    rows = _csv_rows(text) if fmt == "csv" else _jsonl_rows(text)
    items = tuple(_item(line, row) for line, row in rows)
    if not items:
        raise SetError("the set has no items (one JSON object per line, or CSV with a prompt column)")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return EvalSet(name, items, digest, origin, preset)


def _jsonl_rows(text: str) -> list[tuple[int, Any]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise SetError(f"line {number}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    return rows


def _csv_rows(text: str) -> list[tuple[int, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip().lower() for c in reader.fieldnames or []]
    if "prompt" not in columns:
        raise SetError("line 1: a CSV set needs a header with a 'prompt' column")
    unknown = sorted(set(columns) - {"prompt", "reference", "check", "value", "id"})
    if unknown:
        raise SetError(f"line 1: unknown column(s) {', '.join(unknown)}; use prompt, reference, check, value")
    rows = []
    try:
        for raw in reader:
            row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
            if not any(row.values()):
                continue
            rows.append((reader.line_num, _csv_item(reader.line_num, row)))
    except csv.Error as exc:
        raise SetError(f"line {reader.line_num}: {exc}") from None
    return rows


def _csv_item(line: int, row: dict[str, str]) -> dict[str, Any]:
    item: dict[str, Any] = {"prompt": row.get("prompt", "")}
    for key in ("reference", "id"):
        if row.get(key):
            item[key] = row[key]
    check, value = row.get("check", ""), row.get("value", "")
    if check == "json":
        try:
            schema = json.loads(value) if value else {"type": "object"}
        except json.JSONDecodeError as exc:
            raise SetError(f"line {line}: the json check's value is not a JSON schema ({exc.msg})") from None
        item["checks"] = [{"type": "json", "schema": schema}]
    elif check:
        item["checks"] = [{"type": check, "value": value or None}]
    return item


def _item(line: int, row: Any) -> Item:
    if not isinstance(row, dict):
        raise SetError(f'line {line}: expected a JSON object with a "prompt", got {type(row).__name__}')
    try:
        return Item.model_validate(row)
    except ValidationError as exc:
        raise SetError(f"line {line}: {_describe(exc)}") from None


def _describe(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"] if p != "__root__")
    if error["type"] == "extra_forbidden":
        return f'unknown field "{where}"; an item has prompt, reference, checks and id only'
    if error["type"] == "missing":
        return f'"{where}" is missing'
    message = str(error["msg"]).removeprefix("Value error, ")
    return f'"{where}": {message}' if where else message


def _check_schema(schema: Any) -> None:
    from jsonschema import Draft202012Validator, SchemaError

    if not isinstance(schema, dict):
        raise ValueError("a json check's schema must be a JSON object")
    for ref in _refs(schema):
        if not ref.startswith("#"):
            raise ValueError(f'the schema refers outside itself ({ref!r}); only "#/..." references')
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"not a valid JSON schema: {exc.message}") from None


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [str(v) for k, v in node.items() if k in ("$ref", "$dynamicRef", "$recursiveRef")]
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []
