"""A loopback TCP listener that records every connection made to it, and answers none.

Public-mode tests point user input at it: zero connections proves the server never tried."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Listener:
    port: int
    connections: list[bytes] = field(default_factory=list)
    """The first bytes each connection sent (a request line, if it got that far)."""
    connected: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


@contextmanager
def loopback_listener() -> Iterator[Listener]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    listener = Listener(server.getsockname()[1])
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(1.0)
                try:
                    first = conn.recv(200)
                except OSError:
                    first = b""
                listener.connections.append(first)
                listener.connected.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        done.set()
        thread.join(2)
        server.close()
