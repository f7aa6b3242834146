"""bench concurrency's measuring and reporting, against the scripted engine server (no model)."""

from __future__ import annotations

import httpx
import pytest

from backends.scripted import ScriptedBackend, ScriptedReply
from bench import concurrency
from serve.server import create_app
from serve.threaded import ServerThread


async def test_a_row_of_streams_through_an_openai_server() -> None:
    backend = ScriptedBackend(delay_s=0.003)
    backend.enqueue(*(ScriptedReply(chunks=tuple(f"w{i} " for i in range(6))) for _ in range(64)))
    with ServerThread(create_app(backend, model_id="m", max_concurrency=4)) as server:
        base = f"{server.base_url}/v1"
        served = concurrency.Served(
            "scripted", base, lambda h, i, n: concurrency.openai_stream(h, base, "m", i, n), None
        )
        rows = await concurrency.measure_rows(served, [1, 4], 16, repeats=1)
    assert [r["streams"] for r in rows] == [1, 4]
    row = rows[1]
    # every row serves the same work: one round, the 8 prompts four times, 4 clients at a time
    assert row["completed"] == "32/32" and not row["errors"]
    assert row["agg"] > 0 and row["per_request"] > 0
    assert 0 < row["p50"] <= row["p95"] <= row["max"]
    assert 0 < row["burst_p95"] <= row["max"]
    assert row["rss"] != row["rss"]  # no process of its own: no RSS figure
    assert row["prompt_share"] != row["prompt_share"]  # no /metrics asked: no graph figures
    assert len(backend.requests) == 64  # both rows' rounds
    # each request is new to the server: only the system prompt repeats
    questions = {r.messages[-1].content for r in backend.requests}
    assert len(questions) == 64


class CountingGraph(ScriptedBackend):
    """Reports graph counters the way the ONNX engine does, growing with every request: 0.03 s of
    prompt (9 tokens) and 0.09 s of decoding (3 steps of 2 rows) each, after earlier work of
    other proportions (a round's figures are what grew during it)."""

    def stats(self) -> dict[str, float]:
        n = float(len(self.requests))
        return {
            "graph_prompt_seconds": 5.0 + 0.03 * n,
            "graph_prompt_tokens": 100 + 9 * n,
            "graph_decode_seconds": 0.5 + 0.09 * n,
            "graph_decode_steps": 7 + 3 * n,
            "graph_decode_rows": 7 + 6 * n,
        }


async def test_the_engine_rows_say_where_its_graph_time_went() -> None:
    backend = CountingGraph()
    backend.enqueue(*(ScriptedReply(chunks=("a ", "b")) for _ in range(32)))
    with ServerThread(create_app(backend, model_id="m", max_concurrency=2)) as server:
        base = f"{server.base_url}/v1"
        send = lambda h, i, n: concurrency.openai_stream(h, base, "m", i, n)  # noqa: E731
        served = concurrency.Served("engine", base, send, None, metrics_url=f"{server.base_url}/metrics")
        (row,) = await concurrency.measure_rows(served, [2], 4, repeats=1)
    assert row["completed"] == "32/32"
    assert row["prompt_share"] == pytest.approx(0.25)  # 0.03 of 0.12 s a request
    assert row["rows_per_step"] == pytest.approx(2.0)
    assert "25%" in concurrency._table([row]) and "2.00" in concurrency._table([row])


def test_graph_counters_are_read_from_the_engines_metrics_page() -> None:
    from engines.onnx_jobs import GraphWork
    from serve.metrics import ENGINE_COUNTERS, engine_metrics

    assert set(GraphWork().counters()) == set(ENGINE_COUNTERS)  # every count the engine keeps is shown

    stats = {"batch_size": 8.0, "graph_prompt_seconds": 1.75, "graph_decode_rows": 1948.0}
    page = '# HELP x\nslm_engine:num_requests_running{model_name="m"} 3\n' + engine_metrics("m", stats)
    assert "# TYPE slm_engine:graph_decode_rows_total counter" in page
    assert concurrency.graph_counters(page) == {"graph_prompt_seconds": 1.75, "graph_decode_rows": 1948.0}
    assert concurrency.graph_counters('vllm:num_requests_running{model_name="m"} 2.0\n') == {}


async def test_the_rows_sample_as_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(concurrency, "SAMPLING", {"temperature": 0.3, "top_p": 0.8})
    backend = ScriptedBackend()
    backend.enqueue(ScriptedReply(chunks=("a ", "b")))
    with ServerThread(create_app(backend, model_id="m", max_concurrency=1)) as server:
        async with httpx.AsyncClient() as http:
            result = await concurrency.openai_stream(http, f"{server.base_url}/v1", "m", 0, 4)
    assert result.ok
    options = backend.requests[0].options
    assert (options.temperature, options.top_p) == (0.3, 0.8)


# /v1/models answers as the servers send them (trimmed to the fields read)
_VLLM_MODELS = {
    "object": "list",
    "data": [
        {"id": "HuggingFaceTB/SmolLM2-135M-Instruct", "object": "model", "owned_by": "vllm", "root": "x"}
    ],
}
_LLAMA_CPP_PYTHON_MODELS = {
    "object": "list",
    "data": [{"id": "smollm2", "object": "model", "owned_by": "me"}],
}


def test_a_peer_is_labelled_by_the_kind_its_models_answer_names() -> None:
    assert concurrency.peer_kind(_VLLM_MODELS) == ("vLLM", "HuggingFaceTB/SmolLM2-135M-Instruct")
    assert concurrency.peer_kind(_LLAMA_CPP_PYTHON_MODELS) == ("llama-cpp-python server", "smollm2")
    assert concurrency.peer_kind({"data": [{"id": "m", "owned_by": "acme"}]}) == ("OpenAI-compatible", "m")


async def test_a_peer_url_gets_the_same_rows_and_a_verdict_against_the_engine(capsys) -> None:
    backend = ScriptedBackend(delay_s=0.002)
    backend.enqueue(*(ScriptedReply(chunks=("a ", "b ", "c ")) for _ in range(40)))
    with ServerThread(create_app(backend, model_id="m", max_concurrency=2)) as server:
        peer = concurrency._peer(f"{server.base_url}/v1/")
        rows = await concurrency.measure_rows(peer, [1], 8, repeats=1)
    assert peer.name == "peer: slm-playground engine (m)"
    assert rows[0]["target"] == peer.name and rows[0]["completed"] == "32/32"
    engine = {**rows[0], "target": "engine server", "agg": 3 * rows[0]["agg"]}
    concurrency._verdict([engine, *rows])
    assert (
        "1 streams: the engine's aggregate is 3.00x peer: slm-playground engine (m)'s"
        in capsys.readouterr().out
    )


def test_a_peer_that_is_not_a_server_is_named() -> None:
    with pytest.raises(RuntimeError, match=r"127\.0\.0\.1:9/v1: not an OpenAI-compatible server"):
        concurrency._peer("http://127.0.0.1:9/v1")


async def test_a_refused_stream_is_counted_as_lost() -> None:
    async with httpx.AsyncClient() as http:
        result = await concurrency.openai_stream(http, "http://127.0.0.1:9/v1", "m", 0, 4)
    assert not result.ok and result.error


def test_the_table_and_the_verdict_name_the_targets(capsys) -> None:
    def row(target: str, streams: int, agg: float, p95: float, rate: float) -> dict:
        return {
            "target": target, "streams": streams, "completed": f"{streams}/{streams}", "agg": agg,
            "per_request": rate, "p50": p95 / 2, "p95": p95, "max": p95, "burst_p95": p95, "rss": 300.0,
            "errors": [],
        }  # fmt: skip

    rows = [
        row("engine server", 1, 100.0, 0.05, 100.0),
        row("engine server", 4, 260.0, 0.4, 65.0),
        row("engine server", 8, 300.0, 0.9, 37.0),
        row("engine, Generator path", 1, 101.0, 0.05, 102.0),
    ]
    table = concurrency._table(rows)
    assert "2.60x" in table and "peak RSS MB" in table
    cells = [c.strip() for c in table.splitlines()[2].split("|")]
    assert "graph on prompts" in table and cells[-3:] == ["-", "-", ""]  # no counters: no figures
    assert concurrency._verdict(rows) == 0
    out = capsys.readouterr().out
    assert "4 streams: 2.60x" in out and "TTFT p95 0.90 s" in out and "98.0%" in out


async def test_two_servers_rounds_are_interleaved() -> None:
    """The engine and its Generator path take turns round by round, so the drift of a shared
    machine falls on both alike: each server's rounds alternate with the other's."""
    order: list[str] = []
    backends = {}
    for name in ("a", "b"):
        backend = ScriptedBackend(delay_s=0.001)
        backend.enqueue(*(ScriptedReply(chunks=("x ", "y ")) for _ in range(96)))
        backends[name] = backend
    with (
        ServerThread(create_app(backends["a"], model_id="m", max_concurrency=4)) as a,
        ServerThread(create_app(backends["b"], model_id="m", max_concurrency=4)) as b,
    ):

        def served(name: str, url: str) -> concurrency.Served:
            base = f"{url}/v1"

            async def send(http: httpx.AsyncClient, i: int, n: int) -> concurrency.Stream:
                if not order or order[-1] != name:
                    order.append(name)
                return await concurrency.openai_stream(http, base, "m", i, n)

            return concurrency.Served(name, base, send, None)

        rows = await concurrency.measure_together(
            [(served("a", a.base_url), [1, 2]), (served("b", b.base_url), [1])], 4, repeats=2
        )
    assert [(r["target"], r["streams"]) for r in rows] == [("a", 1), ("a", 2), ("b", 1)]
    assert order == ["a", "b", "a", "b"]  # a's two rows, b's row, then again
    assert all(r["completed"] == "64/64" for r in rows)
    assert len(backends["a"].requests) == 128 and len(backends["b"].requests) == 64
