"""The Compare tab's pure helpers, and the real app's /compare API over HTTP (gradio_client)."""

from __future__ import annotations

import pytest

from app.compare_view import NO_OVERRIDE, lane_spec, pickers_for, timeline_frame
from compare.lanes import LaneSpecError
from compare.runcard import RunCard
from compare.runner import Comparison, Lane
from tests.compare.conftest import paced


def test_lane_pickers_round_trip_through_specs() -> None:
    labels = ["onnx", "vllm"]
    assert lane_spec("vllm", "phi", "temperature", 0.2) == "vllm:phi#temperature=0.2"
    assert lane_spec("onnx", "", "max_new_tokens", 64.0) == "onnx#max_new_tokens=64"
    assert lane_spec("ollama:m@h:11434", "ignored", NO_OVERRIDE, None) == "ollama:m@h:11434"
    assert lane_spec("", "x", NO_OVERRIDE, None) == ""
    with pytest.raises(LaneSpecError, match="give a value"):
        lane_spec("onnx", "", "seed", None)
    assert pickers_for("vllm:phi#temperature=0.2", labels) == ("vllm", "phi", "temperature", 0.2)
    assert pickers_for("ollama:m@h:11434", labels) == ("ollama:m@http://h:11434", "", NO_OVERRIDE, None)


async def test_timeline_frame_has_one_series_per_lane() -> None:
    lanes = [Lane(paced("a", "x y z", 0.0)), Lane(paced("b", "x y", 0.0))]
    result = await Comparison(lanes, prompt="hi").run()
    frame = timeline_frame(result)
    assert list(frame.columns) == ["seconds", "tokens", "lane"]
    assert frame.groupby("lane")["tokens"].max().to_dict() == {"1: a": 3, "2: b": 2}
    assert (frame.groupby("lane")["seconds"].min() == 0).all()


def test_compare_api_returns_the_run_card(registry) -> None:
    client_mod = pytest.importorskip("gradio_client")
    from tests.ui.conftest import running_app

    with running_app(registry=registry) as url:
        client = client_mod.Client(url, verbose=False)
        assert "/compare" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        data = client.predict(
            lanes=["fast", "slow#temperature=0"],
            prompt="What is 17*23?",
            preset="math",
            system_prompt=None,
            settings_override={"max_new_tokens": 64},
            runs=2,
            api_name="/compare",
        )
        card = RunCard.model_validate(data)
        assert card.runs == 2
        assert [lane.status for lane in card.lanes] == ["done", "done"]
        assert card.lanes[1].override == "temperature=0.0"
        assert card.options["max_new_tokens"] == 64
        assert card.lanes[0].verdict is not None
        assert card.lanes[0].verdict.verdict == "correct"
        with pytest.raises(Exception, match="2 to 4 lanes"):
            client.predict(lanes=["fast"], prompt="hi", api_name="/compare")


def test_a_saved_comparison_comes_back_or_says_why_not() -> None:
    from app.compare_view import restored_run

    assert restored_run(None) == (None, "")  # nothing kept: nothing to say
    restored, problem = restored_run({"prompt": "hi", "lanes": 2, "texts": ["a"]})
    assert restored is None and "cannot be shown" in problem
    restored, problem = restored_run(
        {"prompt": "hi", "lanes": 2, "texts": ["a", "b"], "notes": ["", ""], "summary": "", "share": "?q",
         "card_json": "{not json"}
    )  # fmt: skip
    assert restored is None and "cannot be shown" in problem
