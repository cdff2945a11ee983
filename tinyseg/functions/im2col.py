r"""im2col and col2im: the linear pair that turns convolution into one matrix product.

`im2col` copies every KH×KW window of the (padded) input into a column, so that a convolution
becomes one matrix product with the flattened kernels; `col2im` is its adjoint: it adds every
column back into the window it came from,
$\langle \mathrm{im2col}(x), \mathrm{col}\rangle = \langle x, \mathrm{col2im}(\mathrm{col})\rangle$.

Column layout: ``(N, C·KH·KW, OH·OW)``: column ``i·OW + j`` holds the window of output
position ``(i, j)``, and in it row ``c·KH·KW + u·KW + v`` holds pixel ``(c, s·i + u, s·j + v)``
of the padded input (kernel offset ``(u, v)``), so ``W.reshape(C_out, -1) @ col`` is the conv.

See: lessons/02_fcn.py, tests/functions/test_conv.py.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .._hooks import dispatch
from ..autodiff import Op, Tensor
from ..backend import get_array_module
from ..errors import UserError
from ..gradcheck import register_gradcheck

IntPair = int | Sequence[int]


_MINIMUM = {"kernel_size": 1, "stride": 1, "pad": 0}


def _pair(v: IntPair, what: str) -> tuple[int, int]:
    """`v` (an int or an (h, w) pair) as two ints, at least 1 for a kernel size or stride and at
    least 0 for a pad; anything else raises a UserError naming the argument."""
    low = _MINIMUM[what]
    try:
        pair = (v, v) if isinstance(v, (int, np.integer)) else tuple(v)
        ok = len(pair) == 2 and all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= low
                                    for n in pair)
    except TypeError:
        ok = False
    if not ok:
        raise UserError(f"{what} must be an int ≥ {low} or a pair of them, got {v!r}.")
    return int(pair[0]), int(pair[1])


def _check_geometry(op: str, H: int, W: int, KH: int, KW: int, ph: int, pw: int) -> None:
    """Refuse a kernel larger than the padded input (no output position)."""
    if KH > H + 2 * ph or KW > W + 2 * pw:
        raise UserError(f"{op}: kernel {KH}×{KW} is larger than the padded input {H + 2 * ph}×{W + 2 * pw}; "
                        "use a smaller kernel or more padding.")


def _out_size(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


# ---------------------------------------------------------------- raw-array kernels
def _pad(x: Any, ph: int, pw: int) -> Any:
    if ph == 0 and pw == 0:
        return x
    xp = get_array_module(x)
    N, C, H, W = x.shape
    xpad = xp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=x.dtype)  # cheaper than xp.pad
    xpad[:, :, ph:ph + H, pw:pw + W] = x
    return xpad


# --8<-- [start:im2col]
def _im2col(x: Any, KH: int, KW: int, sh: int, sw: int, ph: int, pw: int) -> Any:
    """(N, C, H, W) -> (N, C·KH·KW, OH·OW): a strided window view, then one copy."""
    xp = get_array_module(x)
    x = _pad(x, ph, pw)
    N, C, H, W = x.shape
    OH, OW = (H - KH) // sh + 1, (W - KW) // sw + 1
    sN, sC, sH, sW = x.strides
    # The view numpy.lib.stride_tricks.sliding_window_view(x, (KH, KW), axis=(2, 3))
    # [..., ::sh, ::sw] gives, with the window axes moved before the output axes;
    # as_strided exists in numpy and cupy.
    windows = xp.lib.stride_tricks.as_strided(  # (N, C, KH, KW, OH, OW)
        x, shape=(N, C, KH, KW, OH, OW), strides=(sN, sC, sH, sW, sH * sh, sW * sw))
    return windows.reshape(N, C * KH * KW, OH * OW)  # (N, C*KH*KW, OH*OW), the one copy
# --8<-- [end:im2col]


def _col2im(col: Any, x_shape: Sequence[int], KH: int, KW: int, sh: int, sw: int, ph: int, pw: int) -> Any:
    """(N, C·KH·KW, OH·OW) -> (N, C, H, W): add every column back into its window (adjoint of `_im2col`)."""
    return dispatch(None, "col2im", _add_columns, col, tuple(x_shape), KH, KW, sh, sw, ph, pw)  # a GPU may gather


def _add_columns(col: Any, x_shape: tuple, KH: int, KW: int, sh: int, sw: int, ph: int, pw: int) -> Any:
    """`_col2im` by strided slice-adds, never a loop over pixels."""
    xp = get_array_module(col)
    N, C, H, W = x_shape
    Hp, Wp = H + 2 * ph, W + 2 * pw
    OH, OW = (Hp - KH) // sh + 1, (Wp - KW) // sw + 1
    col = col.reshape(N, C, KH, KW, OH, OW)  # (N, C, KH, KW, OH, OW)
    x = xp.zeros((N, C, Hp, Wp), dtype=col.dtype)
    if KH * KW <= OH * OW:  # few kernel offsets: one strided slice-add per offset
        for i in range(KH):
            for j in range(KW):
                x[:, :, i:i + sh * OH:sh, j:j + sw * OW:sw] += col[:, :, i, j]
    else:  # few output positions (e.g. a 40×40 kernel on a 1×1 map): one window-add per position
        for oh in range(OH):
            for ow in range(OW):
                x[:, :, oh * sh:oh * sh + KH, ow * sw:ow * sw + KW] += col[:, :, :, :, oh, ow]
    return x[:, :, ph:ph + H, pw:pw + W] if ph or pw else x


def _check_4d(a: Any, op: str, name: str) -> None:
    if a.ndim != 4:
        raise UserError(f"{op}: {name} must be 4-D (N, C, H, W), got shape {tuple(a.shape)}.")


# ---------------------------------------------------------------- im2col / col2im as ops
class Im2colOp(Op):
    def __init__(self, kernel_size: IntPair, stride: IntPair = 1, pad: IntPair = 0) -> None:
        self.KH, self.KW = _pair(kernel_size, "kernel_size")
        self.sh, self.sw = _pair(stride, "stride")
        self.ph, self.pw = _pair(pad, "pad")

    def forward(self, x: Any) -> Any:
        _check_4d(x, "im2col", "x")
        _check_geometry("im2col", *x.shape[2:], self.KH, self.KW, self.ph, self.pw)
        self.x_shape = x.shape
        return _im2col(x, self.KH, self.KW, self.sh, self.sw, self.ph, self.pw)

    def backward(self, gy: Any) -> Any:
        return _col2im(gy, self.x_shape, self.KH, self.KW, self.sh, self.sw, self.ph, self.pw)


class Col2imOp(Op):
    def __init__(self, x_shape: Sequence[int], kernel_size: IntPair, stride: IntPair = 1, pad: IntPair = 0) -> None:
        self.x_shape = tuple(x_shape)
        if len(self.x_shape) != 4 or not all(isinstance(n, (int, np.integer)) and n >= 1 for n in self.x_shape):
            raise UserError(f"col2im: x_shape must be four positive ints (N, C, H, W), got {x_shape!r}.")
        self.x_shape = tuple(int(n) for n in self.x_shape)
        self.KH, self.KW = _pair(kernel_size, "kernel_size")
        self.sh, self.sw = _pair(stride, "stride")
        self.ph, self.pw = _pair(pad, "pad")
        _check_geometry("col2im", *self.x_shape[2:], self.KH, self.KW, self.ph, self.pw)

    def forward(self, col: Any) -> Any:
        N, C, H, W = self.x_shape
        OH, OW = _out_size(H, self.KH, self.sh, self.ph), _out_size(W, self.KW, self.sw, self.pw)
        if tuple(col.shape) != (N, C * self.KH * self.KW, OH * OW):
            raise UserError(f"col2im: col has shape {tuple(col.shape)}, expected {(N, C * self.KH * self.KW, OH * OW)} "
                             f"for x_shape {self.x_shape}, kernel {(self.KH, self.KW)}, stride {(self.sh, self.sw)}, "
                             f"pad {(self.ph, self.pw)}.")
        return _col2im(col, self.x_shape, self.KH, self.KW, self.sh, self.sw, self.ph, self.pw)

    def backward(self, gy: Any) -> Any:
        return _im2col(gy, self.KH, self.KW, self.sh, self.sw, self.ph, self.pw)


def im2col(x: Any, kernel_size: IntPair, stride: IntPair = 1, pad: IntPair = 0) -> Tensor:
    r"""Every KH×KW window of the zero-padded input as a column.  [ZX18 Table 1]

    $$
    \mathrm{col}[n,\ c K_H K_W + u K_W + v,\ i\, O_W + j] = x_{pad}[n, c, s_h i + u, s_w j + v]
    $$

    with $(i, j)$ the output position (the column) and $(u, v)$ the kernel offset.

    A strided view of the input (what `sliding_window_view` builds) copied once by a reshape.

    Args:
        x: ``(N, C, H, W)``.
        kernel_size: ``KH`` and ``KW``, an int or an ``(h, w)`` pair.
        stride: the window step, an int or an ``(h, w)`` pair.
        pad: zero padding on each side, an int or an ``(h, w)`` pair.
    Returns:
        ``(N, C·KH·KW, OH·OW)`` with ``OH = (H + 2·pad − KH) // stride + 1``.

    Gradient: ``col2im(gy)`` — the adjoint.

    Derivation: docs/derivations/conv.md#im2col-and-col2im.
    See: lessons/02_fcn.py, tests/functions/test_conv.py::test_col2im_is_adjoint_of_im2col.
    """
    return Im2colOp(kernel_size, stride, pad)(x)


def col2im(col: Any, x_shape: Sequence[int], kernel_size: IntPair, stride: IntPair = 1, pad: IntPair = 0) -> Tensor:
    r"""Add every column back into the window it came from: the adjoint of `im2col`.  [ZX18 Table 1]

    $$
    \langle \mathrm{im2col}(x), \mathrm{col}\rangle = \langle x, \mathrm{col2im}(\mathrm{col})\rangle
    $$

    Loops over the KH·KW kernel offsets (one strided slice-add each), or over the output
    positions when there are fewer of those; never over pixels.

    Args:
        col: ``(N, C·KH·KW, OH·OW)``.
        x_shape: ``(N, C, H, W)``, the shape of the image the columns were taken from.
        kernel_size: as for `im2col`.
        stride: as for `im2col`.
        pad: as for `im2col` (the padding is cropped off the result).
    Returns:
        ``(N, C, H, W)``; pixels in several windows receive the sum.

    Gradient: ``im2col(gy)``.

    Derivation: docs/derivations/conv.md#im2col-and-col2im.
    See: lessons/02_fcn.py, tests/functions/test_conv.py::test_col2im_is_adjoint_of_im2col.
    """
    return Col2imOp(x_shape, kernel_size, stride, pad)(col)


# ---------------------------------------------------------------- gradient-check cases
_n = np.random.Generator.standard_normal
register_gradcheck("im2col/stride2_pad1", lambda x: im2col(x, (3, 2), 2, 1), lambda r: [_n(r, (2, 2, 5, 6))], [Im2colOp])
register_gradcheck("col2im/stride1", lambda c: col2im(c, (2, 2, 5, 4), 3, 1, 0),
                   lambda r: [_n(r, (2, 18, 6))], [Col2imOp])
register_gradcheck("col2im/kernel_larger_than_output", lambda c: col2im(c, (1, 2, 6, 6), 5, 1, 0),
                   lambda r: [_n(r, (1, 50, 4))], [Col2imOp])
