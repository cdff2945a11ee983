r"""Run CUDA kernels on the CPU: g++ compiles the source, one std::thread plays each CUDA thread.

The test suite checks our `RawKernel` sources on machines without a GPU with this emulator. It
takes the same source and the same calling convention as CuPy, so one op can launch either:

    mod = build(source)                      # like cupy.RawModule(code=source)
    k = mod.get_function("saxpy")
    k((blocks,), (128,), (np.int32(n), np.float32(a), x, y), shared_mem=0)   # NumPy arrays

How it works: `build` preprocesses the source to find every ``__global__`` kernel and its
parameters, appends one C++ launcher per kernel, and compiles everything with a prelude (`emulate_prelude.h`)
that defines the CUDA keywords. A launch runs the blocks one after another; for each block it
starts ``blockDim.x*y*z`` std::threads that share a ``std::barrier`` (``__syncthreads()``) and
the block's dynamic shared memory, then joins them.

The supported subset, and its limits:

* ``__global__``, ``__device__``, ``__host__``, ``__forceinline__``, ``__launch_bounds__``,
  ``__align__(n)``, ``__restrict__``, ``__constant__`` variables with initialisers;
  ``threadIdx``, ``blockIdx``, ``blockDim``, ``gridDim``, ``warpSize``; ``<math.h>`` functions
  with CUDA's float overloads (``exp(float)`` is float), ``min``/``max``, ``rsqrtf``,
  ``__expf``, ``__logf``, ``__fdividef``, ``__ldg``; ``atomicAdd`` (int, unsigned, unsigned
  long long, float, double), ``atomicSub``, ``atomicMax``/``atomicMin`` (int, unsigned),
  ``atomicExch``, ``atomicCAS``; ``__syncthreads()``, ``__threadfence()``, ``assert``,
  ``__trap()``, ``printf``.
* ``__shared__`` is ``static``: blocks run one after another, so a function-local static array
  is one block's shared memory. It keeps the previous block's values (the GPU leaves garbage).
  ``extern __shared__`` does not compile; use ``DYN_SHARED(T, name)``, which the prelude defines
  (a source that defines it for the GPU must guard it with ``#ifndef DYN_SHARED``). Dynamic
  shared memory is 16-byte aligned and filled with 0xFF bytes before each block (NaN for
  floats, -1 for ints), so a kernel that reads it before writing fails here as it would there.
* Threads really run concurrently, so races show up as wrong results. ``__syncthreads()``
  reached at two different source lines in one phase is reported as an error (divergent
  barrier). A thread that returns drops out of later barriers, so ``if (i >= n) return;``
  before ``__syncthreads()`` does not hang here; the CUDA guide calls that pattern undefined,
  so kernels should keep every thread alive up to the last barrier.
* Blocks do not run concurrently: communication between blocks other than through atomics is
  not emulated. No warp intrinsics (``__shfl*``, ``__ballot``, warp-synchronous code), no
  cooperative groups, textures, vector types (``float4``), template kernels or streams.
  Parameter types must be spelled with built-in types or macros (``REAL``), not typedefs.
* A failing ``assert``/``__trap()`` or a C++ exception in a kernel raises `KernelError` naming
  the block and thread. Out-of-bounds memory access is not checked and may crash the process;
  a kernel that spins forever hangs. Speed is irrelevant: every block starts its threads anew.

Environment: ``TINYSEG_CXX`` names the compiler (default ``g++``), ``TINYSEG_CACHE`` the cache
folder. Use ``-I`` in ``options`` for ``#include "..."`` (the compiler runs in a temporary folder).

Scalars follow CuPy's rule (a Python int is passed as ``long long``, a float as ``double``, a
NumPy scalar as its own dtype); a scalar whose type differs from the parameter is refused,
because on the GPU its bytes would be misread.

Longer than the usual ~300 lines because it is one job that cannot be split without
scattering it: the source scan, the launchers it writes and the scalar rules above all follow
one calling convention, CuPy's.

See: tests/cuda/test_cuda_emulate.py.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CXX = os.environ.get("TINYSEG_CXX", "g++")
# -fno-strict-aliasing: CUDA code reinterprets shared memory freely; hidden visibility and
# -fno-gnu-unique keep two loaded modules from sharing the prelude's globals.
CXX_FLAGS = ("-O2", "-std=c++20", "-shared", "-fPIC", "-pthread", "-fno-fast-math",
             "-fno-strict-aliasing", "-fvisibility=hidden", "-fno-gnu-unique")
MAX_THREADS_PER_BLOCK = 1024

# The C++ that makes CUDA source compile with g++ (keywords, thread indices, barriers, atomics),
# force-included before the kernel source; kept in its own file to be read as C++.
PRELUDE = (Path(__file__).parent / "emulate_prelude.h").read_text()

# Normalised C type -> (NumPy dtype, ctypes type of a by-value scalar).
C_TYPES: dict[str, tuple[np.dtype, Any]] = {
    "float": (np.dtype(np.float32), ctypes.c_float), "double": (np.dtype(np.float64), ctypes.c_double),
    "int": (np.dtype(np.int32), ctypes.c_int32), "unsigned int": (np.dtype(np.uint32), ctypes.c_uint32),
    "long long": (np.dtype(np.int64), ctypes.c_int64),
    "unsigned long long": (np.dtype(np.uint64), ctypes.c_uint64),
    "unsigned char": (np.dtype(np.uint8), ctypes.c_uint8), "bool": (np.dtype(np.bool_), ctypes.c_bool),
}
_SPELLINGS = {"unsigned": "unsigned int", "signed int": "int", "signed": "int", "long long int": "long long",
              "signed long long": "long long", "unsigned long long int": "unsigned long long"}
_QUALIFIERS = {"const", "volatile", "__restrict__", "__restrict", "restrict"}
# CuPy passes a Python scalar as this C type, whatever the parameter says.
_CUPY_PYTHON_SCALARS = {bool: "bool", int: "long long", float: "double"}
# In the scan, __global__ becomes a marker that survives the preprocessor (the prelude empties it).
_SCAN_HEADER = "#define __global__ TINYSEG_EMU_KERNEL\n#define __launch_bounds__(...)\n#line 1\n"
_KERNEL_RE = re.compile(r"\bTINYSEG_EMU_KERNEL\b[^(;{}]*?\bvoid\s+(\w+)\s*\(([^)]*)\)")


class CompileError(RuntimeError):
    """g++ refused the kernel source; the message holds its errors and the cited lines."""


class KernelError(RuntimeError):
    """A kernel failed while running (assert, __trap, exception, divergent __syncthreads)."""


@dataclass(frozen=True)
class Param:
    """One kernel parameter: ``const float* __restrict__ x`` is Param("x", "float", True, True)."""

    name: str
    ctype: str
    pointer: bool
    const: bool

    @property
    def dtype(self) -> np.dtype:
        """NumPy dtype of the value, or of the array a pointer parameter takes."""
        return C_TYPES[self.ctype][0]

    @property
    def decl(self) -> str:
        """The parameter as C declares it (normalised), for launchers and messages."""
        return f"{'const ' if self.const else ''}{self.ctype}{'*' if self.pointer else ''} {self.name}"


def parse_params(kernel: str, text: str) -> list[Param]:
    """Parse a kernel's parameter list into `Param`s.

    Args:
        kernel: the kernel's name, for messages.
        text: the preprocessed text between the parentheses, e.g. ``const int n, float* y``.

    Returns:
        One `Param` per parameter, in order (none for ``void``).

    Raises:
        ValueError: a parameter type outside `C_TYPES` or a pointer to pointer.
    """
    params = []
    for raw in filter(None, (p.strip() for p in text.split(","))):
        tokens = re.findall(r"\w+|\*", raw)
        if tokens == ["void"]:
            continue
        words = [t for t in tokens[:-1] if t not in _QUALIFIERS and t != "*"]
        ctype = _SPELLINGS.get(" ".join(words), " ".join(words))
        if ctype not in C_TYPES or tokens.count("*") > 1:
            raise ValueError(f"kernel {kernel}: parameter '{raw}' has a type the emulator does not "
                             f"support; use one of {sorted(C_TYPES)} or a pointer to one")
        pointer = "*" in tokens
        params.append(Param(tokens[-1], ctype, pointer, pointer and "const" in tokens[:tokens.index("*")]))
    return params


@functools.lru_cache(maxsize=None)
def available() -> bool:
    """True when g++ is on PATH and compiles C++20 threads and barriers (checked once).

    Only the toolchain is probed, not the prelude: a broken emulator must fail its tests, not
    skip them.
    """
    if shutil.which(CXX) is None:
        return False
    probe = "#include <barrier>\n#include <thread>\nstd::barrier<> b(1);\n"
    try:
        _run([CXX, "-std=c++20", "-pthread", "-fsyntax-only", "-x", "c++", "-"], probe)
    except (OSError, CompileError):
        return False
    return True


def build(source: str, options: Sequence[str] = ()) -> EmulatedModule:
    """Compile a CUDA source for the emulator, like ``cupy.RawModule(code=source)``.

    Args:
        source: CUDA C++ with ``__global__`` kernels (see the module docstring for the subset).
        options: extra g++ flags such as ``-DREAL=float`` or ``-I/path``.

    Returns:
        The module; its `.so` is cached on disk by the hash of prelude, source and flags, in
        ``$TINYSEG_CACHE/cuda_emu`` or a per-user temporary folder.

    Raises:
        CompileError: g++ failed; the message holds its errors and the cited source lines.
    """
    return _build(source, tuple(options))


@functools.lru_cache(maxsize=64)
def _build(source: str, options: tuple[str, ...]) -> EmulatedModule:
    scan = _run([CXX, "-E", "-P", "-x", "c++", "-std=c++20", *options, "-"], _SCAN_HEADER + source)
    kernels: dict[str, list[Param] | ValueError] = {}
    for name, params in _KERNEL_RE.findall(scan):
        try:
            kernels[name] = parse_params(name, params)
        except ValueError as err:  # refused at get_function, so the other kernels still work
            kernels[name] = err
    launchers = [_launcher(name, p) for name, p in kernels.items() if isinstance(p, list)]
    text = source + "\n\n// ---- launchers generated by tinyseg.cuda.testing.emulate ----\n" + "\n".join(launchers)
    flags = (*CXX_FLAGS, *options)
    key = hashlib.sha256("\0".join((CXX, PRELUDE, text, *flags)).encode()).hexdigest()[:32]
    base = os.environ.get("TINYSEG_CACHE")
    cache = Path(base) / "cuda_emu" if base else Path(tempfile.gettempdir()) / f"tinyseg-{os.getuid()}" / "cuda_emu"
    cache.mkdir(parents=True, exist_ok=True)
    library = cache / f"{key}.so"
    if not library.exists():
        with tempfile.TemporaryDirectory(dir=cache) as tmp:  # private names: parallel builds never collide
            (Path(tmp) / "prelude.h").write_text(PRELUDE)
            (Path(tmp) / "source.cu").write_text(text)
            _run([CXX, *flags, "-include", "prelude.h", "-x", "c++", "source.cu", "-o", "out.so"], cwd=tmp,
                 text_for_errors=text)
            os.replace(Path(tmp) / "out.so", library)  # atomic: a reader sees no .so or a whole one
    return EmulatedModule(ctypes.CDLL(str(library)), kernels)


def _launcher(name: str, params: list[Param]) -> str:
    args = [f"a{i}" for i in range(len(params))]
    decls = "".join(f", {p.decl.rsplit(' ', 1)[0]} {a}" for p, a in zip(params, args))
    return (f"TINYSEG_EMU_EXPORT int tinyseg_emu_launch_{name}(unsigned gx, unsigned gy, unsigned gz, "
            f"unsigned bx, unsigned by, unsigned bz, size_t smem{decls}) {{\n"
            f"  return tinyseg_emu::launch(gx, gy, gz, bx, by, bz, smem, [=] {{ {name}({', '.join(args)}); }});\n}}")


def _run(cmd: list[str], stdin: str | None = None, cwd: str | None = None, text_for_errors: str = "") -> str:
    env = {**os.environ, "LC_ALL": "C"}  # ASCII quotes in g++'s messages
    proc = subprocess.run(cmd, input=stdin, cwd=cwd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise CompileError(f"{' '.join(cmd)} failed:\n{proc.stderr}{_cited_lines(proc.stderr, text_for_errors)}")
    return proc.stdout


def _cited_lines(stderr: str, text: str) -> str:
    """The lines of the generated source that g++'s messages cite, numbered, with context."""
    lines = text.splitlines()
    cited = sorted({int(n) for n in re.findall(r"source\.cu:(\d+):", stderr)})
    shown = sorted({i for n in cited for i in range(max(n - 2, 1), min(n + 2, len(lines)) + 1)})
    if not shown:
        return ""
    return "\nGenerated source (source.cu):\n" + "\n".join(
        f"{'>' if i in cited else ' '}{i:5d} | {lines[i - 1]}" for i in shown)


class EmulatedModule:
    """A compiled source; `get_function` returns its kernels, like ``cupy.RawModule``."""

    def __init__(self, library: ctypes.CDLL, kernels: dict[str, list[Param] | ValueError]) -> None:
        self._library = library
        self.kernels = kernels
        library.tinyseg_emu_last_error.restype = ctypes.c_char_p

    def get_function(self, name: str) -> EmulatedKernel:
        """The kernel ``name``, callable as ``kernel(grid, block, args, shared_mem=0)``."""
        params = self.kernels.get(name)
        if params is None:
            raise ValueError(f"no __global__ kernel named {name!r} in the source; it has {sorted(self.kernels)}")
        if isinstance(params, ValueError):
            raise params
        return EmulatedKernel(self._library, name, params)


class EmulatedKernel:
    """One kernel; calling it launches it like ``cupy.RawKernel.__call__``."""

    def __init__(self, library: ctypes.CDLL, name: str, params: list[Param]) -> None:
        self.name, self.params, self._library = name, params, library
        self.max_dynamic_shared_size_bytes = 48 * 1024  # CUDA's limit unless a kernel opts in
        self._launch = getattr(library, f"tinyseg_emu_launch_{name}")
        self._launch.restype = ctypes.c_int
        self._launch.argtypes = [ctypes.c_uint] * 6 + [ctypes.c_size_t] + [
            ctypes.c_void_p if p.pointer else C_TYPES[p.ctype][1] for p in params]

    def __call__(self, grid: int | tuple[int, ...], block: int | tuple[int, ...], args: tuple[Any, ...],
                 *, shared_mem: int = 0) -> None:
        """Run the kernel on ``grid`` blocks of ``block`` threads; writes land in the arrays.

        Args:
            grid: blocks per dimension, an int or 1-3 ints.
            block: threads per block per dimension, an int or 1-3 ints (at most 1024 in all).
            args: one value per kernel parameter: a C-contiguous NumPy array of the pointee's
                dtype for a pointer, a scalar for a value (CuPy's rules, see the module doc).
            shared_mem: bytes of dynamic shared memory per block (``DYN_SHARED``).

        Raises:
            TypeError: wrong number of arguments, or an argument of the wrong type or layout.
            ValueError: an impossible launch configuration.
            KernelError: a thread failed (assert, __trap, exception, divergent barrier).
        """
        g, b = _dims(grid, "grid"), _dims(block, "block")
        if b[0] * b[1] * b[2] > MAX_THREADS_PER_BLOCK or b[2] > 64:
            raise ValueError(f"{self.name}: block {b} exceeds CUDA's limits (1024 threads, z <= 64)")
        if not 0 <= shared_mem <= self.max_dynamic_shared_size_bytes:
            raise ValueError(f"{self.name}: shared_mem={shared_mem} outside 0..{self.max_dynamic_shared_size_bytes} "
                             "bytes (raise max_dynamic_shared_size_bytes as on the GPU)")
        if not isinstance(args, (tuple, list)):
            raise TypeError(f"{self.name}: args must be a tuple of kernel arguments, got {type(args).__name__}")
        if len(args) != len(self.params):
            raise TypeError(f"kernel {self.name}({', '.join(p.decl for p in self.params)}) takes "
                            f"{len(self.params)} arguments, got {len(args)}")
        values = [_convert(self.name, p, a) for p, a in zip(self.params, args)]
        n_errors = self._launch(*g, *b, shared_mem, *values)
        if n_errors:
            first = self._library.tinyseg_emu_last_error().decode()
            raise KernelError(f"kernel {self.name} failed in {n_errors} thread(s); first: {first}")


def _dims(value: int | tuple[int, ...], what: str) -> tuple[int, int, int]:
    dims = (value,) if isinstance(value, (int, np.integer)) else tuple(value)
    if not 1 <= len(dims) <= 3 or any(int(d) < 1 for d in dims):
        raise ValueError(f"{what} must be a positive int or 1-3 positive ints, got {value!r}")
    return tuple(int(d) for d in dims) + (1,) * (3 - len(dims))  # type: ignore[return-value]


def _convert(kernel: str, p: Param, value: Any) -> Any:
    """The ctypes argument for one parameter, or a TypeError that says how to fix the call."""
    where = f"kernel {kernel}: parameter '{p.name}' ({p.decl})"
    if p.pointer:
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{where} takes a NumPy array, got {type(value).__name__}")
        if value.dtype != p.dtype:
            raise TypeError(f"{where} needs dtype {p.dtype}, got {value.dtype}; pass x.astype(np.{p.dtype.name})")
        if not value.flags.c_contiguous:
            raise TypeError(f"{where} needs a C-contiguous array; pass np.ascontiguousarray(x)")
        if not (p.const or value.flags.writeable):
            raise TypeError(f"{where} writes through a read-only array; pass a writeable copy")
        return value.ctypes.data
    fix = f"pass np.{p.dtype.type.__name__}(value)"
    if isinstance(value, np.generic):
        if value.dtype != p.dtype:
            raise TypeError(f"{where} got a NumPy {value.dtype} scalar, whose bytes CuPy would pass "
                            f"unchanged; {fix}")
        return value.item()
    passed_as = _CUPY_PYTHON_SCALARS.get(type(value))
    if passed_as is None:
        raise TypeError(f"{where} takes a scalar, got {type(value).__name__}")
    if passed_as != p.ctype:
        raise TypeError(f"{where} got a Python {type(value).__name__}, which CuPy passes as {passed_as}; {fix}")
    if passed_as == "long long" and not -2**63 <= value < 2**63:
        raise OverflowError(f"{where}: {value} does not fit in a long long")
    return value
