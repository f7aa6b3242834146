"""Running a stand-in server for real: uvicorn on 127.0.0.1 with a free port, in a thread.

The stand-ins (vllm_standin.py, ollama_standin.py) are Starlette apps; what they stream is
scripted per test with a :class:`Script`. They run in their own thread and event loop, so the
backend under test talks to them over real sockets from the test's loop.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette


@dataclass
class Script:
    """What the next requests get. Counts are chunks of text already sent."""

    text: list[str] = field(default_factory=lambda: ["Hello", ",", " world", "!"])
    reasoning: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    """[{"name": ..., "arguments": {...}}] the model "calls" instead of answering."""
    finish_reason: str = "stop"
    prompt_tokens: int | None = None
    """None: count words of the messages (the stand-in's tokenizer)."""
    delay_s: float = 0.0
    """Pause before each text chunk after the first."""
    first_delay_s: float = 0.0
    """Pause after the response headers, before the first chunk."""
    hang_before_headers: bool = False
    """Accept the request and never answer (read-timeout tests)."""
    hang_after: int | None = None
    """Send this many chunks, then go silent with the connection open."""
    error_after: int | None = None
    """Send this many chunks, then the protocol's mid-stream error record."""
    drop_after: int | None = None
    """Send this many chunks, then close the connection without finishing the body."""
    status_error: tuple[int, str] | None = None
    """Answer the next chat with this HTTP status and message instead (server-side failure)."""
    error_message: str = "CUDA error: an illegal memory access was encountered"


class StandIn:
    """Shared state of one stand-in: its script, the requests it saw, disconnects."""

    def __init__(self) -> None:
        self.script = Script()
        self.requests: list[tuple[str, Any]] = []
        self.disconnects = 0
        self.stopping = False
        self.url = ""
        self.generation = 0
        """Bumped by reset(): a stream from an earlier test neither hangs on nor counts."""

    def reset(self) -> None:
        self.generation += 1
        self.script = Script()
        self.requests.clear()
        self.disconnects = 0

    def note_disconnect(self, generation: int) -> None:
        if generation == self.generation:
            self.disconnects += 1

    def bodies(self, path: str) -> list[Any]:
        return [body for seen, body in self.requests if seen == path]

    async def hang(self, limit_s: float = 60.0) -> None:
        """Stay silent until the server stops, the next test resets it, or a minute passes."""
        end = time.monotonic() + limit_s
        generation = self.generation
        # polled: three ways to wake (stop, reset, time) from two threads
        while not self.stopping and generation == self.generation and time.monotonic() < end:  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    def prompt_tokens(self, messages: list[dict[str, Any]]) -> int:
        if self.script.prompt_tokens is not None:
            return self.script.prompt_tokens
        return sum(len(str(m.get("content") or "").split()) + 2 for m in messages)


class ServerThread:
    """uvicorn serving ``app`` on a free loopback port until :meth:`stop`."""

    def __init__(self, app: Starlette, state: StandIn) -> None:
        self.state = state
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        state.url = self.url
        config = uvicorn.Config(
            app, log_level="critical", lifespan="off", timeout_graceful_shutdown=1, access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"standin:{self.port}",
            daemon=True,
        )

    def start(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("stand-in server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.state.stopping = True
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
