"""One frozen settings object, read once from env vars and CLI flags, then passed down.

Each setting is declared once, in :data:`OPTIONS` (field, env var, flag, help, which commands
take it, the public deployment's tighter default); the CLIs build their flags from it and
:func:`load_settings` reads them. Precedence: CLI flag > environment variable > public default
(``SLM_PUBLIC``) > default. Nothing else reads ``os.environ`` for configuration.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from runtime.kinds import endpoints_from_env

ENV_PREFIX = "SLM_"
Scope = Literal["ui", "engine"]
"""Which command takes a setting: the web app (`ui`) or the engine server (`engine`)."""
BOTH: tuple[Scope, ...] = ("ui", "engine")
DEFAULT_BATCH = 16
"""In-process requests decoded together when the batch is left to the model and memory (the
engine may choose fewer); the chat's gate lets as many through before it says "waiting"."""


@dataclass(frozen=True)
class Endpoint:
    """A remote backend: kind + base URL (+ optional key and model)."""

    kind: str  # a remote kind of runtime.kinds: "openai" | "vllm" | "ollama" | ...
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
    allow_hosts: tuple[str, ...] = ()
    """Outside public mode: when set, user-entered backend URLs must name one of these hosts."""
    max_prompt_chars: int = 32_000
    max_new_tokens_cap: int = 4096
    max_runs: int = 20
    """Repeat runs one comparison may ask for."""
    max_eval_items: int = 1000
    """Items one evaluation (every lane) may run; its tokens per item are ``max_new_tokens_cap``."""
    queue_size: int = 64
    """Requests (chat turns, comparisons) in flight at once; more are refused with a clear message."""
    per_client: int = 16
    """Requests one client (address) may have in flight at once."""
    onnx_concurrency: int = 0
    """In-process requests decoded together in one batch; 0: chosen from the model and memory."""
    onnx_batching: bool = True
    """False: every in-process request on onnxruntime-genai's Generator, one at a time."""
    onnx_threads: int = 0
    """onnxruntime intra-op threads for the in-process model; 0: every core the process may use."""
    llamacpp_threads: int = 0
    """llama.cpp threads for the llamacpp kind; 0: every core the process may use."""
    ui_refresh_s: float = 0.15
    """Shortest gap between two states a chat sends the browser (see app.pacing.paced)."""
    browser_secret: str = field(default="", repr=False)
    """Encrypts what the browser keeps (saved presets, chats); fixed so it survives restarts."""
    chat_store_kb: int = 1000
    """Most a chat tab's saved chats may take in the browser (3 tabs stay under its ~5 MB)."""
    mcp: bool = True
    """Serve the APIs (chat, compare, verify) as MCP tools at /gradio_api/mcp/."""

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]


@dataclass(frozen=True)
class Option:
    """One setting: where it comes from and which commands take it."""

    field: str
    help: str
    env: str = ""
    """Variable name without the SLM_ prefix; empty: no variable."""
    flag: str = ""
    """Long flag; empty: environment only."""
    scopes: tuple[Scope, ...] = BOTH
    public: Any = None
    """Default when SLM_PUBLIC is on (None: the same as off)."""
    parse: Callable[[str], Any] | None = None
    """From text (env var or flag) to the field's value; default: the field's type."""


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _hosts(value: str) -> tuple[str, ...]:
    return tuple(h.strip().lower() for h in value.split(",") if h.strip())


OPTIONS: tuple[Option, ...] = (
    Option(
        "host", "interface to listen on (default 127.0.0.1; 0.0.0.0 on a Space)", "HOST", "--host", ("ui",)
    ),
    Option("port", "port of the web app (default 7860)", "PORT", "--port", ("ui",)),
    Option(
        "model", "ONNX model folder or hub id[:subfolder] (default: the embedded model)", "MODEL", "--model"
    ),
    Option("model_home", "where prepared models live", "HOME", "--home", parse=Path),
    Option(
        "presets_dir", "folder of extra preset files", "PRESETS_DIR", "--presets-dir", ("ui",), parse=Path
    ),
    Option("onnx_threads", "in-process model's CPU threads (0: every core)", "ONNX_THREADS", "--threads"),
    Option(
        "llamacpp_threads",
        "llama.cpp model's CPU threads (0: every core)",
        "LLAMACPP_THREADS",
        "--llamacpp-threads",
    ),
    Option(
        "onnx_concurrency",
        "in-process requests decoded together in one batch (0: chosen from the model and memory)",
        "ONNX_BATCH",
        "--concurrency",
    ),
    Option(
        "onnx_batching",
        "decode every in-process request alone on onnxruntime-genai's Generator",
        "ONNX_BATCHING",
        "--no-batching",
        parse=_bool,
    ),
    Option(
        "public",
        "public deployment: only configured backends, tighter limits",
        "PUBLIC",
        "--public",
        ("ui",),
        parse=_bool,
    ),
    Option(
        "allow_hosts",
        "comma-separated hosts user-entered backend URLs may name (e.g. gpu.lan,*.example.com)",
        "ALLOW_HOSTS",
        "--allow-hosts",
        ("ui",),
        parse=_hosts,
    ),
    Option("connect_timeout_s", "seconds to connect to a remote backend", "CONNECT_TIMEOUT", scopes=("ui",)),
    Option("read_timeout_s", "seconds to wait for a remote backend's answer", "READ_TIMEOUT", scopes=("ui",)),
    Option(
        "max_prompt_chars",
        "longest prompt, in characters",
        "MAX_PROMPT_CHARS",
        "--max-prompt-chars",
        public=8000,
    ),
    Option(
        "max_new_tokens_cap",
        "most new tokens a request may ask",
        "MAX_NEW_TOKENS",
        "--max-tokens-cap",
        public=1024,
    ),
    Option("max_runs", "repeat runs one comparison may ask", "MAX_RUNS", scopes=("ui",), public=5),
    Option("max_eval_items", "items one evaluation may run", "MAX_EVAL_ITEMS", scopes=("ui",), public=50),
    Option(
        "queue_size", "requests in flight at once; more are refused", "QUEUE_SIZE", "--max-queue", public=16
    ),
    Option("per_client", "requests one client may have in flight", "PER_CLIENT", "--per-client", public=2),
    Option("ui_refresh_s", "shortest gap between two chat updates (s)", "UI_REFRESH_S", scopes=("ui",)),
    Option("browser_secret", "secret that encrypts what browsers keep", "BROWSER_SECRET", scopes=("ui",)),
    Option("chat_store_kb", "KB of chats a chat tab may keep in a browser", "CHAT_STORE_KB", scopes=("ui",)),
    Option("mcp", "serve chat, compare and verify as MCP tools (0: off)", "MCP", scopes=("ui",), parse=_bool),
)

_FIELDS = {f.name: f for f in fields(Settings)}


def _parser_for(option: Option) -> Callable[[str], Any]:
    if option.parse is not None:
        return option.parse
    default = _FIELDS[option.field].default
    return type(default) if isinstance(default, int | float | str) and not isinstance(default, bool) else str


def load_settings(env: Mapping[str, str] | None = None, args: argparse.Namespace | None = None) -> Settings:
    """Settings from the environment, then flags parsed by a parser :func:`add_flags` built."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for option in OPTIONS:
        raw = env.get(ENV_PREFIX + option.env, "") if option.env else ""
        if raw.strip():
            try:
                values[option.field] = _parser_for(option)(raw.strip())
            except ValueError:
                problem = f"{ENV_PREFIX}{option.env}={raw!r} is not valid: {option.help}"
                raise SystemExit(f"error: {problem}") from None
    if args is not None:
        for option in OPTIONS:
            value = getattr(args, option.field, None)
            if value is not None:
                values[option.field] = value
    on_space = bool(env.get("SPACE_ID", "").strip())
    if "port" not in values and (port := env.get("GRADIO_SERVER_PORT", "").strip()):
        values["port"] = int(port)
    if on_space:
        values.setdefault("host", "0.0.0.0")
        values.setdefault("public", True)
    if values.get("public"):
        for option in OPTIONS:
            if option.public is not None:
                values.setdefault(option.field, option.public)
    return Settings(endpoints=endpoints_from_env(env), **values)


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    return load_settings(env)


def add_flags(parser: argparse.ArgumentParser, scope: Scope, *, skip: Iterable[str] = ()) -> None:
    """Add the flags of every setting ``scope`` takes; each defaults to None (= not given)."""
    skipped = set(skip)
    for option in OPTIONS:
        if not option.flag or scope not in option.scopes or option.field in skipped:
            continue
        env = f"; {ENV_PREFIX}{option.env}" if option.env else ""
        if _FIELDS[option.field].type in ("bool", bool) and option.flag.startswith("--no-"):
            parser.add_argument(
                option.flag, dest=option.field, action="store_false", default=None, help=option.help + env
            )
        elif _FIELDS[option.field].type in ("bool", bool):
            parser.add_argument(
                option.flag, dest=option.field, action="store_true", default=None, help=option.help + env
            )
        else:
            parser.add_argument(
                option.flag, dest=option.field, type=_parser_for(option), default=None, help=option.help + env
            )


def model_home_of(args: argparse.Namespace) -> Path | None:
    """A command's ``--home``, else SLM_HOME (for commands with flags of their own, e.g. bench)."""
    home = getattr(args, "home", None) or getattr(args, "model_home", None)
    return Path(home) if home else load_settings().model_home
