"""Polygon rasterisation of mass contours.

Coordinates follow OsiriX / INbreast: a point is `(x, y)` with x the column and y the row, and
pixel `(r, c)` has its centre at `(x=c, y=r)`. Two rules are offered:

* `"outline_fill"` (the authors', `readxmlmasswise.m` + `imfill`): round the vertices half away
  from zero, join them by 8-connected digital lines, fill the holes (4-connected background).
  Outline pixels belong to the mask.
* `"even_odd"`: pixel centres inside the polygon by the even-odd rule, half-open so that an
  axis-aligned integer square of side L covers exactly L² pixels.

The two differ by about half a pixel along the contour, which vanishes at 40×40.
[ZX18 §4]

See: docs/data.md (INbreast), tests/data/test_data_loaders.py.
"""
from __future__ import annotations

import numpy as np

from ..config import CHOICES
from ..errors import UserError

RASTER_RULES = CHOICES["raster"]


def round_half_away(x: np.ndarray) -> np.ndarray:
    """MATLAB `round`: halves go away from zero (NumPy's `round` goes to even)."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def digital_line(x0: int, y0: int, x1: int, y1: int) -> tuple[np.ndarray, np.ndarray]:
    """The 8-connected pixels from (x0, y0) to (x1, y1), one step along the longer axis.

    Returns:
        (xs, ys) integer arrays, both endpoints included.
    """
    n = int(max(abs(x1 - x0), abs(y1 - y0)))
    t = np.linspace(0.0, 1.0, n + 1)
    xs = round_half_away(x0 + t * (x1 - x0)).astype(np.int64)
    ys = round_half_away(y0 + t * (y1 - y0)).astype(np.int64)
    return xs, ys


def polygon_outline(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The closed digital outline of a polygon as a boolean mask of `shape` (H, W).

    Args:
        points: (K, 2) float vertices `(x, y)`; they must already lie inside the image.
        shape: (H, W) of the mask.
    """
    pts = round_half_away(np.asarray(points, dtype=np.float64)).astype(np.int64)  # (K, 2)
    nxt = np.roll(pts, -1, axis=0)  # closes the polygon: last vertex back to the first
    xs, ys = zip(*(digital_line(a[0], a[1], b[0], b[1]) for a, b in zip(pts, nxt)))
    xs, ys = np.concatenate(xs), np.concatenate(ys)
    out = np.zeros(shape, dtype=bool)
    out[ys, xs] = True
    return out


def _fill_outline(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from scipy import ndimage  # lazy: importing it costs ~0.5 s, and `segment` never needs it
    outline = polygon_outline(points, shape)
    rows, cols = np.nonzero(outline)
    r0, r1, c0, c1 = rows.min(), rows.max(), cols.min(), cols.max()
    # Fill inside the outline's bounding box only (padded by one pixel so that the background
    # around the outline is connected): full-size mammograms are megapixels.
    sub = np.pad(outline[r0:r1 + 1, c0:c1 + 1], 1)
    filled = ndimage.binary_fill_holes(sub)[1:-1, 1:-1]  # default structure: 4-connected
    out = np.zeros(shape, dtype=bool)
    out[r0:r1 + 1, c0:c1 + 1] = filled
    return out


def _fill_even_odd(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    H, W = shape
    p = np.asarray(points, dtype=np.float64)
    q = np.roll(p, -1, axis=0)
    r0 = max(int(np.floor(p[:, 1].min())), 0)
    r1 = min(int(np.ceil(p[:, 1].max())), H - 1)
    out = np.zeros(shape, dtype=bool)
    if r1 < r0:
        return out
    y = np.arange(r0, r1 + 1, dtype=np.float64)[:, None]  # (R, 1) pixel-centre rows
    y0, y1 = p[None, :, 1], q[None, :, 1]  # (1, E)
    crosses = (y0 > y) != (y1 > y)  # (R, E) half-open in y
    with np.errstate(divide="ignore", invalid="ignore"):
        xc = p[None, :, 0] + (y - y0) * (q[None, :, 0] - p[None, :, 0]) / (y1 - y0)  # (R, E)
    ri, ei = np.nonzero(crosses)
    # Pixel c lies left of a crossing at x when c < x, i.e. c in [0, ceil(x) - 1]; counting those
    # crossings per column by a difference array avoids an (R, E, W) intermediate.
    stop = np.clip(np.ceil(xc[ri, ei]), 0, W).astype(np.int64)
    diff = np.zeros((r1 - r0 + 1, W + 1), dtype=np.int64)
    np.add.at(diff, (ri, np.zeros_like(stop)), 1)
    np.add.at(diff, (ri, stop), -1)
    count = np.cumsum(diff[:, :W], axis=1)  # (R, W) crossings right of each pixel centre
    out[r0:r1 + 1] = (count % 2) == 1
    return out


def rasterize_polygon(points: np.ndarray, shape: tuple[int, int], rule: str = "outline_fill") -> np.ndarray:
    """Rasterise a closed polygon into a boolean mask.

    Args:
        points: (K, 2) vertices `(x, y)` in pixel coordinates, K >= 3, inside the image
            (callers clamp and count out-of-image points first).
        shape: (H, W) of the mask.
        rule: `"outline_fill"` (the authors', default) or `"even_odd"`.

    Returns:
        (H, W) bool mask.

    See: tests/data/test_data_preprocess.py::test_rasterize_square_and_triangle.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) < 3:
        raise UserError(f"a polygon needs an (K>=3, 2) array of (x, y) points, got shape {points.shape}")
    if not np.isfinite(points).all():
        raise UserError("polygon points must be finite (found NaN or inf)")
    if rule == "outline_fill":
        return _fill_outline(points, shape)
    if rule == "even_odd":
        return _fill_even_odd(points, shape)
    raise UserError(f"unknown raster rule {rule!r}; use one of {RASTER_RULES}")
