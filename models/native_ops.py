"""Build the native onnxruntime ops in models/native/ (the GGUF block matmuls).

The library is compiled on the machine that uses it, into the model folder that needs it:
a C compiler is all it takes (the system's `cc`, or Zig's from PyPI: `pip install ziglang`).
It needs an x86-64 CPU with AVX2, FMA and F16C; `missing_requirement()` says what is missing so the
caller can fall back to a model that runs on onnxruntime's own kernels.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

NATIVE = Path(__file__).parent / "native"
SOURCES = tuple(
    NATIVE / name for name in ("gguf_ops.c", "gguf_kernels.c", "gguf_kernels_avx512.c", "gguf_attention.c")
)
LIBRARY_NAME = "libslm_gguf_ops.so"
SOURCE_FILE = LIBRARY_NAME + ".source"
"""Beside the library: the digest of the sources and flags it was compiled from."""
log = logging.getLogger("slm_playground.native_ops")
# -ffp-contract=off: gguf_kernels.c writes each fused multiply-add out, so that its scalar
# reference matches the AVX2 kernel bit for bit; warnings are errors so a slip cannot ship.
_WARNINGS = ["-Wall", "-Wextra", "-Werror"]
_FLAGS = [
    "-O3",
    "-mavx2",
    "-mfma",
    "-mf16c",
    "-ffp-contract=off",
    "-fPIC",
    "-shared",
    "-fvisibility=hidden",
    *_WARNINGS,
]
SANITIZER_FLAGS = [
    "-O1",
    "-g",
    "-fno-omit-frame-pointer",
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
]
# The block layout this code writes and its library reads (gguf_kernels.h SLM_GGUF_LAYOUT_VERSION;
# a test checks that they agree). A q4_1 folder records it in LAYOUT_FILE; model_store refuses a
# folder without it or with another.
LAYOUT_VERSION = 3
LAYOUT_FILE = "slm_gguf_layout.json"


class NativeBuildError(RuntimeError):
    """The native ops cannot be built or used here; the message says why."""


@functools.cache  # read once: check_model_dir asks on every model load
def cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


ZIG_CC = [sys.executable, "-m", "ziglang", "cc", "-target", "x86_64-linux-gnu"]


def compiler() -> list[str] | None:
    """The C compiler command to use: `cc`/`gcc`/`clang` on PATH, else Zig's (pip install ziglang)."""
    for name in ("cc", "gcc", "clang"):
        found = shutil.which(name)
        if found:
            return [found]
    if importlib.util.find_spec("ziglang") is not None:
        return ZIG_CC
    return None


def cpu_problem() -> str | None:
    """Why a built library cannot run on this machine, or None when it can."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        return (
            f"the GGUF kernels are written for Linux on x86-64 (this is {sys.platform}/{platform.machine()})"
        )
    missing = {"avx2", "fma", "f16c"} - cpu_flags()
    if missing:
        return f"the GGUF kernels need AVX2, FMA and F16C; this CPU lacks {', '.join(sorted(missing))}"
    return None


KERNELS = ("scalar", "avx2", "avx512-vnni")
"""The matmul kernels, slowest first: SLM_KERNEL forces one (auto, or unset: the fastest here).
scalar is the reference the others are tested against bit for bit (gguf_kernels.c)."""
_AVX512_VNNI = frozenset({"avx512f", "avx512bw", "avx512vl", "avx512_vnni"})


def kernels_here() -> tuple[str, ...]:
    """The kernels this CPU runs (none where the library itself cannot run)."""
    if cpu_problem():
        return ()
    return KERNELS if cpu_flags() >= _AVX512_VNNI else KERNELS[:2]


@functools.cache  # the library reads SLM_KERNEL once too (gguf_kernels.c chosen_kernel)
def kernel() -> str:
    """The kernel the ops run in this process; NativeBuildError says why none can."""
    if problem := cpu_problem():
        raise NativeBuildError(problem)
    here = kernels_here()
    wanted = os.environ.get("SLM_KERNEL", "").strip() or "auto"
    if wanted == "auto":
        return here[-1]
    if wanted not in KERNELS:
        raise NativeBuildError(f"SLM_KERNEL={wanted} is not a kernel: use auto, {', '.join(KERNELS)}")
    if wanted not in here:
        raise NativeBuildError(
            f"SLM_KERNEL={wanted}: this CPU cannot run that kernel (it lacks AVX-512 F/BW/VL/VNNI); "
            f"it runs {' and '.join(here)}, or auto"
        )
    return wanted


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line() -> str:
    """What a benchmark table was measured on: CPU, cores this process may use, GGUF kernel."""
    try:
        name = kernel()
    except NativeBuildError as exc:
        name = f"none ({exc})"
    forced = os.environ.get("SLM_KERNEL", "").strip()
    how = f"SLM_KERNEL={forced}" if forced and forced != "auto" else "auto"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"CPU: {cpu_model()}, {cores} cores; GGUF matmul kernel: {name} ({how})"


def missing_requirement() -> str | None:
    """Why the native ops cannot be built and run here, or None when they can."""
    if problem := cpu_problem():
        return problem
    if compiler() is None:
        return "building the GGUF kernels needs a C compiler: install gcc, or `pip install ziglang`"
    return None


def build_library(out_dir: Path, *, sanitize: bool = False, command: list[str] | None = None) -> Path:
    """Compile the ops into OUT_DIR/libslm_gguf_ops.so (written under a temporary name first).
    SANITIZE builds it with AddressSanitizer and UBSan instead of -O3 (for the tests); COMMAND is
    the compiler to use instead of compiler()'s choice."""
    problem = missing_requirement()
    if problem:
        raise NativeBuildError(problem)
    command = command or compiler()
    assert command is not None
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / LIBRARY_NAME
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".build.") as tmp:
        staged = Path(tmp) / LIBRARY_NAME
        proc = subprocess.run(
            [
                *command,
                *_FLAGS,
                *(SANITIZER_FLAGS if sanitize else []),
                "-o",
                str(staged),
                *map(str, SOURCES),
                "-lm",
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 or not staged.is_file():
            names = ", ".join(s.name for s in SOURCES)
            raise NativeBuildError(f"compiling {names} failed:\n{proc.stderr.strip()[-2000:]}")
        staged.replace(target)
    if not sanitize and command == compiler():
        (out_dir / SOURCE_FILE).write_text(source_digest() + "\n", encoding="utf-8")
    return target


def source_digest() -> str:
    """What the library's code is: its C sources, headers and compiler flags."""
    digest = hashlib.sha256(" ".join(_FLAGS).encode())
    for path in sorted(NATIVE.glob("*.[ch]")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def refresh_library(folder: Path) -> bool:
    """Recompile FOLDER's library when this version's sources differ from the ones it was built
    from (same block layout, faster kernels: without this a prepared folder would keep the
    kernels of the version that built it). True when it was rebuilt. Where it cannot be (no
    compiler, a read-only folder), the old library stays: it computes the same results."""
    recorded = folder / SOURCE_FILE
    try:
        if recorded.read_text(encoding="utf-8").strip() == source_digest():
            return False
    except OSError:
        pass  # built before the digest was recorded
    if missing_requirement() or not os.access(folder, os.W_OK):
        return False
    try:
        build_library(folder)
    except (NativeBuildError, OSError) as exc:
        log.warning("kept %s's native library, built from older sources: %s", folder, exc)
        return False
    log.info("rebuilt %s's native library from this version's sources", folder)
    return True
