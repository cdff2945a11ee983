"""Helpers shared by several test modules (tests import this, never each other).

`tests/` is on ``sys.path`` (pytest's rootdir conftest), so a test module says ``import helpers``.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import pytest

import tinyseg as ts
from tinyseg.cuda import fused
from tinyseg.cuda.testing import emulate, emulated

needs_gxx = pytest.mark.skipif(not emulate.available(),
                               reason="g++ (C++20 <barrier>, pthreads) is missing: the CUDA kernel emulator needs it")


@contextmanager
def fast_paths_emulated() -> Iterator[None]:
    """Every fast path on, and kernels run on NumPy arrays through the g++ emulator."""
    with emulated(), fused(True):
        yield


def brute_force_kernel(image: np.ndarray, graph: str, m: int, include_self: bool) -> np.ndarray:
    """The (P, P) CRF kernel matrix written pair by pair from its definition (one image, (H, W))."""
    H, W = image.shape
    P = H * W
    K = np.zeros((P, P))
    for i in range(P):
        yi, xi = divmod(i, W)
        for j in range(P):
            yj, xj = divmod(j, W)
            if i == j and not include_self:
                continue
            dI2 = (image[yi, xi] - image[yj, xj]) ** 2
            if graph == "dense":
                K[i, j] = np.exp(-dI2 / 2) / (P - 1) if m == 0 else 0.5 * np.exp(-((yi - yj) ** 2 + (xi - xj) ** 2))
            elif abs(yi - yj) + abs(xi - xj) <= 1:  # 4-neighbours, plus the pixel itself when kept
                K[i, j] = np.exp(-dI2) if m == 0 else 1.0
    return K


def crf_inputs(xp: Any, seed: int = 0, N: int = 2, H: int = 4, W: int = 5, w_shape: tuple = (2,),
               scale: float = 2.0) -> tuple[Any, Any, Any]:
    """Unary (N, 2, H, W), image (N, 1, H, W) and CRF weights of `w_shape`, float64 on `xp`."""
    rng = np.random.default_rng(seed)
    u = scale * rng.standard_normal((N, 2, H, W))
    img = rng.standard_normal((N, 1, H, W))
    w = rng.uniform(0.5, 2.0, w_shape)
    return xp.asarray(u), xp.asarray(img), xp.asarray(w)


def case_outputs(case: Any, arrays: list[Any]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Output and input gradients of a gradient-check case on `arrays`, with a fixed upstream gradient."""
    xp = ts.get_array_module(*arrays)
    wrt = case.wrt if case.wrt is not None else [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    args = [ts.Tensor(a, requires_grad=True) if i in wrt else a for i, a in enumerate(arrays)]
    y = case.fn(*args)
    g = xp.asarray(np.random.default_rng(1).standard_normal(y.shape).astype(y.dtype))
    y.backward(g)
    return ts.as_numpy(y.data), [ts.as_numpy(args[i].grad) for i in wrt]
