"""GPU fast paths: hand-written CUDA kernels that run instead of many small CuPy calls.

A GPU training step of this model is bound by the host: each CuPy call launches a kernel and
costs microseconds of Python. A fast path replaces many calls by one kernel. It is not part of
the teaching code: each one REGISTERS itself (`register`, see `tinyseg.cuda.registry`) as an
override of an op's forward and/or backward, of Adam's update, or of a helper (col2im, the
adversarial input), and declines where it does not apply. The ops, `optim` and `adversarial`
never import this package; with every fast path off, the GPU runs exactly the NumPy code on CuPy
arrays, the oracle of every kernel.

Which fast paths run:

* ``TINYSEG_FAST_PATHS`` unset (the default): only those in `VERIFIED`, the fast paths that have
  passed their tests on a real GPU: ``adam`` alone (the per-parameter CuPy
  elementwise Adam); the GPU runs every other op as the plain CuPy code.
* ``TINYSEG_FAST_PATHS=1``: every registered fast path (`FAST_PATHS`), verified or not.
* ``TINYSEG_FAST_PATHS=0``: none; Adam runs as the NumPy update on CuPy arrays.
* in code: ``with tinyseg.cuda.fast_paths(True | False | None): ...`` (None: the verified ones).

``TINYSEG_FUSED`` and ``tinyseg.cuda.fused`` are the old names of the two switches: still read
for one release, with a `DeprecationWarning`.

This package is imported by `tinyseg.backend` the first time CuPy is used, so the overrides are
in place whenever CuPy arrays are; ``import tinyseg`` never needs it.

The kernels live in ``*.cu`` files next to this module, written once for float and double
(`tinyseg.cuda.kernels`). The same source runs on the GPU (CuPy's NVRTC) and, for the tests, on
the CPU through a g++ emulator and a compile check for a GPU architecture without a GPU
(`tinyseg.cuda.testing`, test support, not part of the library's API).

See: tests/cuda/test_fast_path_layers.py, tests/cuda/test_crf_fast_path.py, benchmarks/gpu_check.sh.
"""
from __future__ import annotations

from . import registry
from .kernels import BLOCK, Kernel, get_kernel, launches, source
from .registry import FAST_PATHS, VERIFIED, enabled, fast_paths, fused, register

__all__ = ["BLOCK", "FAST_PATHS", "Kernel", "VERIFIED", "enabled", "fast_paths", "fused", "get_kernel", "launches", "register",
           "source"]

from . import adversarial, crf, layers, optim  # noqa: E402  (each registers its fast paths)

registry.install()
