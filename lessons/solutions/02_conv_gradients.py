"""Lesson 02, exercise 2: the kernel gradient gW by nested loops, and the input
gradient as conv_T.

For y[n,o,i,j] = Σ_c,u,v W[o,c,u,v] x[n,c,i+u,j+v], the chain rule gives
gW[o,c,u,v] = Σ_n,i,j gy[n,o,i,j] x[n,c,i+u,j+v] (a correlation of the input with
gy) and gx = conv_transpose2d(gy, W): the input gradient is the adjoint of the
convolution applied to gy.

Run: ``python lessons/solutions/02_conv_gradients.py`` (exits 1 if either does not
match).
"""
from __future__ import annotations

import sys

import numpy as np

import tinyseg as ts


def kernel_grad_naive(x: np.ndarray, gy: np.ndarray, KH: int,
                      KW: int) -> np.ndarray:
    """gW[o, c, u, v] = Σ_n,i,j gy[n, o, i, j] · x[n, c, i + u, j + v], four loops
    over (o, c, u, v)."""
    N, C, H, W = x.shape
    O, OH, OW = gy.shape[1], gy.shape[2], gy.shape[3]
    gW = np.zeros((O, C, KH, KW))
    for o in range(O):
        for c in range(C):
            for u in range(KH):
                for v in range(KW):
                    gW[o, c, u, v] = np.sum(gy[:, o] * x[:, c, u:u + OH, v:v + OW])
    return gW


def main() -> int:
    rng = np.random.default_rng(0)
    x = ts.Tensor(rng.standard_normal((2, 3, 9, 8)), requires_grad=True)
    W = ts.Tensor(rng.standard_normal((4, 3, 3, 2)), requires_grad=True)
    y = ts.F.conv2d(x, W)
    gy = rng.standard_normal(y.shape)   # a random upstream gradient, not all ones
    y.backward(gy)
    err_w = np.abs(kernel_grad_naive(x.data, gy, 3, 2) - W.grad).max()
    err_x = np.abs(ts.F.conv_transpose2d(gy, W.data).data - x.grad).max()
    print(f"max |gW by loops − backward| = {err_w:.1e}; "
          f"max |conv_transpose2d(gy, W) − gx| = {err_x:.1e} (expected < 1e-12)")
    return 0 if err_w < 1e-12 and err_x < 1e-12 else 1


if __name__ == "__main__":
    sys.exit(main())
