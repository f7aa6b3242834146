"""Run cards (JSON round-trip, Markdown) and share links, built from real scripted comparisons."""

from __future__ import annotations

import json

import pytest

from backends.base import SamplingOptions
from backends.scripted import ScriptedBackend
from compare.runcard import RunCard
from compare.service import SetupError, prepare, run_card_for
from compare.share import ComparisonSetup, ShareLinkError, decode_setup, encode_setup, share_url
from compare.verdicts import LaneVerdict, agreement, same_answer
from presets import ExamplePrompt, Preset, PresetCatalog
from runtime.registry import BackendRegistry

MATH = Preset(
    name="math",
    tab="math",
    system_prompt="Solve step by step; end with the final answer.",
    options=SamplingOptions(temperature=0.0, max_new_tokens=256),
    examples=(ExamplePrompt(prompt="What is 17*23?", reference="391"),),
)
CATALOG = PresetCatalog(presets={"math": MATH})


def test_share_link_round_trip_keeps_the_whole_setup() -> None:
    setup = ComparisonSetup(
        lanes=["onnx", "ollama:qwen2.5:0.5b@http://localhost:11434#temperature=0.0", "vllm"],
        prompt="What is 17*23? Use & and = and # safely.",
        preset="math",
        system_prompt="Be terse.",
        options={"temperature": 0.2, "seed": None, "max_new_tokens": 128},
        runs=3,
        gold="391",
    )
    query = encode_setup(setup)
    assert "api_key" not in query
    assert query.startswith("tab=compare&lane=onnx&")
    assert decode_setup(query, known_labels=["vllm"]) == setup
    assert decode_setup(share_url(setup, "https://x.hf.space/?old=1"), known_labels=["vllm"]) == setup
    assert decode_setup({"lane": ["onnx", "onnx#seed=1"], "prompt": "hi"}).system_prompt is None


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("prompt=hi", "no lane"),
        ("lane=bogus&prompt=hi", "unknown lane"),
        ("lane=onnx&prompt=hi&temperature=hot", "not a number"),
        ("lane=onnx&prompt=hi&temperature=5", "temperature"),
        ("lane=onnx&prompt=hi&runs=0", "runs"),
        ("lane=onnx&lane=onnx&lane=onnx&lane=onnx&lane=onnx&prompt=hi", "at most 4"),
    ],
)
def test_bad_share_links_are_rejected_with_a_reason(query: str, message: str) -> None:
    with pytest.raises(ShareLinkError, match=message):
        decode_setup(query)


def test_prepare_applies_preset_then_explicit_settings(registry: BackendRegistry) -> None:
    setup = ComparisonSetup(
        ["fast", "slow#temperature=0.9"], "What is 17*23?", preset="math", options={"seed": 4}
    )
    prepared = prepare(setup, registry, CATALOG)
    assert prepared.system_prompt == MATH.system_prompt
    assert prepared.options == SamplingOptions(temperature=0.0, max_new_tokens=256, seed=4)
    assert prepared.gold == "391"
    assert [lane.backend.name for lane in prepared.lanes] == ["fast", "slow"]
    assert prepared.lanes[1].override is not None
    assert prepared.lanes[1].override.value == 0.9


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (ComparisonSetup(["fast"], "hi"), "2 to 4 lanes"),
        (ComparisonSetup(["fast", "slow"], " "), "prompt is empty"),
        (ComparisonSetup(["fast", "nope"], "hi"), "unknown lane 'nope'"),
        (ComparisonSetup(["fast", "slow"], "hi", preset="poetry"), "no preset named 'poetry'"),
        (ComparisonSetup(["fast", "slow"], "hi", options={"top_p": 0}), "top_p"),
        (ComparisonSetup(["fast", "slow"], "hi", runs=0), "runs"),
    ],
)
def test_bad_setups_fail_before_anything_runs(
    registry: BackendRegistry, setup: ComparisonSetup, message: str
) -> None:
    with pytest.raises(SetupError, match=message):
        prepare(setup, registry, CATALOG)
    for label in ("fast", "slow"):
        assert registry.get(label).requests == []  # type: ignore[attr-defined]


async def test_run_card_round_trip_and_markdown(registry: BackendRegistry) -> None:
    setup = ComparisonSetup(["fast", "slow#temperature=0.5"], "What is 17*23?", preset="math", runs=3)
    card = await run_card_for(setup, registry, CATALOG)
    assert RunCard.from_json(card.to_json()) == card
    data = json.loads(card.to_json())
    assert data["runs"] == 3
    assert data["prompt"] == "What is 17*23?"
    assert data["preset"] == "math"
    assert data["options"]["temperature"] == 0.0
    fast, slow = card.lanes
    assert fast.backend_kind == "scripted"
    assert fast.model == "scripted-model"
    assert fast.model_details == {"context_length": "2048"}
    assert slow.override == "temperature=0.5"
    assert slow.options["temperature"] == 0.5
    assert fast.status == "done"
    assert fast.runs_ok == 3
    assert fast.answer.startswith("The answer is 391")
    assert set(fast.stats) >= {"ttft_s", "decode_tokens_per_s", "completion_tokens", "total_s"}
    assert fast.stats["completion_tokens"].median == 10
    assert fast.stats["completion_tokens"].n == 3
    assert fast.stats["decode_tokens_per_s"].median > slow.stats["decode_tokens_per_s"].median
    assert card.wall_s is not None
    assert card.wall_s.n == 3
    assert fast.verdict is not None
    assert (fast.verdict.verdict, fast.verdict.answer) == ("correct", "391")
    assert slow.verdict is not None
    assert slow.verdict.verdict == "incorrect"
    assert card.answers_agree is False
    diff = card.diffs[0]
    assert (diff.a, diff.b, diff.identical, diff.word_index) == (0, 1, False, 3)
    assert decode_setup(card.share_query, known_labels=registry.labels()) == setup
    md = card.to_markdown()
    expected = ["# Comparison run card", "What is 17*23?", "| decode tokens/s |", "first differs at word 3"]
    expected += ["### Lane 2: slow [temperature=0.5]", "preset **math**", "lanes agree: **no**"]
    for part in expected:
        assert part in md, part


async def test_card_records_a_failed_lane(registry: BackendRegistry) -> None:
    broken = ScriptedBackend(label="broken", first_token_delay_s=5)
    registry.add(broken)
    card = await run_card_for(ComparisonSetup(["fast", "broken"], "hi"), registry, timeout_s=0.2)
    assert [lane.status for lane in card.lanes] == ["done", "timeout"]
    assert card.lanes[1].runs_ok == 0
    assert card.lanes[1].stats == {}
    assert card.lanes[1].metrics is None
    assert "timeout: no complete answer" in card.to_markdown()
    assert card.lanes[0].verdict is None, "no math preset and no reference: no verdicts"


def test_agreement_compares_values_not_text() -> None:
    found = [LaneVerdict("correct", "0.5"), LaneVerdict("correct", "\\frac{1}{2}"), None]
    assert agreement(found) is True
    assert agreement([LaneVerdict("correct", "2.4 h"), LaneVerdict("incorrect", "3")]) is False
    assert agreement([LaneVerdict("correct", "2"), None]) is None
    assert same_answer("Paris", " paris ")


def test_lanes_on_one_engine_are_noted_from_what_the_runner_recorded() -> None:
    from compare.runcard import LaneCard, LaneMetrics, ScheduleCard, schedule_notes

    def lane(index: int, backend: str, peers: list[int], batch: float | None) -> LaneCard:
        metrics = LaneMetrics(
            ttft_s=0.1,
            decode_tokens_per_s=50.0,
            prompt_tokens=5,
            completion_tokens=9,
            total_s=0.3,
            finish_reason="stop",
            server={} if batch is None else {"mean_batch": batch},
        )
        schedule = ScheduleCard(mode="shared" if peers else "remote", cores=2, engine_peers=peers)
        return LaneCard(
            index=index, title=backend, spec=backend, backend=backend, backend_kind="any", model="m",
            options={}, status="done", runs_ok=1, metrics=metrics, schedule=schedule,
        )  # fmt: skip

    batched = [lane(0, "onnx", [1], 1.9), lane(1, "onnx", [0], 2.0), lane(2, "v", [], None)]
    assert schedule_notes(batched, [[[0, 1]]]) == [
        "Lanes 1 and 2 shared the in-process engine `onnx`: they decoded in one batch (mean batch 2.0), "
        "so each lane's tokens/s is its share."
    ]
    queued = [lane(0, "gguf", [1], 1.0), lane(1, "gguf", [0], 1.0)]
    assert schedule_notes(queued, [[[0, 1]]]) == [
        "Lanes 1 and 2 shared the in-process engine `gguf`: they took turns on it (mean batch 1.0), "
        "so a lane's TTFT includes waiting for the other."
    ]
    silent = [lane(0, "x", [1], None), lane(1, "x", [0], None)]
    assert "ran at the same time on it (it reports no batch figure)" in schedule_notes(silent, [[[0, 1]]])[0]
    assert schedule_notes([lane(0, "v", [], None), lane(1, "w", [], None)], [[]]) == []
