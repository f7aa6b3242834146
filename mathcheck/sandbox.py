"""Run verifications in worker processes under a hard time limit that works from any thread.

Signal-based timeouts only work in the main thread and cannot interrupt a long C-level big-integer
operation. Here each verification runs in a separate process: inside it, ``SIGALRM`` (the worker's
own main thread) bounds each claim; from the caller, a worker that misses the message deadline is
killed and replaced, so a power tower costs at most the budget and never hangs the app.
"""

from __future__ import annotations

import gc
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from mathcheck.calculator import CALCULATOR_BUDGET_S, CalculationError, calculate_inprocess
from mathcheck.final import READ_ERRORS
from mathcheck.verify import DEFAULT_BUDGET_S, DEFAULT_CLAIM_S, StepTimeout, Verification, verify_inprocess

MAX_WORKERS = 2
STARTUP_TIMEOUT_S = 30.0
_MARGIN_S = 0.15
"""CPU time kept back from the worker's checks for reading and answering the job."""
SAME_BUDGET_S = 1.0
"""CPU seconds to compare two final answers (the Compare tab's "answers agree")."""
WALL_FACTOR = 4.0
WALL_EXTRA_S = 5.0
"""The wall backstop is 4x the CPU budget and 5 s more: on a 2-core machine with ten busy
processes a worker still gets its CPU budget inside it."""


@contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    """Raise StepTimeout after ``seconds`` of this process's CPU time (worker main thread only;
    elsewhere a no-op). CPU time, not wall time: a busy machine slows the step down but does not
    change where it stops, so the same input gets the same verdict."""
    if threading.current_thread() is not threading.main_thread() or seconds <= 0:
        yield
        return

    def _fire(_sig: int, _frame: Any) -> None:
        raise StepTimeout

    # A signal handler's exception raised inside a garbage-collector callback (a weakref's) is
    # "unraisable": the timeout would be swallowed and the step run on. Collecting cycles waits.
    collecting = gc.isenabled()
    gc.disable()
    previous = signal.signal(signal.SIGPROF, _fire)
    outer, _ = signal.getitimer(signal.ITIMER_PROF)  # an enclosing step's limit, restored on the way out
    start = time.process_time()
    signal.setitimer(signal.ITIMER_PROF, min(seconds, outer) if outer else seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
        if outer:
            signal.setitimer(signal.ITIMER_PROF, max(1e-3, outer - (time.process_time() - start)))
        if collecting:
            gc.enable()


def _write(stream: IO[bytes], obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack(">I", len(data)) + data)
    stream.flush()


def _read_exact(stream: IO[bytes], n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def _same_inprocess(a: str, b: str, prompt: str | None, *, budget_s: float) -> bool | None:
    """Whether two final answers are the same value; None when either cannot be read in time."""
    from mathcheck.answers import compare, parse_answer

    try:
        with _alarm(budget_s):
            return compare(parse_answer(a), parse_answer(b), prompt).startswith("equivalent")
    except (StepTimeout, *READ_ERRORS, OverflowError):
        return None


def _worker_main() -> None:
    """Worker loop: one pickled job in on stdin, one pickled result out on stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business
    out, inp = sys.stdout.buffer, sys.stdin.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the frames
    try:
        from mathcheck.kept import warm

        warm()  # the first Math-Verify call imports its grammar: not on a user's message
    except Exception:  # a missing optional reader must not stop the worker
        pass
    _write(out, "ready")
    while True:
        try:
            (size,) = struct.unpack(">I", _read_exact(inp, 4))
            job = pickle.loads(_read_exact(inp, size))  # only ever written by our own parent
        except EOFError:
            return
        result: Any
        try:
            if "same_answer" in job:  # two final answers: ("ok", True/False/None)
                result = ("ok", _same_inprocess(*job["same_answer"], budget_s=job["budget_s"]))
            elif "calculate" in job:  # the calculator tool: ("ok", text) or ("error", why)
                result = (
                    "ok",
                    calculate_inprocess(job["calculate"], budget_s=job["budget_s"], limiter=_alarm),
                )
            else:
                result = verify_inprocess(**job, limiter=_alarm)
        except CalculationError as exc:
            result = ("error", str(exc))
        except Exception as exc:  # a bug: reported as "the checker failed", never a quiet unverifiable
            result = f"{type(exc).__name__}: {exc}"
        _write(out, result)


class _Worker:
    """One ``python -m mathcheck.sandbox`` process speaking length-prefixed pickles over pipes."""

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mathcheck.sandbox"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        self.ready = False
        self._buffer = b""

    def send(self, obj: Any) -> None:
        assert self.proc.stdin is not None
        _write(self.proc.stdin, obj)

    def receive(self, timeout: float) -> Any:
        """The next result, or raise TimeoutError after ``timeout`` seconds (EOFError if it died)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while True:
            if len(self._buffer) >= 4:
                (size,) = struct.unpack(">I", self._buffer[:4])
                if len(self._buffer) >= 4 + size:
                    frame, self._buffer = self._buffer[4 : 4 + size], self._buffer[4 + size :]
                    return pickle.loads(frame)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise EOFError
            self._buffer += chunk

    def wait_ready(self, timeout: float) -> bool:
        if not self.ready:
            try:
                self.ready = self.receive(timeout) == "ready"
            except (TimeoutError, EOFError):
                return False
        return self.ready

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait(2.0)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


_idle: list[_Worker] = []
_lock = threading.Lock()
_slots = threading.BoundedSemaphore(MAX_WORKERS)


def _checkout() -> _Worker:
    with _lock:
        while _idle:
            worker = _idle.pop()
            if worker.alive():
                return worker
    return _Worker()


def _checkin(worker: _Worker) -> None:
    with _lock:
        _idle.append(worker)


def warm_up(count: int = 1) -> None:
    """Start workers ahead of the first message (importing sympy takes a moment)."""
    workers = [_Worker() for _ in range(max(0, min(count, MAX_WORKERS) - len(_idle)))]
    for worker in workers:
        worker.wait_ready(STARTUP_TIMEOUT_S)
        _checkin(worker)


def shutdown() -> None:
    with _lock:
        workers, _idle[:] = list(_idle), []
    for worker in workers:
        worker.kill()


class _Stopped(Exception):
    """The worker did not answer in time (``timed_out``), died, or did not start."""

    def __init__(self, note: str, elapsed_s: float = 0.0, timed_out: bool = False) -> None:
        super().__init__(note)
        self.note, self.elapsed_s, self.timed_out = note, elapsed_s, timed_out


def _run(job: dict[str, Any], budget_s: float) -> Any:
    """One job in a worker, its answer within ``budget_s`` of the worker being ready."""
    _slots.acquire()
    try:
        worker = _checkout()
        if not worker.wait_ready(STARTUP_TIMEOUT_S):
            worker.kill()
            raise _Stopped("the verification worker did not start")
        start = time.monotonic()
        try:
            worker.send(job)
            result = worker.receive(budget_s)
        except (TimeoutError, EOFError, OSError) as exc:
            worker.kill()
            _checkin(_Worker())  # a fresh one starts importing now, not on the next call
            stopped = isinstance(exc, TimeoutError)
            note = (
                f"timed out: no verdict within {budget_s:.1f} s of wall time"
                if stopped
                else "the checker failed: the verification worker died"
            )
            raise _Stopped(note, time.monotonic() - start, stopped) from None
        _checkin(worker)
        return result
    finally:
        _slots.release()


def wall_limit(budget_s: float) -> float:
    """The wall-clock limit for a job with ``budget_s`` of CPU time: generous, so that only a
    step stuck where signals cannot reach it (a huge C-level integer) or a starved machine hits it."""
    return WALL_FACTOR * budget_s + WALL_EXTRA_S


def verify_response(
    response: str,
    *,
    prompt: str | None = None,
    gold: str | None = None,
    budget_s: float = DEFAULT_BUDGET_S,
    claim_s: float = DEFAULT_CLAIM_S,
    wall_s: float | None = None,
) -> Verification:
    """Verify a response in a worker process with ``budget_s`` seconds of the worker's CPU time.

    The verdict depends on the input only, not on how busy the machine is: every limit inside the
    worker counts CPU time. ``wall_s`` (default :func:`wall_limit`) is the backstop: a job past it
    is killed and reported as timed out ("unverifiable", ``timed_out``), never as one reader's
    verdict; the worker is replaced in the background. Safe to call from any thread.
    """
    inner = max(0.05, budget_s - _MARGIN_S)
    wall = wall_limit(budget_s) if wall_s is None else wall_s
    job = {"response": response, "prompt": prompt, "gold": gold, "budget_s": inner, "claim_s": claim_s}
    try:
        result = _run(job, wall)
    except _Stopped as stop:
        return Verification(
            "unverifiable", notes=(stop.note,), elapsed_s=stop.elapsed_s, timed_out=stop.timed_out
        )
    if isinstance(result, Verification):
        return result
    return Verification("unverifiable", notes=(f"the checker failed: {result}",), checker_failed=True)


def same_answer(a: str, b: str, *, prompt: str | None = None, budget_s: float = SAME_BUDGET_S) -> bool | None:
    """Whether two final answers are the same value (2.4 h and 144 minutes), read in a worker
    process with ``budget_s`` of CPU time; None when either cannot be read, in time or at all.
    Blocks (call it from a thread)."""
    job = {"same_answer": (a, b, prompt), "budget_s": max(0.05, budget_s - _MARGIN_S)}
    try:
        result = _run(job, wall_limit(budget_s))
    except _Stopped:
        return None
    if isinstance(result, tuple) and len(result) == 2 and result[0] == "ok":
        return None if result[1] is None else bool(result[1])
    return None


def calculate(expression: str, *, budget_s: float = CALCULATOR_BUDGET_S) -> str:
    """The calculator tool: ``expression``'s exact value and a decimal, computed in a worker
    process within ``budget_s``. Blocks (call it from a thread); raises CalculationError."""
    try:
        job = {"calculate": expression, "budget_s": max(0.05, budget_s - _MARGIN_S)}
        result = _run(job, wall_limit(budget_s))
    except _Stopped as stop:
        why = f"took longer than {budget_s:.1f} s" if stop.timed_out else stop.note
        raise CalculationError(f"the calculation was stopped: {why}") from None
    if isinstance(result, tuple) and len(result) == 2 and result[0] in ("ok", "error"):
        if result[0] == "ok":
            return str(result[1])
        raise CalculationError(str(result[1]))
    raise CalculationError(f"the calculation failed: {result}")


if __name__ == "__main__":
    _worker_main()
