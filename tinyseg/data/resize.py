"""Bicubic resizing with antialiasing, as MATLAB's `imresize(roi, [40 40])`.

The authors resize every ROI to 40×40 with MATLAB's defaults: cubic convolution (a = -0.5), the
kernel widened by 1/scale when shrinking (antialiasing), output pixel u mapped to input
coordinate `u/scale + 0.5(1 - 1/scale)` (1-based), symmetric reflection at the edges and
normalised weights. Non-square boxes are resized anisotropically, which is why every mass fills
the same canvas and the position prior is strong. [ZX18 §4]

See: docs/data.md (the preprocessing pipeline), tests/data/test_data_preprocess.py.

Each axis is a dense (out, in) weight matrix, so a resize is two small matrix products.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..errors import UserError

def cubic(x: np.ndarray) -> np.ndarray:
    r"""Keys' cubic convolution kernel with a = -0.5 (MATLAB's `cubic`).

    $h(x) = 1.5|x|^3 - 2.5|x|^2 + 1$ for $|x| \le 1$, $-0.5|x|^3 + 2.5|x|^2 - 4|x| + 2$ for
    $1 < |x| \le 2$, else 0.
    """
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return ((1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2)))


def _box(x: np.ndarray) -> np.ndarray:
    return ((x >= -0.5) & (x < 0.5)).astype(np.float64)


@lru_cache(maxsize=1024)
def resize_weights(n_in: int, n_out: int, method: str = "bicubic", antialias: bool = True) -> np.ndarray:
    """The (n_out, n_in) matrix that resizes one axis, as MATLAB's `contributions`.

    Args:
        n_in: input length.
        n_out: output length.
        method: `"bicubic"` or `"nearest"`.
        antialias: widen the kernel by 1/scale when shrinking (MATLAB's default for bicubic).

    Returns:
        (n_out, n_in) float64 matrix whose rows sum to 1. Treat it as read-only (it is cached).
    """
    if n_in < 1 or n_out < 1:
        raise UserError(f"cannot resize an axis of length {n_in} to {n_out}")
    scale = n_out / n_in
    if method not in ("bicubic", "nearest"):
        raise UserError(f"unknown resize method {method!r}; use 'bicubic' or 'nearest'")
    kernel, width = (cubic, 4.0) if method == "bicubic" else (_box, 1.0)
    if scale < 1 and antialias and method == "bicubic":
        h = lambda x: scale * kernel(scale * x)  # noqa: E731  (widened kernel)
        width = width / scale
    else:
        h = kernel
    u = np.arange(1, n_out + 1, dtype=np.float64) / scale + 0.5 * (1 - 1 / scale)  # 1-based
    left = np.floor(u - width / 2)
    P = int(np.ceil(width)) + 2
    idx = left[:, None] + np.arange(P)[None, :]  # (n_out, P) 1-based input indices
    w = h(u[:, None] - idx)
    w = w / w.sum(axis=1, keepdims=True)
    # Symmetric reflection at the borders: 1..n, n..1 repeated.
    aux = np.concatenate([np.arange(n_in), np.arange(n_in)[::-1]])
    src = aux[np.mod(idx.astype(np.int64) - 1, 2 * n_in)]  # (n_out, P) 0-based
    M = np.zeros((n_out, n_in))
    np.add.at(M, (np.repeat(np.arange(n_out), P), src.ravel()), w.ravel())
    M.setflags(write=False)
    return M


def resize2d(x: np.ndarray, out_shape: tuple[int, int] = (40, 40), method: str = "bicubic",
             antialias: bool = True) -> np.ndarray:
    """Resize a 2-D array (anisotropically) to `out_shape`; float64 result, not rounded.

    Args:
        x: (H, W) array.
        out_shape: (OH, OW).
        method: `"bicubic"` (MATLAB default) or `"nearest"`.
        antialias: as MATLAB's `Antialiasing` (on by default for bicubic).

    Returns:
        (OH, OW) float64.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise UserError(f"resize2d expects a 2-D array, got shape {x.shape}")
    Mr = resize_weights(x.shape[0], out_shape[0], method, antialias)  # (OH, H)
    Mc = resize_weights(x.shape[1], out_shape[1], method, antialias)  # (OW, W)
    return Mr @ x @ Mc.T
