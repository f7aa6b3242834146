"""JSON output and logprobs for the in-process model: which guidance a request decodes under,
the schemas refused before decoding, and log-probabilities from logits."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from backends.base import ChatRequest, Message, SamplingOptions, ToolSpec
from engines.logprobs import token_logprob
from engines.onnx_tools import SchemaError, json_guidance, request_guidance, schema_problem

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
TOOL = ToolSpec(name="f", parameters={"type": "object", "properties": {"x": {"type": "string"}}})


def request(tool_choice: str = "auto", tools: tuple[ToolSpec, ...] = (), **options: object) -> ChatRequest:
    return ChatRequest(
        messages=(Message(role="user", content="hi"),),
        options=SamplingOptions(**options),  # type: ignore[arg-type]
        tools=tools,
        tool_choice=tool_choice,
    )


def test_json_guidance_follows_the_setting() -> None:
    assert json_guidance(SamplingOptions()) is None
    assert json_guidance(SamplingOptions(json_output=True)) == ("json_schema", '{"type": "object"}')
    kind, data = json_guidance(SamplingOptions(json_output=True, json_schema=SCHEMA)) or ("", "")
    assert (kind, json.loads(data)) == ("json_schema", SCHEMA)


def test_a_forced_tool_call_wins_over_json_output() -> None:
    forced = request("required", (TOOL,), json_output=True, json_schema=SCHEMA)
    assert json.loads(request_guidance(forced)[1])["properties"]["name"] == {"const": "f"}  # type: ignore[index]
    auto = request("auto", (TOOL,), json_output=True, json_schema=SCHEMA)
    assert json.loads(request_guidance(auto)[1]) == SCHEMA  # type: ignore[index]
    assert request_guidance(request()) is None


def deep(levels: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


@pytest.mark.parametrize(
    ("schema", "words"),
    [
        ({"$ref": "#"}, "loops back"),
        (
            {"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}},
            "loops back",
        ),
        ({"$defs": {"a": {"allOf": [{"$ref": "#/$defs/a"}]}}, "$ref": "#/$defs/a"}, "loops back"),
        ({"$ref": "https://example.com/s.json"}, "only references inside the schema"),
        (deep(40), "nested more than 64 levels"),
        (False, "accepts no value"),
        ([1], "must be an object"),
    ],
)
def test_schemas_no_answer_could_follow(schema: object, words: str) -> None:
    assert words in (schema_problem(schema) or "")


@pytest.mark.parametrize(
    "schema",
    [
        SCHEMA,
        {
            "$ref": "#/$defs/n",
            "$defs": {"n": {"type": "object", "properties": {"next": {"$ref": "#/$defs/n"}}}},
        },
        {"anyOf": [{"$ref": "#"}, {"type": "string"}]},
        deep(20),
        True,
    ],
    ids=["plain", "recursive-through-properties", "recursive-with-a-way-out", "20-deep", "true"],
)
def test_usable_schemas_pass(schema: object) -> None:
    assert schema_problem(schema) is None


def test_request_guidance_raises_a_schema_error_for_tools_and_json() -> None:
    with pytest.raises(SchemaError, match="response_format: the \\$ref"):
        request_guidance(request(json_output=True, json_schema={"$ref": "#"}))
    looping = ToolSpec(name="g", parameters={"$ref": "#"})
    with pytest.raises(SchemaError, match="tool 'g' parameters"):
        request_guidance(request("g", (looping,)))


def test_token_logprob_is_a_log_softmax_with_sorted_alternatives() -> None:
    np = pytest.importorskip("numpy")
    row = np.array([1.0, 3.0, 2.0, -1.0], dtype=np.float32)
    entry = token_logprob(row, 2, 3, lambda i: f"t{i}")
    total = math.log(sum(math.exp(v) for v in (1.0, 3.0, 2.0, -1.0)))
    assert entry.token == "t2"
    assert entry.logprob == pytest.approx(2.0 - total)
    assert [t for t, _ in entry.top] == ["t1", "t2", "t0"]
    assert entry.top[0][1] == pytest.approx(3.0 - total)
    assert token_logprob(row, 0, 0, str).top == ()


@pytest.mark.model
def test_native_logits_are_what_greedy_decoding_picks_from(default_model_dir: Path) -> None:
    import onnxruntime_genai as og

    from engines import oga_native

    ids = [int(t) for t in og.Tokenizer(str(default_model_dir)).encode("The capital of France is")]
    model = oga_native.Model(default_model_dir)
    params = oga_native.GeneratorParams(model)
    params.set_search_options(max_length=len(ids) + 6, do_sample=False)
    generator = oga_native.Generator(model, params)
    generator.append_tokens(ids)
    for _ in range(5):
        logits = generator.logits()
        assert logits.shape[0] == 1 and logits.shape[1] > 1000
        generator.generate_next_token()
        assert generator.next_token() == int(logits[0].argmax())
