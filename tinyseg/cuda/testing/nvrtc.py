"""Compile CUDA C++ to PTX with NVIDIA's NVRTC through ctypes: a GPU compiler check without a GPU.

NVRTC is the runtime compiler CuPy uses for ``RawKernel``; it is a plain shared library that
needs no driver and no device. `compile_ptx` therefore proves, on any Linux x86-64 machine, that
a kernel source compiles for a given GPU architecture with the compiler the GPU path will use
(device math such as ``expf`` comes built in, no ``#include`` needed).

The library is looked up in this order:

1. ``$TINYSEG_NVRTC``: a path to ``libnvrtc.so*`` (used alone when set);
2. the pip wheel ``nvidia-cuda-nvrtc-cu12`` (``nvidia/cuda_nvrtc/lib`` on ``sys.path``), which
   ``pip install -e ".[cuda-check]"`` installs;
3. the system's ``libnvrtc`` (``ctypes.util.find_library``).

See: tests/test_cuda_emulate.py.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path

ENV_VAR = "TINYSEG_NVRTC"
_HELP = ('install NVRTC with `pip install -e ".[cuda-check]"` (the nvidia-cuda-nvrtc-cu12 wheel) '
         f"or point ${ENV_VAR} at a libnvrtc.so")


class NVRTCError(RuntimeError):
    """NVRTC is missing or refused the source; the message holds NVRTC's log."""


def find_library() -> str | None:
    """Path (or soname) of the NVRTC library `compile_ptx` would load, or None."""
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    dirs = []
    try:
        spec = importlib.util.find_spec("nvidia.cuda_nvrtc")
    except (ImportError, ValueError):  # no `nvidia` namespace package at all
        spec = None
    if spec is not None and spec.submodule_search_locations:
        dirs += [Path(p) / "lib" for p in spec.submodule_search_locations]
    dirs += [Path(p) / "nvidia" / "cuda_nvrtc" / "lib" for p in sys.path if p]
    for d in dirs:
        # libnvrtc-builtins is loaded by libnvrtc itself; the .alt. build is a variant of the same.
        found = sorted(p for p in d.glob("libnvrtc.so*") if ".alt." not in p.name)
        if found:
            return str(found[0])
    return ctypes.util.find_library("nvrtc")


@functools.lru_cache(maxsize=None)
def _load(path: str) -> ctypes.CDLL:
    lib = ctypes.CDLL(path)
    p, size, prog = ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_void_p)
    strings = ctypes.POINTER(ctypes.c_char_p)
    signatures = {
        "nvrtcVersion": [ctypes.POINTER(ctypes.c_int)] * 2,
        "nvrtcCreateProgram": [prog, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, strings, strings],
        "nvrtcCompileProgram": [p, ctypes.c_int, strings],
        "nvrtcGetProgramLogSize": [p, size], "nvrtcGetProgramLog": [p, ctypes.c_char_p],
        "nvrtcGetPTXSize": [p, size], "nvrtcGetPTX": [p, ctypes.c_char_p],
        "nvrtcDestroyProgram": [prog],
    }
    for name, argtypes in signatures.items():
        getattr(lib, name).argtypes = argtypes
        getattr(lib, name).restype = ctypes.c_int  # nvrtcResult; 0 is NVRTC_SUCCESS
    lib.nvrtcGetErrorString.argtypes = [ctypes.c_int]
    lib.nvrtcGetErrorString.restype = ctypes.c_char_p
    return lib


def _library() -> ctypes.CDLL:
    path = find_library()
    if path is None:
        raise NVRTCError(f"NVRTC not found; {_HELP}.")
    try:
        return _load(path)
    except OSError as err:
        raise NVRTCError(f"could not load NVRTC from {path}: {err}; {_HELP}.") from err


def nvrtc_available() -> bool:
    """True when an NVRTC library is found and loads."""
    try:
        _library()
    except NVRTCError:
        return False
    return True


def nvrtc_version() -> tuple[int, int]:
    """(major, minor) of the NVRTC that `compile_ptx` uses, e.g. (12, 9)."""
    major, minor = ctypes.c_int(), ctypes.c_int()
    _check(_library(), _library().nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "nvrtcVersion")
    return major.value, minor.value


def compile_ptx(source: str, arch: str = "compute_90", options: Sequence[str] = (),
                name: str = "kernel.cu") -> str:
    """Compile CUDA C++ to PTX for a virtual GPU architecture, as CuPy's NVRTC path would.

    Args:
        source: the CUDA source (kernels ``extern "C" __global__``, so PTX keeps their names).
        arch: a virtual architecture, ``compute_XY`` (PTX is produced for those only).
        options: further NVRTC options, e.g. ``("--std=c++17", "-DREAL=float")``.
        name: the file name NVRTC uses in its messages.

    Returns:
        The PTX text; each kernel appears as ``.entry <name>``.

    Raises:
        ValueError: ``arch`` is not ``compute_XY``.
        NVRTCError: NVRTC is missing, or the source does not compile (with NVRTC's log).
    """
    if not arch.startswith("compute_"):
        raise ValueError(f"arch must be a virtual architecture such as 'compute_90', got {arch!r}")
    lib = _library()
    prog = ctypes.c_void_p()
    _check(lib, lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0, None, None),
           "nvrtcCreateProgram")
    try:
        opts = [f"--gpu-architecture={arch}", *options]
        result = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*(o.encode() for o in opts)))
        log_size = ctypes.c_size_t()
        _check(lib, lib.nvrtcGetProgramLogSize(prog, ctypes.byref(log_size)), "nvrtcGetProgramLogSize")
        log = ctypes.create_string_buffer(log_size.value)
        _check(lib, lib.nvrtcGetProgramLog(prog, log), "nvrtcGetProgramLog")
        if result != 0:
            raise NVRTCError(f"NVRTC could not compile {name} for {arch} "
                             f"({lib.nvrtcGetErrorString(result).decode()}):\n{log.value.decode(errors='replace')}")
        ptx_size = ctypes.c_size_t()
        _check(lib, lib.nvrtcGetPTXSize(prog, ctypes.byref(ptx_size)), "nvrtcGetPTXSize")
        ptx = ctypes.create_string_buffer(ptx_size.value)
        _check(lib, lib.nvrtcGetPTX(prog, ptx), "nvrtcGetPTX")
        return ptx.value.decode()
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


def _check(lib: ctypes.CDLL, result: int, call: str) -> None:
    if result != 0:
        raise NVRTCError(f"{call} failed: {lib.nvrtcGetErrorString(result).decode()}")
