"""`slm-playground bench engine-server`: N concurrent clients against an OpenAI-compatible server.

Runs one client alone first (the baseline), then N clients at once, every request streamed
with usage, and prints one table: requests completed of sent (none may be lost), completion
tokens, wall time, aggregate tokens/s, time to first token and latency percentiles.

Without --url it starts the engine server in-process on the default model (or --model), on a
free loopback port, so the figure includes real HTTP, SSE and the server's queue.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from runtime.settings import model_home_of

PROMPTS = (
    "Explain in three sentences why the sky is blue.",
    "Write a short poem about a lighthouse.",
    "List five uses of a paperclip.",
    "Describe how a bicycle works to a child.",
)


@dataclass
class Outcome:
    ok: bool
    completion_tokens: int = 0
    ttft_s: float | None = None
    latency_s: float = 0.0
    error: str = ""


@dataclass
class Scenario:
    name: str
    clients: int
    outcomes: list[Outcome] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def completed(self) -> int:
        return sum(o.ok for o in self.outcomes)

    @property
    def tokens(self) -> int:
        return sum(o.completion_tokens for o in self.outcomes if o.ok)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s if self.wall_s > 0 else 0.0


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def one_request(client: object, model: str, prompt: str, max_tokens: int) -> Outcome:
    start = time.perf_counter()
    first: float | None = None
    tokens = 0
    try:
        stream = await client.chat.completions.create(  # type: ignore[attr-defined]
            model=model,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=max_tokens,
            temperature=0.0,
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content and first is None:
                first = time.perf_counter()
            if chunk.usage is not None:
                tokens = chunk.usage.completion_tokens
    except Exception as exc:  # counted as lost, with the reason shown under the table
        return Outcome(False, latency_s=time.perf_counter() - start, error=f"{type(exc).__name__}: {exc}")
    end = time.perf_counter()
    return Outcome(True, tokens, None if first is None else first - start, end - start)


async def run_scenario(
    base_url: str, model: str, name: str, clients: int, per_client: int, max_tokens: int
) -> Scenario:
    import openai

    scenario = Scenario(name, clients)
    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0, timeout=600)

    async def worker(index: int) -> list[Outcome]:
        results = []
        for j in range(per_client):
            prompt = PROMPTS[(index + j) % len(PROMPTS)]
            results.append(await one_request(client, model, prompt, max_tokens))
        return results

    try:
        start = time.perf_counter()
        per_worker = await asyncio.gather(*(worker(i) for i in range(clients)))
        scenario.wall_s = time.perf_counter() - start
    finally:
        await client.close()
    scenario.outcomes = [o for results in per_worker for o in results]
    return scenario


def format_table(scenarios: list[Scenario], baseline: Scenario) -> str:
    header = (
        f"{'scenario':<12} {'clients':>7} {'done/sent':>10} {'tokens':>7} {'wall s':>7} {'agg tok/s':>9} "
        f"{'vs 1':>6} {'TTFT p50':>9} {'TTFT p95':>9} {'lat p50':>8} {'lat p95':>8}"
    )
    lines = [header, "-" * len(header)]

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value * 1000:.0f} ms"

    for s in scenarios:
        ttfts = [o.ttft_s for o in s.outcomes if o.ok and o.ttft_s is not None]
        latencies = [o.latency_s for o in s.outcomes if o.ok]
        ratio = s.tokens_per_s / baseline.tokens_per_s if baseline.tokens_per_s else 0.0
        lines.append(
            f"{s.name:<12} {s.clients:>7} {f'{s.completed}/{len(s.outcomes)}':>10} {s.tokens:>7} "
            f"{s.wall_s:>7.2f} {s.tokens_per_s:>9.1f} {ratio:>5.2f}x {ms(percentile(ttfts, 0.5)):>9} "
            f"{ms(percentile(ttfts, 0.95)):>9} {percentile(latencies, 0.5) or 0:>7.2f}s "
            f"{percentile(latencies, 0.95) or 0:>7.2f}s"
        )
    for s in scenarios:
        for error in sorted({o.error for o in s.outcomes if not o.ok}):
            lines.append(f"  {s.name}: lost: {error}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", default=None, help="base URL of a running server, e.g. http://127.0.0.1:8000/v1"
    )
    parser.add_argument(
        "--served-model", default=None, help="model id to request (default: the first listed)"
    )
    parser.add_argument("--model", default="", help="in-process only: model folder or spec (default model)")
    parser.add_argument("--home", type=Path, default=None, help="in-process only: model home")
    parser.add_argument(
        "--concurrency", type=int, default=0, help="in-process only: the batch size (default: automatic)"
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests-per-client", type=int, default=1)
    parser.add_argument("--baseline-requests", type=int, default=3, help="requests of the single client")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument(
        "--formats",
        action="store_true",
        help="instead: decode rate of free text vs structured output (json_object, json_schema) and logprobs",
    )
    parser.add_argument("--repeats", type=int, default=2, help="--formats: passes over its prompts")


async def _bench(args: argparse.Namespace, base_url: str) -> int:
    import openai

    model = args.served_model
    if model is None:
        async with openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0) as client:
            model = (await client.models.list()).data[0].id
    if args.formats:
        from serve.bench_formats import format_rows, run_formats

        rows = await run_formats(base_url, model, args.repeats, args.max_tokens)
        print(f"engine-server formats bench · {base_url} · model {model}")
        print(format_rows(rows, args.max_tokens))
        return 0
    # one warm-up request so model loading is not billed to the baseline
    await run_scenario(base_url, model, "warm-up", 1, 1, 4)
    baseline = await run_scenario(base_url, model, "1 client", 1, args.baseline_requests, args.max_tokens)
    loaded = await run_scenario(
        base_url, model, f"{args.clients} clients", args.clients, args.requests_per_client, args.max_tokens
    )
    print(f"engine-server bench · {base_url} · model {model} · max_tokens {args.max_tokens} · greedy")
    print(format_table([baseline, loaded], baseline))
    lost = len(loaded.outcomes) - loaded.completed + len(baseline.outcomes) - baseline.completed
    print(f"lost requests: {lost}")
    return 0 if lost == 0 else 1


def run(args: argparse.Namespace) -> int:
    if args.url:
        return asyncio.run(_bench(args, args.url.rstrip("/")))
    from runtime.kinds import build_in_process, default_in_process, queue_of
    from runtime.settings import Settings
    from serve.server import create_app
    from serve.threaded import ServerThread

    queue = max(64, args.clients * args.requests_per_client)
    settings = Settings(model_home=model_home_of(args), onnx_concurrency=args.concurrency, queue_size=queue)
    backend = build_in_process(default_in_process(), settings, path=args.model)
    engine_queue = queue_of(backend)
    app = create_app(  # as `slm-playground engine` does: the scheduler batches and queues
        backend,
        model_id=backend.default_model(),
        max_concurrency=(engine_queue.capacity() if engine_queue is not None else 1) + queue,
        max_queue=0,
        close_backend=True,
    )
    with ServerThread(app) as server:
        return asyncio.run(_bench(args, f"{server.base_url}/v1"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="slm-playground bench engine-server", description=__doc__.splitlines()[0]
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
