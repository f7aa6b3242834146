"""`slm-playground bench concurrency`: many users at once on the in-process model.

Every row serves the same work: ``--repeats`` rounds of ROUND requests (the fixed prompt set
four times over; each request new to the server: a row and round number in front of the
question; greedy unless --temperature says, the same system prompt). In a round of the N-stream
row, N clients start at the same moment and each sends its next request as soon as its previous
one has ended (as vLLM's benchmark does with --max-concurrency), so N streams are in flight until
the round runs out.
The rows' rounds are interleaved (1, 2, 4, 8 streams, then again), so the shared machine's drift
falls on every row alike; the engine server and its Generator path run at the same time, their
rounds interleaved too, as the one-stream target compares them. (Measuring bursts of N prompts
against a one-stream row of only the first prompt compared different work: short answers leave a
burst decoding fewer rows at its tail, and that, not the engine, set the ratio.) Through
  engine server   - `python -m app engine` in its own process, OpenAI streaming API;
  engine, Generator path - the same server with --no-batching: onnxruntime-genai's Generator,
                    one request at a time (the engine before batching), 1 stream: today's speed;
  app HTTP API    - `python -m app ui` in its own process, its /chat endpoint over Gradio's
                    HTTP + SSE API (each stream its own session);
  llama.cpp       - an OpenAI-compatible llama.cpp server at --llamacpp-url, when given;
  peer            - any OpenAI-compatible server at --peer URL (vLLM, llama.cpp, Ollama, ...),
                    labelled by the kind its /models answer names, same rows, same run.
Per row: requests completed, aggregate tokens/s (all completion tokens over the rounds' wall
time), per-request decode tokens/s (median; first to last token of each), time to first token
p50/p95/max (client side: from sending, so queueing is included) over every request and over
the first N of each round (sent at the same moment), and the serving process's peak RSS during
the row's first round (its high-water mark is reset before it; the rows' first rounds run in
ascending order, as a fresh server meets them; not for a URL). For the engine server, from its
/metrics before and after each round: the share of its graph's time spent on prompts, and the
rows a decoding step held (a prompt token costs about what an added row does, so at many
streams the prompts are a large part of where the time goes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from backends.vllm import prometheus_totals
from bench.prompts import PROMPTS, SYSTEM
from runtime.settings import model_home_of
from serve.metrics import ENGINE_COUNTERS, PREFIX


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="", help="ONNX model folder (default: the embedded default)")
    parser.add_argument("--home", type=Path, help="model home (SLM_HOME)")
    parser.add_argument("--streams", default="1,2,4,8", help="concurrent streams per row")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument(
        "--repeats", type=int, default=2, help=f"rounds per row, interleaved; a round is {ROUND} requests"
    )
    parser.add_argument("--batch", type=int, default=0, help="engine batch size (default: automatic)")
    parser.add_argument("--no-app", action="store_true", help="skip the app rows")
    parser.add_argument(
        "--temperature", type=float, default=0.0, help="sampling temperature of every request (0: greedy)"
    )
    parser.add_argument(
        "--top-p", type=float, default=1.0, help="nucleus of every request (with --temperature)"
    )
    parser.add_argument(
        "--llamacpp-url",
        default=None,
        help="an OpenAI-compatible llama.cpp server, e.g. http://127.0.0.1:8080/v1",
    )
    parser.add_argument(
        "--llamacpp-model", default="default", help="model id to ask the llama.cpp server for"
    )
    parser.add_argument(
        "--peer",
        action="append",
        default=[],
        metavar="URL",
        help="an OpenAI-compatible server measured with the same rows, e.g. http://127.0.0.1:8000/v1 "
        "(its first model; labelled by its kind); repeatable",
    )


@dataclass
class Stream:
    ok: bool
    ttft_s: float = float("nan")
    decode_s: float = 0.0
    tokens: int = 0
    end_s: float = 0.0
    error: str = ""

    @property
    def rate(self) -> float:
        return (self.tokens - 1) / self.decode_s if self.tokens > 1 and self.decode_s > 0 else float("nan")


def _prompt(i: int) -> str:
    """Request i's question. Each is new to the server (a row number in front), so every
    request reuses only the cached system prompt, never a whole earlier prompt."""
    if i < 0:
        return "Say hi."
    return f"Question {i // len(PROMPTS)}-{_ROW[0]}: {PROMPTS[i % len(PROMPTS)]}"


_ROW = [0]
SAMPLING: dict[str, float] = {"temperature": 0.0}
"""Every request's sampling settings (run() sets them from --temperature and --top-p): users
sample, and the greedy rows never pay for it."""


def _messages(i: int) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": _prompt(i)}]


async def openai_stream(http: httpx.AsyncClient, base: str, model: str, i: int, max_tokens: int) -> Stream:
    body = {
        "model": model,
        "messages": _messages(i),
        "max_tokens": max_tokens,
        **SAMPLING,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    start = time.perf_counter()
    first = last = None
    tokens = pieces = 0
    try:
        async with http.stream("POST", f"{base}/chat/completions", json=body) as response:
            if response.status_code != 200:
                return Stream(False, error=f"HTTP {response.status_code}: {(await response.aread())[:200]!r}")
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if chunk.get("choices") and chunk["choices"][0].get("delta", {}).get("content"):
                    last = time.perf_counter()
                    first = first or last
                    pieces += 1
                if chunk.get("usage"):
                    tokens = chunk["usage"]["completion_tokens"]
    except httpx.HTTPError as exc:
        return Stream(False, error=f"{type(exc).__name__}: {exc}")
    if first is None or last is None:
        return Stream(False, error="no text streamed")
    return Stream(True, first - start, last - first, tokens or pieces, time.perf_counter() - start)


async def app_stream(http: httpx.AsyncClient, url: str, i: int, max_tokens: int) -> Stream:
    """One chat through the app's /chat endpoint (Gradio HTTP API); its own session."""
    options = {**SAMPLING, "max_new_tokens": max_tokens}
    from bench.app import PRESET
    from runtime.kinds import default_in_process

    body = {
        "data": [_prompt(i), PRESET, default_in_process(), options],
        "session_hash": f"bench-{_ROW[0]}-{i}",
    }
    start = time.perf_counter()
    first = last = None
    seen, result, event = "", None, ""
    try:
        posted = await http.post(f"{url}gradio_api/call/chat", json=body)
        posted.raise_for_status()
        event_id = posted.json()["event_id"]
        async with http.stream("GET", f"{url}gradio_api/call/chat/{event_id}") as response:
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event in ("generating", "complete", "error"):
                    if event == "error":
                        return Stream(False, error=f"the app answered with an error: {line[6:200]}")
                    (value,) = json.loads(line[6:])
                    answer = value[0]
                    if answer and answer != seen:
                        last = time.perf_counter()
                        first = first or last
                        seen = answer
                    if event == "complete":
                        result = value
    except httpx.HTTPError as exc:
        return Stream(False, error=f"{type(exc).__name__}: {exc}")
    if result is None or first is None or last is None:
        return Stream(False, error="the app's event stream ended without an answer")
    tokens = int((result[1] or {}).get("completion_tokens") or 0)
    return Stream(True, first - start, last - first, tokens, time.perf_counter() - start)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(v for v in values if v == v)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


class Served:
    """A serving process (or just a URL) and how to send it one stream; METRICS_URL: its /metrics,
    where it reports what its graph ran (the engine server)."""

    def __init__(
        self,
        name: str,
        base: str,
        send: Any,
        process: subprocess.Popen[bytes] | None,
        metrics_url: str | None = None,
    ) -> None:
        self.name, self.base, self.send, self.process = name, base, send, process
        self.metrics_url = metrics_url

    def reset_peak(self) -> None:
        if self.process is not None:
            Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")  # resets VmHWM

    def peak_rss_mb(self) -> float:
        if self.process is None:
            return float("nan")
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=15)


def graph_counters(metrics_text: str) -> dict[str, float]:
    """The engine's graph counters (serve/metrics.py ENGINE_COUNTERS, by their stats keys) from a
    /metrics page; none for a server without them."""
    totals = prometheus_totals(metrics_text.splitlines())
    return {
        key: totals[PREFIX + name] for key, (name, _) in ENGINE_COUNTERS.items() if PREFIX + name in totals
    }


async def _graph_counters(http: httpx.AsyncClient, served: Served) -> dict[str, float]:
    if served.metrics_url is None:
        return {}
    try:
        return graph_counters((await http.get(served.metrics_url)).text)
    except httpx.HTTPError:  # unreachable: no figures, not a failed run
        return {}


ROUND_PASSES = 4
ROUND = ROUND_PASSES * len(PROMPTS)
"""Requests in one round of a row: the prompt set four times over. With fewer, the end of each
round (clients out of work while others still decode) weighed on the many-stream rows: 16
requests on 4 clients gave 2.28-2.39x where 32 gave 2.46-2.53x, same code and machine."""


@dataclass
class Round:
    """One round of a row: its clients through ROUND requests."""

    results: list[tuple[int, Stream]]
    wall: float
    rss: float
    graph: dict[str, float] = field(default_factory=dict)
    """What the server's graph ran during the round (its counters' growth), when it says."""


async def measure_round(served: Served, streams: int, max_tokens: int, first: int) -> Round:
    """``streams`` clients working through one round (requests ``first`` .. ``first + ROUND - 1``),
    each sending its next request when its previous one ends."""
    with contextlib.suppress(OSError):  # no /proc here: no RSS figures
        served.reset_peak()
    _ROW[0] += 1
    work = iter(range(first, first + ROUND))
    results: list[tuple[int, Stream]] = []

    async def client(http: httpx.AsyncClient) -> None:
        for i in work:  # one iterator shared by every client: each request is sent once
            results.append((i, await served.send(http, i, max_tokens)))

    async with httpx.AsyncClient(timeout=httpx.Timeout(600, connect=10)) as http:
        before = await _graph_counters(http, served)
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(streams)))
        wall = time.perf_counter() - start
        after = await _graph_counters(http, served)
    try:
        rss = served.peak_rss_mb()
    except OSError:
        rss = float("nan")
    graph = {k: after[k] - before[k] for k in after.keys() & before.keys()}
    return Round(results, wall, rss, graph)


def _graph_shares(rounds: list[Round]) -> dict[str, float]:
    """The prompts' share of the graph's time, and rows a decoding step, over the rounds."""
    total = {k: sum(r.graph.get(k, 0.0) for r in rounds) for k in ENGINE_COUNTERS}
    prompt_s, steps = total["graph_prompt_seconds"], total["graph_decode_steps"]
    busy = prompt_s + total["graph_decode_seconds"]
    return {
        "prompt_share": prompt_s / busy if busy > 0 else float("nan"),
        "rows_per_step": total["graph_decode_rows"] / steps if steps > 0 else float("nan"),
    }


def summarize(served: Served, streams: int, rounds: list[Round]) -> dict[str, Any]:
    """A row from its rounds: tokens over their summed wall time; TTFT percentiles over every
    request, and over the first ``streams`` of each round (the ones sent at the same moment)."""
    results = [item for r in rounds for item in r.results]
    wall = sum(r.wall for r in rounds)
    done = [r for _, r in results if r.ok]
    ttfts = [r.ttft_s for r in done]
    first_wave = [r.ttft_s for i, r in results if r.ok and i % ROUND < streams]
    return {
        "target": served.name,
        "streams": streams,
        "completed": f"{len(done)}/{len(results)}",
        "agg": sum(r.tokens for r in done) / wall if wall > 0 else 0.0,
        "per_request": statistics.median([r.rate for r in done if r.rate == r.rate] or [float("nan")]),
        "p50": _percentile(ttfts, 0.5),
        "p95": _percentile(ttfts, 0.95),
        "max": max(ttfts, default=float("nan")),
        "burst_p95": _percentile(first_wave, 0.95),
        # the first round's: later ones follow bigger rows, whose KV pages stay resident
        "rss": rounds[0].rss if rounds else float("nan"),
        **_graph_shares(rounds),
        "errors": sorted({r.error for _, r in results if not r.ok}),
    }


async def measure_rows(
    served: Served, counts: list[int], max_tokens: int, repeats: int
) -> list[dict[str, Any]]:
    """Every row's rounds, interleaved (1, 2, 4, 8 streams, then again): the machine's drift
    over a run then falls on every row alike, so the ratios between rows hold still."""
    return await measure_together([(served, counts)], max_tokens, repeats)


async def measure_together(
    plan: list[tuple[Served, list[int]]], max_tokens: int, repeats: int
) -> list[dict[str, Any]]:
    """The rows of several servers, their rounds interleaved across all of them (each server's
    rows, then the next server's, then again), so that the ratios between servers hold still too."""
    rounds: dict[tuple[int, int], list[Round]] = {
        (i, n): [] for i, (_, counts) in enumerate(plan) for n in counts
    }
    for r in range(repeats):
        for i, (served, counts) in enumerate(plan):
            for n in counts:
                rounds[(i, n)].append(await measure_round(served, n, max_tokens, first=r * ROUND))
    return [summarize(plan[i][0], n, taken) for (i, n), taken in rounds.items()]


def _start(command: list[str], url: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{' '.join(command)} exited: {process.stderr.read()[-2000:]!r}")  # type: ignore[union-attr]
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise RuntimeError(f"{url} did not answer within 120 s")


def _engine(args: argparse.Namespace, name: str, extra: list[str]) -> Served:
    from bench.app import free_port

    port = free_port()
    command = [sys.executable, "-m", "app", "engine", "--port", str(port), "--log-level", "warning", *extra]
    command += ["--model", args.model] if args.model else []
    command += ["--home", str(model_home_of(args))] if model_home_of(args) else []
    root = f"http://127.0.0.1:{port}"
    base = f"{root}/v1"
    process = _start(command, f"{root}/health")
    model = httpx.get(f"{base}/models").json()["data"][0]["id"]
    return Served(
        name,
        base,
        lambda h, i, n: openai_stream(h, base, model, i, n),
        process,
        metrics_url=f"{root}/metrics",
    )


def _app(args: argparse.Namespace) -> Served:
    from bench.app import free_port, ui_command

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    process = _start(ui_command(args, port), url)
    return Served("app /chat (HTTP + SSE)", url, lambda http, i, n: app_stream(http, url, i, n), process)


PEER_KINDS = {
    "vllm": "vLLM",
    "llamacpp": "llama.cpp server",
    "me": "llama-cpp-python server",
    "library": "Ollama",
    "slm-playground": "slm-playground engine",
}


def peer_kind(models: dict[str, Any]) -> tuple[str, str]:
    """(kind, model id) from a server's /v1/models answer: the kind its first model's owned_by
    names (vLLM says "vllm", llama.cpp's server "llamacpp", llama-cpp-python's "me", Ollama
    "library", our engine server "slm-playground"), else "OpenAI-compatible"."""
    data = models.get("data") or []
    if not data:
        raise ValueError("its /models lists no model")
    first = data[0]
    return PEER_KINDS.get(str(first.get("owned_by", "")), "OpenAI-compatible"), str(first["id"])


def _peer(url: str) -> Served:
    base = url.rstrip("/")
    try:
        answer = httpx.get(f"{base}/models", timeout=10)
        answer.raise_for_status()
        kind, model = peer_kind(answer.json())
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise RuntimeError(f"--peer {url}: not an OpenAI-compatible server ({exc})") from exc
    name = f"peer: {kind} ({model})"
    return Served(name, base, lambda h, i, n: openai_stream(h, base, model, i, n), None)


def _table(rows: list[dict[str, Any]]) -> str:
    headers = [
        "target",
        "streams",
        "done",
        "agg tok/s",
        "vs 1",
        "per-req tok/s",
        "TTFT p50",
        "p95",
        "max",
        "first N p95",
        "peak RSS MB",
        "graph on prompts",
        "rows a step",
    ]
    ones = {r["target"]: r["agg"] for r in rows if r["streams"] == 1}
    cells = []
    for r in rows:
        one = ones.get(r["target"])
        cells.append(
            [
                r["target"],
                str(r["streams"]),
                r["completed"],
                f"{r['agg']:.1f}",
                f"{r['agg'] / one:.2f}x" if one else "-",
                f"{r['per_request']:.1f}",
                *(f"{r[k]:.2f} s" for k in ("p50", "p95", "max", "burst_p95")),
                f"{r['rss']:.0f}" if r["rss"] == r["rss"] else "-",
                _figure(r.get("prompt_share"), "{:.0%}"),
                _figure(r.get("rows_per_step"), "{:.2f}"),
            ]
        )
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]

    def line(c: list[str]) -> str:
        padded = (
            x.ljust(w) if i == 0 else x.rjust(w) for i, (x, w) in enumerate(zip(c, widths, strict=True))
        )
        return "| " + " | ".join(padded) + " |"

    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells)])


def _figure(value: float | None, form: str) -> str:
    return form.format(value) if value is not None and value == value else "-"


async def _rows(plan: list[tuple[Served, list[int]]], max_tokens: int, repeats: int) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=600) as http:  # load, warm up, and cache the system prompt
        for served, _ in plan:
            await served.send(http, -1, 8)
    return await measure_together(plan, max_tokens, repeats)


def run(args: argparse.Namespace) -> int:
    from models.model_store import resolve_model_dir

    counts = [int(n) for n in args.streams.split(",") if n.strip()]
    greedy = args.temperature <= 0
    SAMPLING.clear()
    SAMPLING["temperature"] = 0.0 if greedy else args.temperature
    if not greedy:
        SAMPLING["top_p"] = args.top_p
    sampling = "greedy" if greedy else f"temperature {args.temperature}, top_p {args.top_p}"
    model_dir = resolve_model_dir(args.model, home=model_home_of(args))
    print(
        f"model: {model_dir}\nstreams {counts}: that many clients at once, each sending its next request "
        f"when one ends; every row serves the same {ROUND * args.repeats} requests ({args.repeats} "
        f"rounds of {ROUND}, the rows' rounds interleaved), {sampling}, max {args.max_tokens} new tokens\n",
        flush=True,
    )
    rows: list[dict[str, Any]] = []
    # groups of servers up at once, their rounds interleaved; the engine and its Generator path
    # go together: the one-stream target is a ratio between them, and measured as rows minutes
    # apart it moved by 20 points between runs of the same code
    plan: list[list[tuple[Callable[[], Served], list[int]]]] = [
        [
            (lambda: _engine(args, "engine server", ["--concurrency", str(args.batch)]), counts),
            (lambda: _engine(args, "engine, Generator path", ["--no-batching"]), [1]),
        ]
    ]
    if not args.no_app:
        plan.append([(lambda: _app(args), counts)])
    if args.llamacpp_url:
        base = args.llamacpp_url.rstrip("/")
        llama = Served(
            "llama.cpp server", base, lambda h, i, n: openai_stream(h, base, args.llamacpp_model, i, n), None
        )
        plan.append([(lambda: llama, counts)])
    for url in args.peer:
        plan.append([(functools.partial(_peer, url), counts)])
    for group in plan:
        started: list[tuple[Served, list[int]]] = []
        try:
            for start, row_counts in group:
                started.append((start(), row_counts))
            rows += asyncio.run(_rows(started, args.max_tokens, args.repeats))
        finally:
            for served, _ in started:
                served.stop()
        print(f"measured {', '.join(served.name for served, _ in started)}", flush=True)
    from models.native_ops import machine_line

    print()
    print(machine_line())  # the engine servers inherit this environment, SLM_KERNEL included
    print(_table(rows))
    for r in rows:
        for error in r["errors"]:
            print(f"  {r['target']} x{r['streams']}: {error}")
    return _verdict(rows)


def _verdict(rows: list[dict[str, Any]]) -> int:
    engine = {r["streams"]: r for r in rows if r["target"] == "engine server"}
    today = next((r for r in rows if r["target"] == "engine, Generator path"), None)
    print()
    for n, target in ((4, 2.5), (8, 3.5)):
        if 1 in engine and n in engine:
            ratio = engine[n]["agg"] / engine[1]["agg"]
            print(f"{n} streams: {ratio:.2f}x the aggregate tok/s of one (target >= {target}x)")
    for r in rows:
        if r["target"].startswith("peer: ") and r["streams"] == max(engine, default=0):
            ratio = engine[r["streams"]]["agg"] / r["agg"] if r["agg"] else float("inf")
            print(f"{r['streams']} streams: the engine's aggregate is {ratio:.2f}x {r['target']}'s")
    if 8 in engine:
        burst = engine[8]["burst_p95"]
        print(f"8 streams sent at once: TTFT p95 {burst:.2f} s (target <= 1.0 s)")
    if 1 in engine and today:
        share = engine[1]["per_request"] / today["per_request"]
        print(f"1 stream: {100 * share:.1f}% of the Generator path's decode tok/s (target >= 95%)")
    lost = sum(int(r["completed"].split("/")[1]) - int(r["completed"].split("/")[0]) for r in rows)
    print(f"lost requests: {lost}")
    return 0 if lost == 0 else 1
