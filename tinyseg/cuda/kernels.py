"""Loading and launching the hand-written CUDA kernels (``tinyseg/cuda/*.cu``).

The kernels are written once for float and double: `source` prepends ``#define REAL float|double``
and ``common.cuh`` to a file. `get_kernel` compiles a kernel for the device of an array — CuPy's
NVRTC for a CuPy array, or whatever `use_host_compiler` installed for NumPy arrays (the g++
emulator of `tinyseg.cuda.testing`) — and caches it. `launch` runs a grid-stride kernel with
`BLOCK` threads per block; every launch is counted in `launches`.

See: tinyseg/cuda/registry.py (when a kernel runs), tests/cuda/test_fast_path_layers.py.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from ..backend import cupy_module, is_cupy_array

BLOCK = 256  # threads per block; a power of two (the block reductions of common.cuh need it)
MAX_BLOCKS = 65535  # grid-stride loops cover whatever a capped grid does not
_DIR = Path(__file__).parent
_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_cache: dict[tuple[str, str, str, str], Kernel] = {}
launches: Counter[str] = Counter()
"""Launches per kernel name since import (tests use it to prove that a fast path ran)."""


class Compiler(Protocol):
    """Where kernels run: compiles a source and knows the size of the machine."""

    name: str

    def compile(self, code: str, kernel: str) -> Callable[..., None]: ...

    def multiprocessor_count(self, like: Any) -> int: ...


class CupyCompiler:
    """The GPU: CuPy ``RawKernel``s compiled by NVRTC."""

    name = "gpu"

    def __init__(self) -> None:
        self._sm_count: dict[int, int] = {}

    def compile(self, code: str, kernel: str) -> Callable[..., None]:
        return cupy_module().RawKernel(code, kernel, options=("--std=c++17",))

    def multiprocessor_count(self, like: Any) -> int:
        device = like.device.id
        if device not in self._sm_count:  # queried once per device: the attribute query costs host time
            self._sm_count[device] = int(cupy_module().cuda.Device(device).attributes["MultiProcessorCount"])
        return self._sm_count[device]


_GPU = CupyCompiler()
_host: Compiler | None = None  # runs kernels on NumPy arrays; None: NumPy arrays take the plain path


def use_host_compiler(compiler: Compiler | None) -> Compiler | None:
    """Run kernels on NumPy arrays with `compiler` (None: never); returns the previous one.

    `tinyseg.cuda.testing.emulated` installs the g++ emulator here for the tests.
    """
    global _host
    old, _host = _host, compiler
    return old


def compiler_for(like: Any) -> Compiler | None:
    """The compiler that can run kernels on array `like`, or None."""
    if is_cupy_array(like):
        return _GPU
    return _host if isinstance(like, np.ndarray) else None


class Kernel:
    """A compiled kernel (CuPy's, or the emulator's) that counts its launches in `launches`."""

    def __init__(self, name: str, kernel: Any) -> None:
        self.name, self.kernel = name, kernel

    def __call__(self, grid: tuple, block: tuple, args: tuple, shared_mem: int = 0) -> None:
        launches[self.name] += 1
        self.kernel(grid, block, args, shared_mem=shared_mem)


def source(filename: str, dtype: Any) -> str:
    """The full source of ``filename`` for ``dtype``: the REAL define, common.cuh, the file."""
    real = _TYPES.get(np.dtype(dtype))
    if real is None:
        raise TypeError(f"CUDA kernels support float32 and float64, not {np.dtype(dtype)}.")
    return (f"#define REAL {real}\n" + (_DIR / "common.cuh").read_text()
            + "\n" + (_DIR / filename).read_text())


def get_kernel(filename: str, name: str, like: Any) -> Kernel | None:
    """Kernel ``name`` of ``filename`` for the dtype and device of array ``like``, or None.

    None when no compiler runs kernels on ``like`` (a NumPy array without `use_host_compiler`) or
    its dtype is neither float32 nor float64. Call the result as CuPy's ``RawKernel``:
    ``kernel(grid, block, args, shared_mem=bytes)``.
    """
    compiler = compiler_for(like)
    if compiler is None or np.dtype(like.dtype) not in _TYPES:
        return None
    key = (filename, name, np.dtype(like.dtype).str, compiler.name)
    if key not in _cache:
        _cache[key] = Kernel(name, compiler.compile(source(filename, like.dtype), name))
    return _cache[key]


def grid_for(total: int) -> tuple[int]:
    """Blocks for `total` threads of work, capped at `MAX_BLOCKS` (the kernels loop over the rest)."""
    return (max(1, min(MAX_BLOCKS, -(-total // BLOCK))),)


def launch(kernel: Kernel, grid: tuple, args: tuple, shared_values: int = 0, like: Any = None) -> None:
    """Launch with `BLOCK` threads per block and ``shared_values`` elements of ``like``'s dtype of
    dynamic shared memory (the limit is raised past 48 KiB where a GPU needs it)."""
    smem = shared_values * like.dtype.itemsize if shared_values else 0
    raw = kernel.kernel
    if smem > 48 * 1024 and hasattr(raw, "max_dynamic_shared_size_bytes") and raw.max_dynamic_shared_size_bytes < smem:
        raw.max_dynamic_shared_size_bytes = smem
    kernel(grid, (BLOCK,), args, shared_mem=smem)


def multiprocessor_count(like: Any) -> int:
    """Streaming multiprocessors of the device that holds `like` (as its compiler reports them)."""
    compiler = compiler_for(like)
    if compiler is None:
        raise TypeError(f"no CUDA compiler runs kernels on a {type(like).__name__}")
    return compiler.multiprocessor_count(like)
