"""The chat-panel table: a new sampling setting is one row (registered here by a fixture), and the
chat tab, Compare, the /chat settings, share links and the chat store all pick it up; the backend
request carries it (``stop`` is a SamplingOptions field the panel did not show before)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import pytest

from app.chat_store import setting_names, settings_of
from app.chats import ChatRecord
from app.share import ShareState, decode_query, encode_query
from app.turns import ChatService
from app.ui import build_app
from backends.scripted import ScriptedBackend, ScriptedReply
from compare.share import ComparisonSetup, decode_setup, encode_setup
from presets import load_catalog
from runtime.errors import InputError
from runtime.panel_fields import (
    Control,
    PanelField,
    PanelValues,
    panel_fields,
    parse_api_settings,
    registered,
)
from runtime.registry import BackendRegistry
from runtime.settings import Settings

STOP_ROW = PanelField(
    "stop",
    "lines",
    Control("textbox", "Stop strings (one per line)", lines=2),
    "",
    "stop",
    api_limits={"max_length": 4},
)


@pytest.fixture
def stop_row() -> Iterator[PanelField]:
    with registered(STOP_ROW) as row:
        yield row
    assert "stop" not in [f.name for f in panel_fields()]


def _service() -> tuple[ChatService, ScriptedBackend]:
    backend = ScriptedBackend(replies=[ScriptedReply(("4",))] * 2)
    config = Settings()
    return ChatService(config, BackendRegistry.with_backends(config, backend), load_catalog()), backend


def _elem_ids(settings: Settings) -> set[str]:
    registry = BackendRegistry.with_backends(settings, ScriptedBackend())
    demo = build_app(settings, registry)
    try:
        return {b.elem_id for b in demo.blocks.values() if getattr(b, "elem_id", None)}
    finally:
        demo.close()


def test_the_chat_tab_and_compare_show_the_new_row(stop_row: PanelField) -> None:
    ids = _elem_ids(Settings())
    assert {"stop-reasoning", "stop-coding", "stop-math", "stop-cmp"} <= ids
    assert {"temperature-math", "json-schema-math", "top-k-cmp"} <= ids  # the table's other rows


def test_the_panel_turns_it_into_the_backend_request(stop_row: PanelField) -> None:
    service, backend = _service()
    panel = PanelValues.of(load_catalog().presets["math"]).replace(stop="END\n###")
    assert panel.as_tuple()[-1] == "END\n###"  # the panel's controls come in table order

    async def turn() -> None:
        async for _history in service.respond("2+2?", [], "scripted", panel):
            pass

    asyncio.run(turn())
    assert backend.requests[-1].options.stop == ("END", "###")


def test_the_chat_api_takes_it_by_name_with_its_bounds(stop_row: PanelField) -> None:
    assert parse_api_settings({"stop": ["END"], "temperature": 0}) == {"stop": ["END"], "temperature": 0}
    with pytest.raises(InputError, match="stop"):
        parse_api_settings({"stop": ["a", "b", "c", "d", "e"]})
    service, _backend = _service()
    _prompt, panel, options = service.api_request("2+2?", "math", "scripted", {"stop": ["END"]})
    assert (panel.stop, options.stop) == (["END"], ("END",))


def test_share_links_carry_it(stop_row: PanelField) -> None:
    query = encode_query(ShareState(tab="math", settings={"stop": "END\n###", "temperature": 0.2}))
    assert decode_query(dict(parse_qsl(query[1:]))).settings == {"stop": "END\n###", "temperature": 0.2}
    setup = ComparisonSetup(["onnx", "vllm"], "x", options={"stop": ("END",)})
    assert decode_setup(encode_setup(setup), known_labels=["onnx", "vllm"]).options == {"stop": ("END",)}


def test_the_chat_store_keeps_and_restores_it(stop_row: PanelField) -> None:
    assert setting_names()[-1] == "stop"
    saved: dict[str, Any] = {"temperature": 0.1, "stop": "END"}
    record = ChatRecord(tab="math", preset="math", backend="scripted", settings=saved)
    restored, note = settings_of(record, ["scripted"], ["math"], 4096)
    values = dict(zip(setting_names(), restored[2:], strict=True))
    assert (values["stop"], values["temperature"], note) == ("END", 0.1, "")


def test_panel_values_by_position_or_name_with_clear_errors() -> None:
    by_position = PanelValues("Be brief.", 0.3, 0.8, 0, 128, -1, False)
    assert by_position == PanelValues(
        system_prompt="Be brief.", temperature=0.3, top_p=0.8, max_new_tokens=128
    )
    assert by_position.options(64).max_new_tokens == 64  # the deployment's cap
    assert by_position.options(4096).seed is None  # -1: a random seed
    assert by_position.replace(json_output=True, json_schema='{"type": "object"}').options(9).json_schema == {
        "type": "object"
    }
    assert by_position.replace(json_schema="{nope").options(9).json_schema is None  # off: unused
    with pytest.raises(TypeError, match="no panel field named colour"):
        PanelValues(colour="red")
    with pytest.raises(TypeError, match="at most"):
        PanelValues(*range(len(panel_fields()) + 1))
