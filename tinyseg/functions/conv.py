r"""Convolution by im2col + one matrix product, and transpose convolution as its adjoint.

`conv2d` and `conv_transpose2d` are a linear pair: the backward of each (w.r.t. its input) is the
forward of the other with the same kernel, and both are built on `im2col` / `col2im`
(`tinyseg.functions.im2col`). The FCN of [ZX18 Table 1] uses both: three valid convolutions take
the 40×40 ROI to 1×1×c3, and a transpose convolution with a 40×40 kernel takes it back to 40×40
logits.

See: lessons/02_fcn.py, tests/test_conv.py.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable

import numpy as np

from ..autodiff import Op, Tensor
from ..backend import get_array_module
from ..errors import UserError
from ..gradcheck import register_gradcheck
from .im2col import IntPair, _check_4d, _check_geometry, _col2im, _im2col, _out_size, _pair


# ---------------------------------------------------------------- conv2d
def _check_inputs(op: str, x: Any, W: Any, b: Any, transposed: bool) -> tuple[int, int, int, int]:
    """Validate x, W, b of a (transposed) convolution; return (C_in, C_out, KH, KW).

    W is (C_out, C_in, KH, KW) for conv2d and (C_in, C_out, KH, KW) for conv_transpose2d, as in PyTorch.
    """
    layout = "(C_in, C_out, KH, KW)" if transposed else "(C_out, C_in, KH, KW)"
    _check_4d(x, op, "x")
    _check_4d(W, op, f"W {layout}")
    for name, a in (("x", x), ("W", W), ("b", b)):
        if a is not None and a.dtype.kind != "f":
            raise TypeError(f"{op}: {name} must be a floating-point array, got {a.dtype}.")
    if W.dtype != x.dtype or (b is not None and b.dtype != x.dtype):
        raise TypeError(f"{op}: x is {x.dtype} but W is {W.dtype}" + ("" if b is None else f" and b is {b.dtype}")
                        + "; cast them to one dtype (e.g. x.astype(W.dtype)) to avoid silent upcasting.")
    C_in, C_out, KH, KW = (W.shape[0], W.shape[1], *W.shape[2:]) if transposed else (W.shape[1], W.shape[0],
                                                                                      *W.shape[2:])
    if C_in != x.shape[1]:
        raise UserError(f"{op}: x has {x.shape[1]} channels but W {tuple(W.shape)} expects C_in = {C_in} "
                         f"(W is {layout}, as in PyTorch).")
    if b is not None and tuple(b.shape) != (C_out,):
        raise UserError(f"{op}: b must have shape ({C_out},), got {tuple(b.shape)}.")
    return C_in, C_out, KH, KW


class Conv2dOp(Op):
    """conv2d; `flat=False` forces the general im2col path (the test oracle of the flat 1×1-output path)."""

    def __init__(self, stride: IntPair = 1, pad: IntPair = 0, flat: bool = True) -> None:
        self.sh, self.sw = _pair(stride, "stride")
        self.ph, self.pw = _pair(pad, "pad")
        self.allow_flat = flat

    def forward(self, x: Any, W: Any, b: Any = None) -> Any:
        C_in, C_out, KH, KW = _check_inputs("conv2d", x, W, b, transposed=False)
        N, C, H, Wd = x.shape
        _check_geometry("conv2d", H, Wd, KH, KW, self.ph, self.pw)
        OH, OW = _out_size(H, KH, self.sh, self.ph), _out_size(Wd, KW, self.sw, self.pw)
        self.x_shape, self.W_shape, self.has_b = x.shape, W.shape, b is not None
        W2 = W.reshape(C_out, C_in * KH * KW)  # (C_out, K)
        self.W2 = W2
        self.flat = self.allow_flat and OH == 1 and OW == 1 and self.ph == 0 and self.pw == 0
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
                gxs = (g2 @ self.W2).reshape(N, C_in, KH, KW)  # (N, K) -> x's window
                if tuple(self.x_shape[2:]) == (KH, KW):
                    gx = gxs
                else:  # the cropped rows/columns had no effect: zero gradient there
                    gx = get_array_module(gy).zeros(self.x_shape, dtype=gy.dtype)
                    gx[:, :, :KH, :KW] = gxs
        else:
            g2 = gy.reshape(N, C_out, -1)  # (N, C_out, OH*OW)
            # Σ_n gy[n] @ col[n]ᵀ: N small products then a sum beat one product after
            # transposing col; (N, C_out, K) summed over n, then W's shape
            gW = (g2 @ self.col.transpose(0, 2, 1)).sum(axis=0).reshape(self.W_shape)
            if need_x:
                gcol = self.W2.T @ g2  # (K, C_out) @ (N, C_out, OH*OW) -> (N, K, OH*OW)
                gx = _col2im(gcol, self.x_shape, KH, KW,
                             self.sh, self.sw, self.ph, self.pw)
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

    Derivation: docs/derivations/conv.md#convolution.
    See: lessons/02_fcn.py, tests/test_conv.py::test_conv2d_forward_matches_naive_loops_and_scipy.
    """
    return Conv2dOp(stride, pad)(x, W, b) if b is not None else Conv2dOp(stride, pad)(x, W)


# ---------------------------------------------------------------- conv_transpose2d
class ConvTranspose2dOp(Op):
    """conv_transpose2d; `flat=False` forces the general col2im path (the oracle of the flat 1×1-input path)."""

    def __init__(self, stride: IntPair = 1, pad: IntPair = 0, flat: bool = True) -> None:
        self.sh, self.sw = _pair(stride, "stride")
        self.ph, self.pw = _pair(pad, "pad")
        self.allow_flat = flat

    def forward(self, x: Any, W: Any, b: Any = None) -> Any:
        C_in, C_out, KH, KW = _check_inputs("conv_transpose2d", x, W, b, transposed=True)
        N, C, H, Wd = x.shape
        OH, OW = (H - 1) * self.sh + KH - 2 * self.ph, (Wd - 1) * self.sw + KW - 2 * self.pw
        if OH < 1 or OW < 1:
            raise UserError(f"conv_transpose2d: padding {(self.ph, self.pw)} leaves no output for a {KH}×{KW} "
                            "kernel; use pad < ((H − 1)·stride + KH) / 2.")
        self.x, self.W2 = x, W.reshape(C_in, C_out * KH * KW)  # (C_in, C_out*KH*KW)
        self.y_shape, self.W_shape, self.has_b = (N, C_out, OH, OW), W.shape, b is not None
        self.flat = self.allow_flat and H == 1 and Wd == 1 and self.ph == 0 and self.pw == 0
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
    \begin{aligned}
    y[n,o,s h + i - p, s w + j - p] &\mathrel{+}= \sum_c W[c,o,i,j]\, x[n,c,h,w], \\
    \langle \mathrm{conv2d}(u, W), x\rangle &= \langle u, \mathrm{conv\_transpose2d}(x, W)\rangle
    \end{aligned}
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

    Derivation: docs/derivations/conv.md#convolution.
    See: lessons/02_fcn.py, tests/test_conv.py::test_conv_transpose2d_is_adjoint_of_conv2d.
    """
    return (ConvTranspose2dOp(stride, pad)(x, W, b) if b is not None else ConvTranspose2dOp(stride, pad)(x, W))


# ---------------------------------------------------------------- gradient-check cases
def _normals(*shapes: tuple[int, ...]) -> Callable[[np.random.Generator], list[np.ndarray]]:
    """Inputs of the given shapes, standard normal."""
    return lambda rng: [rng.standard_normal(shape) for shape in shapes]


def _conv2d_case(name: str, x: tuple, W: tuple, stride: IntPair, pad: IntPair) -> None:
    register_gradcheck(f"conv2d/{name}", partial(conv2d, stride=stride, pad=pad),
                       _normals(x, W, (W[0],)), [Conv2dOp])


def _conv_transpose2d_case(name: str, x: tuple, W: tuple, stride: IntPair, pad: IntPair) -> None:
    register_gradcheck(f"conv_transpose2d/{name}", partial(conv_transpose2d, stride=stride, pad=pad),
                       _normals(x, W, (W[1],)), [ConvTranspose2dOp])


#            name                               x              W             stride  pad
_conv2d_case("valid_5x5",                      (2, 1, 8, 8), (3, 1, 5, 5), 1,      0)
_conv2d_case("stride2_pad1_odd",               (2, 2, 7, 5), (3, 2, 3, 3), 2,      1)
_conv2d_case("rect_kernel_stride_pair",        (1, 3, 6, 7), (2, 3, 2, 3), (1, 2), (1, 0))
_conv2d_case("kernel_covers_input_1x1_output", (3, 4, 3, 3), (5, 4, 3, 3), 1,      0)
_conv2d_case("stride2_last_rows_unused",       (2, 2, 4, 5), (3, 2, 3, 3), 2,      0)  # 1×2 output; row 3 in no window
_conv2d_case("flat_1x1_output_cropped",        (2, 2, 4, 5), (3, 2, 3, 4), 2,      0)  # the flat path reads x[:, :, :3, :4]
_conv_transpose2d_case("stride1",              (2, 2, 3, 4), (2, 3, 3, 3), 1,      0)
_conv_transpose2d_case("stride2_pad1_odd",     (2, 3, 3, 5), (3, 2, 3, 3), 2,      1)
_conv_transpose2d_case("stride_pair_rect",     (1, 2, 3, 2), (2, 2, 2, 3), (2, 1), (0, 1))
_conv_transpose2d_case("1x1_input_big_kernel", (3, 4, 1, 1), (4, 2, 6, 5), 1,      0)
# the general (im2col) paths where the flat path would be taken, without a bias
register_gradcheck("conv2d/no_bias_general_path", lambda x, W: Conv2dOp(1, 0, flat=False)(x, W),
                   _normals((2, 3, 3, 3), (2, 3, 3, 3)), [Conv2dOp])
register_gradcheck("conv_transpose2d/1x1_input_general_path", lambda x, W: ConvTranspose2dOp(1, 0, flat=False)(x, W),
                   _normals((2, 3, 1, 1), (3, 2, 4, 4)), [ConvTranspose2dOp])
