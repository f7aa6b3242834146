"""`slm-playground bench engine`: the in-process backend against llama.cpp, same prompts, same run.

Each engine runs in its own subprocess, so its peak RSS is its own. Both are in-process kinds
of runtime.kinds (onnx, llamacpp: the same SmolLM2 Q4_1 weights) and stream greedy chat
completions of the fixed prompt set through the same ``Backend.chat``, so TTFT and decode
tokens/s are measured the same way (client side, first token to last). The multi-turn case
grows one chat to 8 turns and reports the time to first token of turn 1 and of turn 8.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.prompts import FOLLOW_UPS, PROMPTS, SYSTEM
from runtime.settings import model_home_of

ONNX, LLAMACPP = "onnx", "llamacpp"
"""The kinds of runtime.kinds this benchmark compares (each built through the table)."""
LLAMACPP_ROW = f"{LLAMACPP} in-process (Q4_1 GGUF)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="", help="ONNX model folder (default: the embedded default)")
    parser.add_argument("--home", type=Path, help="model home (SLM_HOME)")
    parser.add_argument("--runs", type=int, default=3, help="runs of the prompt set (median taken)")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--no-llamacpp", action="store_true", help="skip the llama.cpp comparison")
    parser.add_argument(
        "--threads", type=int, default=0, help="CPU threads for both engines (default: all cores)"
    )
    parser.add_argument(
        "--backend",
        action="append",
        default=[],
        metavar="LABEL",
        help="also measure a configured endpoint (vllm, ollama, openai from "
        "VLLM_BASE_URL / OLLAMA_HOST / OPENAI_BASE_URL); repeatable",
    )
    parser.add_argument(
        "--steps",
        default="",
        metavar="ROWS",
        help="instead: where a decoding step's time goes at these batch sizes, e.g. 1,4,8",
    )
    parser.add_argument(
        "--context", type=int, default=128, help="--steps: tokens each row holds (default 128)"
    )
    parser.add_argument("--worker", metavar="KIND", help=argparse.SUPPRESS)  # an in-process kind


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def measure_backend(backend: Any, runs: int, max_new: int) -> dict[str, Any]:
    """The prompt set and the 8-turn chat through Backend.chat: the same for every backend."""
    from backends.base import ChatRequest, Message, SamplingOptions

    options = SamplingOptions(temperature=0.0, max_new_tokens=max_new)

    async def ask(messages: list[Message]) -> tuple[str, Any]:
        text, metrics = "", None
        async for event in backend.chat(ChatRequest(messages=tuple(messages), options=options)):
            if event.kind == "text":
                text += event.text
            elif event.kind == "done":
                metrics = event.metrics
        return text, metrics

    await ask([Message(role="user", content="Hello")])  # load + warm up
    ttfts, rates, tokens = [], [], 0
    for _ in range(runs):
        for prompt in PROMPTS:
            _, m = await ask([Message(role="system", content=SYSTEM), Message(role="user", content=prompt)])
            ttfts.append(m.ttft_s)
            tokens += m.completion_tokens or 0
            if m.decode_tokens_per_s:
                rates.append(m.decode_tokens_per_s)
    turn_ttfts, prompt_tokens = [], []
    chat = [Message(role="system", content=SYSTEM), Message(role="user", content=PROMPTS[0])]
    for turn in range(8):
        answer, m = await ask(chat)
        turn_ttfts.append(m.ttft_s)
        prompt_tokens.append(m.prompt_tokens)
        chat += [
            Message(role="assistant", content=answer),
            Message(role="user", content=FOLLOW_UPS[turn % len(FOLLOW_UPS)]),
        ]
    return {
        "ttft_s": statistics.median(ttfts),
        "decode_tok_s": statistics.median(rates) if rates else 0.0,
        "tokens": tokens,
        "turn_ttft_s": turn_ttfts,
        "turn_prompt_tokens": prompt_tokens,
        "peak_rss_mb": None,
    }


async def _worker(kind: str, model: str, runs: int, max_new: int, threads: int) -> dict[str, Any]:
    """One in-process kind of the table, built the way the app builds it, through Backend.chat."""
    from runtime.kinds import build_in_process
    from runtime.settings import Settings

    backend = build_in_process(kind, Settings(), path=model, threads=threads)
    try:
        result = await measure_backend(backend, runs, max_new)
    finally:
        await backend.aclose()
    return {**result, "peak_rss_mb": _peak_rss_mb()}


async def _remote_rows(labels: list[str], runs: int, max_new: int) -> dict[str, dict[str, Any]]:
    from runtime.registry import BackendRegistry
    from runtime.settings import settings_from_env

    registry = BackendRegistry(settings_from_env())
    rows = {}
    try:
        for label in labels:
            rows[label] = await measure_backend(registry.get(label), runs, max_new)
    finally:
        await registry.aclose()
    return rows


def _rss(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _spawn(args: argparse.Namespace, worker: str, model_dir: Path | None) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "app.cli",
        "bench",
        "engine",
        "--worker",
        worker,
        "--runs",
        str(args.runs),
        "--max-new-tokens",
        str(args.max_new_tokens),
        "--threads",
        str(args.threads),
    ]
    if model_dir is not None:
        cmd += ["--model", str(model_dir)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the {worker} worker failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> int:
    if args.worker:
        worker = _worker(args.worker, args.model, args.runs, args.max_new_tokens, args.threads)
        print(json.dumps(asyncio.run(worker)))
        return 0

    from engines.oga_native import available_cores
    from models.model_store import resolve_model_dir
    from models.native_ops import machine_line

    model_dir = resolve_model_dir(args.model, home=model_home_of(args))
    args.threads = args.threads or available_cores()
    if args.steps:
        from bench.steps import run_steps

        counts = [int(n) for n in args.steps.split(",") if n.strip()]
        return run_steps(model_dir, counts, args.context, args.runs, args.threads)
    print(
        f"onnx model: {model_dir}\nprompts: {len(PROMPTS)} x {args.runs} runs, greedy, "
        f"max {args.max_new_tokens} new tokens; {args.threads} CPU threads per engine",
        flush=True,
    )
    rows = {f"{ONNX} (" + model_dir.name + ")": _spawn(args, ONNX, model_dir)}
    if not args.no_llamacpp:
        from runtime.kinds import KINDS

        if KINDS[LLAMACPP].offers_default:
            rows[LLAMACPP_ROW] = _spawn(args, LLAMACPP, None)
        else:
            print("no llama.cpp row: needs llama-cpp-python and the embedded GGUF (the llamacpp extra)")
    if args.backend:
        try:
            rows.update(asyncio.run(_remote_rows(args.backend, args.runs, args.max_new_tokens)))
        except KeyError as exc:
            print(f"error: {exc.args[0]}")
            return 2
    base = rows.get(LLAMACPP_ROW)
    columns = [
        "TTFT ms",
        "decode tok/s",
        "vs llama.cpp",
        "peak RSS MB",
        "TTFT turn 1",
        "TTFT turn 8",
        "turn 8 / 1",
    ]
    print(f"\n{machine_line()}")
    print(f"| {'engine':40} | " + " | ".join(columns) + " |")
    print(f"|{'-' * 42}|" + "|".join("-" * (len(c) + 2) for c in columns) + "|")
    for name, r in rows.items():
        ratio = f"{r['decode_tok_s'] / base['decode_tok_s']:.2f}x" if base else "-"
        t1, t8 = r["turn_ttft_s"][0], r["turn_ttft_s"][-1]
        print(
            f"| {name:40} | {r['ttft_s'] * 1000:7.1f} | {r['decode_tok_s']:12.1f} | {ratio:>12} | "
            f"{_rss(r['peak_rss_mb']):>11} | {t1 * 1000:8.1f} ms | {t8 * 1000:8.1f} ms | {t8 / t1:9.2f}x |"
        )
    for name, r in rows.items():
        if r["turn_prompt_tokens"]:
            print(f"\nmulti-turn prompt tokens, turn 1..8 ({name}): {r['turn_prompt_tokens']}")
    return 0
