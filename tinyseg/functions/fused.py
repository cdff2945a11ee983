"""One-launch GPU versions of layer pieces (tinyseg/cuda/layers.cu), used by the ops when they apply.

Each function returns None when its fast path does not apply — fast paths off (see
`tinyseg.cuda`), a NumPy array outside `tinyseg.cuda.emulated`, or an unsupported dtype — and
the op then runs its plain path, which is also the test oracle (tests/test_fused_layers.py).

See: tinyseg/cuda/layers.cu.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import get_array_module
from ..cuda import get_kernel

BLOCK = 256  # threads per block
MAX_BLOCKS = 65535  # grid-stride loops cover whatever a capped grid does not
_FILE = "layers.cu"


def _kernel(name: str, x: Any) -> Any:
    if x.dtype.kind != "f" or x.dtype.itemsize not in (4, 8):
        return None
    return get_kernel(_FILE, name, x)


def _launch(kernel: Any, total: int, args: tuple) -> None:
    kernel((max(1, min(MAX_BLOCKS, -(-total // BLOCK))),), (BLOCK,), args)


def col2im(col: Any, x_shape: tuple, KH: int, KW: int, sh: int, sw: int, ph: int, pw: int) -> Any | None:
    """(N, C·KH·KW, OH·OW) -> (N, C, H, W), one launch; see `im2col._col2im` (the plain path)."""
    kernel = _kernel("col2im_gather", col)
    if kernel is None:
        return None
    xp, i32 = get_array_module(col), get_array_module(col).int32
    N, C, H, W = x_shape
    OH, OW = (H + 2 * ph - KH) // sh + 1, (W + 2 * pw - KW) // sw + 1
    col = xp.ascontiguousarray(col)
    x = xp.empty((N, C, H, W), col.dtype)
    _launch(kernel, x.size, (col, x, *(i32(v) for v in (N, C, H, W, KH, KW, sh, sw, ph, pw, OH, OW))))
    return x


def maxpool2x2_forward(x: Any) -> tuple[Any, Any] | None:
    """(N, C, H, W) -> y (N, C, H//2, W//2) and the uint8 position of each window's first maximum."""
    kernel = _kernel("maxpool2x2_forward", x)
    if kernel is None:
        return None
    xp = get_array_module(x)
    N, C, H, W = x.shape
    OH, OW = H // 2, W // 2
    x = xp.ascontiguousarray(x)
    y, arg = xp.empty((N, C, OH, OW), x.dtype), xp.empty((N, C, OH, OW), xp.uint8)
    _launch(kernel, y.size, (x, y, arg, *(xp.int32(v) for v in (N * C, H, W, OH, OW))))
    return y, arg


def maxpool2x2_backward(gy: Any, arg: Any, x_shape: tuple) -> Any | None:
    """gx (N, C, H, W): gy at each window's recorded maximum, zero elsewhere."""
    kernel = _kernel("maxpool2x2_backward", gy)
    if kernel is None:
        return None
    xp = get_array_module(gy)
    N, C, H, W = x_shape
    gx = xp.empty(x_shape, gy.dtype)
    _launch(kernel, gx.size, (xp.ascontiguousarray(gy), arg, gx,
                              *(xp.int32(v) for v in (N * C, H, W, H // 2, W // 2))))
    return gx


def _xent_kernel(name: str, z: Any, target: Any) -> Any:
    return _kernel(name, z) if target.dtype == get_array_module(target).int64 else None


def _classes_view(z: Any) -> tuple[int, int, int]:
    """(N, C, S) of logits (N, C, *S)."""
    N, C = z.shape[:2]
    return N, C, z.size // max(N * C, 1)


def softmax_xent_forward(z: Any, target: Any) -> Any | None:
    """Mean softmax cross-entropy of logits (N, C, *S) against int64 targets (N, *S), a 0-d array."""
    kernel = _xent_kernel("softmax_xent_forward", z, target)
    if kernel is None:
        return None
    xp = get_array_module(z)
    N, C, S = _classes_view(z)
    loss = xp.empty((N * S,), z.dtype)  # per pixel
    _launch(kernel, loss.size, (xp.ascontiguousarray(z), xp.ascontiguousarray(target), loss,
                                xp.int32(N), xp.int32(C), xp.int32(S)))
    return xp.asarray(loss.sum() / (N * S), dtype=z.dtype)


def softmax_xent_backward(z: Any, target: Any, gy: Any) -> Any | None:
    """(softmax(z) − onehot(target)) · gy / count, shape of z; gy a 0-d array (read on the device)."""
    kernel = _xent_kernel("softmax_xent_backward", z, target)
    if kernel is None:
        return None
    xp = get_array_module(z)
    N, C, S = _classes_view(z)
    gz = xp.empty(z.shape, z.dtype)
    _launch(kernel, N * S, (xp.ascontiguousarray(z), xp.ascontiguousarray(target),
                            xp.asarray(gy, dtype=z.dtype).reshape(1), gz, xp.int32(N), xp.int32(C), xp.int32(S),
                            z.dtype.type(1.0 / (N * S))))
    return gz


def adversarial_input(g: Any, images: Any, eps: float) -> tuple[Any, Any] | None:
    """x_adv = I + R and the mean ‖R_n‖/‖I_n‖ in one launch (tinyseg/cuda/adversarial.cu)."""
    kernel = get_kernel("adversarial.cu", "adversarial_input", g) \
        if g.dtype.kind == "f" and g.dtype.itemsize in (4, 8) and g.dtype == images.dtype and len(g) else None
    if kernel is None:
        return None
    xp = get_array_module(g)
    N = g.shape[0]
    x_adv, ratio = xp.empty(images.shape, images.dtype), xp.empty((N,), g.dtype)
    kernel((N,), (BLOCK,), (xp.ascontiguousarray(g), xp.ascontiguousarray(images), x_adv, ratio,
                            g.dtype.type(eps), xp.int64(g.size // max(N, 1))), shared_mem=BLOCK * g.dtype.itemsize)
    return x_adv, ratio.mean()


def _axis_view(x: Any, axis: int) -> tuple[int, int, int]:
    """(outer, C, inner) of x around `axis`."""
    axis = axis % x.ndim
    outer = int(np.prod(x.shape[:axis], dtype=np.int64))
    return outer, int(x.shape[axis]), int(np.prod(x.shape[axis + 1:], dtype=np.int64))


def log_softmax_forward(x: Any, axis: int) -> Any | None:
    """log_softmax over `axis` in one launch (log-sum-exp per position)."""
    kernel = _kernel("log_softmax_forward", x)
    if kernel is None:
        return None
    xp = get_array_module(x)
    outer, C, inner = _axis_view(x, axis)
    y = xp.empty(x.shape, x.dtype)
    _launch(kernel, outer * inner, (xp.ascontiguousarray(x), y, xp.int64(outer), xp.int32(C), xp.int64(inner)))
    return y


def log_softmax_backward(y: Any, gy: Any, axis: int) -> Any | None:
    """gy − softmax ⊙ Σ gy over `axis`, from the output y, in one launch."""
    kernel = _kernel("log_softmax_backward", y)
    if kernel is None or gy.dtype != y.dtype or gy.shape != y.shape:
        return None
    xp = get_array_module(y)
    outer, C, inner = _axis_view(y, axis)
    gx = xp.empty(y.shape, y.dtype)
    _launch(kernel, outer * inner, (xp.ascontiguousarray(y), xp.ascontiguousarray(gy), gx, xp.int64(outer),
                                    xp.int32(C), xp.int64(inner)))
    return gx


def tanh_backward(y: Any, gy: Any) -> Any | None:
    """gy ⊙ (1 − y²) in one launch."""
    kernel = _kernel("tanh_backward", y)
    if kernel is None or gy.dtype != y.dtype or gy.shape != y.shape:
        return None
    xp = get_array_module(y)
    gx = xp.empty(y.shape, y.dtype)
    _launch(kernel, y.size, (xp.ascontiguousarray(y), xp.ascontiguousarray(gy), gx, xp.int64(y.size)))
    return gx
