"""Reading and writing images: DICOM (pydicom, imported lazily), PNG (Pillow) and NPY.

pydicom is imported inside the functions that need it, so `import tinyseg` works without it.
Every failure is a `DataFormatError` or `FileNotFoundError` naming the file and the fix: a DICOM
without pixel data, a compressed transfer syntax without its decoder (the message names the
pylibjpeg plugins), a truncated file, a colour or multi-frame image.

See: tests/data/test_data_badinput.py.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from .errors import DataFormatError

PYLIBJPEG_HELP = "pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg"
DICOM_SUFFIXES = (".dcm", ".dicom", "")
MAMMO_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.1.2"  # Digital Mammography X-Ray Image - For Presentation


def _pydicom():  # noqa: ANN202
    try:
        import pydicom  # noqa: PLC0415  (lazy on purpose: tinyseg imports without it)
    except ImportError as e:  # pragma: no cover - pydicom is a dependency, but be explicit
        raise RuntimeError("reading DICOM needs pydicom: pip install pydicom") from e
    return pydicom


def _header_value(ds: Any, name: str, default: Any = None) -> Any:
    value = ds.get(name, default)
    return default if value is None or value == "" else value


def read_dicom(path: str | os.PathLike, header_only: bool = False) -> tuple[np.ndarray | None, dict]:
    """Read a single-frame greyscale DICOM image.

    MONOCHROME1 images are inverted so that dense tissue is bright, as in MONOCHROME2.

    Args:
        path: the .dcm file.
        header_only: read the header only (`stop_before_pixels`); the array is then None.

    Returns:
        (pixels (H, W) in the stored integer dtype or None, header dict with `rows`, `columns`,
        `photometric`, `bits_stored`, `pixel_spacing`, `laterality`, `view`, `patient_id`,
        `series_uid`, `series_description`).

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: not DICOM, truncated, no pixel data, colour/multi-frame, or compressed
            pixel data whose decoder is missing.
    """
    pydicom = _pydicom()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such DICOM file")
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=header_only)
    except Exception as e:  # InvalidDicomError, EOFError, struct.error, ... on damaged files
        raise DataFormatError(f"{path}: not a readable DICOM file (truncated or corrupt?): "
                              f"{type(e).__name__}: {e}. Re-export or re-download the file.") from e
    spacing = _header_value(ds, "PixelSpacing") or _header_value(ds, "ImagerPixelSpacing")
    info = {
        "rows": int(_header_value(ds, "Rows", 0)), "columns": int(_header_value(ds, "Columns", 0)),
        "photometric": str(_header_value(ds, "PhotometricInterpretation", "")),
        "bits_stored": int(_header_value(ds, "BitsStored", 0) or 0),
        "pixel_spacing": [float(v) for v in spacing] if spacing is not None else None,
        "laterality": str(_header_value(ds, "ImageLaterality", _header_value(ds, "Laterality", ""))),
        "view": str(_header_value(ds, "ViewPosition", "")),
        "patient_id": str(_header_value(ds, "PatientID", "")),
        "series_uid": str(_header_value(ds, "SeriesInstanceUID", "")),
        "series_description": str(_header_value(ds, "SeriesDescription", "")),
    }
    if header_only:
        return None, info
    if "PixelData" not in ds:
        if info["rows"]:  # the header announces an image that is not there
            raise DataFormatError(f"{path}: the header describes a {info['rows']}x{info['columns']} image but "
                                  f"the file has no pixel data (truncated or corrupt?). Re-download the file.")
        raise DataFormatError(f"{path}: DICOM file without pixel data (SOP class "
                              f"{_header_value(ds, 'SOPClassUID', '?')}): not an image, or a truncated file. "
                              f"Pass the image series (e.g. the mammogram), not a report or presentation state.")
    if int(_header_value(ds, "SamplesPerPixel", 1)) != 1:
        raise DataFormatError(f"{path}: colour DICOM (SamplesPerPixel != 1); tinyseg needs greyscale mammograms")
    if int(_header_value(ds, "NumberOfFrames", 1) or 1) != 1:
        raise DataFormatError(f"{path}: multi-frame DICOM (e.g. tomosynthesis); tinyseg needs one 2-D frame")
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    try:
        pixels = ds.pixel_array
    except Exception as e:
        if syntax is not None and syntax.is_compressed:
            raise DataFormatError(
                f"{path}: pixel data is compressed ({syntax.name}) and could not be decoded "
                f"({type(e).__name__}: {e}). Install the JPEG decoders: {PYLIBJPEG_HELP}") from e
        raise DataFormatError(f"{path}: cannot decode the pixel data (truncated or corrupt?): "
                              f"{type(e).__name__}: {e}. Re-export or re-download the file.") from e
    if pixels.ndim != 2:
        raise DataFormatError(f"{path}: expected one 2-D greyscale frame, got pixel array of shape {pixels.shape}")
    if info["photometric"] == "MONOCHROME1":
        top = (1 << info["bits_stored"]) - 1 if info["bits_stored"] else int(pixels.max())
        pixels = top - np.clip(pixels, 0, top)  # in the stored dtype: no 64-bit copy of a full field
    return pixels, info


def write_dicom(path: str | os.PathLike, pixels: np.ndarray, *, patient_id: str = "", laterality: str = "",
                view: str = "", spacing_mm: float = 0.07, series_uid: str | None = None,
                study_uid: str | None = None, series_description: str = "", entropy: list | None = None,
                rle: bool = False) -> None:
    """Write a 16-bit (or 8-bit) MONOCHROME2 digital-mammography DICOM, atomically.

    Uncompressed (Explicit VR Little Endian) by default; ``rle=True`` stores the pixels RLE
    Lossless, as many digitised-film archives do (pydicom encodes it itself, no plugin needed).

    Args:
        path: target file (written to a temporary name, then renamed).
        pixels: (H, W) uint16 (BitsStored 14) or uint8 (BitsStored 8, for CBIS-style masks).
        patient_id: the PatientID header field.
        laterality: the ImageLaterality header field, `"L"` or `"R"`.
        view: the ViewPosition header field, `"CC"` or `"MLO"`.
        spacing_mm: the PixelSpacing header field, in mm.
        series_uid: SeriesInstanceUID; derived from `entropy` when None.
        study_uid: StudyInstanceUID; derived from `entropy` when None.
        series_description: e.g. "full mammogram images" or "ROI mask images".
        entropy: values that make the UIDs deterministic (`generate_uid(entropy_srcs=...)`).
        rle: compress the pixel data with RLE Lossless.
    """
    pydicom = _pydicom()
    from pydicom.dataset import FileMetaDataset  # noqa: PLC0415
    from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid  # noqa: PLC0415

    pixels = np.ascontiguousarray(pixels)
    if pixels.ndim != 2 or pixels.dtype not in (np.uint16, np.uint8):
        raise UserError(f"write_dicom needs a 2-D uint16 or uint8 array, got {pixels.dtype} {pixels.shape}")
    src = [str(v) for v in (entropy or [str(path)])]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MAMMO_SOP_CLASS
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=src + ["sop"])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MAMMO_SOP_CLASS
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid(entropy_srcs=src[:1] + ["study"])
    ds.SeriesInstanceUID = series_uid or generate_uid(entropy_srcs=src + ["series"])
    ds.SeriesDescription = series_description
    ds.Modality = "MG"
    ds.PatientID = patient_id
    ds.ImageLaterality = laterality
    ds.ViewPosition = view
    ds.Rows, ds.Columns = pixels.shape
    ds.PixelSpacing = [spacing_mm, spacing_mm]
    ds.ImagerPixelSpacing = [spacing_mm, spacing_mm]
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.SamplesPerPixel = 1
    bits = 16 if pixels.dtype == np.uint16 else 8
    ds.BitsAllocated = bits
    ds.BitsStored = 14 if bits == 16 else 8
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    if rle:
        ds.compress(RLELossless, pixels, encoding_plugin="pydicom")  # sets PixelData and the transfer syntax
    else:
        ds.PixelData = pixels.tobytes()
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    ds.save_as(tmp, enforce_file_format=True)
    os.replace(tmp, path)


def read_png(path: str | os.PathLike) -> np.ndarray:
    """Read a PNG (or any Pillow format) as a 2-D array in its stored dtype; colour → luma."""
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415  (Pillow comes with matplotlib)

    try:
        with Image.open(path) as im:
            if im.mode in ("RGB", "RGBA", "P", "LA", "CMYK", "YCbCr"):
                im = im.convert("L")
            arr = np.array(im)
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DataFormatError(f"{path}: not a readable image (truncated or corrupt?): {e}") from e
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    return arr


def write_png(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a 2-D uint8 or uint16 array as a greyscale PNG, atomically."""
    from PIL import Image  # noqa: PLC0415

    array = np.ascontiguousarray(array)
    if array.ndim != 2 or array.dtype not in (np.uint8, np.uint16):
        raise UserError(f"write_png needs a 2-D uint8 or uint16 array, got {array.dtype} {array.shape}")
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(array).save(tmp, format="PNG")
    os.replace(tmp, path)


def read_array(path: str | os.PathLike) -> np.ndarray:
    """Read a 2-D image from DICOM, PNG/JPEG/TIFF (Pillow) or NPY, keeping its stored dtype.

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: unreadable, not 2-D, or not finite.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file (expected DICOM, PNG or NPY)")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as e:  # ValueError, EOFError, UnpicklingError on bad files
            raise DataFormatError(f"{path}: not a readable .npy array: {e}") from e
    elif suffix in (".dcm", ".dicom") or (suffix == "" and _looks_like_dicom(path)):
        arr = read_dicom(path)[0]
    else:
        arr = read_png(path)
    arr = np.squeeze(arr) if arr.ndim == 3 and 1 in (arr.shape[0], arr.shape[-1]) else arr
    if arr.ndim != 2 or min(arr.shape) < 2:
        raise DataFormatError(f"{path}: expected a 2-D greyscale image, got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise DataFormatError(f"{path}: unsupported pixel dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise DataFormatError(f"{path}: image contains NaN or inf")
    return arr


def _looks_like_dicom(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(132)
    return head[128:132] == b"DICM"


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a 2-D image (DICOM, PNG or NPY) as float64.

    A full-field mammogram is 100+ MB as float64: where only a box is needed (as in
    `tinyseg segment`), read it with `read_array` and crop before converting.

    See: `read_array` for the formats and errors.
    """
    return read_array(path).astype(np.float64)
