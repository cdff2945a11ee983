"""Non-learned baselines: Otsu thresholding of the enhanced ROI.

Intensity alone is a poor segmenter of these masses (pooled Dice ≈ 0.6 on the synthetic set,
against ≈ 0.88 for the prior alone), which is the point of the calibration test: the boundary
has to be learned. The prior-only baseline lives in `preprocess` (`empirical_prior`,
`prior_baseline_predict`).

See: docs/data.md (honest baselines), tests/data/test_data_phantom.py.
"""
from __future__ import annotations

import numpy as np

from ..errors import UserError


def otsu_threshold(x: np.ndarray, n_bins: int = 256) -> float:
    r"""Otsu's threshold: the bin edge maximising the between-class variance $w_0 w_1 (m_0 - m_1)^2$.

    Args:
        x: array of values (any shape).
        n_bins: histogram bins over [min, max].

    Returns:
        the threshold (pixels above it are foreground); `min(x)` for a constant array.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size == 0 or not np.isfinite(x).all():
        raise UserError("otsu_threshold needs a non-empty, finite array")
    hist, edges = np.histogram(x, n_bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    s0 = np.cumsum(hist * centres)
    m0 = s0 / np.maximum(w0, 1)
    m1 = (s0[-1] - s0) / np.maximum(w1, 1)
    between = w0 * w1 * (m0 - m1) ** 2
    return float(edges[1:][np.argmax(between)])


def otsu_baseline(images: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Segment each ROI by Otsu thresholding after Gaussian smoothing (dense = bright = mass).

    Args:
        images: (N, 1, H, W) enhanced ROIs.
        sigma: Gaussian smoothing in pixels before thresholding (0 = none).

    Returns:
        (N, H, W) int64 in {0, 1}.
    """
    from scipy import ndimage  # lazy: importing it costs ~0.5 s, and `segment` never needs it
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != 1:
        raise UserError(f"images must be (N, 1, H, W), got shape {images.shape}")
    out = np.zeros((images.shape[0],) + images.shape[2:], dtype=np.int64)
    for i, x in enumerate(images[:, 0].astype(np.float64)):
        s = ndimage.gaussian_filter(x, sigma) if sigma > 0 else x
        out[i] = s > otsu_threshold(s)
    return out
