"""One frozen settings object, read once from env vars and CLI flags, then passed down.

Precedence: CLI flag > environment variable > default. Nothing else reads os.environ for
configuration, so what the app does is decided here and printed at start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

ENV_PREFIX = "SLM_"


@dataclass(frozen=True)
class Endpoint:
    """A remote backend the user configured: kind + base URL (+ optional key and model)."""

    kind: str  # "openai" | "vllm" | "ollama"
    url: str
    name: str = ""
    api_key: str = field(default="", repr=False)
    model: str = ""

    @property
    def label(self) -> str:
        return self.name or f"{self.kind}@{self.url}"


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 7860
    model: str = ""
    """ONNX model folder or Hugging Face repo id[:subfolder]; empty means the embedded default."""
    model_home: Path | None = None
    """Where prepared models live; None means the per-user cache folder."""
    endpoints: tuple[Endpoint, ...] = ()
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 120.0
    presets_dir: Path | None = None
    """Extra user preset files (*.json) loaded beside the shipped ones."""
    public: bool = False
    """Public deployment (e.g. Spaces): no user-entered backend URLs, tighter limits."""
    max_prompt_chars: int = 32_000
    max_new_tokens_cap: int = 4096
    queue_size: int = 64
    onnx_concurrency: int = 16
    """In-process requests decoded in one batch (SLM_ONNX_BATCH); more chats wait in line."""
    onnx_threads: int = 0
    ui_refresh_s: float = 0.15
    """Shortest gap between two states a chat sends the browser (see handlers.paced)."""
    """onnxruntime intra-op threads for the in-process model; 0: every core the process may use."""

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def endpoints_from_env(env: Mapping[str, str]) -> tuple[Endpoint, ...]:
    """VLLM_BASE_URL, OLLAMA_HOST and OPENAI_BASE_URL each add one endpoint."""
    found: list[Endpoint] = []
    if url := env.get("VLLM_BASE_URL", "").strip():
        found.append(Endpoint("vllm", url, name="vllm", api_key=env.get("VLLM_API_KEY", "")))
    if host := env.get("OLLAMA_HOST", "").strip():
        if "://" not in host:
            host = "http://" + host
        found.append(Endpoint("ollama", host, name="ollama"))
    if url := env.get("OPENAI_BASE_URL", "").strip():
        found.append(Endpoint("openai", url, name="openai", api_key=env.get("OPENAI_API_KEY", "")))
    return tuple(found)


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    base = Settings()

    def get(name: str) -> str | None:
        value = env.get(ENV_PREFIX + name)
        return value if value not in (None, "") else None

    return Settings(
        host=get("HOST") or ("0.0.0.0" if env.get("SPACE_ID") else base.host),
        port=int(get("PORT") or env.get("GRADIO_SERVER_PORT") or base.port),
        model=get("MODEL") or base.model,
        model_home=Path(p) if (p := get("HOME")) else None,
        endpoints=endpoints_from_env(env),
        connect_timeout_s=float(get("CONNECT_TIMEOUT") or base.connect_timeout_s),
        read_timeout_s=float(get("READ_TIMEOUT") or base.read_timeout_s),
        presets_dir=Path(p) if (p := get("PRESETS_DIR")) else None,
        public=_bool(get("PUBLIC") or ("1" if env.get("SPACE_ID") else "0")),
        max_prompt_chars=int(get("MAX_PROMPT_CHARS") or base.max_prompt_chars),
        max_new_tokens_cap=int(get("MAX_NEW_TOKENS") or base.max_new_tokens_cap),
        queue_size=int(get("QUEUE_SIZE") or base.queue_size),
        onnx_threads=int(get("ONNX_THREADS") or base.onnx_threads),
        onnx_concurrency=int(get("ONNX_BATCH") or base.onnx_concurrency),
        ui_refresh_s=float(get("UI_REFRESH_S") or base.ui_refresh_s),
    )
