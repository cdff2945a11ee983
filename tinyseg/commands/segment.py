"""`tinyseg segment`: segment a mass in a DICOM, PNG or NPY image with a trained run.

The ROI (``--roi x0,y0,x1,y1`` in pixels, or the whole image) goes through exactly the
training pipeline — extraction, resize to 40×40, enhancement, the run's own normalisation —
the 40×40 prediction is resized back and pasted into a zero mask the size of the input, and an
overlay PNG at the input's size is written next to the mask.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..config import CHOICES
from ..errors import UserError

HELP = "segment a mass in a DICOM, PNG or NPY image with a trained run"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory written by `tinyseg train`")
    p.add_argument("image", help="DICOM (.dcm), PNG or NPY image")
    p.add_argument("--roi", default=None, help="x0,y0,x1,y1 box around the mass (default: the whole image)")
    p.add_argument("--out", required=True, help="mask PNG to write (the overlay goes to <out>_overlay.png)")
    p.add_argument("--device", choices=CHOICES["device"], default="cpu")


def parse_roi(text: str | None) -> tuple[int, int, int, int] | None:
    """'x0,y0,x1,y1' → a box; None stays None."""
    if text is None:
        return None
    try:
        x0, y0, x1, y1 = (int(round(float(v))) for v in text.split(","))
    except ValueError:
        raise UserError(f"--roi must be four numbers x0,y0,x1,y1, got {text!r}.") from None
    if x1 <= x0 or y1 <= y0:
        raise UserError(f"--roi {text!r} is empty: it needs x1 > x0 and y1 > y0.")
    return x0, y0, x1, y1


def run(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..data import paste_mask, prepare_roi, read_image
    from ..runs import load_run
    from ..utils import atomic_path

    r = load_run(args.run, device=args.device)
    path = Path(args.image)
    if not path.exists():
        raise FileNotFoundError(f"image {path} not found.")
    image = read_image(path)
    roi, box = prepare_roi(image, parse_roi(args.roi))
    mask40 = r.predict(roi[None])[0]
    mask = paste_mask(mask40, box, image.shape)
    out = Path(args.out)
    with atomic_path(out) as tmp:
        plt.imsave(tmp, (mask > 0).astype(np.uint8) * 255, cmap="gray", vmin=0, vmax=255, format="png")
    overlay = out.with_name(out.stem + "_overlay.png")
    lo, hi = np.percentile(image, [1, 99])
    rgb = np.repeat(np.clip((image - lo) / max(hi - lo, 1e-12), 0, 1)[..., None], 3, axis=2)
    rgb[mask > 0] = 0.6 * rgb[mask > 0] + 0.4 * np.array([1.0, 0.2, 0.2])
    with atomic_path(overlay) as tmp:
        plt.imsave(tmp, rgb, format="png")
    print(f"mask: {out} ({int((mask > 0).sum())} mass pixels of {mask.size}); overlay: {overlay}")
    return 0
