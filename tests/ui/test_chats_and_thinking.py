"""Pure parts of the chat: <think> splitting, the browser's chat store, chat files."""

from __future__ import annotations

import json

import pytest

from app.chats import (
    ChatImportError,
    ChatRecord,
    StoreFull,
    choices,
    history_of,
    load_store,
    messages_of,
    parse_chat_file,
    to_json,
    to_markdown,
    turns_of,
    unreadable_note,
    upsert,
)
from app.render import AnswerView, to_model_messages
from app.thinking import ThinkSplitter
from backends.base import Done, Metrics, ReasoningDelta, TextDelta


def split(chunks: list[str]) -> list[tuple[str, str]]:
    splitter, pieces = ThinkSplitter(), []
    for chunk in chunks:
        pieces += splitter.feed(chunk)
    pieces += splitter.flush()
    merged: list[tuple[str, str]] = []
    for kind, text in pieces:
        if merged and merged[-1][0] == kind:
            merged[-1] = (kind, merged[-1][1] + text)
        else:
            merged.append((kind, text))
    return merged


@pytest.mark.parametrize(
    "chunks",
    [
        ["<think>a b</think>answer"],
        ["<", "think", ">a b<", "/think>", "answer"],
        list("<think>a b</think>answer"),
    ],
)
def test_think_tags_split_wherever_the_chunks_cut_them(chunks: list[str]) -> None:
    assert split(chunks) == [("reasoning", "a b"), ("text", "answer")]


def test_text_that_only_looks_like_a_tag_stays_text() -> None:
    assert split(["x < y and <thin", "g> is fine"]) == [("text", "x < y and <thing> is fine")]
    assert split(["the end <thi"]) == [("text", "the end <thi")]  # an unfinished tag is text


def metrics() -> Metrics:
    return Metrics("onnx", "m", 5, 3, 0.01, 0.1, 20.0, "stop")


def test_thinking_is_a_timed_section_kept_out_of_the_answer_and_the_next_prompt() -> None:
    view = AnswerView()
    for event in (TextDelta("<think>carry the 1"), TextDelta("</think>It is 12."), Done(metrics())):
        view.apply(event)
    assert view.answer == "It is 12."
    thinking = view.parts[0]
    assert thinking.content == "carry the 1"
    assert thinking.metadata["title"] == "Thinking" and thinking.metadata["status"] == "done"
    assert thinking.metadata["duration"] >= 0
    history = [{"role": "user", "content": "7+5?"}, *view.messages()]
    sent = to_model_messages("", history)
    assert [(m.role, m.content) for m in sent] == [("user", "7+5?"), ("assistant", "It is 12.")]


def test_reasoning_deltas_render_the_same_section() -> None:
    view = AnswerView()
    for event in (ReasoningDelta("hmm"), TextDelta("Yes."), Done(metrics())):
        view.apply(event)
    assert [p.metadata.get("title") if p.metadata else None for p in view.parts][:2] == ["Thinking", None]
    assert view.answer == "Yes."


HISTORY = [
    {"role": "user", "content": "2+2?"},
    {"role": "assistant", "content": "pondering", "metadata": {"title": "Thinking", "status": "done"}},
    {"role": "assistant", "content": "4"},
    {"role": "assistant", "content": "", "metadata": {"title": "onnx · m"}},
]
TURNS = [{"metrics": {"model": "m", "completion_tokens": 1}, "verification": {"final": "correct"}}]


def test_a_chat_round_trips_through_its_json_file() -> None:
    record = ChatRecord(title="Sums", backend="onnx", model="m", messages=messages_of(HISTORY, TURNS))
    answer = record.messages[2]
    assert answer.metrics == TURNS[0]["metrics"] and answer.verification == {"final": "correct"}
    again = parse_chat_file(to_json(record))
    assert history_of(again) == HISTORY
    assert turns_of(again) == TURNS
    assert again.id != record.id  # an import is a new chat, never an overwrite
    assert "*Verification: correct*" in to_markdown(record)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "not JSON"),
        ('{"title": "x"}', "not an exported chat"),
        (
            '{"format": "slm-playground-chat", "messages": [{"role": "wizard", "content": ""}]}',
            "messages.0.role",
        ),
        ('{"format": "slm-playground-chat", "colour": 1}', "colour"),
    ],
)
def test_a_malformed_chat_file_is_refused_with_the_reason(raw: str, message: str) -> None:
    with pytest.raises(ChatImportError, match=message):
        parse_chat_file(raw)


def test_the_store_keeps_newest_first_and_refuses_past_its_cap() -> None:
    first = ChatRecord(title="one", messages=messages_of(HISTORY, TURNS))
    store = upsert(None, first, cap_kb=100)
    second = ChatRecord(title="two", messages=messages_of(HISTORY, []))
    store = upsert(store, second, cap_kb=100)
    chats, current = load_store(store)
    assert [c.title for c in chats] == ["two", "one"] and current == second.id
    assert [label.split(" · ")[0] for label, _ in choices(store)] == ["two", "one"]
    big = ChatRecord(title="big", messages=messages_of([{"role": "user", "content": "x" * 150_000}], []))
    with pytest.raises(StoreFull, match=r"full \(\d+ KB of 100 KB\).*export"):
        upsert(store, big, cap_kb=100)
    assert json.loads(json.dumps(store)) == store  # what BrowserState keeps is plain JSON


def test_a_chat_that_no_longer_validates_is_named_with_why_and_kept() -> None:
    good = ChatRecord(title="good", messages=messages_of(HISTORY, TURNS))
    store = upsert(None, good, cap_kb=100)
    damaged = {**good.model_dump(mode="json"), "id": "d1", "title": "damaged", "version": 9}
    store["chats"].append(damaged)
    chats, _ = load_store(store)
    assert [c.title for c in chats] == ["good"]
    note = unreadable_note(store)
    assert note.startswith("⚠ 1 saved chat could not be opened: **damaged** (version")
    later = upsert(store, ChatRecord(title="new"), cap_kb=100)  # the next save keeps it
    assert damaged in later["chats"] and unreadable_note(later) == note


def test_a_long_answer_with_every_kind_of_section_saves_and_comes_back() -> None:
    answer = "Step: 6*6*6 = 216, $3 each. " * 20_000  # ~560 KB of text
    history = [
        {"role": "user", "content": "Long one?"},
        {"role": "assistant", "content": "hmm", "metadata": {"title": "Thinking", "status": "done"}},
        {"role": "assistant", "content": "**Result:** 4", "metadata": {"title": "Tool: calc({})"}},
        {"role": "assistant", "content": answer},
        {"role": "assistant", "content": "", "metadata": {"title": "✓ Verification: correct"}},
    ]
    turns = [{"metrics": {"model": "m"}, "verification": {"final": "correct", "claims": []}}]
    record = ChatRecord(title="long", messages=messages_of(history, turns))
    store = upsert(None, record, cap_kb=1000)
    (back,), current = load_store(json.loads(json.dumps(store)))
    assert current == record.id and history_of(back) == history and turns_of(back) == turns


def test_json_output_and_schema_round_trip_through_a_preset_file() -> None:
    from app.preset_actions import preset_from_panel
    from app.turns import PanelValues
    from presets import load_catalog, parse_preset
    from runtime.errors import InputError

    base = load_catalog(None).for_tab("math")
    schema = '{"type": "object", "properties": {"answer": {"type": "number"}}}'
    panel = PanelValues(*PanelValues.of(base).as_tuple()[:7], True, schema)
    saved = parse_preset(preset_from_panel("json math", base, panel, cap=4096).to_json(), source="test")
    again = PanelValues.of(saved)
    assert again.json_output is True
    assert json.loads(again.json_schema) == json.loads(schema)
    assert again.options(4096).json_schema == {"type": "object", "properties": {"answer": {"type": "number"}}}
    with pytest.raises(InputError, match="json_schema is not valid JSON"):
        PanelValues(*panel.as_tuple()[:8], "{nope").options(4096)
    assert PanelValues(*panel.as_tuple()[:7], False, "{nope").options(4096).json_schema is None  # off: unused
