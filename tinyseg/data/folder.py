"""The plain-folder loader, for any data set with one mass per image.

Layout:

    images/<name>.png|.npy|.dcm     the image (any size, greyscale)
    masks/<name>.png|.npy           its mass mask (foreground = above half the mask's maximum)
    split.csv                       header `name,split`; split is train, val or test

Rows are taken in `split.csv` order; names match by file stem. Each image gives one ROI, cut from
the mask's bounding box like every other loader (`roi="box"`), or the whole image when the files
already are ROIs (`roi="whole"`). Explicit `val` rows replace the automatic validation split.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from ..config import check_choice
from ..errors import UserError
from .boxes import mass_rng
from .errors import DataFormatError, WarningCounter
from .image_io import read_array
from .preprocess import mass_to_roi

SPLITS = ("train", "val", "test")
DRAWN_WHOLE = ("boxes='drawn' needs each mass's outline to draw a box around it, but roi='whole' takes every "
               "image as an ROI already cut; use boxes='tight' (--boxes tight), or roi='box' with full images")


def parse_split_csv(text: str, source: str = "split.csv") -> list[tuple[str, str]]:
    """Read `name,split` rows (header required; split in train/val/test; names unique).

    Raises:
        DataFormatError: wrong header, ragged row, unknown split, duplicate or empty name.
    """
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as e:
        raise DataFormatError(f"{source}: malformed CSV ({e})") from e
    if not rows or [h.strip().lower() for h in rows[0]] != ["name", "split"]:
        raise DataFormatError(f"{source}: the first line must be the header 'name,split'")
    out, seen = [], set()
    for i, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != 2:
            raise DataFormatError(f"{source}, line {i}: expected 2 fields 'name,split', got {len(row)}")
        name, split = row[0].strip(), row[1].strip().lower()
        if not name or split not in SPLITS:
            raise DataFormatError(f"{source}, line {i}: need a name and a split in {SPLITS}, got {row!r}")
        stem = Path(name).stem if Path(name).suffix.lower() in (".png", ".npy", ".dcm") else name
        if stem in seen:
            raise DataFormatError(f"{source}, line {i}: duplicate name {stem!r}")
        seen.add(stem)
        out.append((stem, split))
    if not out:
        raise DataFormatError(f"{source}: no rows after the header")
    return out


def _find(folder: Path, stem: str) -> Path | None:
    for suffix in (".png", ".npy", ".dcm", ".PNG", ".NPY", ".DCM"):
        if (folder / (stem + suffix)).is_file():
            return folder / (stem + suffix)
    return None


def load_folder(path: str | Path, *, roi: str = "box", warn: WarningCounter | None = None, box_seed: int = 0,
                **pipeline) -> list[dict]:
    """Load `images/`, `masks/` and `split.csv` (see the module docstring).

    Args:
        path: the folder.
        roi: `"box"` (crop the mask's bounding box × crop_scale; default) or `"whole"`.
        warn: counter for skipped images (empty masks).
        box_seed: seeds the drawn boxes (with `boxes="drawn"`; only with `roi="box"`), one stream per name.
        **pipeline (Any): `mass_to_roi` options.

    Returns:
        list of samples `{"image", "label", "split", "meta"}` in split.csv order.
    """
    warn = warn if warn is not None else WarningCounter()
    root = Path(path)
    for need in ("images", "masks", "split.csv"):
        if not (root / need).exists():
            raise FileNotFoundError(f"{root}: missing {need}; folder:PATH needs images/, masks/ and split.csv "
                                    f"(header 'name,split')")
    check_choice("roi", roi)
    if roi == "whole" and pipeline.get("boxes", "tight") == "drawn":
        raise UserError(DRAWN_WHOLE)
    samples = []
    for stem, split in parse_split_csv((root / "split.csv").read_text(errors="replace"), str(root / "split.csv")):
        ip, mp = _find(root / "images", stem), _find(root / "masks", stem)
        if ip is None or mp is None:
            raise FileNotFoundError(f"{root}: split.csv names {stem!r} but "
                                    f"{'images/' if ip is None else 'masks/'}{stem}.png|.npy is missing")
        image, mask = read_array(ip), read_array(mp)
        if image.shape != mask.shape:
            raise DataFormatError(f"{ip.name} {image.shape} and {mp.name} {mask.shape} differ in size")
        top = float(mask.max())
        if top <= 0:
            warn.add("empty_mask", f"{mp}: no foreground; image skipped")
            continue
        mask = mask > top / 2
        box = (0, 0, image.shape[1] - 1, image.shape[0] - 1) if roi == "whole" else None
        x, y, b = mass_to_roi(image, mask, box=box, box_rng=mass_rng(pipeline.get("boxes", "tight"), box_seed, stem),
                              **({k: v for k, v in pipeline.items() if k != "crop_scale"} if roi == "whole"
                                 else pipeline))
        samples.append({"image": x, "label": y, "split": split,
                        "meta": {"roi_id": stem, "source": ip.name, "box": list(b)}})
    if not any(s["split"] == "train" for s in samples):
        raise DataFormatError(f"{root / 'split.csv'}: no usable training image")
    return samples
