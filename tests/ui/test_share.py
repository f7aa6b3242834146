"""Share links: the query string holds every chat setting and decoding drops only what is bad."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from app.share import ShareState, decode_query, encode_query
from runtime.panel_fields import PanelValues, panel_fields


def params(query: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(query).query, keep_blank_values=True))


EVERY_SETTING = {
    "system_prompt": "Be exact.",
    "temperature": 0.2,
    "top_p": 0.9,
    "top_k": 40,
    "max_new_tokens": 256,
    "seed": 7,
    "tools": True,
    "json_output": True,
    "json_schema": '{\n  "type": "object"\n}',
}


def test_round_trip_keeps_every_field() -> None:
    assert set(EVERY_SETTING) == {f.name for f in panel_fields()}  # a new field belongs here too
    state = ShareState(
        tab="math",
        preset="math",
        backend="vllm@http://gpu:8000/v1",
        prompt="Compound interest on $5000 at 6% & 3 years?\nShow work.",
        settings=EVERY_SETTING,
    )
    assert decode_query(params(encode_query(state))) == state


def test_a_random_seed_survives_the_link() -> None:
    """-1 (random) is written, so a preset's fixed seed does not come back on opening."""
    query = encode_query(ShareState(tab="math", settings={"seed": -1}))
    assert params(query)["seed"] == "none"
    assert decode_query(params(query)).settings == {"seed": -1}


def test_defaults_are_left_out_of_the_link() -> None:
    query = encode_query(ShareState(tab="coding", preset="coding"))
    assert query == "?tab=coding&preset=coding"


def test_bad_fields_are_dropped_and_named() -> None:
    state = decode_query(
        {
            "tab": "poetry",
            "temperature": "9",
            "top_k": "many",
            "tools": "maybe",
            "seed": "-3",
            "json": "1",
            "schema": "[1, 2]",
        }
    )
    assert state.tab == "reasoning"
    assert state.settings == {"json_output": True}
    text = " ".join(state.problems)
    for name in ("tab", "temperature", "top_k", "tools", "seed", "schema"):
        assert name in text


def test_overlong_prompt_is_cut_not_rejected() -> None:
    state = decode_query({"prompt": "x" * 9000})
    assert len(state.prompt) == 8000
    assert state.problems


def test_the_link_sets_only_what_it_names() -> None:
    state = decode_query({"temperature": "0.1", "max_new_tokens": "64"})
    assert state.settings == {"temperature": 0.1, "max_new_tokens": 64}
    panel = PanelValues(top_k=5).replace(**state.settings)
    assert (panel.temperature, panel.max_new_tokens, panel.top_k) == (0.1, 64, 5)
