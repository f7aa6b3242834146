"""Which precision should the default model ship in? Quality against fp32 and speed, one run.

Quality: teacher-forced greedy agreement. The fp32 model (the GGUF dequantized) writes a greedy
continuation of every prompt; each candidate then reads the same tokens and we count how
often its own argmax equals fp32's next token. llama.cpp runs the original Q4_1 GGUF through
the same measurement, which is the bar to meet. Builds that differ only in float rounding order
land up to ~1% apart on 8 prompts x 64 tokens (425 positions: a few near-ties flip), so the
set is 15 prompts x up to 128 tokens (1448 positions: some answers end sooner).
Speed: greedy decode tokens/s (median of runs) and time to first token, same prompts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.prompts import FOLLOW_UPS, PROMPTS, SYSTEM
from runtime.settings import model_home_of

AGREEMENT_PROMPTS = PROMPTS + FOLLOW_UPS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--variants",
        default="fp32,q4_1,int8,int8-b128,int4,int4-asym,int4-lm8,int4-asym-lm8,int4-kquant-lm8",
        help="comma-separated precisions (built into the model home when missing)",
    )
    parser.add_argument("--tokens", type=int, default=128, help="continuation length per prompt")
    parser.add_argument("--runs", type=int, default=3, help="speed runs per prompt subset")
    parser.add_argument("--home", type=Path, help="model home (SLM_HOME)")
    parser.add_argument("--json", action="store_true", help="print rows as JSON too")
    parser.add_argument(
        "--threads", type=int, default=0, help="CPU threads for both engines (default: all cores)"
    )


def _chat_prompt(tokenizer: Any, folder: Path, user: str) -> list[int]:
    template_file = folder / "chat_template.jinja"
    template = template_file.read_text() if template_file.is_file() else None
    messages = json.dumps([{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}])
    text = tokenizer.apply_chat_template(messages, template_str=template, add_generation_prompt=True)
    return [int(t) for t in tokenizer.encode(text)]


class OnnxRunner:
    def __init__(self, folder: Path, threads: int) -> None:
        import onnxruntime_genai as og

        from engines.oga_native import session_options

        self.og, self.folder = og, folder
        config = og.Config(str(folder))
        config.overlay(json.dumps(session_options(threads)))
        self.model = og.Model(config)
        self.tokenizer = og.Tokenizer(self.model)

    def prompts(self) -> list[list[int]]:
        return [_chat_prompt(self.tokenizer, self.folder, p) for p in AGREEMENT_PROMPTS]

    def _generator(self, max_length: int) -> Any:
        params = self.og.GeneratorParams(self.model)
        params.set_search_options(max_length=max_length, do_sample=False)
        return self.og.Generator(self.model, params)

    def greedy(self, prompt: list[int], n: int) -> tuple[list[int], float, float]:
        """Up to n greedy tokens (to EOS), TTFT and decode tokens/s."""
        gen = self._generator(len(prompt) + n)
        start = time.perf_counter()
        gen.append_tokens(prompt)
        out: list[int] = []
        first = 0.0
        while len(out) < n and not gen.is_done():
            gen.generate_next_token()
            out.append(int(gen.get_next_tokens()[0]))
            if len(out) == 1:
                first = time.perf_counter()
        end = time.perf_counter()
        rate = (len(out) - 1) / (end - first) if len(out) > 1 else 0.0
        return out, first - start, rate

    def agreement(self, prompt: list[int], reference: list[int]) -> int:
        import numpy as np

        gen = self._generator(len(prompt) + len(reference) + 1)
        gen.append_tokens(prompt)
        hits = 0
        for token in reference:
            hits += int(np.argmax(gen.get_logits()[0, -1]) == token)
            gen.append_tokens([token])
        return hits


class LlamaCppRunner:
    def __init__(self, gguf: Path, threads: int) -> None:
        from llama_cpp import Llama

        self.llm = Llama(
            model_path=str(gguf),
            n_ctx=2048,
            logits_all=True,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )

    def greedy(self, prompt: list[int], n: int) -> tuple[list[int], float, float]:
        self.llm.reset()
        start = time.perf_counter()
        out: list[int] = []
        first = 0.0
        for token in self.llm.generate(prompt, top_k=1, temp=0.0, reset=True):
            out.append(int(token))
            if len(out) == 1:
                first = time.perf_counter()
            if len(out) >= n:
                break
        end = time.perf_counter()
        return out, first - start, (len(out) - 1) / (end - first) if len(out) > 1 else 0.0

    def agreement(self, prompt: list[int], reference: list[int]) -> int:
        import numpy as np

        self.llm.reset()
        self.llm.eval(prompt + reference)
        scores = self.llm.scores  # one row of logits per evaluated position
        start = len(prompt) - 1
        return sum(int(np.argmax(scores[start + i]) == tok) for i, tok in enumerate(reference))


def measure(
    runner: Any, prompts: list[list[int]], references: list[list[int]], n: int, runs: int
) -> dict[str, float]:
    hits = sum(runner.agreement(p, r) for p, r in zip(prompts, references, strict=True))
    total = sum(len(r) for r in references)
    ttfts, rates = [], []
    for _ in range(runs):
        for prompt in prompts[:4]:
            _, ttft, rate = runner.greedy(prompt, n)
            ttfts.append(ttft)
            rates.append(rate)
    return {
        "agreement": hits / total,
        "ttft_ms": statistics.median(ttfts) * 1000,
        "decode_tok_s": statistics.median(rates),
    }


def folder_size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.iterdir() if f.is_file()) / 1e6


def run(args: argparse.Namespace) -> int:
    from engines.oga_native import available_cores
    from models.convert import find_default_gguf, prepare_default

    threads = args.threads or available_cores()

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if "fp32" not in variants:
        variants.insert(0, "fp32")
    say: Callable[[str], None] = lambda m: print(m, flush=True)  # noqa: E731
    folders = {v: prepare_default(model_home_of(args), v, progress=say) for v in variants}

    reference_runner = OnnxRunner(folders["fp32"], threads)
    prompts = reference_runner.prompts()
    references = [reference_runner.greedy(p, args.tokens)[0] for p in prompts]
    rows: list[dict[str, Any]] = []
    for variant in variants:
        runner = reference_runner if variant == "fp32" else OnnxRunner(folders[variant], threads)
        say(f"measuring {variant}")
        rows.append(
            {
                "engine": f"onnx {variant}",
                "size_mb": folder_size_mb(folders[variant]),
                **measure(runner, prompts, references, args.tokens, args.runs),
            }
        )
    try:
        llama = LlamaCppRunner(find_default_gguf(), threads)
    except ImportError:
        say("llama-cpp-python is not installed: no llama.cpp row")
    else:
        say("measuring llama.cpp Q4_1")
        rows.append(
            {
                "engine": "llama.cpp Q4_1 (GGUF)",
                "size_mb": find_default_gguf().stat().st_size / 1e6,
                **measure(llama, prompts, references, args.tokens, args.runs),
            }
        )
    base = next((r for r in rows if r["engine"].startswith("llama.cpp")), None)
    print(
        f"\n{len(prompts)} prompts x up to {args.tokens} greedy tokens ({sum(map(len, references))} "
        "positions); agreement = teacher-forced argmax "
        f"match with fp32; speed = median over runs; {threads} CPU threads per engine"
    )
    from models.native_ops import machine_line

    print(machine_line())
    print(f"| {'engine':24} | size MB | TTFT ms | decode tok/s | vs llama.cpp | agreement with fp32 |")
    print(f"|{'-' * 26}|---------|---------|--------------|--------------|---------------------|")
    for r in rows:
        ratio = f"{r['decode_tok_s'] / base['decode_tok_s']:.2f}x" if base else "-"
        print(
            f"| {r['engine']:24} | {r['size_mb']:7.0f} | {r['ttft_ms']:7.1f} | {r['decode_tok_s']:12.1f} "
            f"| {ratio:>12} | {r['agreement'] * 100:18.1f}% |"
        )
    if args.json:
        print(json.dumps(rows))
    return 0
