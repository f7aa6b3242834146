"""The one gate every user-supplied backend passes: URLs, hosts, folders and model names.

The Compare tab, the Backends tab, share links, ``/chat``, ``/compare`` and MCP all build
backends through :class:`BackendGate`, so one decision holds everywhere:

* public mode (``SLM_PUBLIC``, a Space): no user-entered URL, host or folder ever reaches a
  client or the model loader; only configured backends, chosen by label. A model name is a
  name (``qwen2.5:0.5b``, ``org/model``), never a spec or a path.
* otherwise: anything the user types may be used, unless the operator set an allowlist
  (``SLM_ALLOW_HOSTS``): then a URL must name an allowed host.

:func:`check_public_url` is the stricter rule for deployments that do take visitor URLs: every
address the name resolves to must be public (no loopback, private, link-local such as the
cloud metadata service at 169.254.169.254, CGNAT, multicast or reserved ranges). Resolution is
injected, so the decision is a pure function in tests.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Collection
from urllib.parse import urlsplit

from runtime.errors import InputError
from runtime.settings import Settings

Resolver = Callable[[str, int], list[str]]


class UnsafeURL(ValueError):
    """Raised when a URL from user input may not be contacted under the public-address rule."""


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


MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+\-]{0,199}")
"""Model ids as servers spell them: ``phi4-mini:3.8b-q4_K_M``, ``microsoft/Phi-4-mini-instruct``."""


class BackendRefused(InputError):
    """A user-supplied URL, folder or model name this deployment will not use."""


class BackendGate:
    """Decides whether a user-supplied backend may be built; raises :class:`BackendRefused`."""

    def __init__(self, settings: Settings) -> None:
        self.public = settings.public
        self.allow_hosts = settings.allow_hosts

    def check_url(self, url: str, *, field: str = "url") -> str:
        url = (url or "").strip()
        if self.public:
            raise BackendRefused(
                field,
                "is refused: this public instance only uses its configured backends; choose one by name",
            )
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BackendRefused(field, f"must start with http:// or https:// and name a host (got {url!r})")
        if parts.username or parts.password:
            raise BackendRefused(field, "must not hold credentials; use the API key field")
        host = parts.hostname.rstrip(".").lower()
        if self.allow_hosts and not _host_allowed(host, self.allow_hosts):
            allowed = ", ".join(sorted(self.allow_hosts))
            raise BackendRefused(
                field, f"names {host}, which is not on this instance's allowlist ({allowed})"
            )
        return url

    def check_folder(self, path: str, *, field: str = "model") -> str:
        if self.public:
            raise BackendRefused(
                field, "is refused: this public instance serves only its configured model, not a folder"
            )
        return path

    def check_model_name(self, name: str, *, field: str = "model") -> str:
        """A model id for a configured backend: a name, never a URL, spec or path."""
        name = (name or "").strip()
        if not name:
            return ""
        if "://" in name or "@" in name or "#" in name or not MODEL_NAME.fullmatch(name) or ".." in name:
            raise BackendRefused(
                field,
                f"must be a model name (letters, digits and . _ : / + - only, no URLs), got {name[:60]!r}; "
                "to use another server, add it in the Backends tab",
            )
        return name
