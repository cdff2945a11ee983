"""Adam's update on the GPU, registered as overrides of `Adam.update`.

Two fast paths, tried in this order:

* ``adam_multi``: every parameter in ONE launch of ``optim.cu``, through a table of pointers
  (parameters, gradients, m, v) and the offsets of each parameter in the flattened whole;
  declines mixed dtypes and non-contiguous parameters or moments.
* ``adam``: one CuPy ``ElementwiseKernel`` launch per parameter (instead of about ten); CuPy
  arrays only (the emulator runs ``.cu`` sources, not CuPy's elementwise kernels).

Both compute the plain update of `tinyseg.optim.Adam` (its oracle) with the same constants:
``1 − β`` is computed in double by the caller, because in float32 ``1 − 0.999f`` is 1.3e-5 off.

See: tinyseg/cuda/optim.cu, tests/cuda/test_optim_fast_path.py, tests/cuda/test_gpu_parity.py.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import cupy_module, get_array_module, is_cupy_array
from ..optim import Adam
from .kernels import get_kernel, grid_for, launch
from .registry import Record, register

_ELEMENTWISE: Any = None


def _elementwise_adam() -> Any:
    """The Adam update as one CuPy elementwise kernel (built on first use)."""
    global _ELEMENTWISE
    if _ELEMENTWISE is None:
        _ELEMENTWISE = cupy_module().ElementwiseKernel(
            "T g, T b1, T one_minus_b1, T b2, T one_minus_b2, T step_size, T inv_sqrt_bc2, T eps",
            "T p, T m, T v",
            """
            m = b1 * m + one_minus_b1 * g;
            v = b2 * v + one_minus_b2 * g * g;
            p -= step_size * m / (sqrt(v) * inv_sqrt_bc2 + eps);
            """,
            "tinyseg_fused_adam")
    return _ELEMENTWISE


def adam_elementwise(opt: Adam, record: Record, work: list[tuple], b1: float, b2: float, step_size: float,
                     inv_sqrt_bc2: float) -> Any:
    """One elementwise-kernel launch per parameter; `work` holds (p, g, m, v) raw arrays."""
    if not is_cupy_array(work[0][0]):
        return NotImplemented
    kernel = _elementwise_adam()
    for p, g, m, v in work:
        kernel(g, b1, 1.0 - b1, b2, 1.0 - b2, step_size, inv_sqrt_bc2, opt.eps, p, m, v)
    return None


def adam_multi(opt: Adam, record: Record, work: list[tuple], b1: float, b2: float, step_size: float,
               inv_sqrt_bc2: float) -> Any:
    """Every parameter in one launch of ``adam_multi``; the offsets table is uploaded once (record)."""
    p0 = work[0][0]
    if any(a.dtype != p0.dtype for w in work for a in w) \
            or not all(a.flags.c_contiguous for w in work for a in (w[0], w[2], w[3])):
        return NotImplemented
    kernel = get_kernel("optim.cu", "adam_multi", p0)
    xp = get_array_module(p0)
    grads = [xp.ascontiguousarray(g) for _, g, _, _ in work]  # kept alive until the launch is queued
    addr = (lambda a: a.ctypes.data) if isinstance(p0, np.ndarray) else (lambda a: a.data.ptr)  # host or device
    ptrs = np.array([addr(w[0]) for w in work] + [addr(g) for g in grads]
                    + [addr(w[2]) for w in work] + [addr(w[3]) for w in work], dtype=np.uint64)  # (4 K,)
    sizes = (xp.__name__,) + tuple(w[0].size for w in work)
    offsets = getattr(record, "adam_offsets", None)
    if offsets is None or offsets[0] != sizes:  # uploaded once, not every step
        offsets = record.adam_offsets = (sizes, xp.asarray(np.concatenate([[0], np.cumsum(sizes[1:])])
                                                           .astype(np.int64)))  # (K + 1,)
    real = p0.dtype.type
    launch(kernel, grid_for(sum(sizes[1:])),
           (xp.asarray(ptrs), offsets[1], np.int32(len(work)), real(b1), real(1.0 - b1), real(b2),
            real(1.0 - b2), real(step_size), real(inv_sqrt_bc2), real(opt.eps)))
    return None


register(Adam, name="adam_multi", update=adam_multi)
register(Adam, name="adam", update=adam_elementwise)
