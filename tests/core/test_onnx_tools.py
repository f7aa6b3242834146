import json

from backends.base import ToolSpec
from engines.onnx_tools import ToolCallParser, tool_guidance

AREA = ToolSpec(
    name="calculate_circle_area",
    description="area",
    parameters={"type": "object", "properties": {"radius": {"type": "number"}}, "required": ["radius"]},
)


def feed_all(parser: ToolCallParser, pieces: list[str]) -> str:
    return "".join(parser.feed(p) for p in pieces) + parser.flush()


def test_tagged_call_split_across_pieces_becomes_a_call() -> None:
    parser = ToolCallParser([AREA], "auto")
    shown = feed_all(
        parser,
        [
            "Let me compute. <tool",
            '_call>{"name": "calculate_circle_area", ',
            '"arguments": {"radius": 5}}</tool_call>',
        ],
    )
    assert shown == "Let me compute. "
    [call] = parser.calls()
    assert call.name == "calculate_circle_area" and call.arguments == {"radius": 5}


def test_malformed_or_unknown_call_stays_visible_and_is_not_a_call() -> None:
    parser = ToolCallParser([AREA], "auto")
    shown = feed_all(parser, ['<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>'])
    assert "rm_rf" in shown and parser.calls() == []
    parser = ToolCallParser([AREA], "auto")
    assert "radius" in feed_all(
        parser, ['<tool_call>{"name": "calculate_circle_area", "arguments": {"radius": ']
    )
    assert parser.calls() == []


def test_required_choice_is_constrained_to_the_tool_schemas() -> None:
    kind, data = tool_guidance([AREA], "required")
    schema = json.loads(data)
    assert kind == "json_schema"
    assert schema["properties"]["name"] == {"const": "calculate_circle_area"}
    assert schema["properties"]["arguments"]["additionalProperties"] is False
    assert tool_guidance([AREA], "auto") is None


def test_whole_json_output_is_one_call() -> None:
    parser = ToolCallParser([AREA], "required")
    assert feed_all(parser, ['{"name": "calculate_circle_area",', ' "arguments": {"radius": 2.5}}']) == ""
    assert parser.calls()[0].arguments == {"radius": 2.5}
