"""The INbreast loader: OsiriX XML masses joined to their DICOM mammograms, one ROI per mass.

Layout: `AllDICOMs/<FileID>_<PatientHash>_MG_<L|R>_<CC|ML>_ANON.dcm`, `AllXML/<FileID>.xml`
(Apple plists; ROIs named "Mass" are masses), `INbreast.csv` (`;`-separated). As the authors do,
right breasts are mirrored (`mirror_right`), each mass polygon is rasterised separately
(outline + fill), masses are ordered by numeric FileID then XML order, and the first `n_train`
masses (default: half, i.e. 58 of 116) are the training split. [ZX18 §4]

See: docs/data.md (INbreast), tests/data/test_data_loaders.py.
"""
from __future__ import annotations

import plistlib
import re
from pathlib import Path

import numpy as np

from ..config import check_choice
from ..errors import UserError
from .boxes import mass_rng
from .errors import DataFormatError, WarningCounter, csv_records
from .image_io import read_dicom
from .preprocess import mass_to_roi
from .raster import rasterize_polygon

_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_POINT = re.compile(r"\(\s*" + _NUMBER + r"\s*,\s*" + _NUMBER)  # "(x, y)" or "(x, y, z)"
INBREAST_CSV_COLUMNS = ("File Name", "Laterality", "View")


def parse_point(text: object, source: str) -> tuple[float, float]:
    """Parse an OsiriX point string such as `"(1563.400024, 2094.010010)"` into (x, y)."""
    if not isinstance(text, str):
        raise DataFormatError(f"{source}: a Point_px entry is {type(text).__name__}, expected a string '(x, y)'")
    match = _POINT.search(text)
    if match is None:
        raise DataFormatError(f"{source}: cannot read the point {text[:40]!r}; expected '(x, y)' with two numbers")
    x, y = float(match.group(1)), float(match.group(2))
    if not (np.isfinite(x) and np.isfinite(y)):
        raise DataFormatError(f"{source}: point {text[:40]!r} is not finite")
    return x, y


def parse_inbreast_xml(data: bytes, source: str = "<xml>") -> list[dict]:
    """Read every ROI of an OsiriX XML export.

    Args:
        data: the file's bytes.
        source: name used in error messages.

    Returns:
        list of `{"name": str, "points": (K, 2) float64 (x, y)}` in file order.

    Raises:
        DataFormatError: not a plist, or a structure other than Images → ROIs → Point_px.
    """
    try:
        plist = plistlib.loads(data, fmt=plistlib.FMT_XML)
    except Exception as e:  # ExpatError, ValueError, TypeError, binascii.Error on damaged files
        raise DataFormatError(f"{source}: malformed OsiriX XML ({type(e).__name__}: {e}); "
                              f"re-copy the file from AllXML/") from e
    images = plist.get("Images") if isinstance(plist, dict) else None
    if not isinstance(images, list):
        raise DataFormatError(f"{source}: expected a plist dict with an 'Images' array (OsiriX ROI export)")
    rois = []
    for image in images:
        items = image.get("ROIs", []) if isinstance(image, dict) else None
        if not isinstance(items, list):
            raise DataFormatError(f"{source}: 'ROIs' must be an array of dicts")
        for roi in items:
            if not isinstance(roi, dict) or not isinstance(roi.get("Name", ""), str):
                raise DataFormatError(f"{source}: every ROI must be a dict with a string 'Name'")
            points = roi.get("Point_px", [])
            if not isinstance(points, list):
                raise DataFormatError(f"{source}: ROI {roi.get('Name')!r} has a Point_px that is not an array")
            pts = np.array([parse_point(p, source) for p in points], dtype=np.float64).reshape(-1, 2)
            rois.append({"name": roi.get("Name", "").strip(), "points": pts})
    return rois


def parse_inbreast_csv(text: str, source: str = "INbreast.csv") -> list[dict]:
    """Read INbreast.csv (`;`-separated) into row dicts; needs the columns File Name, Laterality, View.

    Raises:
        DataFormatError: missing columns or a File Name that is not a number.
    """
    out = []
    for i, rec in csv_records(text, source, INBREAST_CSV_COLUMNS, delimiter=";",
                              hint=f"; the header must contain {list(INBREAST_CSV_COLUMNS)} separated by ';'"):
        if not rec["File Name"].isdigit():
            raise DataFormatError(f"{source}, line {i}: File Name {rec['File Name']!r} is not a numeric FileID")
        out.append(rec)
    return out


def image_mass_masks(pixels: np.ndarray, polygons: list[np.ndarray], right: bool, *, mirror_right: bool = True,
                     raster: str = "outline_fill", warn: WarningCounter | None = None,
                     source: str = "") -> tuple[np.ndarray, list[np.ndarray | None]]:
    """Full-size masks of one image's masses, in the orientation the ROIs are cut from.

    Each polygon is clamped into the image (a counted warning) and rasterised separately; a right
    breast's image and masks are then flipped left-right when `mirror_right` is on, as the authors
    do (`prepmaskim.m`). A mass entirely outside the image is skipped (None) with a counted warning.

    Returns:
        (pixels (H, W), possibly mirrored; list of (H, W) bool masks or None per polygon).
    """
    warn = warn if warn is not None else WarningCounter()
    H, W = pixels.shape
    flip = right and mirror_right
    masks: list[np.ndarray | None] = []
    for k, poly in enumerate(polygons, start=1):
        poly = np.asarray(poly, dtype=np.float64)
        outside = (poly[:, 0] < 0) | (poly[:, 0] > W - 1) | (poly[:, 1] < 0) | (poly[:, 1] > H - 1)
        if outside.all():
            warn.add("mass_outside_image", f"{source} mass {k}: every point lies outside the {W}x{H} image; skipped")
            masks.append(None)
            continue
        if outside.any():
            warn.add("points_clamped", f"{source} mass {k}: {int(outside.sum())} points outside the image clamped")
            poly = np.clip(poly, 0, [W - 1, H - 1])
        mask = rasterize_polygon(poly, (H, W), raster)
        masks.append(mask[:, ::-1] if flip else mask)  # rasterise, then flip: as the authors do
    return (pixels[:, ::-1] if flip else pixels), masks


def image_mass_rois(pixels: np.ndarray, polygons: list[np.ndarray], right: bool, *, mirror_right: bool = True,
                    raster: str = "outline_fill", warn: WarningCounter | None = None, source: str = "",
                    roi_ids: list | None = None, box_seed: int = 0,
                    **pipeline) -> list[tuple[np.ndarray, np.ndarray, tuple] | None]:
    """The ROIs of one image's masses; shared by the file loader and the in-memory generator.

    With `boxes="drawn"` in `pipeline`, mass k's box is drawn from `box_rng(box_seed, roi_ids[k])`.

    Returns:
        per polygon, (roi (1, 40, 40) float32, label (40, 40) int64, crop box), or None for a
        skipped mass (see `image_mass_masks`).
    """
    pixels, masks = image_mass_masks(pixels, polygons, right, mirror_right=mirror_right, raster=raster, warn=warn,
                                     source=source)
    ids = roi_ids if roi_ids is not None else list(range(1, len(masks) + 1))
    boxes = pipeline.get("boxes", "tight")
    return [None if m is None else mass_to_roi(pixels, m, box_rng=mass_rng(boxes, box_seed, key), **pipeline)
            for m, key in zip(masks, ids)]


def _find_root(path: Path) -> Path:
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such folder; inbreast:PATH needs the INbreast release folder "
                                f"holding AllDICOMs/, AllXML/ and INbreast.csv")
    for cand in [path, *sorted(p for p in path.iterdir() if p.is_dir())]:
        if (cand / "AllXML").is_dir() and (cand / "AllDICOMs").is_dir():
            return cand
    raise FileNotFoundError(f"{path}: no AllXML/ and AllDICOMs/ folders here or one level down; point "
                            f"inbreast:PATH at the INbreast release folder")


def load_inbreast(path: str | Path, *, split_order: str = "file_id", n_train: int | None = None,
                  mirror_right: bool = True, raster: str = "outline_fill", warn: WarningCounter | None = None,
                  box_seed: int = 0, **pipeline) -> list[dict]:
    """Load one ROI per INbreast mass.

    Args:
        path: the release folder (or its parent).
        split_order: `"file_id"` (numeric FileID order; default) or `"csv"` (INbreast.csv row order).
        n_train: masses in the training split; default half of them, rounded up (58 of 116).
        mirror_right: flip right breasts left↔right, as the authors do.
        raster: polygon rule, `"outline_fill"` (authors') or `"even_odd"`.
        warn: counter for repaired or skipped masses.
        box_seed: seeds the drawn boxes (with `boxes="drawn"`), one stream per ROI id.
        **pipeline (Any): `mass_to_roi` options (boxes, crop_scale, label_resize, clahe_hist_range,
            gt_dilate_px).

    Returns:
        list of samples `{"image", "label", "split", "meta"}` in split order. A patient whose masses
        fall in both splits is a counted warning.
    """
    check_choice("split_order", split_order)
    warn = warn if warn is not None else WarningCounter()
    root = _find_root(Path(path))
    xmls = {p.stem: p for p in (root / "AllXML").glob("*.xml") if p.stem.isdigit()}
    if not xmls:
        raise FileNotFoundError(f"{root / 'AllXML'}: no <FileID>.xml files")
    ids = sorted(xmls, key=int)
    if split_order == "csv":
        csv_path = root / "INbreast.csv"
        if not csv_path.is_file():
            raise FileNotFoundError(f"{csv_path}: missing; split_order='csv' needs INbreast.csv")
        rows = parse_inbreast_csv(csv_path.read_text(errors="replace"), str(csv_path))
        order = [r["File Name"] for r in rows]
        ids = [i for i in dict.fromkeys(order) if i in xmls] + [i for i in ids if i not in set(order)]
    samples = []
    for file_id in ids:
        source = str(xmls[file_id])
        masses = [r for r in parse_inbreast_xml(xmls[file_id].read_bytes(), source) if r["name"] == "Mass"]
        polygons = []
        for r in masses:
            if len(r["points"]) < 3:
                warn.add("mass_not_polygon", f"{source}: a Mass ROI with {len(r['points'])} point(s); skipped")
            else:
                polygons.append(r["points"])
        if not polygons:
            continue
        dicoms = sorted((root / "AllDICOMs").glob(f"{file_id}_*.dcm"))
        if not dicoms:
            warn.add("dicom_missing", f"no AllDICOMs/{file_id}_*.dcm for {source}; its masses skipped",
                     len(polygons))
            continue
        pixels, info = read_dicom(dicoms[0])
        parts = dicoms[0].stem.split("_")
        right = "_R_" in dicoms[0].name
        rois = image_mass_rois(pixels, polygons, right, mirror_right=mirror_right, raster=raster, warn=warn,
                               source=source, roi_ids=[int(file_id) * 10 + k for k in range(1, len(polygons) + 1)],
                               box_seed=box_seed, **pipeline)
        for k, item in enumerate(rois, start=1):
            if item is None:
                continue
            roi, label, box = item
            meta = {"roi_id": int(file_id) * 10 + k, "file_id": file_id, "mass_index": k,
                    "patient": parts[1] if len(parts) > 1 else "", "laterality": "R" if right else "L",
                    "view": info["view"] or (parts[4] if len(parts) > 4 else ""), "box": list(box),
                    "mirrored": bool(right and mirror_right), "source": dicoms[0].name}
            samples.append({"image": roi, "label": label, "meta": meta})
    if not samples:
        raise DataFormatError(f"{root}: no usable Mass ROI in AllXML/*.xml")
    n_train = (len(samples) + 1) // 2 if n_train is None else int(n_train)
    if not 0 < n_train <= len(samples):
        raise UserError(f"n_train={n_train} must be in 1..{len(samples)} (masses found)")
    for i, s in enumerate(samples):
        s["split"] = "train" if i < n_train else "test"
    by_split = {}
    for s in samples:
        by_split.setdefault(s["meta"]["patient"], set()).add(s["split"])
    for patient, splits in by_split.items():
        if len(splits) > 1:
            warn.add("patient_in_both_splits", f"patient {patient} has masses in train and test")
    return samples
