"""The CRF's kernels for a batch, chunk by chunk: where `MeanFieldCRFOp` spends its memory and time.

Performance machinery beside the math of `tinyseg.functions.crf`, which only maps its chunk
functions over `KernelChunks`. On the CPU a dense kernel is one (P, P) matrix per image (10 MB
at 40×40 in float32): building it costs one exponential per pixel pair and is most of a dense
CRF step, so this module decides how many exist at once (memory), how often each is built
(time) and on how many cores (`tinyseg.threads`).

See: docs/performance.md ("How the CPU builds the dense CRF's kernel"), tests/functions/test_crf.py.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..backend import is_cupy_array
from ..threads import own_threads
from .crf_kernels import crf_kernels

# --8<-- [start:budgets]
# CPU dense kernels are built and iterated per chunk of this size (it stays in L3)
_CHUNK_BYTES = 16 * 2**20
# CPU dense kernels alive at once, and the most kept for the backward pass
_WAVE_BYTES = 192 * 2**20
# --8<-- [end:budgets]


class KernelChunks:
    """The CRF's kernels for a batch, chunk by chunk: `map` runs a function on every chunk.

    ``map(fn)`` runs ``fn(i, batch, kernels)`` for every chunk i, where ``batch`` is the chunk's
    slice of the batch and ``kernels`` its `crf_kernels`, and returns ``(i, batch, result)`` for
    each, in the order the chunks were scheduled (the same whatever the thread count).

    * The GPU, and the cheap grid4 stencils: the whole batch is one chunk (memory is plentiful
      there, kernel launches are not), run on the calling thread.
    * Dense kernels on the CPU: chunks of `_CHUNK_BYTES` (one 40×40 image: a 10 MB kernel, which
      stays in cache while mean field iterates on it). `own_threads()` workers take the chunks in
      order, each building a chunk's kernel and at once running ``fn`` on it, so each core works
      on its own image while that image's kernel is in cache (NumPy's loops and BLAS's ``symv``,
      `tinyseg.functions.crf_dense`, let go of the interpreter lock). BLAS runs one thread per
      worker meanwhile, so the cores go to the workers, not to spinning BLAS threads. A used
      chunk's array serves the next build. Each chunk's result depends on its images alone, not
      on which thread ran it or when, so results do not depend on the thread count.

    With ``keep`` (a backward pass will map again) the first pass keeps the kernels of its last
    wave of chunks, at most `_WAVE_BYTES`; the next pass runs that wave first and then builds the
    earlier waves again, last first. Kernel memory alive at once is the kept wave plus one chunk
    per worker. Keeping every kernel of a batch of 29 would take 297 MB.

    Args:
        image: (N, 1, H, W) features.
        graph: ``"dense"`` or ``"grid4"``.
        include_self: keep the self pair.
        keep: the kernels will be used again (the backward pass).
    """

    def __init__(self, image: Any, graph: str, include_self: bool, keep: bool) -> None:
        N, P = image.shape[0], image.shape[-2] * image.shape[-1]
        self.image, self.graph, self.include_self, self.keep = image, graph, include_self, keep
        self.cpu_dense = graph == "dense" and not is_cupy_array(image)
        self.per_chunk = max(1, min(N, _CHUNK_BYTES // (P * P * image.dtype.itemsize))) if self.cpu_dense else max(N, 1)
        self.batches = [slice(n0, min(N, n0 + self.per_chunk)) for n0 in range(0, N, self.per_chunk)]
        n = len(self.batches)
        self.wave = max(1, _WAVE_BYTES // (self.per_chunk * P * P * image.dtype.itemsize)) if self.cpu_dense else 1
        self.waves = [list(range(max(0, w1 - self.wave), w1)) for w1 in range(n, 0, -self.wave)][::-1]  # last full
        self.kept: dict[int, list[Any]] = {}
        self.spare: list[Any] = []  # the arrays of used dense chunks, for the next builds
        self.passes = 0

    def map(self, fn: Callable[[int, slice, list[Any]], Any]) -> list[tuple[int, slice, Any]]:
        """``(i, batch, fn(i, batch, kernels))`` for every chunk i, in the order scheduled (see the class)."""
        first = self.passes == 0
        self.passes += 1
        order = [i for wave in (self.waves if first else self.waves[::-1]) for i in wave]  # later: kept wave first
        keep = set(self.waves[-1]) if first and self.keep else set()
        results: dict[int, Any] = {}

        def run(i: int) -> None:
            ks = self.kept.pop(i) if i in self.kept else self._build(i)
            results[i] = fn(i, self.batches[i], ks)
            if i in keep:
                self.kept[i] = ks
            elif self.cpu_dense:  # used: its array serves the next build
                self.spare.append(ks[0].K.base)  # K is a view [:n] of the whole array (`_build`)

        if not self.cpu_dense:
            for i in order:
                run(i)
            return [(i, self.batches[i], results[i]) for i in order]
        with own_threads() as workers:  # BLAS: one thread per caller inside
            futures = [workers.submit(run, i) for i in order]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return [(i, self.batches[i], results[i]) for i in order]

    def _build(self, i: int) -> list[Any]:
        """Chunk i's kernels; on the CPU's dense graph into a spare array, or a new one."""
        out = None
        if self.cpu_dense:
            n, P = self.batches[i].stop - self.batches[i].start, self.image.shape[-2] * self.image.shape[-1]
            try:
                out = self.spare.pop()[:n]  # list.pop is atomic: two workers never get one array
            except IndexError:
                out = np.empty((self.per_chunk, P, P), self.image.dtype)[:n]
        return crf_kernels(self.image[self.batches[i]], self.graph, self.include_self, out=out)
