"""SIGTERM stops the servers the way Ctrl-C does: a clean exit 0 within moments.

Python installs no SIGTERM handler. Outside a container SIGTERM kills it on the spot (no cleanup,
status 143); as PID 1 in a container the kernel ignores it, so `docker stop` waits out its grace
period and kills it (exit 137). `stop_on_sigterm` turns SIGTERM into `Terminated`, a
KeyboardInterrupt, in the main thread, so the shutdown the entry points already have for Ctrl-C
runs: Gradio's `block_thread` closes the server, and `uvicorn.run`, which handles SIGTERM itself
while serving, re-raises the signal once it has shut down, which lands here and ends in its
KeyboardInterrupt branch. The entry points catch `Terminated` raised before serving (while the
model loads) and return 0.
"""

from __future__ import annotations

import gc
import signal
import sys
from types import FrameType


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: stop as after Ctrl-C, and exit 0 (a requested stop is not a failure)."""


def stop_on_sigterm() -> None:
    """Install the handler (main thread only, as every Python signal handler)."""
    signal.signal(signal.SIGTERM, _terminate)


def _terminate(signum: int, frame: FrameType | None) -> None:
    # One graceful stop: a second SIGTERM gets the default action (outside a container, an
    # immediate kill) instead of interrupting the cleanup the first one started.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    print("SIGTERM: shutting down", file=sys.stderr, flush=True)
    # The process is ending: exempt what exists now from the cyclic collector, whose full pass
    # over the app's objects (gradio, sympy, transformers) at interpreter exit took seconds.
    gc.freeze()
    raise Terminated
