"""The generation half of onnxruntime-genai, called through its C API so the GIL is released.

onnxruntime-genai 0.18's Python binding holds the GIL for the whole of every
``generate_next_token()`` and ``append_tokens()`` call (measured: a thread that wakes every
millisecond never woke inside 20 decoding steps of 25 ms). In the web app that starves the
event loop: tokens reach the browser in bursts and the time to first token grows. ctypes
releases the GIL around every foreign call, so the same library, called through the C API
that the binding itself wraps (``libonnxruntime-genai.so``, shipped in the wheel), decodes
while the event loop keeps running.

Only Model, GeneratorParams and Generator live here; the tokenizer stays on the Python
binding (``og.Tokenizer(folder)``), whose calls are short.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

_p = ctypes.c_void_p
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "OgaResultGetError": (ctypes.c_char_p, [_p]),
    "OgaDestroyResult": (None, [_p]),
    "OgaCreateConfig": (_p, [ctypes.c_char_p, ctypes.POINTER(_p)]),
    "OgaConfigOverlay": (_p, [_p, ctypes.c_char_p]),
    "OgaDestroyConfig": (None, [_p]),
    "OgaCreateModelFromConfig": (_p, [_p, ctypes.POINTER(_p)]),
    "OgaDestroyModel": (None, [_p]),
    "OgaCreateGeneratorParams": (_p, [_p, ctypes.POINTER(_p)]),
    "OgaDestroyGeneratorParams": (None, [_p]),
    "OgaGeneratorParamsSetSearchNumber": (_p, [_p, ctypes.c_char_p, ctypes.c_double]),
    "OgaGeneratorParamsSetSearchBool": (_p, [_p, ctypes.c_char_p, ctypes.c_bool]),
    "OgaGeneratorParamsSetGuidance": (_p, [_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_bool]),
    "OgaCreateGenerator": (_p, [_p, _p, ctypes.POINTER(_p)]),
    "OgaDestroyGenerator": (None, [_p]),
    "OgaGenerator_IsDone": (ctypes.c_bool, [_p]),
    "OgaGenerator_AppendTokens": (_p, [_p, ctypes.POINTER(ctypes.c_int32), ctypes.c_size_t]),
    "OgaGenerator_GenerateNextToken": (_p, [_p]),
    "OgaGenerator_GetNextTokens": (
        _p,
        [_p, ctypes.POINTER(ctypes.POINTER(ctypes.c_int32)), ctypes.POINTER(ctypes.c_size_t)],
    ),
    "OgaGenerator_RewindTo": (_p, [_p, ctypes.c_size_t]),
    "OgaGenerator_GetSequenceCount": (ctypes.c_size_t, [_p, ctypes.c_size_t]),
    "OgaGenerator_GetSequenceData": (ctypes.POINTER(ctypes.c_int32), [_p, ctypes.c_size_t]),
    "OgaGenerator_GetLogits": (_p, [_p, ctypes.POINTER(_p)]),
    "OgaTensorGetShapeRank": (_p, [_p, ctypes.POINTER(ctypes.c_size_t)]),
    "OgaTensorGetShape": (_p, [_p, ctypes.POINTER(ctypes.c_int64), ctypes.c_size_t]),
    "OgaTensorGetData": (_p, [_p, ctypes.POINTER(_p)]),
    "OgaDestroyTensor": (None, [_p]),
}


class OgaError(RuntimeError):
    """An error reported by onnxruntime-genai's C API (the message is the library's own)."""


@cache
def _lib() -> ctypes.CDLL:
    import onnxruntime_genai  # loads the library (and onnxruntime's) the binding links against

    name = "onnxruntime-genai.dll" if sys.platform == "win32" else "libonnxruntime-genai.so"
    if sys.platform == "darwin":
        name = "libonnxruntime-genai.dylib"
    path = Path(onnxruntime_genai.__file__).parent / name
    lib = ctypes.CDLL(str(path))  # CDLL (not PyDLL): every call runs without the GIL
    for fn_name, (restype, argtypes) in _SIGNATURES.items():
        fn = getattr(lib, fn_name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


def _check(result: int | None, what: str) -> None:
    if result:
        lib = _lib()
        message = (lib.OgaResultGetError(result) or b"").decode("utf-8", "replace")
        lib.OgaDestroyResult(result)
        raise OgaError(f"{what}: {message}")


class _Handle:
    _destroy = ""

    def __init__(self) -> None:
        self._ptr = _p()

    @property
    def ptr(self) -> _p:
        if not self._ptr:
            raise OgaError(f"{type(self).__name__} is closed")
        return self._ptr

    def close(self) -> None:
        if self._ptr:
            getattr(_lib(), self._destroy)(self._ptr)
            self._ptr = _p()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter exit the library may be gone
            self.close()


class Model(_Handle):
    _destroy = "OgaDestroyModel"

    def __init__(self, folder: str | Path, *, overlay: dict[str, Any] | None = None) -> None:
        """Load the model in ``folder``; ``overlay`` is laid over its genai_config.json in memory
        (e.g. session options), leaving the folder untouched."""
        super().__init__()
        lib = _lib()
        config = _p()
        _check(lib.OgaCreateConfig(str(folder).encode(), ctypes.byref(config)), "reading the model config")
        try:
            if overlay:
                _check(lib.OgaConfigOverlay(config, json.dumps(overlay).encode()), "config overlay")
            _check(lib.OgaCreateModelFromConfig(config, ctypes.byref(self._ptr)), "loading the model")
        finally:
            lib.OgaDestroyConfig(config)


def session_options(threads: int) -> dict[str, Any]:
    """A config overlay that sets the decoder's intra-op threads. onnxruntime's own default
    used 1 of the 2 cores here (22 ms/token int8 vs 14 ms with 2)."""
    return {"model": {"decoder": {"session_options": {"intra_op_num_threads": threads}}}}


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class GeneratorParams(_Handle):
    _destroy = "OgaDestroyGeneratorParams"

    def __init__(self, model: Model) -> None:
        super().__init__()
        self._model = model  # keeps the model alive as long as these params
        _check(_lib().OgaCreateGeneratorParams(model.ptr, ctypes.byref(self._ptr)), "generator params")

    def set_search_options(self, **options: bool | float) -> None:
        lib = _lib()
        for name, value in options.items():
            if isinstance(value, bool):
                _check(lib.OgaGeneratorParamsSetSearchBool(self.ptr, name.encode(), value), name)
            else:
                _check(lib.OgaGeneratorParamsSetSearchNumber(self.ptr, name.encode(), float(value)), name)

    def set_guidance(self, kind: str, data: str) -> None:
        _check(
            _lib().OgaGeneratorParamsSetGuidance(self.ptr, kind.encode(), data.encode(), False),
            f"{kind} guidance",
        )


class Generator(_Handle):
    """One sequence's decoding state (KV cache). Use from one thread at a time."""

    _destroy = "OgaDestroyGenerator"

    def __init__(self, model: Model, params: GeneratorParams) -> None:
        super().__init__()
        self._model, self._params = model, params  # both must outlive the generator
        _check(_lib().OgaCreateGenerator(model.ptr, params.ptr, ctypes.byref(self._ptr)), "generator")

    def append_tokens(self, tokens: Iterable[int]) -> None:
        ids = list(tokens)
        array = (ctypes.c_int32 * len(ids))(*ids)
        _check(_lib().OgaGenerator_AppendTokens(self.ptr, array, len(ids)), "appending tokens")

    def generate_next_token(self) -> None:
        _check(_lib().OgaGenerator_GenerateNextToken(self.ptr), "generating a token")

    def next_token(self) -> int:
        """The token the last step chose (batch size 1)."""
        out = ctypes.POINTER(ctypes.c_int32)()
        count = ctypes.c_size_t()
        found = _lib().OgaGenerator_GetNextTokens(self.ptr, ctypes.byref(out), ctypes.byref(count))
        _check(found, "next token")
        if count.value < 1:
            raise OgaError("next token: the generator returned none")
        return int(out[0])

    def is_done(self) -> bool:
        return bool(_lib().OgaGenerator_IsDone(self.ptr))

    def rewind_to(self, length: int) -> None:
        _check(_lib().OgaGenerator_RewindTo(self.ptr, length), f"rewinding to {length} tokens")

    def logits(self) -> Any:
        """The float32 logits the next generate_next_token() will sample from (a numpy copy,
        one row per sequence). They are computed at most once per step, so reading them before
        each step costs a copy of the vocabulary, not a model run."""
        import numpy as np

        lib = _lib()
        tensor = _p()
        _check(lib.OgaGenerator_GetLogits(self.ptr, ctypes.byref(tensor)), "logits")
        try:
            rank = ctypes.c_size_t()
            _check(lib.OgaTensorGetShapeRank(tensor, ctypes.byref(rank)), "logits shape")
            dims = (ctypes.c_int64 * rank.value)()
            _check(lib.OgaTensorGetShape(tensor, dims, rank.value), "logits shape")
            data = _p()
            _check(lib.OgaTensorGetData(tensor, ctypes.byref(data)), "logits data")
            shape = [int(d) for d in dims]
            flat = np.ctypeslib.as_array(
                ctypes.cast(data, ctypes.POINTER(ctypes.c_float)), (int(np.prod(shape)),)
            )
            return flat.reshape(shape[0], -1).copy()
        finally:
            lib.OgaDestroyTensor(tensor)

    def sequence(self) -> list[int]:
        """Every token the KV cache holds: prompt and generated ones."""
        lib = _lib()
        count = lib.OgaGenerator_GetSequenceCount(self.ptr, 0)
        data = lib.OgaGenerator_GetSequenceData(self.ptr, 0)
        return [int(data[i]) for i in range(count)]
