r"""ROI boxes: the paper's tight box, or a box drawn as a person or a detector draws it.

`boxes="tight"` (the default) crops the mass's own bounding box, as the paper does [ZX18 §4]:
the mass then fills most of its 40×40 ROI and sits in the middle of it, so a position prior
fitted on the training masks already segments it well. In use the box comes from a radiologist
or a detector instead (`tinyseg segment --roi`): larger than the mass and not centred on it.
`boxes="drawn"` imitates that:

- each side is the mass box's side times a factor $f \sim U(1.1, 1.8)$, drawn per axis and
  independently of the mass's size (nobody draws exactly on the outline; at 1.8 the mass still
  spans 22 of the 40 ROI pixels). The mass box then covers $1/(f_x f_y)$ of the drawn box,
  between $1/1.8^2 \approx 0.31$ and $1/1.1^2 \approx 0.83$: around the overlap (intersection over
  union 0.5) at which a detector's proposal is commonly counted as a hit;
- the mass box sits at a uniformly random position inside it;
- a box that would leave the image is shifted back inside, keeping its size (as `scale_box`
  does); one larger than the image is clipped to it. Either way it still contains the mass.

Each mass's box comes from its own random stream, `box_rng(data_seed, key)`, with `key` the
mass's ROI id: the same data seed gives the same boxes, whatever the order or count of masses.

See: docs/data.md (ROI boxes), tests/data/test_data_boxes.py.
"""
from __future__ import annotations

import zlib

import numpy as np

from ..errors import UserError

Box = tuple[int, int, int, int]
DRAWN_FACTOR = (1.1, 1.8)  # each side of a drawn box = mass box side × U(lo, hi), per axis
BOX_STREAM = 2  # the random stream of drawn boxes (the generator uses 0 for canvases, 1 for mammograms)


def box_rng(data_seed: int, key: object) -> np.random.Generator:
    """The random stream of one mass's drawn box: seeded by the data seed and the mass's ROI id."""
    return np.random.default_rng(np.random.SeedSequence([int(data_seed), BOX_STREAM,
                                                         zlib.crc32(str(key).encode())]))


def draw_box(mass_box: Box, shape: tuple[int, int], rng: np.random.Generator,
             factor: tuple[float, float] = DRAWN_FACTOR) -> Box:
    """A box around a mass as a person or a detector draws it (see the module docstring).

    Args:
        mass_box: the mass's bounding box `(x0, y0, x1, y1)`, inclusive.
        shape: (H, W) of the image the box lies in.
        rng: the mass's stream, from `box_rng`.
        factor: (lo, hi) of the uniform side factor; lo >= 1.

    Returns:
        `(x0, y0, x1, y1)` inclusive, inside the image, containing `mass_box`.
    """
    lo, hi = factor
    if not 1 <= lo <= hi:
        raise UserError(f"drawn-box factor must satisfy 1 <= lo <= hi, got {factor}")
    H, W = shape
    x0, y0, x1, y1 = (int(v) for v in mass_box)
    if not (0 <= x0 <= x1 < W and 0 <= y0 <= y1 < H):
        raise UserError(f"mass box {mass_box} must lie inside an image of shape {shape}")
    f = rng.uniform(lo, hi, 2)  # (fx, fy), independent of the mass's size
    u = rng.random(2)  # where the mass sits inside the box, per axis
    out = []
    for (a, b, n), fk, uk in zip(((x0, x1, W), (y0, y1, H)), f, u):
        side = b - a + 1
        big = max(int(np.floor(fk * side + 0.5)), side)
        slack = big - side  # the box's pixels that are not the mass's
        start = a - min(int(uk * (slack + 1)), slack)  # uniform over the slack + 1 positions
        end = start + big - 1
        if start < 0:  # shift back inside, keeping the size
            start, end = 0, end - start
        if end > n - 1:
            start, end = start - (end - (n - 1)), n - 1
        out.append((max(start, 0), end))  # a box larger than the image is clipped to it
    (bx0, bx1), (by0, by1) = out
    return bx0, by0, bx1, by1


def mass_rng(boxes: str, data_seed: int, key: object) -> np.random.Generator | None:
    """What a loader passes to `mass_to_roi` as `box_rng`: the mass's stream for drawn boxes, else None."""
    return box_rng(data_seed, key) if boxes == "drawn" else None
