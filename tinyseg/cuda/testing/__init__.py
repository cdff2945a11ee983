"""Test support for the CUDA fast paths: run and compile the kernels without a GPU.

Not part of the library's API (the docs' API pages leave it out); the test suite and the
benchmarks use it:

* `emulated`: inside the block, kernels also run on NumPy arrays, through `emulate` — g++
  compiles the same ``.cu`` source and runs it with one thread per CUDA thread — so the tests
  compare every fast path with the plain path on the CPU;
* `nvrtc`: compiles a source for a GPU architecture with NVIDIA's NVRTC, without a GPU.

The operation counter that the launch-count benchmark uses lives beside it, in
``benchmarks/op_count.py``.

See: tests/test_fused_layers.py, tests/test_cuda_emulate.py, tests/test_launch_count.py.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

from .. import kernels


class EmulatorCompiler:
    """Kernels for NumPy arrays, through the g++ emulator."""

    name = "emu"

    def __init__(self, multiprocessors: int = 2) -> None:
        self.multiprocessors = multiprocessors

    def compile(self, code: str, kernel: str) -> Callable[..., None]:
        from . import emulate  # noqa: PLC0415  (needs g++ only when a kernel is built)

        return emulate.build(code).get_function(kernel)

    def multiprocessor_count(self, like: Any) -> int:
        """Few, so that the dense CRF splits small test images over several blocks."""
        return self.multiprocessors


@contextmanager
def emulated(multiprocessors: int = 2) -> Iterator[None]:
    """Inside the block, fast paths also run on NumPy arrays, through the g++ emulator.

    Which fast paths run still follows `tinyseg.cuda.fused`; the tests switch them all on.

    Args:
        multiprocessors: what `multiprocessor_count` reports for the emulated device.
    """
    old = kernels.use_host_compiler(EmulatorCompiler(multiprocessors))
    try:
        yield
    finally:
        kernels.use_host_compiler(old)
