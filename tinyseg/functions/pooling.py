r"""Max pooling: 2×2 stride 2 after each of the first two convolutions of the FCN.  [ZX18 Table 1]

The 2×2 stride-2 case (the only one the paper uses) has its own path: the four pixels of every
window are four strided views ``x[:, :, di::2, dj::2]`` — the entries ``[:, :, :, di, :, dj]`` of
the reshape ``(N, C, H/2, 2, W/2, 2)`` — and the max is three element-wise `maximum`s (a reduction
over the two strided axes is ~40× slower in NumPy). Other kernel sizes and strides take the
general path (a strided window view and an argmax), which is also the 2×2 path's test oracle.

Tie rule: the gradient of a window goes to the FIRST maximal pixel in row-major window order
(top-left, top-right, bottom-left, bottom-right for 2×2), on both paths; a window holding NaN
has the maximum NaN and sends its gradient to its first NaN (what `argmax` picks).

See: lessons/02_fcn.py, tests/functions/test_pooling.py.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autodiff import Op, Tensor
from ..backend import get_array_module
from ..errors import UserError
from ..gradcheck import register_gradcheck


class MaxPool2dOp(Op):
    """max_pool2d; `pool2x2=False` forces the general window path (the oracle of the 2×2 path)."""

    def __init__(self, kernel_size: int = 2, stride: int = 2, pool2x2: bool = True) -> None:
        for name, v in (("kernel_size", kernel_size), ("stride", stride)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise UserError(f"max_pool2d: {name} must be a positive int, got {v!r}.")
        self.k, self.s, self.allow_pool2x2 = int(kernel_size), int(stride), pool2x2

    def forward(self, x: Any) -> Any:
        if x.ndim != 4:
            raise UserError(f"max_pool2d: x must be 4-D (N, C, H, W), got shape {tuple(x.shape)}.")
        N, C, H, W = x.shape
        k, s = self.k, self.s
        if H < k or W < k:
            raise UserError(f"max_pool2d: input {H}×{W} is smaller than the {k}×{k} window; use a smaller "
                            "kernel_size or a larger input.")
        xp = get_array_module(x)
        OH, OW = (H - k) // s + 1, (W - k) // s + 1  # floor: an odd last row/column is dropped
        self.x, self.out_hw = x, (OH, OW)
        self.pool2x2 = self.allow_pool2x2 and k == 2 and s == 2
        if self.pool2x2:
            # x[:, :, di:2OH:2, dj:2OW:2] == x.reshape(N, C, OH, 2, OW, 2)[:, :, :, di, :, dj] (no copy, also when cropped)
            q = [x[:, :, di:2 * OH:2, dj:2 * OW:2] for di in (0, 1) for dj in (0, 1)]  # 4 × (N, C, OH, OW)
            self.y = xp.maximum(xp.maximum(q[0], q[1]), xp.maximum(q[2], q[3]))
            return self.y
        sN, sC, sH, sW = x.strides
        windows = xp.lib.stride_tricks.as_strided(
            x, shape=(N, C, OH, OW, k, k), strides=(sN, sC, sH * s, sW * s, sH, sW))  # (N, C, OH, OW, k, k)
        windows = windows.reshape(N, C, OH, OW, k * k)  # (N, C, OH, OW, k*k), a copy
        self.arg = windows.argmax(axis=-1)  # (N, C, OH, OW); argmax returns the first maximum
        return windows.max(axis=-1)

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        x, (OH, OW), k, s = self.x, self.out_hw, self.k, self.s
        if self.pool2x2:
            # the windows tile x unless H or W is odd: then the dropped row/column gets zeros
            tiled = x.shape[2] == 2 * OH and x.shape[3] == 2 * OW
            gx = (xp.empty if tiled else xp.zeros)(x.shape, dtype=gy.dtype)
            taken = None  # windows whose gradient went to an earlier position (first-max tie rule)
            for di, dj in ((0, 0), (0, 1), (1, 0), (1, 1)):
                q = x[:, :, di:2 * OH:2, dj:2 * OW:2]
                if (di, dj) == (1, 1):
                    m = ~taken
                else:  # q picked: q is the max, or q is NaN (then the max is NaN: maximum propagates it)
                    m = q != q
                    m |= q == self.y
                    if taken is None:
                        taken = m
                    else:
                        m &= ~taken
                        taken |= m
                xp.multiply(gy, m, out=gx[:, :, di:2 * OH:2, dj:2 * OW:2])
            return gx
        gx = xp.zeros(x.shape, dtype=gy.dtype)
        for i in range(k):
            for j in range(k):
                gx[:, :, i:i + s * OH:s, j:j + s * OW:s] += gy * (self.arg == i * k + j)
        return gx


def max_pool2d(x: Any, kernel_size: int = 2, stride: int = 2) -> Tensor:
    r"""Max over each kernel_size×kernel_size window, moved by `stride`.  [ZX18 Table 1]

    $$
    y[n,c,i,j] = \max_{0 \le u,v < k} x[n, c, s i + u, s j + v]
    $$

    Sizes are floored: a 7×7 map pools to 3×3 and its last row and column get no gradient.

    Args:
        x: ``(N, C, H, W)``.
        kernel_size: window side k (the paper: 2).
        stride: step s (the paper: 2).
    Returns:
        ``(N, C, OH, OW)`` with ``OH = (H − k) // s + 1``.

    Gradient: gy goes to the argmax of each window, the first maximum in row-major window order
    on ties; overlapping windows (s < k) add up.

    Derivation: docs/derivations/conv.md#max-pooling.
    See: lessons/02_fcn.py, tests/functions/test_pooling.py::test_max_pool2d_forward_and_backward_match_naive_loops.
    """
    return MaxPool2dOp(kernel_size, stride)(x)


# ---------------------------------------------------------------- gradient-check cases
def _distinct(r: np.random.Generator, *shape: int) -> np.ndarray:
    """Values 0.1 apart in random order: every window has a unique max, far from a kink for h = 1e-6."""
    return r.permutation(int(np.prod(shape))).reshape(shape) * 0.1 - 1.0


register_gradcheck("max_pool2d/2x2_even", lambda x: max_pool2d(x), lambda r: [_distinct(r, 2, 3, 6, 8)], [MaxPool2dOp])
register_gradcheck("max_pool2d/2x2_odd_sizes_floor", lambda x: max_pool2d(x), lambda r: [_distinct(r, 2, 2, 7, 5)],
                   [MaxPool2dOp])
register_gradcheck("max_pool2d/3x3_stride2_overlapping", lambda x: max_pool2d(x, 3, 2),
                   lambda r: [_distinct(r, 2, 2, 7, 6)], [MaxPool2dOp])
register_gradcheck("max_pool2d/2x2_general_path", lambda x: MaxPool2dOp(2, 2, pool2x2=False)(x),
                   lambda r: [_distinct(r, 1, 2, 5, 7)], [MaxPool2dOp])
