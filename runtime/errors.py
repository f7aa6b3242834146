"""Errors of the runtime layer that every front end (UI, APIs, MCP, engine) shows the same way.

ValueError
 └── InputError        bad input: names the field and what is allowed
      └── gate.BackendRefused   a URL, folder or model name this deployment will not use
RuntimeError
 └── Busy              admission: too many requests in flight; says when to retry
"""

from __future__ import annotations

from typing import Any


class InputError(ValueError):
    """A request field that cannot be used; ``str()`` is the message a user sees."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field} {message}" if field else message)
        self.field = field
        self.message = message


class Busy(RuntimeError):
    """Raised when admitting one more request would pass a limit; nothing was started."""

    def __init__(self, message: str, retry_after_s: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def _kind_of(annotation: object) -> str:
    text = str(annotation)
    if "float" in text:
        return "a number"
    if "int" in text:
        return "a whole number"
    if "bool" in text:
        return "true or false"
    if "tuple" in text or "list" in text:
        return "a list"
    return "text"


def allowed(model: type, name: str) -> str:
    """What a field of a pydantic model accepts, in words: "a number from 0 to 2"."""
    info = getattr(model, "model_fields", {}).get(name)
    if info is None:
        return "a known setting"
    low = high = None
    for item in info.metadata:
        for attr in ("ge", "gt"):
            if getattr(item, attr, None) is not None:
                low = getattr(item, attr)
        for attr in ("le", "lt"):
            if getattr(item, attr, None) is not None:
                high = getattr(item, attr)
        if getattr(item, "max_length", None) is not None:
            high = item.max_length
    words = _kind_of(info.annotation)
    optional = " or null" if "None" in str(info.annotation) else ""
    if low is not None and high is not None:
        return f"{words} from {low} to {high}{optional}"
    if low is not None:
        return f"{words} of at least {low}{optional}"
    return words + optional


def describe_validation(exc: Exception, model: type) -> str:
    """A pydantic ValidationError as one short line per field: name, what is allowed, what came."""
    errors: list[dict[str, Any]] = getattr(exc, "errors", lambda: [])()
    known = ", ".join(getattr(model, "model_fields", {}))
    lines = []
    for error in errors:
        name = ".".join(str(part) for part in error.get("loc", ())) or "settings"
        got = error.get("input")
        shown = f" (got {got!r})" if not isinstance(got, dict) and len(repr(got)) <= 40 else ""
        if error.get("type") == "extra_forbidden":
            lines.append(f"{name} is not a setting; known: {known}")
        else:
            lines.append(f"{name} must be {allowed(model, name.split('.')[0])}{shown}")
    return "; ".join(lines) or str(exc)
