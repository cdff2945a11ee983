"""Array backends: NumPy on the CPU, CuPy on the GPU.

This is the only module of tinyseg that imports CuPy. Everything else asks it for the array
module of its inputs (`get_array_module`), so an op runs on whichever device its data lives on.
CuPy is imported lazily: `import tinyseg` works without CuPy or a GPU. When it is first found,
`tinyseg.cuda` is imported too, which registers the GPU fast paths.
"""
from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import numpy as np

from .errors import GPUUnavailableError, OptionError

_GPU_HELP = (
    "Install CuPy for your CUDA version: `pip install -e \".[gpu]\"` (CUDA 13, cupy-cuda13x) or "
    "`pip install -e \".[gpu-cuda12]\"` (CUDA 12, cupy-cuda12x), on a machine with an NVIDIA GPU."
)

_cupy: ModuleType | None = None
_cupy_checked = False


def _import_cupy() -> ModuleType | None:
    """Return the cupy module if it imports and sees a GPU, else None (checked once)."""
    global _cupy, _cupy_checked
    if not _cupy_checked:
        _cupy_checked = True
        try:
            import cupy  # noqa: PLC0415  (lazy on purpose)

            if cupy.cuda.runtime.getDeviceCount() > 0:
                _cupy = cupy
        except Exception:  # ImportError, CUDA driver errors, no device
            _cupy = None
        if _cupy is not None:
            import tinyseg.cuda  # noqa: F401, PLC0415  (registers the GPU fast paths; see its docstring)
    return _cupy


def gpu_available() -> bool:
    """True when CuPy imports and at least one CUDA device is visible."""
    return _import_cupy() is not None


def cupy_module() -> ModuleType:
    """Return the cupy module, or raise a RuntimeError that says how to get one."""
    cp = _import_cupy()
    if cp is None:
        raise GPUUnavailableError(f"No usable GPU: CuPy is not installed or sees no CUDA device. {_GPU_HELP}")
    return cp


def is_cupy_array(x: Any) -> bool:
    """True when `x` is a cupy.ndarray (without importing CuPy when nothing could be one)."""
    return type(x).__module__.startswith("cupy")


def _array_of(x: Any) -> Any:
    """`x` when it is an array (or a NumPy scalar), else its `.data` (a Tensor's array), else `x`."""
    if isinstance(x, (np.ndarray, np.generic)) or is_cupy_array(x):
        return x
    return getattr(x, "data", x)


def get_array_module(*xs: Any) -> ModuleType:
    """Return `numpy` or `cupy`, whichever holds the arrays among `xs`.

    Non-array arguments (Python scalars, None) are ignored; Tensors are looked through.
    Mixing NumPy and CuPy arrays raises a ValueError naming the fix.
    """
    kinds = set()
    for x in map(_array_of, xs):
        if is_cupy_array(x):
            kinds.add("cupy")
        elif isinstance(x, np.ndarray):
            kinds.add("numpy")
    if len(kinds) > 1:
        raise ValueError(
            "Mixed devices: some inputs are NumPy (CPU) arrays and some are CuPy (GPU) arrays. "
            "Move them to one device first, e.g. with tinyseg.to_device(x, 'gpu') or model.to('gpu')."
        )
    if kinds == {"cupy"}:
        return cupy_module()
    return np


def normalize_device(device: str) -> str:
    """Map 'cpu' | 'gpu' | 'cuda' | 'auto' to 'cpu' or 'gpu'; raise on anything else."""
    d = str(device).lower()
    if d == "auto":
        return "gpu" if gpu_available() else "cpu"
    if d in ("gpu", "cuda"):
        cupy_module()  # raises with install instructions when there is no GPU
        return "gpu"
    if d == "cpu":
        return "cpu"
    raise OptionError(f"Unknown device {device!r}: use 'cpu', 'gpu' or 'auto'.")


def to_device(x: Any, device: str) -> Any:
    """Return array `x` on `device` ('cpu' → numpy.ndarray, 'gpu' → cupy.ndarray); no copy if already there."""
    dev = normalize_device(device)
    if dev == "gpu":
        return cupy_module().asarray(x)
    return as_numpy(x)


THREAD_SETTINGS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""The environment variables that set NumPy's BLAS threads, in the order `cpu_threads` reads them."""


def cpu_threads() -> int:
    """How many threads tinyseg's own parallel CPU work uses (the dense CRF's kernel builds, Adam's
    blocks; `tinyseg.threads` runs them and keeps the BLAS pools out of their way).

    ``TINYSEG_NUM_THREADS`` if it is set (an empty value counts as unset); else the first of
    `THREAD_SETTINGS` that is set to a positive integer, so that tinyseg uses as many threads as
    NumPy's matrix products; else the CPUs this process may run on. Read at each call; tinyseg
    never sets any of them.
    """
    own = os.environ.get("TINYSEG_NUM_THREADS", "")
    if own.strip():
        if not own.strip().isdigit() or int(own) < 1:
            raise OptionError(f"TINYSEG_NUM_THREADS={own!r} is not a positive integer: unset it, or set it to "
                              "the number of threads tinyseg's CPU work may use, e.g. TINYSEG_NUM_THREADS=2.")
        return int(own)
    for name in THREAD_SETTINGS:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def as_numpy(x: Any) -> np.ndarray:
    """Return `x` as a NumPy array, copying it from the GPU when needed."""
    x = _array_of(x)
    if is_cupy_array(x):
        return x.get()
    return np.asarray(x)
