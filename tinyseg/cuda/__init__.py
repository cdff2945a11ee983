"""Hand-written CUDA kernels for the GPU fast paths, and how they are loaded and checked.

A fast path replaces many small CuPy calls (one kernel launch each, a few microseconds of host
time each) with a few hand-written kernels. Every fast path keeps the plain path — the same
NumPy/CuPy code the CPU runs — as its test oracle, and can be switched off:

* environment: ``TINYSEG_FUSED=0`` before the run;
* in code: ``with tinyseg.cuda.fused(False): ...``.

The kernels live in ``*.cu`` files next to this module, written once for float and double (the
loader prepends ``#define REAL float|double`` and ``common.cuh``). The same source runs three
ways:

* on the GPU, compiled by CuPy (NVRTC) into ``cupy.RawKernel``s;
* on the CPU, through `tinyseg.cuda.emulate` (g++, one thread per CUDA thread) — slow, but it
  lets the test suite check every kernel against the plain path without a GPU
  (``with tinyseg.cuda.emulated(): ...`` routes NumPy inputs through it);
* through `tinyseg.cuda.nvrtc.compile_ptx`, which compiles for a GPU architecture without one.

See: tests/test_crf_fused.py, benchmarks/gpu_check.sh.
"""
from __future__ import annotations

import os
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..backend import cupy_module, is_cupy_array

_DIR = Path(__file__).parent
_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_state = {"fused": os.environ.get("TINYSEG_FUSED", "1") != "0", "emulated": False}
_cache: dict[tuple[str, str, str, str], Any] = {}
launches: Counter[str] = Counter()
"""Launches per kernel name since import (tests use it to prove that a fast path ran)."""


class Kernel:
    """A compiled kernel (CuPy's, or the emulator's) that counts its launches in `launches`."""

    def __init__(self, name: str, kernel: Any) -> None:
        self.name, self.kernel = name, kernel

    def __call__(self, grid: tuple, block: tuple, args: tuple, shared_mem: int = 0) -> None:
        launches[self.name] += 1
        self.kernel(grid, block, args, shared_mem=shared_mem)


def fused_enabled() -> bool:
    """True when the fast paths may be used (``TINYSEG_FUSED`` is not ``0`` and not switched off)."""
    return _state["fused"]


@contextmanager
def fused(enabled: bool) -> Iterator[None]:
    """Switch the fast paths on or off inside a ``with`` block (the plain path is their oracle)."""
    old = _state["fused"]
    _state["fused"] = bool(enabled)
    try:
        yield
    finally:
        _state["fused"] = old


@contextmanager
def emulated() -> Iterator[None]:
    """Inside the block, fast paths also run on NumPy arrays, through the g++ emulator (tests)."""
    old = _state["emulated"]
    _state["emulated"] = True
    try:
        yield
    finally:
        _state["emulated"] = old


def source(filename: str, dtype: Any) -> str:
    """The full source of ``filename`` for ``dtype``: the REAL define, common.cuh, the file."""
    real = _TYPES.get(np.dtype(dtype))
    if real is None:
        raise TypeError(f"CUDA kernels support float32 and float64, not {np.dtype(dtype)}.")
    return (f"#define REAL {real}\n" + (_DIR / "common.cuh").read_text()
            + "\n" + (_DIR / filename).read_text())


def get_kernel(filename: str, name: str, like: Any) -> Kernel | None:
    """Kernel ``name`` of ``filename`` for the dtype and device of array ``like``, or None.

    None means "use the plain path": fast paths are switched off, or ``like`` is a NumPy array
    outside `emulated`. The result is called as CuPy's ``RawKernel``:
    ``kernel(grid, block, args, shared_mem=bytes)``.
    """
    if not _state["fused"]:
        return None
    cupy = is_cupy_array(like)
    if not cupy and not _state["emulated"]:
        return None
    key = (filename, name, np.dtype(like.dtype).str, "gpu" if cupy else "emu")
    if key not in _cache:
        code = source(filename, like.dtype)
        if cupy:
            _cache[key] = Kernel(name, cupy_module().RawKernel(code, name, options=("--std=c++17",)))
        else:
            from . import emulate  # noqa: PLC0415  (needs g++; only tests get here)
            _cache[key] = Kernel(name, emulate.build(code).get_function(name))
    return _cache[key]


def set_shared_limit(kernel: Kernel, shared_mem: int) -> None:
    """Let a CuPy kernel use more than the default 48 KiB of dynamic shared memory (no-op otherwise)."""
    raw = kernel.kernel
    if shared_mem > 48 * 1024 and hasattr(raw, "max_dynamic_shared_size_bytes") \
            and raw.max_dynamic_shared_size_bytes < shared_mem:
        raw.max_dynamic_shared_size_bytes = shared_mem


def multiprocessor_count(like: Any) -> int:
    """Streaming multiprocessors of the current GPU (2 for emulated NumPy arrays, to exercise splits)."""
    if not is_cupy_array(like):
        return 2
    device = like.device.id
    if device not in _sm_count:  # queried once per device: the attribute query costs host time
        _sm_count[device] = int(cupy_module().cuda.Device(device).attributes["MultiProcessorCount"])
    return _sm_count[device]


_sm_count: dict[int, int] = {}
