"""Writing synthetic data in the real datasets' formats: INbreast, CBIS-DDSM, and tinyseg's npz.

The INbreast and CBIS writers reproduce the release layouts closely enough that the real loaders
read them, quirks included (CBIS rows with swapped crop/mask paths and trailing newlines), so the
round trips test the loaders on realistic files. Every file is written atomically.

See: docs/data.md (the synthetic generator, real datasets), tests/data/test_data_loaders.py.
"""
from __future__ import annotations

import csv
import io
import json
import os
import plistlib
from pathlib import Path

import numpy as np

from .image_io import write_dicom
from .mammogram import SyntheticMammogram
from .phantom import PhantomROI, Preset
from .preprocess import mask_box
from .raster import rasterize_polygon

INBREAST_CSV_HEADER = ["Patient ID", "Patient age", "Laterality", "View", "Acquisition date", "File Name", "ACR",
                       "Bi-Rads"]
CBIS_CSV_HEADER = ["patient_id", "breast_density", "left or right breast", "image view", "abnormality id",
                   "abnormality type", "mass shape", "mass margins", "assessment", "pathology", "subtlety",
                   "image file path", "cropped image file path", "ROI mask file path"]
NPZ_FORMAT = "tinyseg-phantom-npz-1"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file next to `path`, then rename it into place."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _roi_dict(name: str, points: np.ndarray, index: int, roi_type: int, pixels: np.ndarray, spacing: float) -> dict:
    """One OsiriX ROI with the statistics OsiriX stores, computed from the pixels it covers."""
    H, W = pixels.shape
    if len(points) >= 3:
        inside = pixels[rasterize_polygon(points, (H, W))].astype(np.float64)
    else:
        x, y = np.clip(np.rint(points[0]), 0, [W - 1, H - 1]).astype(int)
        inside = pixels[y:y + 1, x].astype(np.float64)
    cx, cy = points.mean(axis=0)
    return {"Area": float(inside.size * spacing ** 2), "Center": f"({cx * spacing:.6f}, {cy * spacing:.6f}, 0.000000)",
            "Dev": float(inside.std()), "IndexInImage": index, "Max": float(inside.max()),
            "Mean": float(inside.mean()), "Min": float(inside.min()), "Name": name, "NumberOfPoints": len(points),
            "Point_mm": [f"({x * spacing:.6f}, {y * spacing:.6f}, 0.000000)" for x, y in points],
            "Point_px": [f"({x:.6f}, {y:.6f})" for x, y in points], "Total": float(inside.sum()), "Type": roi_type}


def inbreast_dicom_name(m: SyntheticMammogram) -> str:
    """`<FileID>_<PatientHash>_MG_<L|R>_<CC|ML>_ANON.dcm` (INbreast spells MLO as ML in names)."""
    return f"{m.file_id}_{m.patient}_MG_{m.laterality}_{'ML' if m.view == 'MLO' else 'CC'}_ANON.dcm"


def write_inbreast(mammograms: list[SyntheticMammogram], out: str | os.PathLike, rle: bool = False) -> Path:
    """Write an INbreast-format folder: `AllDICOMs/`, `AllXML/` and `INbreast.csv`.

    XML files are OsiriX plists (`plistlib.dump(sort_keys=True)`) with one `Mass` ROI per mass
    plus distractor ROIs (a one-point calcification, sometimes a cluster polygon). ``rle=True``
    writes the DICOMs RLE Lossless.

    Returns:
        the output folder.
    """
    out = Path(out)
    (out / "AllDICOMs").mkdir(parents=True, exist_ok=True)
    (out / "AllXML").mkdir(exist_ok=True)
    rows = []
    for m in mammograms:
        write_dicom(out / "AllDICOMs" / inbreast_dicom_name(m), m.pixels, patient_id=m.patient,
                    laterality=m.laterality, view=m.view, spacing_mm=m.spacing_mm, entropy=[m.patient, m.file_id], rle=rle)
        rois = [(d["name"], d["points"], d["type"]) for d in m.distractors[:1]]
        rois += [("Mass", d["polygon"], 15) for d in m.masses] + [(d["name"], d["points"], d["type"])
                                                                  for d in m.distractors[1:]]
        plist = {"Images": [{"ImageIndex": 0, "NumberOfROIs": len(rois),
                             "ROIs": [_roi_dict(n, p, i, t, m.pixels, m.spacing_mm)
                                      for i, (n, p, t) in enumerate(rois)]}]}
        atomic_write_bytes(out / "AllXML" / f"{m.file_id}.xml", plistlib.dumps(plist, sort_keys=True))
        rows.append(["removed", "removed", m.laterality, m.view, "201001", m.file_id, str(m.acr), m.birads])
    text = io.StringIO()
    writer = csv.writer(text, delimiter=";", lineterminator="\n")
    writer.writerows([INBREAST_CSV_HEADER] + rows)
    atomic_write_bytes(out / "INbreast.csv", text.getvalue().encode())
    return out


def write_cbis(mammograms: list[SyntheticMammogram], out: str | os.PathLike, n_train: int, rle: bool = False) -> Path:
    """Write a CBIS-DDSM-like folder: NBIA-style DICOM tree plus the two mass description CSVs.

    The first `n_train` masses (in file-id order) are `Mass-Training`, the rest `Mass-Test`. CSV
    paths name `<folder>/<StudyUID>/<SeriesUID>/00000N.dcm` while the files sit in descriptive
    NBIA folders, so the loader must resolve them through the SeriesInstanceUID. Every fourth row
    swaps its crop and mask paths and every third mask path ends in a newline (CBIS quirks).
    ``rle=True`` writes the full mammograms RLE Lossless.
    """
    from pydicom.uid import generate_uid  # noqa: PLC0415  (lazy: pydicom only when writing)

    out = Path(out)
    rows: dict[str, list] = {"train": [], "test": []}
    n_seen = 0
    for i, m in enumerate(mammograms):
        if not m.masses:
            continue
        split = "train" if n_seen < n_train else "test"
        side = "LEFT" if m.laterality == "L" else "RIGHT"
        folder = f"Mass-{'Training' if split == 'train' else 'Test'}_P_{i + 1:05d}_{side}_{m.view}"
        study = generate_uid(entropy_srcs=[folder, "study"])
        series = generate_uid(entropy_srcs=[folder, "full"])
        d = out / "CBIS-DDSM" / folder / f"07-20-2016-DDSM-NA-{i + 1:05d}" / f"1.000000-full mammogram images-{i + 1}"
        d.mkdir(parents=True, exist_ok=True)
        write_dicom(d / "1-1.dcm", m.pixels, patient_id=f"P_{i + 1:05d}", laterality=m.laterality, view=m.view,
                    spacing_mm=m.spacing_mm, series_uid=series, study_uid=study,
                    series_description="full mammogram images", entropy=[folder, "full"], rle=rle)
        for k, mass in enumerate(m.masses, start=1):
            roi_folder = f"{folder}_{k}"
            roi_study = generate_uid(entropy_srcs=[roi_folder, "study"])
            roi_series = generate_uid(entropy_srcs=[roi_folder, "roi"])
            mask = rasterize_polygon(mass["polygon"], m.pixels.shape)
            x0, y0, x1, y1 = mask_box(mask)
            rd = out / "CBIS-DDSM" / roi_folder / f"07-21-2016-DDSM-NA-{i + 1:05d}" / f"1.000000-ROI mask images-{k}"
            rd.mkdir(parents=True, exist_ok=True)
            common = dict(patient_id=f"P_{i + 1:05d}", laterality=m.laterality, view=m.view, spacing_mm=m.spacing_mm,
                          series_uid=roi_series, study_uid=roi_study, series_description="ROI mask images")
            write_dicom(rd / "1-1.dcm", (mask * 255).astype(np.uint8), entropy=[roi_folder, "mask"], **common)
            write_dicom(rd / "1-2.dcm", m.pixels[y0:y1 + 1, x0:x1 + 1], entropy=[roi_folder, "crop"], **common)
            crop_path = f"{roi_folder}/{roi_study}/{roi_series}/000000.dcm"
            mask_path = f"{roi_folder}/{roi_study}/{roi_series}/000001.dcm"
            r = len(rows[split])
            if r % 4 == 3:
                crop_path, mask_path = mask_path, crop_path
            if r % 3 == 2:
                mask_path += "\n"
            meta = mass["meta"]
            rows[split].append([f"P_{i + 1:05d}", str(m.acr), side, m.view, str(k), "mass", meta["shape"].upper(),
                                meta["margin"].upper(), m.birads[0], "MALIGNANT", "4",
                                f"{folder}/{study}/{series}/000000.dcm", crop_path, mask_path])
            n_seen += 1
    for split, name in (("train", "train"), ("test", "test")):
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows([CBIS_CSV_HEADER] + rows[split])
        atomic_write_bytes(out / f"mass_case_description_{name}_set.csv", text.getvalue().encode())
    return out


def write_npz(rois: list[PhantomROI], path: str | os.PathLike, preset: Preset, data_seed: int,
              boxes: str = "tight") -> Path:
    """Write ROI canvases for `npz:PATH`: images (n, S, S) uint16, masks (n, S, S) uint8, split, meta.

    The loader runs the same preprocessing as `phantom`, so the ROIs equal the in-memory ones.
    `boxes` records which protocol the canvases were generated for: `npz:` reads drawn boxes only
    from canvases written for them (`preset.drawn_canvas`).
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path / "phantom.npz" if path.is_dir() or not path.suffix else path.with_suffix(".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    split = np.array(["train" if r.meta["index"] < preset.n_train else "test" for r in rois])
    buf = io.BytesIO()
    np.savez_compressed(buf, images=np.stack([r.image for r in rois]),
                        masks=np.stack([r.mask for r in rois]).astype(np.uint8), split=split,
                        preset=np.array(preset.name), kind=np.array(preset.kind), data_seed=np.array(data_seed),
                        format=np.array(NPZ_FORMAT), meta=np.array(json.dumps([r.meta for r in rois])),
                        boxes=np.array(boxes))
    atomic_write_bytes(path, buf.getvalue())
    return path
