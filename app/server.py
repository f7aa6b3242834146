"""``slm-playground ui``: build the registry (in-process model + endpoints) and launch the app."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from runtime.settings import Settings

LOCALHOST_PATIENCE_S = 30.0
"""How long launch waits for its own page to answer before Gradio's "localhost is not
accessible" error: Gradio asks once with a 3 s timeout, which a loaded 2-core machine missed
(a test launch failed that way during a full test run)."""


def patient(check: Callable[[str], bool], patience_s: float, wait_s: float = 0.5) -> Callable[[str], bool]:
    """CHECK(url), asked again until it says yes or PATIENCE_S have passed."""

    def ask(url: str) -> bool:
        deadline = time.monotonic() + patience_s
        while not check(url):
            if time.monotonic() >= deadline:
                return False
            time.sleep(wait_s)
        return True

    return ask


def launch(demo: Any, settings: Settings, **options: Any) -> None:
    """Start the Blocks the way the app always runs them (tests too): without blocking, with the
    app's CSS, the guard that answers over-long links with a page instead of a 500, and the
    public API endpoints (chat, compare, verify, eval) as MCP tools at /gradio_api/mcp/ unless
    ``settings.mcp`` is off (``SLM_MCP=0``)."""
    from gradio import networking
    from starlette.middleware import Middleware

    from app.links import LongLinkGuard
    from app.ui import APP_CSS

    if not getattr(networking.url_ok, "patient", False):  # once per process; see LOCALHOST_PATIENCE_S
        networking.url_ok = patient(networking.url_ok, LOCALHOST_PATIENCE_S)  # type: ignore[assignment]
        networking.url_ok.patient = True  # type: ignore[attr-defined]
    demo.launch(
        server_name=settings.host,
        server_port=settings.port,
        css=APP_CSS,
        prevent_thread_lock=True,
        app_kwargs={"middleware": [Middleware(LongLinkGuard)]},
        mcp_server=options.pop("mcp_server", settings.mcp),
        **options,
    )


def run_ui(settings: Settings, *, block: bool = True) -> int:
    started = time.perf_counter()
    from serve.safety import install_redaction

    install_redaction()  # API keys and HF_TOKEN never reach the logs
    from app.ui import build_app
    from runtime.kinds import Target, default_in_process, kind
    from runtime.registry import BackendRegistry

    def in_process():  # built on first use: the page comes up before the model loads
        name = default_in_process()
        return kind(name).build(name, Target(path=settings.model), settings)

    registry = BackendRegistry(settings, in_process=in_process)
    from mathcheck import warm_up

    warm_up()  # start the sympy worker (verification, the calculator) while the page loads
    imported = time.perf_counter()
    demo = build_app(settings, registry)
    built = time.perf_counter()
    launch(demo, settings, quiet=True, footer_links=["api", "gradio", "settings"])
    ready = time.perf_counter()
    print(
        f"SLM Playground on http://{settings.host}:{settings.port} "
        f"(imports {imported - started:.2f} s, build {built - imported:.2f} s, "
        f"launch {ready - built:.2f} s; backends: {', '.join(registry.labels()) or 'none'})",
        flush=True,
    )
    if not block:
        return 0
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        demo.close()
    return 0
