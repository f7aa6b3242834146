"""`slm-playground bench app`: what the web app adds on top of the engine.

Same run, same prompts, greedy decoding, alternating per prompt:
  raw  - backend.chat() called directly (client-side TTFT and decode tokens/s);
  app  - the running Gradio app's /chat endpoint through gradio_client (TTFT = first streamed
         update with text; tokens/s = completion tokens over first-to-last update).
Then a load run (N concurrent chats through the app) and a cold start (the `ui` command in a
subprocess until the page answers, and until the first chat answer).
Without a prepared model, ``--scripted`` measures the app's overhead on a paced fake backend.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

PRESET = "reasoning"


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _backend(args: argparse.Namespace) -> Any:
    if args.scripted:
        from tests.support.scripted import ScriptedBackend, ScriptedReply

        words = [f"tok{i} " for i in range(args.max_new_tokens)]
        backend = ScriptedBackend(label="onnx", delay_s=0.01, first_token_delay_s=0.05)
        backend.enqueue(*(ScriptedReply(chunks=words) for _ in range(1000)))
        return backend
    from backends.model_store import resolve_model_dir
    from backends.onnx_engine import OnnxBackend

    return OnnxBackend("onnx", resolve_model_dir(args.model, home=args.home))


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


def _app_once(client: Any, prompt: str, max_new: int) -> dict[str, float]:
    start = time.perf_counter()
    job = client.submit(
        prompt, PRESET, "onnx", {"temperature": 0.0, "max_new_tokens": max_new}, api_name="/chat"
    )
    first = last = None
    answer_seen = ""
    for update in job:
        now = time.perf_counter()
        answer, metrics = update[0], update[1]
        if answer and first is None:
            first = now
        if answer != answer_seen:
            last, answer_seen = now, answer
    answer, metrics = job.result()
    figures = _figures(start, first, last, int(metrics.get("completion_tokens") or 0))
    figures["complete"] = float(bool(answer) and metrics.get("finish_reason") in ("stop", "length"))
    figures["server_ttft_ms"] = float(metrics.get("ttft_s") or float("nan")) * 1000
    return figures


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
        return _app_once(Client(url, verbose=False), prompts[i % len(prompts)], max_new)

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        results = list(pool.map(one, range(count)))
    return time.perf_counter() - start, results


def _cold_start(args: argparse.Namespace) -> list[list[Any]]:
    port = _free_port()
    command = [sys.executable, "-m", "app", "ui", "--port", str(port)]
    if args.model:
        command += ["--model", args.model]
    start = time.perf_counter()
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rows: list[list[Any]] = []
    try:
        url = f"http://127.0.0.1:{port}/"
        while time.perf_counter() - start < 60:
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.05)
        page_s = time.perf_counter() - start
        rows.append(["command -> page answers (HTTP 200)", page_s])
        if not args.scripted:
            from gradio_client import Client

            client = Client(url, verbose=False)
            client.predict(
                "Say hi.", PRESET, "onnx", {"max_new_tokens": 8, "temperature": 0.0}, api_name="/chat"
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


def run(args: argparse.Namespace) -> int:
    from gradio_client import Client

    from app.registry import BackendRegistry
    from app.settings import Settings
    from app.ui import build_app
    from bench.prompts import PROMPTS
    from presets import load_catalog

    prompts = list(PROMPTS[: args.prompts])
    system = load_catalog().get(PRESET).system_prompt
    settings = Settings(port=_free_port())
    app_backend, raw_backend = _backend(args), _backend(args)
    demo = build_app(settings, BackendRegistry.with_backends(settings, app_backend))
    demo.launch(server_name="127.0.0.1", server_port=settings.port, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{settings.port}/"
    client = Client(url, verbose=False)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_raw_once(raw_backend, "Hi", system, 4))  # load both models first
        _app_once(client, "Hi", 4)
        raw_rows, app_rows = [], []
        for _ in range(args.runs):
            for prompt in prompts:
                raw_rows.append(
                    loop.run_until_complete(_raw_once(raw_backend, prompt, system, args.max_new_tokens))
                )
                app_rows.append(_app_once(client, prompt, args.max_new_tokens))
        raw_tps, app_tps = _median(raw_rows, "tok_s"), _median(app_rows, "tok_s")
        raw_ttft, app_ttft = _median(raw_rows, "ttft_ms"), _median(app_rows, "ttft_ms")
        kind = "scripted (10 ms/token)" if args.scripted else "in-process ONNX model"
        print(
            f"\nApp vs raw backend ({kind}; {len(prompts)} prompts x {args.runs} runs, greedy, "
            f"max {args.max_new_tokens} new tokens; medians)\n"
        )
        print(
            _table(
                ["path", "TTFT ms (client)", "TTFT ms (in app)", "decode tok/s", "tokens (median)"],
                [
                    ["raw backend.chat", raw_ttft, raw_ttft, raw_tps, _median(raw_rows, "tokens")],
                    [
                        "app /chat via gradio_client",
                        app_ttft,
                        _median(app_rows, "server_ttft_ms"),
                        app_tps,
                        _median(app_rows, "tokens"),
                    ],
                ],
            )
        )
        print(
            f"\napp tok/s as % of raw: {100 * app_tps / raw_tps:.1f}% (target >= 95%); "
            f"TTFT overhead: {app_ttft - raw_ttft:.1f} ms (target < 50 ms)"
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
        demo.close()
        loop.run_until_complete(raw_backend.aclose())
        loop.close()
    if not args.no_cold_start:
        print("\nCold start (`python -m app ui` in a subprocess)\n")
        print(_table(["step", "seconds"], _cold_start(args)))
    return 0
