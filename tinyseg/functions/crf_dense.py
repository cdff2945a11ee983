r"""The dense CRF's intensity kernel, built by blocks; on the CPU half the pairs built, half read.

Performance machinery for `tinyseg.functions.crf_kernels.DenseIntensityKernel`, whose file
keeps the kernel's math. The kernel $K_{ij} = e^{-(I_i-I_j)^2/2}$ is one (P, P) matrix per image
(10 MB at 40×40 in float32), and on a CPU building it and multiplying by it are most of a
dense-CRF step. Three things make both cheaper without changing a value:

* `build_dense_kernel`: $K$ is symmetric, so only the upper triangle $j \ge i$ is computed,
  a block of `_ROWS` rows at a time (small enough that the block's four passes run in cache).
* `symmetric_matvec`: BLAS's ``symv`` multiplies by the whole matrix from that triangle,
  reading half of it.
* ``symv`` is called through SciPy's C-level BLAS interface (`scipy.linalg.cython_blas`) with
  `ctypes`, which lets go of Python's interpreter lock (the GIL) for the call. SciPy's Python
  wrapper `scipy.linalg.blas.ssymv` holds the lock for the whole product, so a second thread
  (building the next kernel, or multiplying another image's) would wait for it; released, two
  threads multiply two kernels at once. It is the same BLAS routine either way: the
  results are bit-identical (tests/functions/test_crf_kernels.py).

See: docs/performance.md ("How the CPU builds the dense CRF's kernel"), tests/functions/test_crf_kernels.py.
"""
from __future__ import annotations

import ctypes
from typing import Any, Callable

import numpy as np

from ..backend import get_array_module

_ROWS = 128  # rows per block of the dense build (at 40×40, 0.8 MB: its four passes stay in cache)


def build_dense_kernel(image: Any, out: Any, upper_only: bool) -> Any:
    r"""$e^{-(I_i-I_j)^2/2}$ for every pair, or only $j \ge i$, into `out`: (N, P) -> (N, P, P).

    With ``upper_only`` what lies below the diagonal outside each block of rows is not written.
    Works on NumPy and CuPy arrays (the GPU computes the whole matrix as one block).
    """
    xp, P, K = get_array_module(image), image.shape[1], out
    # --8<-- [start:dense_build]
    rows = _ROWS if upper_only else P  # the GPU: the whole matrix as one block
    for r0 in range(0, P, rows):  # a block of rows at a time, in place
        r1 = min(r0 + rows, P)
        c0 = r0 if upper_only else 0  # columns c0..P-1: j >= i, or all of them
        Kb = K[:, r0:r1, c0:]  # rows r0..r1-1
        xp.subtract(image[:, r0:r1, None], image[:, None, c0:], out=Kb)  # I_i - I_j
        xp.multiply(Kb, Kb, out=Kb)
        Kb *= -0.5
        xp.exp(Kb, out=Kb)
    # --8<-- [end:dense_build]
    return K


def _capsule_function(name: str, scalar: Any) -> Callable[..., None] | None:
    """BLAS routine `name` from `scipy.linalg.cython_blas` as a ctypes function, or None.

    Its C signature is Fortran's: every argument by pointer. ctypes releases the GIL during
    the call.
    """
    try:
        from scipy.linalg import cython_blas  # noqa: PLC0415  (scipy.linalg is slow to import)

        capsule = cython_blas.__pyx_capi__[name]
        api = ctypes.pythonapi
        api.PyCapsule_GetName.restype, api.PyCapsule_GetName.argtypes = ctypes.c_char_p, [ctypes.py_object]
        api.PyCapsule_GetPointer.restype = ctypes.c_void_p
        api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        signature_text = api.PyCapsule_GetName(capsule)  # the C signature, e.g. b"void (char *, int *, ..."
        address = api.PyCapsule_GetPointer(capsule, signature_text)
    except (ImportError, AttributeError, KeyError, ValueError):  # no such interface: the wrapper
        return None
    if not signature_text.startswith(b"void (char *, int *,"):  # 32-bit ints, as declared below
        return None
    ptr, int_p, scalar_p = ctypes.c_void_p, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(scalar)
    # symv(uplo, n, alpha, a, lda, x, incx, beta, y, incy)
    signature = ctypes.CFUNCTYPE(None, ctypes.c_char_p, int_p, scalar_p, ptr, int_p, ptr, int_p,
                                 scalar_p, ptr, int_p)
    return signature(address)


_SYMV: dict[Any, Any] = {}  # dtype -> ctypes symv (or None: use SciPy's wrapper), made at first use


def _symv_for(dtype: Any) -> tuple[Callable[..., None] | None, Any]:
    dtype = np.dtype(dtype)
    if dtype not in _SYMV:
        scalar = ctypes.c_float if dtype == np.float32 else ctypes.c_double
        _SYMV[dtype] = (_capsule_function("ssymv" if dtype == np.float32 else "dsymv", scalar), scalar)
    return _SYMV[dtype]


def symmetric_matvec(K: np.ndarray, x: np.ndarray) -> np.ndarray:
    r"""$K_n x_n$ for symmetric matrices given by their upper triangle: (N, P, P), (N, P) -> (N, P).

    BLAS's ``symv`` per matrix: it reads only the entries $j \ge i$ (what is below the diagonal
    is never read), half the memory traffic of a full product; the GIL is released during each
    product. NumPy float32 or float64 arrays only.
    """
    N, P = x.shape
    if K.dtype not in (np.float32, np.float64):
        raise TypeError(f"symmetric_matvec: float32 or float64 matrices only, got {K.dtype}.")
    x = np.ascontiguousarray(x, dtype=K.dtype)
    y = np.empty_like(x)
    symv, scalar = _symv_for(K.dtype)
    if symv is None or N == 0:
        from scipy.linalg.blas import get_blas_funcs  # noqa: PLC0415

        wrapper = get_blas_funcs("symv", (K, x))
        for n in range(N):  # K_n.T is a Fortran-order view whose lower triangle is K_n's upper one
            y[n] = wrapper(1.0, K[n].T, x[n], lower=1)
        return y
    n_, one, zero, inc = ctypes.c_int(P), scalar(1.0), scalar(0.0), ctypes.c_int(1)
    item = K.dtype.itemsize
    for n in range(N):
        Kn = K[n]
        if Kn.strides[1] != item or Kn.strides[0] < P * item:  # BLAS needs unit column steps
            Kn = np.ascontiguousarray(Kn)
        lda = ctypes.c_int(Kn.strides[0] // item)
        # Read as Fortran, the C-order K_n is K_nᵀ: its lower triangle ("L") is K_n's upper one.
        symv(b"L", ctypes.byref(n_), ctypes.byref(one), Kn.ctypes.data, ctypes.byref(lda),
             x[n].ctypes.data, ctypes.byref(inc), ctypes.byref(zero), y[n].ctypes.data, ctypes.byref(inc))
    return y
