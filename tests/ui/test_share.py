"""Share links: the query string holds everything and decoding drops only what is bad."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from app.share import ShareState, decode_query, encode_query


def params(query: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(query).query, keep_blank_values=True))


def test_round_trip_keeps_every_field() -> None:
    state = ShareState(
        tab="math",
        preset="math",
        backend="vllm@http://gpu:8000/v1",
        prompt="Compound interest on $5000 at 6% & 3 years?\nShow work.",
        system_prompt="Be exact.",
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        max_new_tokens=256,
        seed=7,
        tools=True,
    )
    assert decode_query(params(encode_query(state))) == state


def test_defaults_are_left_out_of_the_link() -> None:
    query = encode_query(ShareState(tab="coding", preset="coding"))
    assert query == "?tab=coding&preset=coding"


def test_bad_fields_are_dropped_and_named() -> None:
    state = decode_query(
        {"tab": "poetry", "temperature": "9", "top_k": "many", "tools": "maybe", "seed": "-3"}
    )
    assert state.tab == "reasoning"
    assert (state.temperature, state.top_k, state.tools, state.seed) == (None, None, None, None)
    text = " ".join(state.problems)
    for name in ("tab", "temperature", "top_k", "tools", "seed"):
        assert name in text


def test_overlong_prompt_is_cut_not_rejected() -> None:
    state = decode_query({"prompt": "x" * 9000})
    assert len(state.prompt) == 8000
    assert state.problems


def test_options_overrides_only_names_what_the_link_set() -> None:
    assert decode_query({"temperature": "0.1", "max_new_tokens": "64"}).options_overrides() == {
        "temperature": 0.1,
        "max_new_tokens": 64,
    }
