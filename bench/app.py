"""`slm-playground bench app`: what the web app adds on top of the engine.

Same run, same prompts, greedy decoding, one pass per path, passes in turn:
  raw            - backend.chat() called directly (client-side TTFT and decode tokens/s);
  app over HTTP  - the running app's /chat endpoint through Gradio's HTTP API (POST
                   /gradio_api/call/chat, then its server-sent events), timed as each event
                   arrives: what the app itself adds;
  gradio_client  - the same endpoint through gradio_client. Its reader thread polls its message
                   queue every 50 ms, so its figures include up to 50 ms per update of the
                   client's own; the table shows both so the difference is visible.
TTFT = first update with text; tokens/s = (completion tokens - 1) over first-to-last update.
With the model, the app runs as `python -m app ui` in its own process (the scripted backend
can only be served in-process). Then a load run (N concurrent chats through the app) and a
cold start (the `ui` command in a subprocess until the page answers, and until the first
chat answer).
Without a prepared model, ``--scripted`` measures the app's overhead on a paced fake backend.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from runtime.kinds import default_in_process
from runtime.settings import model_home_of

PRESET = "reasoning"
SESSION = "bench-app"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="", help="ONNX model folder (default: the embedded default)")
    parser.add_argument("--home", type=Path, help="model home (SLM_HOME)")
    parser.add_argument("--prompts", type=int, default=4, help="how many prompts of the fixed set")
    parser.add_argument("--runs", type=int, default=2, help="passes over the prompts (median taken)")
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--load", type=int, default=8, help="concurrent chats in the load run (0: skip)")
    parser.add_argument("--no-cold-start", action="store_true", help="skip the cold-start measurement")
    parser.add_argument(
        "--scripted",
        action="store_true",
        help="paced scripted backend instead of the model (app overhead only)",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _backend(args: argparse.Namespace) -> Any:
    if args.scripted:
        from backends.scripted import ScriptedBackend, ScriptedReply

        words = [f"tok{i} " for i in range(args.max_new_tokens)]
        backend = ScriptedBackend(label=default_in_process(), delay_s=0.01, first_token_delay_s=0.05)
        backend.enqueue(*(ScriptedReply(chunks=words) for _ in range(1000)))
        return backend
    from runtime.kinds import build_in_process
    from runtime.settings import Settings

    return build_in_process(default_in_process(), Settings(model_home=model_home_of(args)), path=args.model)


async def _raw_once(backend: Any, prompt: str, system: str, max_new: int) -> dict[str, float]:
    from backends.base import ChatRequest, Done, Message, SamplingOptions

    request = ChatRequest(
        messages=(Message(role="system", content=system), Message(role="user", content=prompt)),
        options=SamplingOptions(temperature=0.0, max_new_tokens=max_new),
    )
    start = time.perf_counter()
    first = last = None
    tokens = 0
    async with contextlib.aclosing(backend.chat(request)) as stream:
        async for event in stream:
            now = time.perf_counter()
            if isinstance(event, Done):
                tokens = event.metrics.completion_tokens or 0
                break
            first = first or now
            last = now
    return _figures(start, first, last, tokens)


def _figures(start: float, first: float | None, last: float | None, tokens: int) -> dict[str, float]:
    ttft = (first - start) if first else float("nan")
    span = (last - first) if first and last else 0.0
    return {
        "ttft_ms": ttft * 1000,
        "tok_s": (tokens - 1) / span if span > 0 and tokens > 1 else float("nan"),
        "tokens": tokens,
    }


def _chat_args(prompt: str, max_new: int) -> list[Any]:
    return [prompt, PRESET, default_in_process(), {"temperature": 0.0, "max_new_tokens": max_new}]


def _app_figures(
    start: float, updates: list[tuple[float, Any]], result: tuple[str, dict]
) -> dict[str, float]:
    """Figures from (arrival time, (answer, metrics)) pairs and the final (answer, metrics)."""
    first = next((t for t, (answer, _m) in updates if answer), None)
    last, seen = None, ""
    for t, (answer, _m) in updates:
        if answer != seen:
            last, seen = t, answer
    answer, metrics = result
    figures = _figures(start, first, last, int(metrics.get("completion_tokens") or 0))
    figures["complete"] = float(bool(answer) and metrics.get("finish_reason") in ("stop", "length"))
    figures["server_ttft_ms"] = float(metrics.get("ttft_s") or float("nan")) * 1000
    return figures


def _http_once(http: httpx.Client, url: str, prompt: str, max_new: int) -> dict[str, float]:
    """One chat through Gradio's documented HTTP API, timing each server-sent event on arrival.

    It sends a session hash, as the browser and gradio_client do: without one, Gradio builds a
    fresh session state (a copy of every component's config, ~55 ms for this app) per call."""
    start = time.perf_counter()
    body = {"data": _chat_args(prompt, max_new), "session_hash": SESSION}
    posted = http.post(f"{url}gradio_api/call/chat", json=body)
    posted.raise_for_status()
    event_id = posted.json()["event_id"]
    updates: list[tuple[float, Any]] = []
    event = ""
    result: Any = None
    with http.stream("GET", f"{url}gradio_api/call/chat/{event_id}") as response:
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                if event == "error":
                    raise RuntimeError(f"the app answered with an error: {line[6:]}")
                if event in ("generating", "complete"):
                    (value,) = json.loads(line[6:])  # one output: [answer, metrics]
                    updates.append((time.perf_counter(), value))
                    if event == "complete":
                        result = value
    if result is None:
        raise RuntimeError("the app's event stream ended without a complete event")
    return _app_figures(start, updates, result)


def _client_once(client: Any, prompt: str, max_new: int) -> dict[str, float]:
    start = time.perf_counter()
    job = client.submit(*_chat_args(prompt, max_new), api_name="/chat")
    updates: list[tuple[float, Any]] = []
    # Poll job.outputs() rather than iterating the job: Job.__next__ sleeps while holding the
    # lock the reader thread needs, which delays and merges updates.
    while True:
        done = job.done()
        outputs = job.outputs()
        now = time.perf_counter()
        updates.extend((now, value) for value in outputs[len(updates) :])
        if done:
            break
        time.sleep(0.005)  # finer polling only burns CPU: the client itself reads every 50 ms
    return _app_figures(start, updates, job.result())


def _median(rows: list[dict[str, float]], key: str) -> float:
    values = [r[key] for r in rows if r[key] == r[key]]
    return statistics.median(values) if values else float("nan")


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[f"{c:.1f}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = lambda r: " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True))  # noqa: E731
    return "\n".join([line(headers), "-+-".join("-" * w for w in widths), *(line(r) for r in cells)])


def _load(url: str, count: int, prompts: list[str], max_new: int) -> tuple[float, list[dict[str, float]]]:
    from gradio_client import Client

    def one(i: int) -> dict[str, float]:
        return _client_once(Client(url, verbose=False), prompts[i % len(prompts)], max_new)

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        results = list(pool.map(one, range(count)))
    return time.perf_counter() - start, results


def _cold_start(args: argparse.Namespace) -> list[list[Any]]:
    port = free_port()
    command = ui_command(args, port)
    start = time.perf_counter()
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rows: list[list[Any]] = []
    try:
        url = f"http://127.0.0.1:{port}/"
        page_s = wait_for_page(url, start)
        rows.append(["command -> page answers (HTTP 200)", page_s])
        if not args.scripted:
            from gradio_client import Client

            client = Client(url, verbose=False)
            client.predict(
                "Say hi.",
                PRESET,
                default_in_process(),
                {"max_new_tokens": 8, "temperature": 0.0},
                api_name="/chat",
            )
            rows.append(["command -> first chat answer (model loaded)", time.perf_counter() - start])
        time.sleep(2.0)  # let the server print its own timing line
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=10)
    breakdown = next((line for line in output.splitlines() if line.startswith("SLM Playground on")), "")
    if breakdown:
        rows.append(["server's own breakdown", breakdown.split("(", 1)[-1].rstrip(")")])
    return rows


def ui_command(args: argparse.Namespace, port: int) -> list[str]:
    """`python -m app ui` on ``port`` with the model and model home the bench was given."""
    command = [sys.executable, "-m", "app", "ui", "--port", str(port)]
    command += ["--model", args.model] if args.model else []
    return command + (["--home", str(model_home_of(args))] if model_home_of(args) else [])


def wait_for_page(url: str, start: float, limit_s: float = 60) -> float:
    """Seconds from ``start`` until ``url`` answers 200."""
    while time.perf_counter() - start < limit_s:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.perf_counter() - start
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the app did not answer at {url} within {limit_s:.0f} s")


@contextlib.contextmanager
def _running_app(args: argparse.Namespace) -> Iterator[str]:
    """The app under test. With the model it runs as `python -m app ui` in its own process, as a
    user runs it, so the measuring clients take no GIL time from it; the scripted backend
    (no model) can only be served from this process."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    if args.scripted:
        from app.ui import build_app
        from runtime.registry import BackendRegistry
        from runtime.settings import Settings

        settings = Settings(port=port)
        demo = build_app(settings, BackendRegistry.with_backends(settings, _backend(args)))
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        try:
            yield url
        finally:
            demo.close()
        return
    server = subprocess.Popen(ui_command(args, port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_page(url, time.perf_counter())
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def run(args: argparse.Namespace) -> int:
    from bench.prompts import PROMPTS
    from presets import load_catalog

    with _running_app(args) as url:
        code = _measure(args, url, list(PROMPTS[: args.prompts]), load_catalog().get(PRESET).system_prompt)
    if not args.no_cold_start:
        print("\nCold start (`python -m app ui` in a subprocess)\n")
        print(_table(["step", "seconds"], _cold_start(args)))
    return code


def _measure(args: argparse.Namespace, url: str, prompts: list[str], system: str) -> int:
    from gradio_client import Client

    raw_backend = _backend(args)
    client = Client(url, verbose=False)
    http = httpx.Client(timeout=120)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_raw_once(raw_backend, "Hi", system, 4))  # load both models first
        _http_once(http, url, "Hi", 4)
        _client_once(client, "Hi", 4)
        rows: dict[str, list[dict[str, float]]] = {"raw": [], "http": [], "client": []}
        measure = {
            "raw": lambda p: loop.run_until_complete(_raw_once(raw_backend, p, system, args.max_new_tokens)),
            "http": lambda p: _http_once(http, url, p, args.max_new_tokens),
            "client": lambda p: _client_once(client, p, args.max_new_tokens),
        }
        # One pass per path, so every request finds the KV cache of the previous (different)
        # prompt and reuses only the system prompt, the same on every path; passes alternate.
        for _ in range(args.runs):
            for path, once in measure.items():
                rows[path].extend(once(prompt) for prompt in prompts)
        tps = {k: _median(v, "tok_s") for k, v in rows.items()}
        ttft = {k: _median(v, "ttft_ms") for k, v in rows.items()}
        kind = "scripted (10 ms/token)" if args.scripted else "in-process ONNX model"
        print(
            f"\nApp vs raw backend ({kind}; {len(prompts)} prompts x {args.runs} runs, greedy, "
            f"max {args.max_new_tokens} new tokens; medians)\n"
        )
        names = {
            "raw": "raw backend.chat",
            "http": "app /chat, HTTP + SSE",
            "client": "app /chat, gradio_client",
        }
        print(
            _table(
                ["path", "TTFT ms (client)", "TTFT ms (in app)", "decode tok/s", "tokens", "complete"],
                [
                    [
                        names[k],
                        ttft[k],
                        ttft[k] if k == "raw" else _median(v, "server_ttft_ms"),
                        tps[k],
                        _median(v, "tokens"),
                        "-" if k == "raw" else f"{sum(int(r['complete']) for r in v)}/{len(v)}",
                    ]
                    for k, v in rows.items()
                ],
            )
        )
        for k in ("http", "client"):
            print(
                f"\n{names[k]}: tok/s {100 * tps[k] / tps['raw']:.1f}% of raw (target >= 95%); "
                f"TTFT overhead {ttft[k] - ttft['raw']:.1f} ms (target < 50 ms)"
            )
        if args.load:
            total, results = _load(url, args.load, prompts, args.max_new_tokens)
            print(
                f"\nLoad: {args.load} concurrent chats through the app, total {total:.2f} s, "
                f"{sum(int(r['complete']) for r in results)}/{args.load} complete\n"
            )
            print(
                _table(
                    ["chat", "TTFT ms", "decode tok/s", "tokens", "complete"],
                    [
                        [i + 1, r["ttft_ms"], r["tok_s"], int(r["tokens"]), bool(r["complete"])]
                        for i, r in enumerate(results)
                    ],
                )
            )
    finally:
        http.close()
        loop.run_until_complete(raw_backend.aclose())
        loop.close()
    return 0
