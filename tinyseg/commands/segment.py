"""`tinyseg segment`: segment masses in DICOM, PNG or NPY images with a trained run.

    tinyseg segment RUN image.dcm --roi x0,y0,x1,y1 --out mask.png   # one box (default: the whole image)
    tinyseg segment RUN --boxes boxes.csv --out DIR                  # many boxes, one model load

Each box goes through exactly the training pipeline — crop in the image's stored integer type,
resize to 40×40, enhancement, the run's own normalisation — and the 40×40 prediction is resized
back and pasted into a zero mask the size of the image (an 8-bit PNG, 0 or 255). The overlay
(``--overlay``) shows the prediction in red on the image, by default on a crop around the box.

A full-field mammogram (about 3,000 × 4,800 16-bit pixels) is read once in its stored type and
only the box is converted to float, so one box costs well under a second and a few hundred MB.
"""
from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..config import CHOICES
from ..errors import UserError

HELP = "segment masses in DICOM, PNG or NPY images with a trained run (one box, or a CSV of boxes)"
BOX_COLUMNS = ("image", "x0", "y0", "x1", "y1")
SUMMARY_COLUMNS = ("id", "image", "x0", "y0", "x1", "y1", "mass_pixels", "mean_mass_probability", "status")
MASS_RGB = np.array([255, 51, 51])  # the prediction's colour in the overlay
BOX_RGB = np.array([255, 220, 0])  # the box's outline


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory written by `tinyseg train`")
    p.add_argument("image", nargs="?", default=None, help="DICOM (.dcm), PNG or NPY image (not with --boxes)")
    p.add_argument("--roi", default=None, help="x0,y0,x1,y1 box around the mass (default: the whole image)")
    p.add_argument("--boxes", default=None, metavar="CSV",
                   help="batch: a CSV with columns image,x0,y0,x1,y1 and optionally id; image paths are "
                        "relative to the CSV. --out is then a directory")
    p.add_argument("--out", required=True,
                   help="mask PNG to write (the overlay goes to <out>_overlay.png); with --boxes a directory")
    p.add_argument("--overlay", choices=CHOICES["overlay"], default="crop",
                   help="overlay PNG: a crop around the box with a margin (default), the full image, or none")
    p.add_argument("--device", choices=CHOICES["device"], default="cpu")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def parse_roi(text: str | None) -> tuple[int, int, int, int] | None:
    """'x0,y0,x1,y1' → a box; None stays None."""
    if text is None:
        return None
    try:
        x0, y0, x1, y1 = (int(round(float(v))) for v in text.split(","))
    except ValueError:
        raise UserError(f"--roi must be four numbers x0,y0,x1,y1, got {text!r}.") from None
    return check_box((x0, y0, x1, y1), f"--roi {text!r}")


def check_box(box: tuple[int, int, int, int], what: str) -> tuple[int, int, int, int]:
    """Refuse an empty box (x1 <= x0 or y1 <= y0), naming `what`."""
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        raise UserError(f"{what} is empty: it needs x1 > x0 and y1 > y0.")
    return box


def grey8(image: np.ndarray, lo: float, hi: float, rows: int = 256) -> np.ndarray:
    """The image as uint8 grey levels, [lo, hi] → [0, 255], a block of rows at a time.

    Only `rows` rows are ever float at once, so a 16-bit mammogram never gets a float copy.
    """
    out = np.empty(image.shape, np.uint8)
    scale = 255.0 / max(hi - lo, 1e-12)
    for i in range(0, image.shape[0], rows):
        block = (image[i:i + rows].astype(np.float32) - lo) * scale  # (rows, W)
        np.clip(block, 0, 255, out=block)
        out[i:i + rows] = block + 0.5
    return out


def overlay_rgb(image: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int], mode: str) -> np.ndarray:
    """An RGB uint8 picture of the prediction on the image: the box's surroundings or all of it.

    Args:
        image: (H, W) in its stored dtype.
        mask: (H, W), nonzero on the predicted mass (only inside the box).
        box: (x0, y0, x1, y1) inclusive, the crop the prediction was made on.
        mode: ``"crop"`` (the box plus a margin of half its larger side, at least 32 pixels)
            or ``"full"``.

    Returns:
        (h, w, 3) uint8.
    """
    H, W = image.shape
    x0, y0, x1, y1 = box
    if mode == "crop":
        m = max((max(x1 - x0, y1 - y0) + 1) // 2, 32)
        top, left = max(y0 - m, 0), max(x0 - m, 0)
        view = (slice(top, min(y1 + m + 1, H)), slice(left, min(x1 + m + 1, W)))
    else:
        top, left, view = 0, 0, (slice(0, H), slice(0, W))
    part = image[view]
    step = max(1, int(np.sqrt(part.size / 1e6)))  # percentiles from ≤ ~1 M pixels
    lo, hi = np.percentile(part[::step, ::step], [1, 99])
    rgb = np.repeat(grey8(part, lo, hi)[..., None], 3, axis=2)  # (h, w, 3)
    # Blend only inside the box: the mask is zero elsewhere.
    bx = rgb[y0 - top:y1 - top + 1, x0 - left:x1 - left + 1]
    inside = mask[y0:y1 + 1, x0:x1 + 1] > 0
    bx[inside] = (0.6 * bx[inside] + 0.4 * MASS_RGB).astype(np.uint8)
    bx[[0, -1], :] = BOX_RGB
    bx[:, [0, -1]] = BOX_RGB
    return rgb


def write_png(path: Path, array: np.ndarray) -> None:
    """Write a uint8 (H, W) or (H, W, 3) array as a PNG, atomically, with the user's umask."""
    from PIL import Image

    from ..utils import atomic_path

    with atomic_path(path) as tmp:
        # Level 1: a full-field mask or overlay compresses ~5× faster than at the default level,
        # and a mostly black mask still shrinks to a few tens of kB.
        Image.fromarray(array).save(tmp, format="PNG", compress_level=1)


class Segmenter:
    """One loaded run, applied to box after box: read, crop, predict, paste, write."""

    def __init__(self, run_dir: str, device: str, overlay: str) -> None:
        from ..runs import load_run

        self.run, self.overlay = load_run(run_dir, device=device), overlay
        self._cached: tuple[Path, np.ndarray] | None = None  # the last image read (rows often share one)

    def read(self, path: Path) -> np.ndarray:
        """The image in its stored dtype, read once for consecutive boxes on it."""
        from ..data.image_io import read_array

        if self._cached is None or self._cached[0] != path:
            self._cached = None  # free the previous image before reading the next
            self._cached = (path, read_array(path))
        return self._cached[1]

    def segment(self, image_path: Path, box: tuple[int, int, int, int] | None, out: Path,
                overlay_out: Path) -> dict[str, Any]:
        """Segment one box; writes the mask (and overlay) and returns the summary fields."""
        from ..data import paste_mask, prepare_roi

        image = self.read(image_path)
        roi, crop = prepare_roi(image, box)  # crops first: only the box becomes float
        p40 = self.run.predict_proba(roi[None])[0]  # (40, 40)
        mask40 = p40 > 0.5  # = Run.predict (argmax; a tie goes to the background)
        mask = paste_mask(mask40, crop, image.shape)  # (H, W) uint8 in {0, 1}
        n_mass = int(np.count_nonzero(mask[crop[1]:crop[3] + 1, crop[0]:crop[2] + 1]))
        np.multiply(mask, 255, out=mask)  # 0/255 in place: no second full-size copy
        write_png(out, mask)
        if self.overlay != "none":
            write_png(overlay_out, overlay_rgb(image, mask, crop, self.overlay))
        return {"mass_pixels": n_mass, "size": mask.size,
                "mean_mass_probability": float(p40[mask40].mean()) if mask40.any() else float("nan")}


def overlay_path(mask_path: Path) -> Path:
    return mask_path.with_name(mask_path.stem + "_overlay.png")


def run(args: argparse.Namespace) -> int:
    if args.boxes is not None:
        if args.image is not None or args.roi is not None:
            raise UserError("--boxes takes the images and boxes from the CSV: pass no image and no --roi.")
        return run_batch(args)
    if args.image is None:
        raise UserError("segment needs an IMAGE (with an optional --roi), or --boxes CSV.")
    box = parse_roi(args.roi)
    path = Path(args.image)
    if not path.exists():
        raise FileNotFoundError(f"image {path} not found.")
    seg = Segmenter(args.run, args.device, args.overlay)
    out = Path(args.out)
    r = seg.segment(path, box, out, overlay_path(out))
    print(f"mask: {out} ({r['mass_pixels']} mass pixels of {r['size']})"
          + (f"; overlay: {overlay_path(out)}" if args.overlay != "none" else ""))
    return 0


SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def read_boxes(path: Path) -> list[dict[str, str]]:
    """The rows of a boxes CSV, as dicts; the header must name image,x0,y0,x1,y1 (id optional)."""
    if not path.is_file():
        raise FileNotFoundError(f"boxes CSV {path} not found.")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in BOX_COLUMNS if c not in header]
        if missing:
            raise UserError(f"{path}: the header must name the columns {','.join(BOX_COLUMNS)} (and optionally id); "
                            f"missing {', '.join(missing)} in {','.join(header) or 'an empty file'}.")
        reader.fieldnames = header
        return [{k: (v or "").strip() for k, v in row.items() if k is not None} for row in reader]


def parse_row(row: dict[str, str], k: int, root: Path) -> tuple[str, Path, tuple[int, int, int, int]]:
    """(id, image path, box) of CSV row `k` (1-based), or a `UserError` naming what is wrong."""
    ident = row.get("id") or f"{Path(row['image']).stem}_{k}"
    if not SAFE_ID.match(ident):
        raise UserError(f"id {ident!r} is not a safe file name (letters, digits, '.', '_', '-').")
    if not row["image"]:
        raise UserError("the image column is empty.")
    try:
        box = tuple(int(round(float(row[c]))) for c in BOX_COLUMNS[1:])
    except ValueError:
        raise UserError(f"the box {','.join(row[c] for c in BOX_COLUMNS[1:])} is not four numbers.") from None
    return ident, root / row["image"], check_box(box, "the box")  # type: ignore[arg-type]


def run_batch(args: argparse.Namespace) -> int:
    """Every row of --boxes: masks and overlays under --out, and --out/segment.csv; 1 if any row failed."""
    from tqdm.auto import tqdm

    from ..utils import atomic_write_text

    csv_path, out = Path(args.boxes), Path(args.out)
    rows = read_boxes(csv_path)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; with --boxes it is a directory.")
    seg = Segmenter(args.run, args.device, args.overlay)  # one model load for every row
    summary, seen, failed = [], set(), 0
    bar = tqdm(rows, unit="box", file=sys.stderr, disable=args.quiet or not sys.stderr.isatty())
    for k, row in enumerate(bar, start=1):
        line = {"id": row.get("id", ""), "image": row.get("image", ""),
                **{c: row.get(c, "") for c in BOX_COLUMNS[1:]}, "mass_pixels": "", "mean_mass_probability": ""}
        try:
            ident, image, box = parse_row(row, k, csv_path.parent)
            if ident in seen:
                raise UserError(f"id {ident!r} appears twice; its masks would overwrite each other.")
            seen.add(ident)
            line["id"] = ident
            r = seg.segment(image, box, out / f"{ident}.png", out / f"{ident}_overlay.png")
            line.update(mass_pixels=r["mass_pixels"], mean_mass_probability=f"{r['mean_mass_probability']:.6f}",
                        status="ok")
        except (UserError, OSError) as e:  # a bad row or image: report it, go on with the others
            failed += 1
            line["status"] = f"error: {e}"
            bar.write(f"tinyseg segment: row {k} ({row.get('image', '')}): {e}", file=sys.stderr)
        summary.append(line)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(summary)
    atomic_write_text(out / "segment.csv", text.getvalue())
    print(f"segmented {len(rows) - failed} of {len(rows)} boxes into {out}"
          + (f"; {failed} failed (see {out / 'segment.csv'})" if failed else ""))
    return 1 if failed else 0
