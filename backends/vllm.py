"""vLLM's OpenAI-compatible server as its own kind: the OpenAI-compatible client plus vLLM's extras.

Beyond /v1 it reads ``/version`` (the server's release), ``/v1/models`` (max_model_len, root)
and ``/metrics`` (Prometheus text: prefix-cache hits, KV-cache usage, running and waiting
requests, latency histograms). The figures are parsed by :func:`server_figures`, a pure
function tested on recorded lines, and end up beside the app's own numbers: in each answer's
``metrics.server`` and in the Backends overview.

Health: vLLM keeps its port closed until its engine is ready (no 503 phase), so a configured
server that has never answered is reported as starting ("loading"), not as down, for a while.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import httpx

from backends.base import ChatRequest, Health, ModelInfo, StreamEvent, Usage
from backends.openai_compat import OpenAICompatBackend, server_root

STARTING_GRACE_S = 600.0
"""How long a server that never answered counts as starting (vLLM on CPU: ~50 s eager,
~5 min with torch.compile; a big model on a GPU loads for minutes)."""
METRICS_TIMEOUT_S = 2.0

# name{labels} value [timestamp]   (Prometheus text exposition format 0.0.4)
_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def prometheus_totals(lines: Iterable[str]) -> dict[str, float]:
    """Each sample name's value summed over its label sets (engines, models); comments skipped."""
    totals: dict[str, float] = {}
    for line in lines:
        if not line or line.startswith("#"):
            continue
        found = _SAMPLE.match(line)
        if found is None:
            continue
        try:
            value = float(found.group(3))
        except ValueError:
            continue
        if math.isfinite(value):
            totals[found.group(1)] = totals.get(found.group(1), 0.0) + value
    return totals


def _mean(totals: Mapping[str, float], histogram: str) -> float | None:
    count = totals.get(f"{histogram}_count")
    total = totals.get(f"{histogram}_sum")
    return total / count if count and total is not None else None


def server_figures(lines: Iterable[str]) -> dict[str, float]:
    """vLLM's own figures from its /metrics text; a series the server lacks is left out.

    prefix_cache_hit_rate: hit tokens / queried tokens since the server started;
    kv_cache_usage: 0..1 of the KV cache in use now; requests_running / requests_waiting: now;
    ttft_mean_s, itl_mean_s, e2e_mean_s, queue_mean_s: means of the latency histograms.
    """
    totals = prometheus_totals(lines)
    figures: dict[str, float] = {}
    queries = totals.get("vllm:prefix_cache_queries_total")
    hits = totals.get("vllm:prefix_cache_hits_total")
    if queries and hits is not None:
        figures["prefix_cache_hit_rate"] = hits / queries
    for name, series in (
        ("kv_cache_usage", "vllm:kv_cache_usage_perc"),
        ("requests_running", "vllm:num_requests_running"),
        ("requests_waiting", "vllm:num_requests_waiting"),
        ("prompt_tokens_total", "vllm:prompt_tokens_total"),
        ("generation_tokens_total", "vllm:generation_tokens_total"),
    ):
        if series in totals:
            figures[name] = totals[series]
    for name, histogram in (
        ("ttft_mean_s", "vllm:time_to_first_token_seconds"),
        ("itl_mean_s", "vllm:inter_token_latency_seconds"),
        ("e2e_mean_s", "vllm:e2e_request_latency_seconds"),
        ("queue_mean_s", "vllm:request_queue_time_seconds"),
    ):
        if (mean := _mean(totals, histogram)) is not None:
            figures[name] = mean
    return figures


def figures_line(figures: Mapping[str, float]) -> str:
    """The overview's short form: "prefix cache 42% hit · KV 3.1% · 1 running, 0 waiting"."""
    parts = []
    if "prefix_cache_hit_rate" in figures:
        parts.append(f"prefix cache {figures['prefix_cache_hit_rate']:.0%} hit")
    if "kv_cache_usage" in figures:
        parts.append(f"KV {figures['kv_cache_usage']:.1%}")
    if "requests_running" in figures or "requests_waiting" in figures:
        running = int(figures.get("requests_running", 0))
        waiting = int(figures.get("requests_waiting", 0))
        parts.append(f"{running} running, {waiting} waiting")
    if "ttft_mean_s" in figures:
        parts.append(f"TTFT mean {figures['ttft_mean_s'] * 1000:.0f} ms")
    return " · ".join(parts)


def _prefixed(figures: Mapping[str, float]) -> dict[str, float]:
    return {f"server_{name}": value for name, value in figures.items()}


@dataclass
class _Seen:
    """Whether the server ever answered, and since when we have been asking."""

    created: float
    answered: bool = False


class VllmBackend(OpenAICompatBackend):
    kind = "vllm"

    def __init__(
        self, name: str, *, base_url: str, starting_grace_s: float = STARTING_GRACE_S, **options: Any
    ) -> None:
        super().__init__(name, base_url=base_url, flavor="vllm", **options)
        self.starting_grace_s = starting_grace_s
        self._seen = _Seen(time.monotonic())
        self._version: str | None = None

    def _http(self, timeout_s: float) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        return httpx.AsyncClient(timeout=httpx.Timeout(timeout_s), headers=headers)

    async def server_version(self) -> str | None:
        """vLLM's release from /version (asked once); None when the server does not say."""
        if self._version is None:
            try:
                async with self._http(self.connect_timeout_s) as client:
                    response = await client.get(server_root(self.base_url) + "/version")
                version = response.json().get("version") if response.status_code == 200 else None
            except (httpx.HTTPError, ValueError, AttributeError):
                return None
            self._version = str(version) if version else None
        return self._version

    async def server_metrics(self) -> dict[str, float]:
        """The server's own figures now (see :func:`server_figures`); {} when /metrics fails."""
        try:
            async with self._http(METRICS_TIMEOUT_S) as client:
                response = await client.get(server_root(self.base_url) + "/metrics")
        except httpx.HTTPError:
            return {}
        if response.status_code != 200:
            return {}
        return server_figures(response.text.splitlines())

    async def list_models(self) -> list[ModelInfo]:
        models = await super().list_models()
        version = await self.server_version()
        extra = {"server": "vllm", **({"server_version": version} if version else {})}
        models = [
            ModelInfo(
                m.id,
                context_length=m.context_length,
                details={
                    **m.details,
                    **extra,
                    **({"max_model_len": str(m.context_length)} if m.context_length else {}),
                },
            )
            for m in models
        ]
        self._models = models
        return models

    async def _stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """The OpenAI-compatible stream; its final Usage carries the server's figures, read while
        this answer was being generated (KV usage and the queue then, not after it freed them),
        so fetching them does not delay the answer."""
        snapshot: asyncio.Task[dict[str, float]] | None = None
        try:
            async for event in super()._stream(request):
                if snapshot is None:
                    snapshot = asyncio.create_task(self.server_metrics())
                if isinstance(event, Usage):
                    figures = await snapshot
                    event = replace(event, server={**event.server, **_prefixed(figures)})
                yield event
        finally:
            if snapshot is not None and not snapshot.done():
                snapshot.cancel()

    async def health(self) -> Health:
        health = await super().health()
        if health.status != "unreachable":
            self._seen.answered = True
            version = await self.server_version()
            if version and health.status == "ready":
                return Health("ready", f"vLLM {version}, {health.detail}")
            return health
        waited = time.monotonic() - self._seen.created
        if not self._seen.answered and waited < self.starting_grace_s:
            return Health(
                "loading",
                f"starting: no answer from {self.base_url} yet ({waited:.0f} s); vLLM opens its port "
                "only when its engine is ready",
            )
        return health
