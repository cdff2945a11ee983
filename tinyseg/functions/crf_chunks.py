"""The CRF's kernels for a batch, chunk by chunk: where `MeanFieldCRFOp` spends its memory and time.

Performance machinery beside the math of `tinyseg.functions.crf`, which only iterates over
`KernelChunks`. On the CPU a dense kernel is one (P, P) matrix per image (10 MB at 40×40 in
float32): building it costs one exponential per pixel pair and is most of a dense CRF step, so
this module decides how many exist at once (memory), how often each is built (time) and on how
many cores (`tinyseg.threads`).

See: docs/performance.md ("How the CPU builds the dense CRF's kernel"), tests/functions/test_crf.py.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import Executor, Future
from typing import Any, Iterator

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
    """The CRF's kernels for a batch, chunk by chunk.

    Iterating yields ``(i, batch, kernels)``: chunk i, its slice of the batch and `crf_kernels`
    for it; each pass yields every chunk once, in the order that needs the least memory.

    * The GPU, and the cheap grid4 stencils: the whole batch is one chunk (memory is plentiful
      there, kernel launches are not).
    * Dense kernels on the CPU: chunks of `_CHUNK_BYTES` (one 40×40 image: a 10 MB kernel, which
      stays in cache while mean field iterates on it), grouped in waves of at most `_WAVE_BYTES`,
      which is also the most kernel memory alive at once. Kernels are built ahead by
      `own_threads()` workers, into the arrays of used chunks, while the caller iterates on the
      ones already built (NumPy releases the interpreter lock inside its ufuncs); BLAS runs on
      the calling thread meanwhile, so the cores go to the builds and the caller, not to
      spinning BLAS workers. Building order and results do not depend on the thread count.

    With ``keep`` (a backward pass will iterate again) the first pass keeps its last wave; the
    next pass yields that wave first and then builds the earlier waves again, last first.
    Keeping every kernel of a batch of 29 would take 297 MB.

    Args:
        image: (N, 1, H, W) features.
        graph: ``"dense"`` or ``"grid4"``.
        include_self: keep the self pair.
        keep: the kernels will be iterated again (the backward pass).
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
        self.arrays = 0  # dense kernel arrays made so far (at most `wave`)
        self.iterated = False

    def __iter__(self) -> Iterator[tuple[int, slice, list[Any]]]:
        first, self.iterated = not self.iterated, True
        order = [i for wave in (self.waves if first else self.waves[::-1]) for i in wave]  # later: kept wave first
        keep = set(self.waves[-1]) if first and self.keep else set()
        if not self.cpu_dense:
            for i in order:
                ks = self.kept.pop(i) if i in self.kept else self._build(i, None)
                if i in keep:
                    self.kept[i] = ks
                yield i, self.batches[i], ks
            return
        with own_threads() as workers:  # one region per pass (BLAS on the calling thread inside)
            todo = deque(i for i in order if i not in self.kept)  # to build, in the order of use
            built: dict[int, Future] = {}
            self._build_ahead(todo, built, workers)
            for i in order:
                ks = self.kept.pop(i) if i in self.kept else built.pop(i).result()
                if i in keep:
                    self.kept[i] = ks
                yield i, self.batches[i], ks
                if i not in keep:  # used: its array serves the next build
                    self.spare.append(ks[0].K.base)
                    self._build_ahead(todo, built, workers)

    def _build(self, i: int, out: Any) -> list[Any]:
        return crf_kernels(self.image[self.batches[i]], self.graph, self.include_self, out=out)

    def _build_ahead(self, todo: deque, built: dict[int, Future], workers: Executor) -> None:
        """Start building the next chunks of `todo`, each into a spare array or, while fewer than
        `wave` exist, a new one (allocated here, in the calling thread)."""
        P = self.image.shape[-2] * self.image.shape[-1]
        while todo and (self.spare or self.arrays < self.wave):
            if not self.spare:
                self.spare.append(np.empty((self.per_chunk, P, P), self.image.dtype))
                self.arrays += 1
            i = todo.popleft()
            out = self.spare.pop()[: self.batches[i].stop - self.batches[i].start]
            built[i] = workers.submit(self._build, i, out)
