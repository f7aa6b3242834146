"""Guards for public deployments (Hugging Face Spaces, a shared server).

* :func:`check_public_url` decides whether a backend URL typed by a visitor may be contacted:
  http(s) only, no credentials in the URL, an optional host allowlist, and every address the
  name resolves to must be a public one (no loopback, private, link-local such as the cloud
  metadata service at 169.254.169.254, CGNAT, multicast or reserved ranges). Resolution is
  injected, so the decision is a pure function in tests.
* :class:`RedactSecrets` is a logging filter that removes tokens and API keys from log lines
  and tracebacks, whichever logger they come through.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
from collections.abc import Callable, Collection, Iterable, Mapping
from urllib.parse import urlsplit

Resolver = Callable[[str, int], list[str]]


class UnsafeURL(ValueError):
    """Raised when a URL from user input may not be contacted by a public deployment."""


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system resolver; numeric forms included)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _host_allowed(host: str, allow_hosts: Collection[str]) -> bool:
    for pattern in allow_hosts:
        pattern = pattern.lower().strip()
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]):
                return True
        elif host == pattern:
            return True
    return False


def _why_not_public(address: str) -> str | None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for flag in ("loopback", "link_local", "unspecified", "multicast", "private", "reserved"):
        if getattr(ip, f"is_{flag}"):
            return flag.replace("_", "-")
    if not ip.is_global:
        return "not globally routable"
    return None


def check_public_url(
    url: str,
    *,
    allow_hosts: Collection[str] = (),
    resolve: Resolver = resolve_host,
) -> str:
    """Return ``url`` if a public deployment may call it; raise :class:`UnsafeURL` saying why not.

    ``allow_hosts`` (exact names or ``*.example.com``) narrows it further when not empty.
    The check resolves the name itself, so "localhost", "127.1", "0x7f000001" or a public name
    pointing at 10.0.0.5 are all caught by the address they lead to.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL(f"only http and https URLs are allowed, not {parts.scheme or 'none'!r}")
    if parts.username or parts.password:
        raise UnsafeURL("credentials inside the URL are not allowed; use the API key field")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise UnsafeURL("the URL has no host name")
    if allow_hosts and not _host_allowed(host, allow_hosts):
        raise UnsafeURL(f"{host} is not on this deployment's allowlist ({', '.join(sorted(allow_hosts))})")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeURL(f"the port is not valid: {exc}") from None
    try:
        addresses = resolve(host, port)
    except OSError as exc:
        raise UnsafeURL(f"cannot resolve {host}: {exc}") from None
    if not addresses:
        raise UnsafeURL(f"{host} resolves to no address")
    for address in addresses:
        reason = _why_not_public(address)
        if reason:
            raise UnsafeURL(f"{host} resolves to {address} ({reason}); internal addresses are not allowed")
    return url.strip()


# --- secrets in logs ------------------------------------------------------------------------------

SECRET_ENV_NAME = re.compile(r"(TOKEN|API_KEY|SECRET|PASSWORD)", re.IGNORECASE)
SECRET_PATTERNS = (
    re.compile(r"\bhf_[A-Za-z0-9]{20,}"),  # Hugging Face tokens
    re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"),  # OpenAI-style keys
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/\-]{8,}=*"),
    re.compile(r"(?i)((?:api[_-]?key|token|secret|password)[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]{4,}"),
)
MASK = "[REDACTED]"


def secrets_from_env(env: Mapping[str, str]) -> list[str]:
    """Values of variables named like secrets (HF_TOKEN, OPENAI_API_KEY, ...), longest first."""
    values = {v for k, v in env.items() if SECRET_ENV_NAME.search(k) and len(v) >= 6}
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + MASK, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites each record's message (and traceback) with secrets masked; never drops a record."""

    def __init__(self, secrets: Iterable[str] | None = None) -> None:
        super().__init__()
        self.secrets = list(secrets) if secrets is not None else secrets_from_env(os.environ)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, self.secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        return True


def install_redaction(
    logger_names: Iterable[str] = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx"),
    secrets: Iterable[str] | None = None,
) -> RedactSecrets:
    """Attach one filter to every handler of these loggers (handler filters see propagated records)."""
    flt = RedactSecrets(secrets)
    for name in logger_names:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactSecrets) for f in handler.filters):
                handler.addFilter(flt)
    return flt
