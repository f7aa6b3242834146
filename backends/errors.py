"""Errors a backend raises. Each message is written for the person at the keyboard.

BackendError                 base: .backend names the backend, .hint says what to do
├── BackendUnavailable       cannot reach the server or load the model (connection refused,
│                            timeout, folder that is not a model); nothing was generated
├── InvalidRequest           the backend refused this request before generating
│   ├── ContextOverflow      prompt (+ reserved output) longer than the model's context
│   └── ModelNotFound        the named model is not served here; .available lists what is
└── BackendResponseError     the server answered with an error, possibly mid-stream;
                             .status is the HTTP status (None for in-process or mid-stream)
"""

from __future__ import annotations


class BackendError(Exception):
    def __init__(self, backend: str, message: str, *, hint: str = "") -> None:
        self.backend = backend
        self.message = message
        self.hint = hint
        super().__init__(f"{backend}: {message}" + (f" ({hint})" if hint else ""))


class BackendUnavailable(BackendError):
    """Raised when the backend cannot be reached or its model cannot be loaded."""


class InvalidRequest(BackendError):
    """Raised when the request is rejected before any token is generated."""


class ContextOverflow(InvalidRequest):
    """Raised when the prompt does not fit the context; says both numbers."""

    def __init__(self, backend: str, *, prompt_tokens: int, context_length: int, reserved: int = 0) -> None:
        self.prompt_tokens = prompt_tokens
        self.context_length = context_length
        self.reserved = reserved
        need = f"{prompt_tokens} prompt tokens" + (f" + {reserved} for the answer" if reserved else "")
        super().__init__(
            backend,
            f"the prompt is too long: {need}, but the model's context holds {context_length} tokens",
            hint="shorten the prompt or the chat history, clear the chat, or lower max new tokens",
        )


class ModelNotFound(InvalidRequest):
    """Raised when the requested model is not served by this backend."""

    def __init__(self, backend: str, model: str, available: list[str], *, hint: str = "") -> None:
        self.model = model
        self.available = available
        listing = ", ".join(available) if available else "none"
        super().__init__(backend, f"model {model!r} is not available here (available: {listing})", hint=hint)


class BackendResponseError(BackendError):
    """Raised when the server answers with an error, before or during the stream."""

    def __init__(self, backend: str, message: str, *, status: int | None = None, hint: str = "") -> None:
        self.status = status
        super().__init__(backend, message, hint=hint)
