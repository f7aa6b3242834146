"""`slm-playground bench engine-server --formats`: what structured output and logprobs cost.

The same prompts, greedy, streamed, each decoded four ways: free text, response_format
json_object, json_schema (strict), and free text with logprobs (top 5). A row's decode rate is
its tokens after the first over the time from first to last streamed token, summed over the
prompts; the variants of one prompt run back to back, in rotating order, so drift on a shared
machine hits them alike. Target: structured output at >= 85% of free text's rate.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

PROMPTS = (
    "Describe a city as JSON: its name, country and three landmarks.",
    "Give a simple pancake recipe as JSON.",
    "List three animals and what they eat, as JSON.",
    "Describe your favourite book as JSON.",
)
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 24},
        "items": {"type": "array", "items": {"type": "string", "maxLength": 24}, "maxItems": 3},
        "rating": {"type": "integer", "minimum": 1, "maximum": 5},
    },
    "required": ["title", "items", "rating"],
    "additionalProperties": False,
}
VARIANTS: dict[str, dict[str, Any]] = {
    "free text": {},
    "json_object": {"response_format": {"type": "json_object"}},
    "json_schema": {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "b", "schema": SCHEMA, "strict": True},
        }
    },
    "logprobs top 5": {"logprobs": True, "top_logprobs": 5},
}
TARGET = 0.85


@dataclass
class Row:
    name: str
    tokens: int = 0
    decode_s: float = 0.0
    ttfts: list[float] = field(default_factory=list)
    valid: int = 0
    runs: int = 0

    @property
    def rate(self) -> float:
        return self.tokens / self.decode_s if self.decode_s > 0 else 0.0


async def _one(
    client: Any, model: str, prompt: str, max_tokens: int, extra: dict[str, Any]
) -> tuple[int, float, float, str]:
    start = time.perf_counter()
    first = last = None
    pieces, usage = [], 0
    stream = await client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": prompt}],
        max_tokens=max_tokens,
        temperature=0.0,
        stream=True,
        stream_options={"include_usage": True},
        **extra,
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            last = time.perf_counter()
            first = first or last
            pieces.append(chunk.choices[0].delta.content)
        if chunk.usage is not None:
            usage = chunk.usage.completion_tokens
    if first is None or last is None:
        return 0, 0.0, 0.0, ""
    return max(usage - 1, 0), last - first, first - start, "".join(pieces)


async def run_formats(base_url: str, model: str, repeats: int, max_tokens: int) -> list[Row]:
    import json

    import openai

    rows = {name: Row(name) for name in VARIANTS}
    names = list(VARIANTS)
    async with openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0, timeout=600) as client:
        await _one(client, model, "hi", 4, {})  # warm-up
        turn = 0
        for _ in range(repeats):
            for prompt in PROMPTS:
                turn += 1
                for name in names[turn % len(names) :] + names[: turn % len(names)]:
                    tokens, decode_s, ttft, text = await _one(
                        client, model, prompt, max_tokens, VARIANTS[name]
                    )
                    row = rows[name]
                    row.tokens += tokens
                    row.decode_s += decode_s
                    row.ttfts.append(ttft)
                    row.runs += 1
                    with contextlib.suppress(ValueError):
                        row.valid += isinstance(json.loads(text), dict)
    return list(rows.values())


def format_rows(rows: list[Row], max_tokens: int) -> str:
    base = rows[0].rate
    header = (
        f"{'variant':<16} {'runs':>5} {'tokens':>7} {'decode tok/s':>13} {'vs free':>8} "
        f"{'TTFT p50':>9} {'JSON ok':>8}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        ttft = sorted(row.ttfts)[len(row.ttfts) // 2] if row.ttfts else 0.0
        ratio = row.rate / base if base else 0.0
        lines.append(
            f"{row.name:<16} {row.runs:>5} {row.tokens:>7} {row.rate:>13.1f} {ratio:>7.2f}x "
            f"{ttft * 1000:>6.0f} ms {f'{row.valid}/{row.runs}':>8}"
        )
    structured = [r for r in rows if r.name.startswith("json")]
    worst = min(r.rate for r in structured) / base if base else 0.0
    verdict = "met" if worst >= TARGET else "NOT met"
    lines.append(
        f"structured output at {worst:.0%} of free text's decode rate (target >= {TARGET:.0%}): {verdict}"
        f" · max_tokens {max_tokens} · greedy · 'JSON ok': the answer parses as an object "
        "(cut-off answers at max_tokens do not)"
    )
    return "\n".join(lines)
