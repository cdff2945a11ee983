"""Samples from ROI canvases: the `phantom` specs (generated in memory) and `npz:PATH` files.

Both run every canvas through `preprocess.mass_to_roi`, so `npz:` of a file written by
`tinyseg phantom --format npz` gives exactly the ROIs of the matching `phantom` spec.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import UserError
from .boxes import mass_rng
from .errors import DataFormatError, WarningCounter
from .mammogram import SyntheticMammogram
from .phantom import get_preset, generate_rois
from .preprocess import mass_to_roi


def canvas_samples(images: list[np.ndarray] | np.ndarray, masks: list[np.ndarray] | np.ndarray, splits: list[str],
                   metas: list[dict], warn: WarningCounter | None = None, box_seed: int = 0, **pipeline) -> list[dict]:
    """Run canvases with one mass each through the pipeline; empty masks are counted and skipped.

    Drawn boxes (`boxes="drawn"`) come from `box_rng(box_seed, "<preset>/<index>")`.
    """
    warn = warn if warn is not None else WarningCounter()
    boxes = pipeline.get("boxes", "tight")
    out = []
    for image, mask, split, meta in zip(images, masks, splits, metas):
        if not mask.any():
            warn.add("empty_mask", f"ROI {meta.get('roi_id', meta.get('index'))}: empty mask; skipped")
            continue
        rng = mass_rng(boxes, box_seed, f"{meta.get('preset', '')}/{meta.get('roi_id', meta.get('index'))}")
        roi, label, box = mass_to_roi(image, mask.astype(bool), box_rng=rng, **pipeline)
        out.append({"image": roi, "label": label, "split": split, "meta": {**meta, "box": list(box)}})
    return out


def phantom_samples(preset: str = "inbreast", data_seed: int = 0, difficulty: str | None = None,
                    preset_overrides: dict | None = None, warn: WarningCounter | None = None, **pipeline) -> list[dict]:
    """Generate a preset in memory and preprocess it (the `phantom:` specs).

    Drawn boxes are cut from larger canvases (`drawn_canvas`), so that no box is clipped by the
    canvas edge and a box's size never depends on its mass's; tight boxes keep the 192×192 canvases.
    """
    p = get_preset(preset, difficulty=difficulty, **(preset_overrides or {}))
    if pipeline.get("boxes", "tight") == "drawn":
        p = replace(p, canvas=p.drawn_canvas)
    rois = generate_rois(p, data_seed)
    metas = [{"roi_id": r.meta["index"], **r.meta} for r in rois]
    splits = ["train" if r.meta["index"] < p.n_train else "test" for r in rois]
    return canvas_samples([r.image for r in rois], [r.mask for r in rois], splits, metas, warn, box_seed=data_seed,
                          **pipeline)


def read_npz(path: str | Path) -> dict:
    """Open and validate a canvas npz: images (n, H, W), masks (n, H, W), split (n,) train/val/test.

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: not an npz, missing keys, mismatched shapes, non-finite images, bad splits.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; npz:PATH needs a file written by "
                                f"`tinyseg phantom --format npz` (keys images, masks, split)")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as e:  # BadZipFile, ValueError, EOFError on damaged files
        raise DataFormatError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from e
    missing = [k for k in ("images", "masks", "split") if k not in data]
    if missing:
        raise DataFormatError(f"{path}: missing array(s) {missing}; expected images (n, H, W), masks (n, H, W), "
                              f"split (n,)")
    images, masks, split = data["images"], data["masks"], data["split"].astype(str)
    if images.ndim != 3 or masks.shape != images.shape or split.shape != (len(images),):
        raise DataFormatError(f"{path}: images {images.shape}, masks {masks.shape} and split {split.shape} "
                              f"must be (n, H, W), (n, H, W) and (n,)")
    if images.dtype.kind not in "uif" or (images.dtype.kind == "f" and not np.isfinite(images).all()):
        raise DataFormatError(f"{path}: images must be finite numbers, got dtype {images.dtype}")
    if not np.isin(masks, [0, 1]).all():
        raise DataFormatError(f"{path}: masks must hold only 0 and 1")
    bad = sorted(set(split) - {"train", "val", "test"})
    if bad:
        raise DataFormatError(f"{path}: split values {bad} are not train, val or test")
    data["split"] = split
    return data


def check_npz_drawn(path: str | Path, data: dict | None = None) -> None:
    """Refuse drawn boxes on an npz whose canvases were not written for them (`write_npz(boxes="drawn")`).

    Other canvases are cut tightly around the mass (192×192 for the phantom), with no room for a box
    drawn around it; arrays from elsewhere may even be ROIs already.
    """
    if data is None:
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {"boxes": z["boxes"]} if "boxes" in z.files else {}
        except Exception:  # an unreadable file gets read_npz's error when it is built
            return
    if str(data.get("boxes", "tight")) != "drawn":
        raise UserError(f"{path}: boxes='drawn' needs canvases with room for a box around each mass, and these "
                        f"were not written for it. Write them with `tinyseg phantom --format npz --boxes drawn`, "
                        f"use --data phantom --boxes drawn, or --boxes tight.")


def npz_samples(path: str | Path, warn: WarningCounter | None = None, **pipeline) -> tuple[list[dict], str]:
    """Samples of an `npz:PATH` file and its kind ("ddsm" when written from a DDSM preset)."""
    data = read_npz(path)
    n = len(data["images"])
    try:
        metas = json.loads(str(data["meta"])) if "meta" in data else [{"index": i} for i in range(n)]
        if not isinstance(metas, list) or len(metas) != n or not all(isinstance(m, dict) for m in metas):
            raise UserError("meta must be a list of one dict per image")
    except ValueError as e:
        raise DataFormatError(f"{path}: bad 'meta' array ({e})") from e
    metas = [{"roi_id": m.get("index", i), **m} for i, m in enumerate(metas)]
    if pipeline.get("boxes", "tight") == "drawn":
        check_npz_drawn(path, data)
    kind = str(data.get("kind", "inbreast"))
    return canvas_samples(data["images"], data["masks"], list(data["split"]), metas, warn, **pipeline), \
        ("ddsm" if kind == "ddsm" else "inbreast")


def mammogram_samples(mammograms: list[SyntheticMammogram], n_train: int, *, mirror_right: bool = True,
                      raster: str = "outline_fill", box_seed: int = 0, **pipeline) -> list[dict]:
    """In-memory ROIs of synthetic mammograms, by the INbreast loader's own per-image function.

    The reference for the file round trips: `load_inbreast` of `write_inbreast(mammograms)` must
    return exactly these ROIs (and `load_cbis(write_cbis(...))` those with `mirror_right=False`).
    """
    from .inbreast import image_mass_rois  # noqa: PLC0415  (avoids an import cycle)

    out = []
    for m in mammograms:
        polys = [d["polygon"] for d in m.masses]
        for k, item in enumerate(image_mass_rois(m.pixels, polys, m.laterality == "R", mirror_right=mirror_right,
                                                 raster=raster, box_seed=box_seed,
                                                 roi_ids=[int(m.file_id) * 10 + k for k in range(1, len(polys) + 1)],
                                                 **pipeline), start=1):
            roi, label, box = item
            out.append({"image": roi, "label": label, "split": "train" if len(out) < n_train else "test",
                        "meta": {"roi_id": int(m.file_id) * 10 + k, "box": list(box), **m.masses[k - 1]["meta"]}})
    return out
