"""The native kernels without onnxruntime: every kernel this CPU runs (scalar, AVX2, and AVX-512
VNNI where the CPU has it) against the scalar reference (bit for bit, on random shapes, M > 1
included), SLM_KERNEL's choice and its refusal of a kernel the CPU cannot run, the embedding
gather, the layout version, and the library's refusal of an onnxruntime whose API table it
cannot use (stand-in runtimes via ctypes).
One slow test runs the same comparisons on a build with AddressSanitizer and UBSan."""

from __future__ import annotations

import ctypes
import importlib.util
import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models import gguf_blocks, native_ops
from models.gguf_blocks import Q41, Q80

pytestmark = pytest.mark.skipif(
    native_ops.missing_requirement() is not None, reason=str(native_ops.missing_requirement())
)
_F32 = np.ctypeslib.ndpointer(np.float32, flags="C_CONTIGUOUS")


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return native_ops.build_library(tmp_path_factory.mktemp("ops"))


def _load(path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    lib.slm_gguf_matmul.restype = ctypes.c_int
    lib.slm_gguf_matmul.argtypes = [
        ctypes.c_int, ctypes.c_int, ctypes.c_int, _F32, ctypes.c_int64, ctypes.c_int64,
        ctypes.c_void_p, _F32, ctypes.c_void_p, ctypes.c_int64, _F32,
    ]  # fmt: skip
    lib.slm_gguf_kernel.restype = ctypes.c_char_p
    lib.slm_gguf_kernel_problem.restype = ctypes.c_char_p
    lib.slm_gguf_gather_q8_0.restype = None
    lib.slm_gguf_gather_q8_0.argtypes = [
        ctypes.c_void_p, _F32, ctypes.c_int64, np.ctypeslib.ndpointer(np.int64, flags="C_CONTIGUOUS"),
        ctypes.c_int64, _F32,
    ]  # fmt: skip
    return lib


def _random_blocks(rng: np.random.Generator, fmt: str, n: int, k: int) -> Q41 | Q80:
    if fmt == "q4_1":
        packed = rng.integers(0, 256, (n, k // 32, 16), dtype=np.uint8)
        scales = (rng.random((n, k // 32)) * 0.02).astype(np.float32)
        return Q41(packed, scales, (-rng.random((n, k // 32)) * 0.15).astype(np.float32))
    values = rng.integers(-128, 128, (n, k // 32, 32), dtype=np.int8)  # -128 too: the sign trick's edge
    return Q80(values, (rng.random((n, k // 32)) * 0.01).astype(np.float32))


CHOSEN = 0  # slm_gguf_matmul's kernel argument: SLM_KERNEL's, else the fastest; then one each:
KERNEL_CODES = {"scalar": 1, "avx2": 2, "avx512-vnni": 3}
REFERENCE = KERNEL_CODES["scalar"]
HERE = native_ops.kernels_here()


def _matmul(lib: ctypes.CDLL, blocks: Q41 | Q80, a: np.ndarray, levels: int, kernel: int) -> np.ndarray:
    _, tensors = gguf_blocks.op_inputs(blocks)
    weights, scales, *mins = tensors.values()
    n = weights.shape[0] * 8
    out = np.full((a.shape[0], n), np.nan, np.float32)
    fmt = 0 if isinstance(blocks, Q41) else 1
    status = lib.slm_gguf_matmul(
        fmt, levels, kernel, a, a.shape[0], a.shape[1], weights.ctypes.data, scales,
        mins[0].ctypes.data if mins else None, n, out,
    )  # fmt: skip
    assert status == 0
    return out


def compare_kernels(path: Path, seed: int, cases: int, kernels: tuple[str, ...] = HERE) -> int:
    """Random shapes through KERNELS (and the chosen one); asserts they agree with the scalar
    reference bit for bit. Returns the cases run. Also run in a subprocess against the sanitizer
    build (test below)."""
    lib = _load(path)
    rng = np.random.default_rng(seed)
    for _ in range(cases):
        fmt = str(rng.choice(["q4_1", "q8_0"]))
        rows, k, n = int(rng.integers(1, 14)), 32 * int(rng.integers(1, 40)), int(rng.integers(1, 60))
        blocks = _random_blocks(rng, fmt, n, k)
        a = (rng.standard_normal((rows, k)) * rng.choice([0.01, 1.0, 40.0])).astype(np.float32)
        a[:, : 32 * int(rng.integers(0, 2))] = 0.0  # an all-zero block: step 0, no division
        for levels in (1, 2):
            reference = _matmul(lib, blocks, a, levels, REFERENCE)
            for kernel in (CHOSEN, *(KERNEL_CODES[name] for name in kernels)):
                simd = _matmul(lib, blocks, a, levels, kernel)
                assert simd.tobytes() == reference.tobytes(), (fmt, rows, k, n, levels, kernel)
    vocab, hidden = 37, 96
    table = _random_blocks(rng, "q8_0", vocab, hidden)
    assert isinstance(table, Q80)
    _, tensors = gguf_blocks.op_inputs(table)
    weights, scales = tensors.values()
    ids = rng.integers(0, vocab, 11).astype(np.int64)
    out = np.empty((ids.size, hidden), np.float32)
    lib.slm_gguf_gather_q8_0(weights.ctypes.data, scales, hidden // 32, ids, ids.size, out)
    assert out.tobytes() == table.dequantize()[ids].tobytes()
    return cases


@pytest.mark.parametrize("kernel", HERE)
def test_each_kernel_matches_the_scalar_reference_bit_for_bit(library: Path, kernel: str) -> None:
    assert compare_kernels(library, seed=17, cases=40, kernels=(kernel,)) == 40


@pytest.mark.parametrize("kernel", HERE)
def test_the_m_above_one_paths_match_row_by_row(library: Path, kernel: str) -> None:
    # AVX2: one row alone, 2 and 3 rows a pass over each group's blocks; q4_1 from 4 rows on tiles
    # of 2 rows x 2 groups, up to 16 rows at a time (17 and 33 rows: a second and third), an odd
    # last row on the one-row kernel (3 and 5 groups: a group left alone); AVX-512: one group at a
    # time up to 3 rows, two groups from 4 rows on (an odd group count leaves one alone). Every
    # row of a batch equals that row run alone, which batching sequences through the op relies on
    lib = _load(library)
    rng = np.random.default_rng(3)
    for fmt in ("q4_1", "q8_0"):
        for n in (24, 40):  # 3 and 5 groups
            blocks = _random_blocks(rng, fmt, n, 576)
            for rows in (2, 3, 4, 5, 7, 8, 11, 17, 33):
                a = rng.standard_normal((rows, 576)).astype(np.float32)
                code = KERNEL_CODES[kernel]
                for levels in (1, 2):
                    batch = _matmul(lib, blocks, a, levels, code)
                    alone = [_matmul(lib, blocks, a[i : i + 1], levels, code) for i in range(rows)]
                    assert batch.tobytes() == np.concatenate(alone).tobytes(), (fmt, n, rows, levels, kernel)


def _kernel_for_this_cpu() -> str:
    """What the library should pick, from /proc/cpuinfo (the library asks cpuid itself)."""
    avx512 = {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"} <= native_ops.cpu_flags()
    return "avx512-vnni" if avx512 else "avx2"


def test_the_library_says_which_kernel_this_cpu_runs(library: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLM_KERNEL", raising=False)
    assert _fresh(library, "auto").slm_gguf_kernel().decode() == _kernel_for_this_cpu()


_COPIES = itertools.count()


def _fresh(library: Path, name: str) -> ctypes.CDLL:
    """A copy of the library loaded anew: each copy reads SLM_KERNEL once, when first asked.
    (A new file each time: rewriting one that is loaded would pull its pages away.)"""
    copy = library.with_name(f"kernel_{name}_{next(_COPIES)}.so")
    copy.write_bytes(library.read_bytes())
    return _load(copy)


@pytest.mark.parametrize("kernel", [*HERE, "auto"])
def test_slm_kernel_forces_the_kernel_the_ops_run(
    library: Path, kernel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLM_KERNEL", kernel)
    native_ops.kernel.cache_clear()
    expected = _kernel_for_this_cpu() if kernel == "auto" else kernel
    lib = _fresh(library, kernel)
    assert lib.slm_gguf_kernel().decode() == expected == native_ops.kernel()
    assert lib.slm_gguf_kernel_problem() is None
    assert f"GGUF matmul kernel: {expected}" in native_ops.machine_line()
    rng = np.random.default_rng(11)
    blocks = _random_blocks(rng, "q4_1", 16, 64)
    a = rng.standard_normal((5, 64)).astype(np.float32)  # CHOSEN runs the forced kernel
    assert _matmul(lib, blocks, a, 2, CHOSEN).tobytes() == _matmul(lib, blocks, a, 2, REFERENCE).tobytes()
    native_ops.kernel.cache_clear()


@pytest.mark.parametrize(
    ("wanted", "says"),
    [("avx512-vnni", "this CPU cannot run that kernel"), ("avx3", "is not a kernel: use auto, scalar")],
)
def test_a_kernel_the_cpu_cannot_run_is_refused_by_name(
    library: Path, wanted: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if wanted in HERE:
        pytest.skip(f"this CPU runs {wanted}")
    monkeypatch.setenv("SLM_KERNEL", wanted)
    native_ops.kernel.cache_clear()
    lib = _fresh(library, wanted)
    assert lib.slm_gguf_kernel().decode() == "none"
    problem = lib.slm_gguf_kernel_problem().decode()
    assert f"SLM_KERNEL={wanted}" in problem and says in problem
    with pytest.raises(native_ops.NativeBuildError, match=f"SLM_KERNEL={wanted}.*{says}"):
        native_ops.kernel()
    assert "GGUF matmul kernel: none (SLM_KERNEL=" in native_ops.machine_line()
    rng = np.random.default_rng(1)
    blocks = _random_blocks(rng, "q8_0", 8, 32)
    out = np.zeros((1, 8), np.float32)
    _, tensors = gguf_blocks.op_inputs(blocks)
    weights, scales = tensors.values()
    a = np.ones((1, 32), np.float32)
    assert lib.slm_gguf_matmul(1, 1, CHOSEN, a, 1, 32, weights.ctypes.data, scales, None, 8, out) == -2
    native_ops.kernel.cache_clear()


def test_the_library_and_the_python_side_agree_on_the_layout_version(library: Path) -> None:
    assert ctypes.CDLL(str(library)).slm_gguf_layout_version() == native_ops.LAYOUT_VERSION


# ---- registration against stand-in runtimes ---------------------------------------------------
_GET_API = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_uint32)
_VERSION = ctypes.CFUNCTYPE(ctypes.c_void_p)  # a char*: ctypes cannot return bytes from a callback
_CREATE_STATUS = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p)


class _ApiBase(ctypes.Structure):
    _fields_ = [("GetApi", _GET_API), ("GetVersionString", _VERSION)]


def _register(library: Path, supported: int, hole: int | None = None) -> str:
    """Call RegisterCustomOps with a runtime that offers API versions up to SUPPORTED, whose table
    holds only CreateStatus (and a dummy in every slot but HOLE); returns the status message.
    A copy of the library is loaded, so the stand-in table it keeps is nobody else's."""
    copy = library.with_name(f"stand_in_{supported}_{hole}.so")
    copy.write_bytes(library.read_bytes())
    messages: list[str] = []

    @_CREATE_STATUS
    def create_status(code: int, message: bytes) -> int:
        messages.append(message.decode())
        return 0x5106

    table = (ctypes.c_void_p * 300)()
    table[0] = ctypes.cast(create_status, ctypes.c_void_p).value
    for slot in range(1, 300):
        table[slot] = None if slot == hole else table[0]
    get_api = _GET_API(lambda version: ctypes.addressof(table) if 1 <= version <= supported else None)
    version_text = ctypes.create_string_buffer(b"1.16.3" if supported < 17 else b"1.99.0")
    version = _VERSION(lambda: ctypes.addressof(version_text))
    base = _ApiBase(get_api, version)
    lib = ctypes.CDLL(str(copy))
    lib.RegisterCustomOps.restype = ctypes.c_void_p
    lib.RegisterCustomOps.argtypes = [ctypes.c_void_p, ctypes.POINTER(_ApiBase)]
    assert lib.RegisterCustomOps(None, ctypes.byref(base)) == 0x5106  # the status it made
    return messages[-1]


def test_an_onnxruntime_older_than_the_api_table_is_refused_by_name(library: Path) -> None:
    message = _register(library, supported=16)
    assert "need onnxruntime 1.17 or newer (C API version 17)" in message
    assert "this process runs onnxruntime 1.16.3" in message


def test_a_table_without_a_function_the_ops_use_is_refused(library: Path) -> None:
    message = _register(library, supported=17, hole=274)
    assert "no function at OrtApi slot 274 (KernelContext_ParallelFor)" in message


def test_status_functions_that_do_not_round_trip_are_refused(library: Path) -> None:
    # every slot holds CreateStatus, so GetErrorCode returns a pointer, not the code it was given
    message = _register(library, supported=17)
    assert "status functions are not where ort_abi.h" in message


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ziglang") is None, reason="ziglang is not installed")
def test_a_build_by_zigs_compiler_picks_the_kernel_for_this_cpu_and_matches_the_reference(
    tmp_path: Path,
) -> None:
    # the compiler `model prepare` uses where no cc is installed (clang's runtime, not gcc's)
    path = native_ops.build_library(tmp_path, command=native_ops.ZIG_CC)
    assert _load(path).slm_gguf_kernel().decode() == _kernel_for_this_cpu()
    assert compare_kernels(path, seed=23, cases=15) == 15


# ---- the sanitizer build ----------------------------------------------------------------------
def _runtime(name: str) -> str | None:
    found = subprocess.run(["cc", f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
    return found if found and os.path.isabs(found) and os.path.exists(found) else None


def _under_sanitizers(tmp_path: Path, code: str) -> str:
    """Run CODE (Python; LIB in it is the sanitizer build of the library) in a subprocess with
    AddressSanitizer and UBSan loaded; its stdout, once it exited cleanly with no UBSan report."""
    asan = _runtime("libasan.so")
    if asan is None:
        pytest.skip("this compiler has no AddressSanitizer runtime (libasan.so)")
    path = native_ops.build_library(tmp_path, sanitize=True)
    env = {
        **os.environ,
        "LD_PRELOAD": asan,
        # Python itself leaks by design at exit; any other report fails the run
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
    }
    proc = subprocess.run(
        [sys.executable, "-c", f"from pathlib import Path; lib = Path({str(path)!r}); {code}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).parents[2],
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "runtime error" not in proc.stderr  # UBSan's report line
    return proc.stdout


@pytest.mark.slow
def test_the_kernels_under_address_and_undefined_behaviour_sanitizers(tmp_path: Path) -> None:
    code = (
        "from tests.core.test_native_kernels import compare_kernels; "
        "print('cases', compare_kernels(lib, seed=5, cases=25))"
    )
    assert "cases 25" in _under_sanitizers(tmp_path, code)


@pytest.mark.slow
def test_the_attention_op_under_address_and_undefined_behaviour_sanitizers(tmp_path: Path) -> None:
    """Decoding rows, prompt chunks cut into step ranges (each task its own softmax scratch) and
    both cache types, through onnxruntime, on the sanitizer build."""
    pytest.importorskip("onnx")
    code = (
        "import tests.core.test_gguf_attention as t; "
        "[t.test_a_prompt_chunk_gives_the_bits_of_its_tokens_fed_one_at_a_time(lib, op) "
        "for op in ('ours', 'ours16')]; "
        "[t.test_it_computes_what_group_query_attention_computes(lib, n, s) "
        "for n, s in (([5], 37), ([0, 0], 20), ([5, 17, 0, 40], 1), ([30], 18))]; "
        "print('attention ok')"
    )
    assert "attention ok" in _under_sanitizers(tmp_path, code)
