"""Prometheus text-format metrics for the engine server, without a client library.

Names follow vLLM's where one exists (prompt/generation token totals, time to first token,
requests running/waiting) with our own ``slm_engine:`` prefix, so a dashboard built for one
reads the other with a prefix change. Values come from the backend contract's client-side
Metrics (Backend.chat), the same numbers the app shows.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from dataclasses import dataclass, field

PREFIX = "slm_engine:"

TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
RATE_BUCKETS = (1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0)
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


@dataclass
class Histogram:
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.buckets) + 1)  # the last one is +Inf

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.n += 1

    def lines(self, name: str, labels: str) -> list[str]:
        out, cumulative = [], 0
        sep = "," if labels else ""
        for bound, count in zip((*self.buckets, float("inf")), self.counts, strict=True):
            cumulative += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            out.append(f'{name}_bucket{{{labels}{sep}le="{le}"}} {cumulative}')
        brace = f"{{{labels}}}" if labels else ""
        out.append(f"{name}_sum{brace} {self.total!r}")
        out.append(f"{name}_count{brace} {self.n}")
        return out


class ServerMetrics:
    """Counters the request handlers update; ``render()`` gives the /metrics body."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._lock = threading.Lock()
        self.requests = Counter[str]()
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.running = 0
        self.waiting = 0
        self.ttft = Histogram(TTFT_BUCKETS)
        self.decode_rate = Histogram(RATE_BUCKETS)
        self.latency = Histogram(LATENCY_BUCKETS)

    def count_request(self, status: int) -> None:
        with self._lock:
            self.requests[str(status)] += 1

    def record_generation(
        self,
        *,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        ttft_s: float | None,
        tokens_per_s: float | None,
        total_s: float,
    ) -> None:
        with self._lock:
            self.prompt_tokens += prompt_tokens or 0
            self.completion_tokens += completion_tokens or 0
            if ttft_s is not None:
                self.ttft.observe(ttft_s)
            if tokens_per_s is not None:
                self.decode_rate.observe(tokens_per_s)
            self.latency.observe(total_s)

    def render(self) -> str:
        model = f'model_name="{_escape(self.model)}"'
        with self._lock:
            lines = [
                f"# HELP {PREFIX}requests_total Chat completion requests by HTTP status.",
                f"# TYPE {PREFIX}requests_total counter",
            ]
            for status in sorted(self.requests) or ["200"]:
                lines.append(f'{PREFIX}requests_total{{{model},status="{status}"}} {self.requests[status]}')
            for name, help_, value in (
                ("prompt_tokens_total", "Prompt tokens processed.", self.prompt_tokens),
                ("generation_tokens_total", "Completion tokens generated.", self.completion_tokens),
            ):
                lines += [f"# HELP {PREFIX}{name} {help_}", f"# TYPE {PREFIX}{name} counter"]
                lines.append(f"{PREFIX}{name}{{{model}}} {value}")
            for name, help_, value in (
                ("num_requests_running", "Requests generating now.", self.running),
                ("num_requests_waiting", "Requests queued for a generation slot.", self.waiting),
            ):
                lines += [f"# HELP {PREFIX}{name} {help_}", f"# TYPE {PREFIX}{name} gauge"]
                lines.append(f"{PREFIX}{name}{{{model}}} {value}")
            for name, help_, hist in (
                ("time_to_first_token_seconds", "Request start to first token.", self.ttft),
                ("decode_tokens_per_second", "Tokens per second after the first token.", self.decode_rate),
                ("e2e_request_latency_seconds", "Request start to last token.", self.latency),
            ):
                lines += [f"# HELP {PREFIX}{name} {help_}", f"# TYPE {PREFIX}{name} histogram"]
                lines += hist.lines(PREFIX + name, model)
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


ENGINE_GAUGES = {
    "batch_size": ("batch_size", "Sequences in the in-process model's last decoding step."),
    "max_batch": ("max_batch_size", "Sequences the in-process model decodes together at most."),
    "queued": ("queue_length", "Requests waiting for a place in the in-process model's batch."),
    "tokens_per_s": ("generation_tokens_per_second", "Tokens generated per second, all requests, last 10 s."),
}


ENGINE_COUNTERS = {
    "graph_prompt_seconds": ("graph_prompt_seconds_total", "Seconds the batched graph spent on prompts."),
    "graph_prompt_tokens": (
        "graph_prompt_tokens_total",
        "Prompt tokens fed in prompt runs (a prompt's last token, fed with a decoding step, is a row there).",
    ),
    "graph_decode_seconds": ("graph_decode_seconds_total", "Seconds the batched graph spent decoding."),
    "graph_decode_steps": ("graph_decode_steps_total", "Decoding steps the batched graph ran."),
    "graph_decode_rows": ("graph_decode_rows_total", "Rows (one token each) over all decoding steps."),
}
"""What an ONNX engine's batched graph has run (engines/onnx_jobs.py GraphWork): the prompts'
share of its time, and rows a decoding step, between two scrapes (bench concurrency reads them)."""


def engine_metrics(model: str, stats: dict[str, float]) -> str:
    """Gauges and counters an in-process scheduler reports about itself (Backend.stats())."""
    labels = f'model_name="{_escape(model)}"'
    lines = []
    for kind, table in (("gauge", ENGINE_GAUGES), ("counter", ENGINE_COUNTERS)):
        for key, (name, help_) in table.items():
            if key in stats:
                lines += [f"# HELP {PREFIX}{name} {help_}", f"# TYPE {PREFIX}{name} {kind}"]
                lines.append(f"{PREFIX}{name}{{{labels}}} {stats[key]!r}")
    return "\n".join(lines) + "\n" if lines else ""
