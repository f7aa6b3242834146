"""The one error boundary of the app's APIs (``/chat``, ``/compare``, MCP), and who is asking.

Every failure a caller can fix becomes a ``gr.Error`` with one short line that names the field
and what is allowed; nothing else (no pydantic dumps, no generic "upstream" errors). Failures
that are the server's own are logged with their traceback and reported without internals.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import gradio as gr

from app.render import error_message
from backends.errors import BackendError
from presets import PresetError
from runtime.errors import Busy, InputError

log = logging.getLogger(__name__)


def api_error(exc: BaseException) -> gr.Error:
    """The gr.Error an API caller gets for ``exc``."""
    if isinstance(exc, Busy):
        return gr.Error(f"busy: {exc} (retry after {exc.retry_after_s:.0f} s)")
    if isinstance(exc, InputError | PresetError):
        return gr.Error(f"invalid input: {exc}")
    if isinstance(exc, BackendError):
        return gr.Error(str(error_message(exc).content))
    if isinstance(exc, KeyError | ValueError):
        return gr.Error(f"invalid input: {str(exc).strip(chr(34) + chr(39))}")
    log.error("API call failed", exc_info=exc)
    return gr.Error(f"the server failed to answer ({type(exc).__name__}); the error is in its log")


def client_of(request: gr.Request | None) -> str:
    """Who is asking, for per-client limits: the peer's address; behind a proxy on a private or
    loopback address (Spaces, a reverse proxy), the first address of X-Forwarded-For."""
    if request is None:
        return "local"
    peer = getattr(getattr(request, "client", None), "host", None) or "local"
    headers: Any = getattr(request, "headers", None) or {}
    forwarded = headers.get("x-forwarded-for", "") if hasattr(headers, "get") else ""
    if forwarded and _is_internal(peer):
        return forwarded.split(",")[0].strip() or peer
    return peer


def _is_internal(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host in ("local", "localhost")
    return address.is_private or address.is_loopback


def session_of(request: gr.Request | None) -> str | None:
    """The browser (or gradio_client) session, which owns the backends its user added."""
    return (getattr(request, "session_hash", None) or None) if request is not None else None
