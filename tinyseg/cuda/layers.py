"""One-launch GPU versions of layer pieces (``layers.cu``), registered as overrides of the ops.

Each override declines (returns ``NotImplemented``) where its kernel does not apply, and the op's
plain code runs; the plain code is also the test oracle (tests/cuda/test_fast_path_layers.py).

| fast path | overrides | replaces |
|---|---|---|
| ``col2im`` | the ``col2im`` helper of `tinyseg.functions.im2col` | KH·KW strided slice-adds |
| ``maxpool2x2`` | `MaxPool2dOp` forward and backward, 2×2 stride 2 | 3 maximums, a dozen masked copies |
| ``softmax_xent`` | `CrossEntropyOp` forward and backward | the log-sum-exp, the pick, softmax − onehot |
| ``log_softmax`` | `LogSoftmaxOp` forward and backward | six and three operations |
| ``tanh_backward`` | `TanhOp` backward | three operations |

See: tinyseg/cuda/layers.cu.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import get_array_module
from ..functions.activation import LogSoftmaxOp, TanhOp
from ..functions.loss import CrossEntropyOp, _check_target
from ..functions.pooling import MaxPool2dOp
from .kernels import get_kernel, grid_for, launch
from .registry import Record, register

_FILE = "layers.cu"


def col2im(col: Any, x_shape: tuple, KH: int, KW: int, sh: int, sw: int, ph: int, pw: int) -> Any:
    """(N, C·KH·KW, OH·OW) -> (N, C, H, W), one thread per output pixel gathering its columns."""
    kernel = get_kernel(_FILE, "col2im_gather", col)
    if kernel is None:
        return NotImplemented
    xp, i32 = get_array_module(col), get_array_module(col).int32
    N, C, H, W = x_shape
    OH, OW = (H + 2 * ph - KH) // sh + 1, (W + 2 * pw - KW) // sw + 1
    col = xp.ascontiguousarray(col)
    x = xp.empty((N, C, H, W), col.dtype)
    launch(kernel, grid_for(x.size), (col, x, *(i32(v) for v in (N, C, H, W, KH, KW, sh, sw, ph, pw, OH, OW))))
    return x


def maxpool2x2_forward(op: MaxPool2dOp, record: Record, x: Any) -> Any:
    """y (N, C, H//2, W//2) and, in the record, the uint8 position of each window's first maximum."""
    record.arg = None
    if (op.k, op.s) != (2, 2) or not op.allow_pool2x2 or x.ndim != 4 or min(x.shape[2:]) < 2:
        return NotImplemented
    kernel = get_kernel(_FILE, "maxpool2x2_forward", x)
    xp = get_array_module(x)
    N, C, H, W = x.shape
    OH, OW = H // 2, W // 2
    x = xp.ascontiguousarray(x)
    y, arg = xp.empty((N, C, OH, OW), x.dtype), xp.empty((N, C, OH, OW), xp.uint8)
    launch(kernel, grid_for(y.size), (x, y, arg, *(xp.int32(v) for v in (N * C, H, W, OH, OW))))
    record.arg, record.x_shape = arg, x.shape
    return y


def maxpool2x2_backward(op: MaxPool2dOp, record: Record, gy: Any) -> Any:
    """gx (N, C, H, W): gy at each window's recorded maximum, zero elsewhere."""
    arg = getattr(record, "arg", None)
    if arg is None:  # the forward ran the plain code
        return NotImplemented
    kernel = get_kernel(_FILE, "maxpool2x2_backward", gy)
    xp = get_array_module(gy)
    N, C, H, W = record.x_shape
    gx = xp.empty(record.x_shape, gy.dtype)
    launch(kernel, grid_for(gx.size), (xp.ascontiguousarray(gy), arg, gx,
                                       *(xp.int32(v) for v in (N * C, H, W, H // 2, W // 2))))
    return gx


def _classes_view(z: Any) -> tuple[int, int, int]:
    """(N, C, S) of logits (N, C, *S)."""
    N, C = z.shape[:2]
    return N, C, z.size // max(N * C, 1)


def softmax_xent_forward(op: CrossEntropyOp, record: Record, logits: Any, target: Any) -> Any:
    """Mean softmax cross-entropy of logits (N, C, *S) against int64 targets (N, *S), a 0-d array."""
    record.logits = None
    xp = get_array_module(logits)
    if logits.ndim < 2 or target.dtype != xp.int64 or not logits.size:
        return NotImplemented
    _check_target(logits, target, "cross_entropy", values=op.check_labels)
    kernel = get_kernel(_FILE, "softmax_xent_forward", logits)
    N, C, S = _classes_view(logits)
    loss = xp.empty((N * S,), logits.dtype)  # per pixel
    launch(kernel, grid_for(loss.size), (xp.ascontiguousarray(logits), xp.ascontiguousarray(target), loss,
                                         xp.int32(N), xp.int32(C), xp.int32(S)))
    record.logits, record.target = logits, target
    return xp.asarray(loss.sum() / (N * S), dtype=logits.dtype)


def softmax_xent_backward(op: CrossEntropyOp, record: Record, gy: Any) -> Any:
    """(softmax(z) − onehot(target)) · gy / count, shape of z; gy a 0-d array (read on the device)."""
    z, target = getattr(record, "logits", None), getattr(record, "target", None)
    if z is None:
        return NotImplemented
    kernel = get_kernel(_FILE, "softmax_xent_backward", z)
    xp = get_array_module(z)
    N, C, S = _classes_view(z)
    gz = xp.empty(z.shape, z.dtype)
    launch(kernel, grid_for(N * S), (xp.ascontiguousarray(z), xp.ascontiguousarray(target),
                                     xp.asarray(gy, dtype=z.dtype).reshape(1), gz, xp.int32(N), xp.int32(C),
                                     xp.int32(S), z.dtype.type(1.0 / (N * S))))
    return gz, None


def _axis_view(x: Any, axis: int) -> tuple[int, int, int]:
    """(outer, C, inner) of x around `axis`."""
    axis = axis % x.ndim
    outer = int(np.prod(x.shape[:axis], dtype=np.int64))
    return outer, int(x.shape[axis]), int(np.prod(x.shape[axis + 1:], dtype=np.int64))


def log_softmax_forward(op: LogSoftmaxOp, record: Record, x: Any) -> Any:
    """log_softmax over `op.axis` in one launch (log-sum-exp per position); saves y as the op does."""
    if not x.size:
        return NotImplemented
    kernel = get_kernel(_FILE, "log_softmax_forward", x)
    xp = get_array_module(x)
    outer, C, inner = _axis_view(x, op.axis)
    y = xp.empty(x.shape, x.dtype)
    launch(kernel, grid_for(outer * inner), (xp.ascontiguousarray(x), y, xp.int64(outer), xp.int32(C),
                                             xp.int64(inner)))
    record.y = y
    return y


def log_softmax_backward(op: LogSoftmaxOp, record: Record, gy: Any) -> Any:
    """gy − softmax ⊙ Σ gy over `op.axis`, from the output y, in one launch."""
    y = getattr(record, "y", None)
    if y is None:  # the forward ran the plain code
        return NotImplemented
    xp = get_array_module(y)
    if gy.dtype != y.dtype or gy.shape != y.shape:  # the plain backward needs the y it did not save
        return gy - xp.exp(y) * gy.sum(axis=op.axis, keepdims=True)
    kernel = get_kernel(_FILE, "log_softmax_backward", y)
    outer, C, inner = _axis_view(y, op.axis)
    gx = xp.empty(y.shape, y.dtype)
    launch(kernel, grid_for(outer * inner), (xp.ascontiguousarray(y), xp.ascontiguousarray(gy), gx,
                                             xp.int64(outer), xp.int32(C), xp.int64(inner)))
    return gx


def tanh_backward(op: TanhOp, record: Record, gy: Any) -> Any:
    """gy ⊙ (1 − y²) in one launch, from the output the plain forward saved."""
    y = op.y
    if gy.dtype != y.dtype or gy.shape != y.shape:
        return NotImplemented
    kernel = get_kernel(_FILE, "tanh_backward", y)
    xp = get_array_module(y)
    gx = xp.empty(y.shape, y.dtype)
    launch(kernel, grid_for(y.size), (xp.ascontiguousarray(y), xp.ascontiguousarray(gy), gx, xp.int64(y.size)))
    return gx


register("col2im", name="col2im", call=col2im)
register(MaxPool2dOp, name="maxpool2x2", forward=maxpool2x2_forward, backward=maxpool2x2_backward)
register(CrossEntropyOp, name="softmax_xent", forward=softmax_xent_forward, backward=softmax_xent_backward)
register(LogSoftmaxOp, name="log_softmax", forward=log_softmax_forward, backward=log_softmax_backward)
register(TanhOp, name="tanh_backward", backward=tanh_backward)
