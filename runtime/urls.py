"""One reading of a base URL typed by a user, set in the environment or named in a lane spec.

Before this helper, the env reader, the lane parser and the Backends form each trimmed and
completed URLs their own way (one kept a trailing slash, one refused a URL without a scheme
that another completed), so one server could get two labels. The backends complete what their
protocol needs on top (``/v1`` for OpenAI-compatible servers, port 11434 for Ollama).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def normalise_base_url(url: str, *, default_scheme: str | None = "http://") -> str:
    """``host:8000/v1/`` -> ``http://host:8000/v1``: trimmed, no trailing slash, with a scheme.

    ``default_scheme=None``: a URL without one is refused (ValueError saying what to type)
    rather than completed, for forms where a typo should not become a request to somewhere else."""
    text = (url or "").strip().rstrip("/")
    if "://" not in text:
        if default_scheme is None:
            raise ValueError(f"the URL must start with http:// or https:// (got {text!r})")
        text = default_scheme + text
    parts = urlsplit(text)
    if default_scheme is None and parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"the URL must start with http:// or https:// (got {text!r})")
    return urlunsplit(parts._replace(scheme=parts.scheme.lower()))
