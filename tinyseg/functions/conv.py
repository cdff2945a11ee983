r"""Convolution by im2col + one matrix product, and transpose convolution as its adjoint.

`im2col` copies every KH×KW window of the (padded) input into a column, so that a convolution
becomes one matrix product with the flattened kernels; `col2im` is its adjoint: it adds every
column back into the window it came from. The two are a linear pair,
$\langle \mathrm{im2col}(x), c\rangle = \langle x, \mathrm{col2im}(c)\rangle$, and so are
`conv2d` and `conv_transpose2d`: the backward of each (w.r.t. its input) is the forward of the
other with the same kernel. The FCN of [ZX18 Table 1] uses both: three valid convolutions take the
40×40 ROI to 1×1×c3, and a transpose convolution with a 40×40 kernel takes it back to 40×40 logits.

Column layout: ``(N, C·KH·KW, OH·OW)``; row ``c·KH·KW + i·KW + j`` holds pixel ``(c, i + s·oh,
j + s·ow)`` of output position ``oh·OW + ow``, so ``W.reshape(C_out, -1) @ col`` is the conv.

See: lessons/02_fcn.py, tests/test_conv.py.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..autodiff import Op, Tensor
from ..backend import get_array_module
from ..gradcheck import register_gradcheck

IntPair = int | Sequence[int]


def _pair(v: IntPair, what: str) -> tuple[int, int]:
    a, b = (v, v) if isinstance(v, (int, np.integer)) else tuple(v)
    if int(a) != a or int(b) != b:
        raise ValueError(f"{what} must be an int or a pair of ints, got {v!r}")
    return int(a), int(b)


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
    # The view numpy.lib.stride_tricks.sliding_window_view(x, (KH, KW), axis=(2, 3))[..., ::sh, ::sw]
    # gives, with the window axes moved before the output axes; as_strided exists in numpy and cupy.
    windows = xp.lib.stride_tricks.as_strided(
        x, shape=(N, C, KH, KW, OH, OW), strides=(sN, sC, sH, sW, sH * sh, sW * sw))  # (N, C, KH, KW, OH, OW)
    return windows.reshape(N, C * KH * KW, OH * OW)  # (N, C*KH*KW, OH*OW), the one copy
# --8<-- [end:im2col]


def _col2im(col: Any, x_shape: Sequence[int], KH: int, KW: int, sh: int, sw: int, ph: int, pw: int) -> Any:
    """(N, C·KH·KW, OH·OW) -> (N, C, H, W): add every column back into its window (adjoint of `_im2col`)."""
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


# ---------------------------------------------------------------- im2col / col2im as ops
class Im2colOp(Op):
    def __init__(self, kernel_size: IntPair, stride: IntPair = 1, pad: IntPair = 0) -> None:
        self.KH, self.KW = _pair(kernel_size, "kernel_size")
        self.sh, self.sw = _pair(stride, "stride")
        self.ph, self.pw = _pair(pad, "pad")

    def forward(self, x: Any) -> Any:
        _check_4d(x, "im2col", "x")
        self.x_shape = x.shape
        return _im2col(x, self.KH, self.KW, self.sh, self.sw, self.ph, self.pw)

    def backward(self, gy: Any) -> Any:
        return _col2im(gy, self.x_shape, self.KH, self.KW, self.sh, self.sw, self.ph, self.pw)


class Col2imOp(Op):
    def __init__(self, x_shape: Sequence[int], kernel_size: IntPair, stride: IntPair = 1, pad: IntPair = 0) -> None:
        self.x_shape = tuple(int(n) for n in x_shape)
        self.KH, self.KW = _pair(kernel_size, "kernel_size")
        self.sh, self.sw = _pair(stride, "stride")
        self.ph, self.pw = _pair(pad, "pad")

    def forward(self, col: Any) -> Any:
        N, C, H, W = self.x_shape
        OH, OW = _out_size(H, self.KH, self.sh, self.ph), _out_size(W, self.KW, self.sw, self.pw)
        if tuple(col.shape) != (N, C * self.KH * self.KW, OH * OW):
            raise ValueError(f"col2im: col has shape {tuple(col.shape)}, expected {(N, C * self.KH * self.KW, OH * OW)} "
                             f"for x_shape {self.x_shape}, kernel {(self.KH, self.KW)}, stride {(self.sh, self.sw)}, "
                             f"pad {(self.ph, self.pw)}.")
        return _col2im(col, self.x_shape, self.KH, self.KW, self.sh, self.sw, self.ph, self.pw)

    def backward(self, gy: Any) -> Any:
        return _im2col(gy, self.KH, self.KW, self.sh, self.sw, self.ph, self.pw)


def im2col(x: Any, kernel_size: IntPair, stride: IntPair = 1, pad: IntPair = 0) -> Tensor:
    r"""Every KH×KW window of the zero-padded input as a column.  [ZX18 Table 1]

    $$
    \mathrm{col}[n,\ c K_H K_W + i K_W + j,\ o_h O_W + o_w] = x_{pad}[n, c, s_h o_h + i, s_w o_w + j]
    $$

    A strided view of the input (what `sliding_window_view` builds) copied once by a reshape.

    Args:
        x: ``(N, C, H, W)``.
        kernel_size: ``KH`` and ``KW``, an int or an ``(h, w)`` pair.
        stride: the window step, an int or an ``(h, w)`` pair.
        pad: zero padding on each side, an int or an ``(h, w)`` pair.
    Returns:
        ``(N, C·KH·KW, OH·OW)`` with ``OH = (H + 2·pad − KH) // stride + 1``.

    Gradient: ``col2im(gy)`` — the adjoint.

    See: lessons/02_fcn.py, tests/test_conv.py::test_col2im_is_adjoint_of_im2col.
    """
    return Im2colOp(kernel_size, stride, pad)(x)


def col2im(col: Any, x_shape: Sequence[int], kernel_size: IntPair, stride: IntPair = 1, pad: IntPair = 0) -> Tensor:
    r"""Add every column back into the window it came from: the adjoint of `im2col`.  [ZX18 Table 1]

    $$
    \langle \mathrm{im2col}(x), c\rangle = \langle x, \mathrm{col2im}(c)\rangle
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

    See: lessons/02_fcn.py, tests/test_conv.py::test_col2im_is_adjoint_of_im2col.
    """
    return Col2imOp(x_shape, kernel_size, stride, pad)(col)


# ---------------------------------------------------------------- conv2d
def _check_4d(a: Any, op: str, name: str) -> None:
    if a.ndim != 4:
        raise ValueError(f"{op}: {name} must be 4-D (N, C, H, W), got shape {tuple(a.shape)}.")


def _check_dtypes(op: str, x: Any, W: Any, b: Any) -> None:
    for name, a in (("x", x), ("W", W), ("b", b)):
        if a is not None and a.dtype.kind != "f":
            raise TypeError(f"{op}: {name} must be a floating-point array, got {a.dtype}.")
    if W.dtype != x.dtype or (b is not None and b.dtype != x.dtype):
        raise TypeError(f"{op}: x is {x.dtype} but W is {W.dtype}" + ("" if b is None else f" and b is {b.dtype}")
                        + "; cast them to one dtype (e.g. x.astype(W.dtype)) to avoid silent upcasting.")


class Conv2dOp(Op):
    """conv2d; `fast=False` forces the general im2col path (the test oracle of the 1×1-output path)."""

    def __init__(self, stride: IntPair = 1, pad: IntPair = 0, fast: bool = True) -> None:
        self.sh, self.sw = _pair(stride, "stride")
        self.ph, self.pw = _pair(pad, "pad")
        self.fast = fast

    def forward(self, x: Any, W: Any, b: Any = None) -> Any:
        _check_4d(x, "conv2d", "x")
        _check_4d(W, "conv2d", "W (C_out, C_in, KH, KW)")
        _check_dtypes("conv2d", x, W, b)
        N, C, H, Wd = x.shape
        C_out, C_in, KH, KW = W.shape
        if C_in != C:
            raise ValueError(f"conv2d: x has {C} channels but W {tuple(W.shape)} expects C_in = {C_in}.")
        if b is not None and tuple(b.shape) != (C_out,):
            raise ValueError(f"conv2d: b must have shape ({C_out},), got {tuple(b.shape)}.")
        if H + 2 * self.ph < KH or Wd + 2 * self.pw < KW:
            raise ValueError(f"conv2d: kernel {KH}×{KW} is larger than the padded input {H + 2 * self.ph}×{Wd + 2 * self.pw}.")
        OH, OW = _out_size(H, KH, self.sh, self.ph), _out_size(Wd, KW, self.sw, self.pw)
        self.x_shape, self.W_shape, self.has_b = x.shape, W.shape, b is not None
        W2 = W.reshape(C_out, C_in * KH * KW)  # (C_out, K)
        self.W2 = W2
        self.flat = self.fast and OH == 1 and OW == 1 and self.ph == 0 and self.pw == 0
        if self.flat:  # the kernel covers the input once (conv3 of Table 1): one (N, K) @ (K, C_out)
            xs = x if (H, Wd) == (KH, KW) else x[:, :, :KH, :KW]
            self.col = xs.reshape(N, C_in * KH * KW)  # (N, K)
            y = (self.col @ W2.T).reshape(N, C_out, 1, 1)  # (N, C_out, 1, 1)
        else:
            self.col = _im2col(x, KH, KW, self.sh, self.sw, self.ph, self.pw)  # (N, K, OH*OW)
            y = (W2 @ self.col).reshape(N, C_out, OH, OW)  # (N, C_out, OH*OW) -> (N, C_out, OH, OW)
        if b is not None:
            y += b.reshape(1, C_out, 1, 1)
        return y

    # --8<-- [start:conv2d_backward]
    def backward(self, gy: Any) -> tuple[Any, ...]:
        N, C_out = gy.shape[:2]
        _, C_in, KH, KW = self.W_shape
        need_x = self.inputs[0].requires_grad
        gx = None
        if self.flat:
            g2 = gy.reshape(N, C_out)  # (N, C_out)
            gW = (g2.T @ self.col).reshape(self.W_shape)  # (C_out, K) -> W's shape
            if need_x:
                gxs = (g2 @ self.W2).reshape(N, C_in, KH, KW)  # (N, K) -> (N, C_in, KH, KW)
                if tuple(self.x_shape[2:]) == (KH, KW):
                    gx = gxs
                else:  # the cropped rows/columns had no effect: zero gradient there
                    gx = get_array_module(gy).zeros(self.x_shape, dtype=gy.dtype)
                    gx[:, :, :KH, :KW] = gxs
        else:
            g2 = gy.reshape(N, C_out, -1)  # (N, C_out, OH*OW)
            # Σ_n gy[n] @ col[n]ᵀ: N small products then a sum beat one product after transposing col
            gW = (g2 @ self.col.transpose(0, 2, 1)).sum(axis=0).reshape(self.W_shape)  # (N, C_out, K) -> W
            if need_x:
                gcol = self.W2.T @ g2  # (K, C_out) @ (N, C_out, OH*OW) -> (N, K, OH*OW)
                gx = _col2im(gcol, self.x_shape, KH, KW, self.sh, self.sw, self.ph, self.pw)
        gb = gy.sum(axis=(0, 2, 3)) if self.has_b else None
        return gx, gW, gb
    # --8<-- [end:conv2d_backward]


def conv2d(x: Any, W: Any, b: Any = None, stride: IntPair = 1, pad: IntPair = 0) -> Tensor:
    r"""2-D convolution (cross-correlation, as in PyTorch) by im2col and one matrix product.  [ZX18 Table 1]

    $$
    y[n,o,h,w] = b_o + \sum_{c,i,j} W[o,c,i,j]\; x_{pad}[n, c, s h + i, s w + j]
    $$

    The three valid convolutions of each FCN of Table 1 (e.g. FCN 1: 5×5 → 6, 5×5 → 12,
    7×7 → 588). When the output is 1×1 and there is no padding (the third layer), the op skips
    im2col and computes one ``(N, C·KH·KW) @ (C·KH·KW, C_out)`` product.

    Args:
        x: ``(N, C_in, H, W)`` floating point.
        W: ``(C_out, C_in, KH, KW)``, same dtype as x.
        b: optional ``(C_out,)`` bias.
        stride: the step, an int or an ``(h, w)`` pair.
        pad: zero padding on each side, an int or an ``(h, w)`` pair.
    Returns:
        ``(N, C_out, OH, OW)``, ``OH = (H + 2·pad − KH) // stride + 1``.

    Gradient: ``gx = conv_transpose2d(gy, W)`` (col2im of ``Wᵀ gy``), ``gW = Σ_n gy[n] · im2col(x)[n]ᵀ``,
    ``gb = Σ_{n,h,w} gy``; gx is skipped when x does not require a gradient.

    See: lessons/02_fcn.py, tests/test_conv.py::test_conv2d_forward_matches_naive_loops_and_scipy.
    """
    return Conv2dOp(stride, pad)(x, W, b) if b is not None else Conv2dOp(stride, pad)(x, W)


# ---------------------------------------------------------------- conv_transpose2d
class ConvTranspose2dOp(Op):
    """conv_transpose2d; `fast=False` forces the general col2im path (the oracle of the 1×1-input path)."""

    def __init__(self, stride: IntPair = 1, pad: IntPair = 0, fast: bool = True) -> None:
        self.sh, self.sw = _pair(stride, "stride")
        self.ph, self.pw = _pair(pad, "pad")
        self.fast = fast

    def forward(self, x: Any, W: Any, b: Any = None) -> Any:
        _check_4d(x, "conv_transpose2d", "x")
        _check_4d(W, "conv_transpose2d", "W (C_in, C_out, KH, KW)")
        _check_dtypes("conv_transpose2d", x, W, b)
        N, C, H, Wd = x.shape
        C_in, C_out, KH, KW = W.shape
        if C_in != C:
            raise ValueError(f"conv_transpose2d: x has {C} channels but W {tuple(W.shape)} expects C_in = {C_in} "
                             "(W is (C_in, C_out, KH, KW), as in PyTorch).")
        if b is not None and tuple(b.shape) != (C_out,):
            raise ValueError(f"conv_transpose2d: b must have shape ({C_out},), got {tuple(b.shape)}.")
        OH, OW = (H - 1) * self.sh + KH - 2 * self.ph, (Wd - 1) * self.sw + KW - 2 * self.pw
        if OH < 1 or OW < 1:
            raise ValueError(f"conv_transpose2d: padding {(self.ph, self.pw)} leaves no output for a {KH}×{KW} kernel.")
        self.x, self.W2 = x, W.reshape(C_in, C_out * KH * KW)  # (C_in, C_out*KH*KW)
        self.y_shape, self.W_shape, self.has_b = (N, C_out, OH, OW), W.shape, b is not None
        self.flat = self.fast and H == 1 and Wd == 1 and self.ph == 0 and self.pw == 0
        if self.flat:  # 1×1 input (the FCN's last layer): one (N, C_in) @ (C_in, C_out*KH*KW)
            y = (x.reshape(N, C_in) @ self.W2).reshape(N, C_out, KH, KW)  # (N, C_out*KH*KW) -> (N, C_out, KH, KW)
        else:
            col = self.W2.T @ x.reshape(N, C_in, H * Wd)  # (K, C_in) @ (N, C_in, H*W) -> (N, K, H*W)
            y = _col2im(col, self.y_shape, KH, KW, self.sh, self.sw, self.ph, self.pw)
        if b is not None:
            y += b.reshape(1, C_out, 1, 1)
        return y

    def backward(self, gy: Any) -> tuple[Any, ...]:
        N, C_in, H, Wd = self.x.shape
        _, C_out, KH, KW = self.W_shape
        need_x = self.inputs[0].requires_grad
        gx = None
        if self.flat:
            g2 = gy.reshape(N, C_out * KH * KW)  # (N, K)
            gW = (self.x.reshape(N, C_in).T @ g2).reshape(self.W_shape)  # (C_in, K) -> W's shape
            if need_x:
                gx = (g2 @ self.W2.T).reshape(N, C_in, 1, 1)  # (N, C_in) -> (N, C_in, 1, 1)
        else:
            gcol = _im2col(gy, KH, KW, self.sh, self.sw, self.ph, self.pw)  # (N, K, H*W)
            x2 = self.x.reshape(N, C_in, H * Wd)  # (N, C_in, H*W)
            gW = (x2 @ gcol.transpose(0, 2, 1)).sum(axis=0).reshape(self.W_shape)  # (N, C_in, K) -> W
            if need_x:
                gx = (self.W2 @ gcol).reshape(N, C_in, H, Wd)  # (N, C_in, H*W) -> (N, C_in, H, W): conv2d(gy, W)
        gb = gy.sum(axis=(0, 2, 3)) if self.has_b else None
        return gx, gW, gb


def conv_transpose2d(x: Any, W: Any, b: Any = None, stride: IntPair = 1, pad: IntPair = 0) -> Tensor:
    r"""Transpose convolution: the adjoint of `conv2d` with the same kernel.  [ZX18 Table 1]

    $$
    y[n,o,s h + i - p, s w + j - p] \mathrel{+}= \sum_c W[c,o,i,j]\, x[n,c,h,w], \qquad
    \langle \mathrm{conv2d}(u, W), x\rangle = \langle u, \mathrm{conv\_transpose2d}(x, W)\rangle
    $$

    The last layer of every FCN of Table 1 maps the 1×1×c3 code to 40×40×2 logits with a 40×40
    kernel and no bias; with a 1×1 input (and no padding) the op is one
    ``(N, C_in) @ (C_in, C_out·KH·KW)`` product instead of the general col2im path.

    Args:
        x: ``(N, C_in, H, W)`` floating point.
        W: ``(C_in, C_out, KH, KW)`` (PyTorch's layout), same dtype as x.
        b: optional ``(C_out,)`` bias.
        stride: the step of the kernel in the output, an int or an ``(h, w)`` pair.
        pad: rows/columns cropped off each side of the full output, an int or an ``(h, w)`` pair.
    Returns:
        ``(N, C_out, OH, OW)``, ``OH = (H − 1)·stride + KH − 2·pad``.

    Gradient: ``gx = conv2d(gy, W)``, ``gW = Σ_n x[n] · im2col(gy)[n]ᵀ``, ``gb = Σ_{n,h,w} gy``;
    gx is skipped when x does not require a gradient.

    See: lessons/02_fcn.py, tests/test_conv.py::test_conv_transpose2d_is_adjoint_of_conv2d.
    """
    return (ConvTranspose2dOp(stride, pad)(x, W, b) if b is not None else ConvTranspose2dOp(stride, pad)(x, W))


# ---------------------------------------------------------------- gradient-check cases
_n = np.random.Generator.standard_normal

register_gradcheck("im2col/stride2_pad1", lambda x: im2col(x, (3, 2), 2, 1), lambda r: [_n(r, (2, 2, 5, 6))], [Im2colOp])
register_gradcheck("col2im/stride1", lambda c: col2im(c, (2, 2, 5, 4), 3, 1, 0),
                   lambda r: [_n(r, (2, 18, 6))], [Col2imOp])
register_gradcheck("col2im/kernel_larger_than_output", lambda c: col2im(c, (1, 2, 6, 6), 5, 1, 0),
                   lambda r: [_n(r, (1, 50, 4))], [Col2imOp])
for _name, _x, _W, _s, _p in [
        ("valid_5x5", (2, 1, 8, 8), (3, 1, 5, 5), 1, 0),
        ("stride2_pad1_odd", (2, 2, 7, 5), (3, 2, 3, 3), 2, 1),
        ("rect_kernel_stride_pair", (1, 3, 6, 7), (2, 3, 2, 3), (1, 2), (1, 0)),
        ("kernel_covers_input_1x1_output", (3, 4, 3, 3), (5, 4, 3, 3), 1, 0),
        ("1x1_output_cropped", (2, 2, 4, 5), (3, 2, 3, 3), 2, 0)]:
    register_gradcheck(f"conv2d/{_name}", lambda x, W, b, s=_s, p=_p: conv2d(x, W, b, stride=s, pad=p),
                       lambda r, xs=_x, ws=_W: [_n(r, xs), _n(r, ws), _n(r, (ws[0],))], [Conv2dOp])
register_gradcheck("conv2d/no_bias_general_path",
                   lambda x, W: Conv2dOp(1, 0, fast=False)(x, W), lambda r: [_n(r, (2, 3, 3, 3)), _n(r, (2, 3, 3, 3))],
                   [Conv2dOp])
for _name, _x, _W, _s, _p in [
        ("stride1", (2, 2, 3, 4), (2, 3, 3, 3), 1, 0),
        ("stride2_pad1_odd", (2, 3, 3, 5), (3, 2, 3, 3), 2, 1),
        ("stride_pair_rect", (1, 2, 3, 2), (2, 2, 2, 3), (2, 1), (0, 1)),
        ("1x1_input_big_kernel", (3, 4, 1, 1), (4, 2, 6, 5), 1, 0)]:
    register_gradcheck(f"conv_transpose2d/{_name}", lambda x, W, b, s=_s, p=_p: conv_transpose2d(x, W, b, stride=s, pad=p),
                       lambda r, xs=_x, ws=_W: [_n(r, xs), _n(r, ws), _n(r, (ws[1],))], [ConvTranspose2dOp])
register_gradcheck("conv_transpose2d/1x1_input_general_path", lambda x, W: ConvTranspose2dOp(1, 0, fast=False)(x, W),
                   lambda r: [_n(r, (2, 3, 1, 1)), _n(r, (3, 2, 4, 4))], [ConvTranspose2dOp])
