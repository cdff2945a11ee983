"""Bad input to the data layer: a clear error or a counted warning, never a crash deep in numpy."""
from __future__ import annotations

import plistlib

import numpy as np
import pytest

from tinyseg.data import DataFormatError, DataWarning, load_dataset
from tinyseg.data.cbis import load_cbis
from tinyseg.data.errors import WarningCounter
from tinyseg.data.image_io import PYLIBJPEG_HELP, read_dicom, read_image, write_dicom
from tinyseg.data.inbreast import load_inbreast, parse_inbreast_csv, parse_inbreast_xml

pydicom = pytest.importorskip("pydicom")


def _dataset(syntax):
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MG"
    return ds


def test_dicom_without_pixel_data_is_not_an_image(tmp_path):
    from pydicom.uid import ExplicitVRLittleEndian

    _dataset(ExplicitVRLittleEndian).save_as(tmp_path / "report.dcm", enforce_file_format=True)
    with pytest.raises(DataFormatError, match="not an image"):
        read_dicom(tmp_path / "report.dcm")


def test_compressed_transfer_syntax_names_the_pylibjpeg_plugins(tmp_path):
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGLosslessSV1

    ds = _dataset(JPEGLosslessSV1)
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 8, 8, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 14, 13, 0
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xc3 not really a jpeg stream \xff\xd9"])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.save_as(tmp_path / "jpeg.dcm", enforce_file_format=True)
    with pytest.raises(DataFormatError) as err:
        read_dicom(tmp_path / "jpeg.dcm")
    assert PYLIBJPEG_HELP in str(err.value) and "compressed" in str(err.value)


def test_truncated_and_non_dicom_files_are_clear_errors(tmp_path):
    write_dicom(tmp_path / "ok.dcm", np.full((64, 48), 1000, np.uint16))
    data = (tmp_path / "ok.dcm").read_bytes()
    (tmp_path / "half.dcm").write_bytes(data[: len(data) - 3000])  # pixel data cut short
    (tmp_path / "head.dcm").write_bytes(data[:200])  # cut inside the header
    (tmp_path / "text.dcm").write_text("this is not a DICOM file\n" * 10)
    for name in ("half.dcm", "head.dcm", "text.dcm"):
        with pytest.raises(DataFormatError, match="truncated"):
            read_dicom(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        read_dicom(tmp_path / "missing.dcm")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    with pytest.raises(DataFormatError, match="not a readable image"):
        read_image(tmp_path / "bad.png")
    np.save(tmp_path / "cube.npy", np.zeros((3, 4, 5)))
    with pytest.raises(DataFormatError, match="2-D"):
        read_image(tmp_path / "cube.npy")


def test_monochrome1_is_inverted(tmp_path):
    write_dicom(tmp_path / "m.dcm", np.array([[0, 100], [16383, 5]], np.uint16))
    ds = pydicom.dcmread(tmp_path / "m.dcm")
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(tmp_path / "m1.dcm")
    np.testing.assert_array_equal(read_dicom(tmp_path / "m1.dcm")[0], [[16383, 16283], [0, 16378]])


def test_malformed_xml_and_csv_are_clear_errors():
    with pytest.raises(DataFormatError, match="malformed OsiriX XML"):
        parse_inbreast_xml(b"<plist><dict><key>Images</key><array>", "x.xml")
    with pytest.raises(DataFormatError, match="Images"):
        parse_inbreast_xml(plistlib.dumps({"Rois": []}), "x.xml")
    bad_point = {"Images": [{"ROIs": [{"Name": "Mass", "Point_px": ["(1.0; 2.0)", "(3, 4)", "(5, 6)"]}]}]}
    with pytest.raises(DataFormatError, match="cannot read the point"):
        parse_inbreast_xml(plistlib.dumps(bad_point), "x.xml")
    with pytest.raises(DataFormatError, match="missing column"):
        parse_inbreast_csv("Patient ID;Laterality\nremoved;L\n")
    with pytest.raises(DataFormatError, match="not a numeric FileID"):
        parse_inbreast_csv("File Name;Laterality;View\n2058x908;L;CC\n")


def _tiny_inbreast(root, rois_by_id):
    (root / "AllDICOMs").mkdir(parents=True)
    (root / "AllXML").mkdir()
    rng = np.random.default_rng(0)
    for file_id, rois in rois_by_id.items():
        img = (4000 + 300 * rng.random((150, 200))).astype(np.uint16)
        write_dicom(root / "AllDICOMs" / f"{file_id}_{int(file_id):016x}_MG_L_CC_ANON.dcm", img)
        plist = {"Images": [{"ImageIndex": 0, "NumberOfROIs": len(rois), "ROIs": [
            {"Name": name, "NumberOfPoints": len(pts), "Point_px": [f"({x:.6f}, {y:.6f})" for x, y in pts]}
            for name, pts in rois]}]}
        (root / "AllXML" / f"{file_id}.xml").write_bytes(plistlib.dumps(plist, sort_keys=True))
    return root


def test_masses_outside_the_image_are_clamped_or_skipped_and_counted(tmp_path, tmp_cache):
    square = [(60, 40), (120, 40), (120, 100), (60, 100)]
    root = _tiny_inbreast(tmp_path / "inb", {
        "10000001": [("Mass", [(150, 50), (230, 60), (190, 120)]),  # partly right of the 200-px image
                     ("Mass", [(-50, -40), (-10, -40), (-30, -5)]),  # entirely outside
                     ("Mass", [(10, 10), (20, 20)]),  # two points: not a polygon
                     ("Calcification", [(30, 30)])],
        "10000002": [("Mass", square)]})
    (tmp_path / "inb" / "AllXML" / "10000003.xml").write_bytes(plistlib.dumps(
        {"Images": [{"ROIs": [{"Name": "Mass", "Point_px": ["(1, 1)", "(9, 1)", "(5, 9)"]}]}]}))  # no DICOM
    with pytest.warns(DataWarning) as record:
        ds = load_dataset(f"inbreast:{root}", val_frac=0)
    assert ds.warnings == {"points_clamped": 1, "mass_outside_image": 1, "mass_not_polygon": 1, "dicom_missing": 1}
    assert len(record) == 4 and (len(ds.train), len(ds.test)) == (1, 1)
    assert ds.train.meta[0]["box"][2] == 199  # clamped to the last column
    assert ds.test.labels[0].all()  # the square fills its own bounding box


def test_missing_folders_and_files_name_the_expected_layout(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="AllXML"):
        load_inbreast(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_inbreast(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="mass_case_description_train_set.csv"):
        load_cbis(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="images/, masks/ and split.csv"):
        load_dataset(f"folder:{tmp_path / 'empty'}", cache=False)


def test_bad_npz_files(tmp_path):
    np.savez(tmp_path / "keys.npz", images=np.zeros((2, 8, 8)))
    with pytest.raises(DataFormatError, match="missing array"):
        load_dataset(f"npz:{tmp_path / 'keys.npz'}", cache=False)
    np.savez(tmp_path / "vals.npz", images=np.zeros((2, 8, 8)), masks=np.full((2, 8, 8), 2), split=["train", "test"])
    with pytest.raises(DataFormatError, match="0 and 1"):
        load_dataset(f"npz:{tmp_path / 'vals.npz'}", cache=False)
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 junk")
    with pytest.raises(DataFormatError, match="not a readable .npz"):
        load_dataset(f"npz:{tmp_path / 'junk.npz'}", cache=False)


def test_empty_masks_in_an_npz_are_counted_and_skipped(tmp_path):
    images = np.random.default_rng(0).integers(1000, 2000, (3, 30, 30)).astype(np.uint16)
    masks = np.zeros((3, 30, 30), np.uint8)
    masks[0, 5:20, 5:25] = masks[2, 10:25, 3:12] = 1
    np.savez(tmp_path / "e.npz", images=images, masks=masks, split=np.array(["train", "train", "test"]))
    with pytest.warns(DataWarning, match="empty_mask"):
        ds = load_dataset(f"npz:{tmp_path / 'e.npz'}", cache=False, val_frac=0)
    assert ds.warnings == {"empty_mask": 1} and (len(ds.train), len(ds.test)) == (1, 1)


def test_warning_counter_reports_each_kind_once():
    w = WarningCounter()
    w.add("a", "first a")
    w.add("a", "second a", 2)
    w.add("b", "first b")
    with pytest.warns(DataWarning) as record:
        assert w.emit("src") == {"a": 3, "b": 1}
    assert len(record) == 2 and "3 x a (first: first a)" in str(record[0].message)
