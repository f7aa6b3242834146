"""Guards for public deployments (Hugging Face Spaces, a shared server).

Which backend URLs a visitor may reach is decided in :mod:`runtime.gate`.

* :class:`RedactSecrets` is a logging filter that removes tokens and API keys from log lines
  and tracebacks, whichever logger they come through.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping

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
