"""The CBIS-DDSM loader (an extension: CBIS-DDSM is not the paper's DDSM-BCRP).

`mass_case_description_{train,test}_set.csv` rows name paths like
`Mass-Training_P_00001_LEFT_CC/<StudyUID>/<SeriesUID>/000000.dcm`, while NBIA downloads store
files in descriptive folders (`.../1.000000-full mammogram images-24515/1-1.dcm`). The loader
walks the tree once reading headers only, indexes files by SeriesInstanceUID (falling back to the
top folder name), and tells the mask from the cropped image by size and values, which handles
the known quirks: swapped crop/mask paths, trailing newlines, and masks whose size does not
match their image (skipped with a counted warning).

See: docs/data.md (CBIS-DDSM), tests/data/test_data_loaders.py.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .boxes import mass_rng
from .errors import DataFormatError, WarningCounter, csv_records
from .image_io import read_dicom
from .preprocess import mass_to_roi

CBIS_COLUMNS = ("patient_id", "left or right breast", "image view", "abnormality id", "image file path",
                "cropped image file path", "ROI mask file path")
CBIS_CSVS = {"train": "mass_case_description_train_set.csv", "test": "mass_case_description_test_set.csv"}


def parse_cbis_csv(text: str, source: str = "<csv>") -> list[dict]:
    """Read a CBIS-DDSM mass description CSV into row dicts (fields stripped, quirks included).

    Raises:
        DataFormatError: missing columns, a ragged row, an abnormality id that is not a number,
            or an empty image path.
    """
    out = []
    for i, rec in csv_records(text, source, CBIS_COLUMNS,
                              hint="; is this a CBIS-DDSM *mass* description CSV (calc CSVs are not supported)?"):
        if not rec["abnormality id"].isdigit():
            raise DataFormatError(f"{source}, row {i}: abnormality id {rec['abnormality id']!r} is not a number")
        for col in ("image file path", "ROI mask file path"):
            if not rec[col]:
                raise DataFormatError(f"{source}, row {i}: empty {col!r}")
        if rec.get("abnormality type", "mass").lower() != "mass":
            continue
        out.append(rec)
    return out


def index_dicoms(root: Path, warn: WarningCounter) -> tuple[dict[str, list], dict[str, list]]:
    """Header-only walk: {SeriesInstanceUID: [(path, info)]} and {folder name: [(path, info)]}.

    Unreadable files are counted and left out (a row that needs one is then skipped).
    """
    by_series: dict[str, list] = {}
    by_folder: dict[str, list] = {}
    for path in sorted(root.rglob("*.dcm")):
        try:
            _, info = read_dicom(path, header_only=True)
        except DataFormatError as e:
            warn.add("unreadable_dicom", str(e))
            continue
        by_series.setdefault(info["series_uid"], []).append((path, info))
        for folder in path.relative_to(root).parts[:-1]:
            by_folder.setdefault(folder, []).append((path, info))
    return by_series, by_folder


def _candidates(csv_path: str, by_series: dict, by_folder: dict) -> list:
    parts = csv_path.replace("\\", "/").split("/")
    for part in parts[1:]:
        if part in by_series:
            return by_series[part]
    return by_folder.get(parts[0], [])


def load_cbis(path: str | Path, *, mirror_right: bool = False, warn: WarningCounter | None = None,
              box_seed: int = 0, **pipeline) -> list[dict]:
    """Load one ROI per CBIS-DDSM mass row; the train CSV gives the training split, the test CSV the test.

    Args:
        path: folder holding the two mass description CSVs and the DICOM tree (any depth).
        mirror_right: flip right breasts (off: the authors mirrored INbreast only).
        warn: counter for skipped rows.
        box_seed: seeds the drawn boxes (with `boxes="drawn"`), one stream per ROI id.
        **pipeline (Any): `mass_to_roi` options.

    Returns:
        list of samples `{"image", "label", "split", "meta"}`: train rows then test rows, CSV order.
    """
    warn = warn if warn is not None else WarningCounter()
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder; cbis:PATH needs the folder with "
                                f"{CBIS_CSVS['train']}, {CBIS_CSVS['test']} and the CBIS-DDSM DICOM tree")
    csvs = {}
    for split, name in CBIS_CSVS.items():
        found = sorted(root.rglob(name))
        if not found:
            raise FileNotFoundError(f"{root}: no {name}; download both mass description CSVs from TCIA")
        csvs[split] = found[0]
    by_series, by_folder = index_dicoms(root, warn)
    images: dict[Path, np.ndarray] = {}
    samples = []
    for split, csv_path in csvs.items():
        for r in parse_cbis_csv(csv_path.read_text(errors="replace"), str(csv_path)):
            tag = f"{csv_path.name}: {r['patient_id']} {r['left or right breast']} {r['image view']} " \
                  f"abnormality {r['abnormality id']}"
            full = _candidates(r["image file path"], by_series, by_folder)
            if not full:
                warn.add("image_missing", f"{tag}: full image not found; row skipped")
                continue
            full_path, full_info = full[0]
            if full_path not in images:
                images = {full_path: read_dicom(full_path)[0]}  # rows of one image are consecutive
            pixels = images[full_path]
            # The mask is the file of the full image's size in either ROI path (they are sometimes swapped).
            cands = _candidates(r["ROI mask file path"], by_series, by_folder) + \
                _candidates(r["cropped image file path"], by_series, by_folder)
            same = [(p, i) for p, i in dict(cands).items() if (i["rows"], i["columns"]) == pixels.shape]
            same.sort(key=lambda pi: "mask" not in pi[1]["series_description"].lower())
            if not same:
                warn.add("mask_size_mismatch", f"{tag}: no ROI mask of the image size {pixels.shape}; row skipped")
                continue
            mask = read_dicom(same[0][0])[0] > 0
            if not mask.any():
                warn.add("empty_mask", f"{tag}: the ROI mask is empty; row skipped")
                continue
            right = r["left or right breast"].upper().startswith("R")
            img = pixels[:, ::-1] if right and mirror_right else pixels
            msk = mask[:, ::-1] if right and mirror_right else mask
            roi_id = f"{r['patient_id']}_{r['left or right breast']}_{r['image view']}_{r['abnormality id']}"
            rng = mass_rng(pipeline.get("boxes", "tight"), box_seed, roi_id)
            roi, label, box = mass_to_roi(img, msk, box_rng=rng, **pipeline)
            meta = {"roi_id": roi_id,
                    "patient": r["patient_id"], "laterality": "R" if right else "L", "view": r["image view"],
                    "box": list(box), "mirrored": bool(right and mirror_right),
                    "source": str(full_path.relative_to(root)),
                    "shape": r.get("mass shape", ""), "margin": r.get("mass margins", "")}
            samples.append({"image": roi, "label": label, "split": split, "meta": meta})
    if not any(s["split"] == "train" for s in samples) or not any(s["split"] == "test" for s in samples):
        raise DataFormatError(f"{root}: no usable mass in the train or the test CSV (see the warnings)")
    return samples
