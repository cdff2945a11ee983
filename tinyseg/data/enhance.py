"""The authors' ROI enhancement: "the first 9 steps of Ball & Bruce (2007)".

As implemented by the authors (`ballimenhance.m`) the chain reduces to

    CLAHE -> weight by 1 - exp(-I/mean) -> 64-level histogram equalisation -> square -> min-max

because the local-mean step is commented out, so `histeq(I5) * I4` becomes `I4²`.
The result is a per-ROI contrast stretch with at most 64 grey levels, computed on each 40×40 ROI
before normalisation. [ZX18 §4]

See: docs/data.md (the preprocessing pipeline), tests/data/test_data_preprocess.py.
"""
from __future__ import annotations

import numpy as np

from ..config import CHOICES, check_choice
from ..errors import UserError

CLAHE_HIST_RANGES = CHOICES["clahe_hist_range"]


def minmax(x: np.ndarray) -> np.ndarray:
    """`NI(X) = (X - min X)/(max X - min X)`; a constant array maps to zeros."""
    x = np.asarray(x, dtype=np.float64)
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def clahe(x: np.ndarray, hist_range: tuple[float, float], tiles: tuple[int, int] = (8, 8),
          n_bins: int = 256, clip_limit: float = 0.01) -> np.ndarray:
    r"""Contrast-limited adaptive histogram equalisation with MATLAB `adapthisteq` defaults.

    Each of the `tiles` tiles gets a histogram of `n_bins` bins over `hist_range`, clipped at
    $\lceil n/\text{bins}\rceil + \mathrm{round}(c\,(n - \lceil n/\text{bins}\rceil))$ counts
    (n pixels per tile; 1 count for a 5×5 tile), the excess spread uniformly over the bins; the
    tile's cumulative histogram is its grey map, and maps of the four nearest tile centres are
    blended bilinearly.

    Args:
        x: (H, W) image; H and W are padded by reflection to a multiple of the tile grid.
        hist_range: (lo, hi) of the histograms: the ROI's range or the whole dtype's.
        tiles: tile grid (rows, cols); MATLAB's default 8×8 gives 5×5-pixel tiles on 40×40.
        n_bins: histogram bins.
        clip_limit: MATLAB's normalised clip limit.

    Returns:
        (H, W) float64 in [0, 1].
    """
    x = np.asarray(x, dtype=np.float64)
    H, W = x.shape
    nty, ntx = tiles
    th, tw = -(-H // nty), -(-W // ntx)
    xp_ = np.pad(x, ((0, th * nty - H), (0, tw * ntx - W)), mode="symmetric")
    lo, hi = hist_range
    scale = (n_bins - 1) / (hi - lo) if hi > lo else 0.0
    b = np.clip(np.floor((xp_ - lo) * scale + 0.5), 0, n_bins - 1).astype(np.int64)
    tile = (np.arange(th * nty)[:, None] // th) * ntx + np.arange(tw * ntx)[None, :] // tw
    hist = np.bincount((tile * n_bins + b).ravel(), minlength=nty * ntx * n_bins)
    hist = hist.reshape(nty * ntx, n_bins).astype(np.float64)  # (tiles, bins)
    n = th * tw
    min_clip = -(-n // n_bins)
    limit = min_clip + np.floor(clip_limit * (n - min_clip) + 0.5)
    excess = np.maximum(hist - limit, 0).sum(axis=1, keepdims=True)
    hist = np.minimum(hist, limit) + excess / n_bins
    maps = np.clip(np.cumsum(hist, axis=1) / n, 0.0, 1.0).reshape(nty, ntx, n_bins)

    # Bilinear blending between tile centres, clamped at the outer half-tiles.
    def axis_weights(n_px: int, t: int, nt: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = (np.arange(n_px) - (t - 1) / 2) / t
        i0 = np.clip(np.floor(pos), 0, nt - 1).astype(np.int64)
        i1 = np.minimum(i0 + 1, nt - 1)
        f = np.clip(pos - i0, 0.0, 1.0) * (i1 > i0)
        return i0, i1, f

    r0, r1, fr = axis_weights(H, th, nty)
    c0, c1, fc = axis_weights(W, tw, ntx)
    b = b[:H, :W]
    R0, R1, C0, C1 = r0[:, None], r1[:, None], c0[None, :], c1[None, :]
    FR, FC = fr[:, None], fc[None, :]
    top = (1 - FC) * maps[R0, C0, b] + FC * maps[R0, C1, b]
    bottom = (1 - FC) * maps[R1, C0, b] + FC * maps[R1, C1, b]
    return (1 - FR) * top + FR * bottom


def histeq(x: np.ndarray, levels: int = 64) -> np.ndarray:
    r"""Rank-based histogram equalisation to `levels` grey levels (MATLAB `histeq` default 64).

    Level $= \lceil L\,F(x)\rceil - 1$ with F the empirical CDF (ties share a level), divided by
    L - 1, so the output has at most L distinct values in [0, 1].
    """
    x = np.asarray(x, dtype=np.float64)
    values, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    cdf = np.cumsum(counts) / x.size
    level = np.maximum(np.ceil(levels * cdf - 1e-9) - 1, 0)
    return (level / (levels - 1))[inverse.reshape(x.shape)]


def enhance(roi: np.ndarray, clahe_hist_range: str = "data", dtype_max: float | None = None) -> np.ndarray:
    r"""The authors' enhancement of one ROI.  [ZX18 §4]

    $E = NI(I_4^2)$ with $I_4 = \mathrm{histeq}_{64}(NI(NI(\mathrm{CLAHE}(I)) \cdot w))$ and
    $w = 1 - \exp(-NI(I)/\overline{NI(I)})$.

    Args:
        roi: (H, W) raw ROI (e.g. the 40×40 uint16 resize of the DICOM crop).
        clahe_hist_range: `"data"` (histograms over the ROI's own range; default) or `"dtype"`
            (over 0..dtype max, as MATLAB's `adapthisteq` on uint16 — coarse, the authors').
        dtype_max: the top of the dtype range for `"dtype"`; defaults to the integer dtype's max.

    Returns:
        (H, W) float32 in [0, 1] with at most 64 distinct values (zeros for a constant ROI).

    See: tests/data/test_data_preprocess.py::test_enhance_has_at_most_64_levels.
    """
    roi = np.asarray(roi)
    if roi.ndim != 2:
        raise UserError(f"enhance expects one 2-D ROI, got shape {roi.shape}")
    if not np.isfinite(roi).all():
        raise UserError("the ROI contains NaN or inf; check the image file")
    check_choice("clahe_hist_range", clahe_hist_range)
    if clahe_hist_range == "data":
        hist_range = (float(roi.min()), float(roi.max()))
    else:  # "dtype"
        if dtype_max is None:
            if not np.issubdtype(roi.dtype, np.integer):
                raise UserError("clahe_hist_range='dtype' needs an integer ROI or an explicit dtype_max")
            dtype_max = float(np.iinfo(roi.dtype).max)
        hist_range = (0.0, float(dtype_max))
    x = roi.astype(np.float64)
    i2 = minmax(x)
    mu = i2.mean()
    if mu <= 0:  # constant ROI: nothing to enhance
        return np.zeros(roi.shape, dtype=np.float32)
    weight = 1.0 - np.exp(-i2 / mu)
    i3 = minmax(minmax(clahe(x, hist_range)) * weight)
    i4 = histeq(i3, 64)
    return minmax(i4 * i4).astype(np.float32)
