"""Real-format round trips: generator → INbreast / CBIS-DDSM / folder files → loader → the same ROIs."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from tinyseg.data import DataWarning, generate_mammograms, load_dataset, mammogram_samples
from tinyseg.data.cbis import load_cbis
from tinyseg.data.errors import WarningCounter
from tinyseg.data.image_io import read_dicom, write_png
from tinyseg.data.inbreast import image_mass_masks, load_inbreast, parse_inbreast_xml
from tinyseg.data.raster import rasterize_polygon
from tinyseg.data.writers import inbreast_dicom_name, write_cbis, write_inbreast

N_MASSES, N_TRAIN = 8, 4


@pytest.fixture(scope="module")
def inbreast_dir(tmp_path_factory):
    mammograms = generate_mammograms("inbreast", 5, n_masses=N_MASSES, n_train=N_TRAIN)
    return write_inbreast(mammograms, tmp_path_factory.mktemp("inbreast") / "INbreast Release 1.0"), mammograms


@pytest.fixture(scope="module")
def cbis_dir(tmp_path_factory):
    mammograms = generate_mammograms("ddsm_bcrp", 5, n_masses=N_MASSES, n_train=N_TRAIN)
    return write_cbis(mammograms, tmp_path_factory.mktemp("cbis"), N_TRAIN), mammograms


def _assert_same_samples(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert np.array_equal(g["image"], w["image"]) and np.array_equal(g["label"], w["label"])
        assert g["split"] == w["split"] and g["meta"]["box"] == w["meta"]["box"]


def test_inbreast_round_trip_reproduces_in_memory_rois(inbreast_dir):
    root, mammograms = inbreast_dir
    assert any(m.laterality == "R" for m in mammograms) and any(m.laterality == "L" for m in mammograms)
    samples = load_inbreast(root.parent)  # the release folder is found one level down
    _assert_same_samples(samples, mammogram_samples(mammograms, N_TRAIN))
    assert [s["meta"]["roi_id"] for s in samples] == sorted(s["meta"]["roi_id"] for s in samples)
    assert [s["split"] for s in samples] == ["train"] * N_TRAIN + ["test"] * (N_MASSES - N_TRAIN)


def test_inbreast_masks_match_the_analytic_polygons(inbreast_dir):
    root, mammograms = inbreast_dir
    for m in mammograms:
        pixels, info = read_dicom(root / "AllDICOMs" / inbreast_dicom_name(m))
        rois = parse_inbreast_xml((root / "AllXML" / f"{m.file_id}.xml").read_bytes())
        masses = [r["points"] for r in rois if r["name"] == "Mass"]  # distractors ignored
        assert len(masses) == len(m.masses) and len(rois) > len(masses)
        assert np.array_equal(pixels, m.pixels) and info["bits_stored"] == 14
        _, masks = image_mass_masks(pixels, masses, m.laterality == "R", mirror_right=False)
        for mask, mass in zip(masks, m.masses):
            exact = rasterize_polygon(mass["polygon_exact"], pixels.shape)
            assert (mask & exact).sum() / (mask | exact).sum() >= 0.99
            rows, cols = np.nonzero(mask)
            lo, hi = mass["polygon_exact"].min(axis=0), mass["polygon_exact"].max(axis=0)
            assert np.abs([cols.min() - lo[0], rows.min() - lo[1], cols.max() - hi[0], rows.max() - hi[1]]).max() <= 1


def test_inbreast_mirror_right_flips_right_breasts_exactly(inbreast_dir):
    root, mammograms = inbreast_dir
    mirrored = load_inbreast(root)
    plain = load_inbreast(root, mirror_right=False)
    n_right = 0
    for a, b in zip(mirrored, plain):
        if a["meta"]["laterality"] == "R":
            n_right += 1
            assert a["meta"]["mirrored"] and np.array_equal(a["image"], b["image"][..., ::-1])
            assert np.array_equal(a["label"], b["label"][:, ::-1])
        else:
            assert np.array_equal(a["image"], b["image"])
    assert n_right > 0


def test_inbreast_csv_split_order_and_patient_overlap_warning(inbreast_dir, tmp_path):
    root, _ = inbreast_dir
    copy = tmp_path / "rev"
    copy.mkdir()
    (copy / "AllDICOMs").symlink_to(root / "AllDICOMs")
    (copy / "AllXML").symlink_to(root / "AllXML")
    lines = (root / "INbreast.csv").read_text().splitlines()
    (copy / "INbreast.csv").write_text("\n".join([lines[0]] + lines[:0:-1]) + "\n")  # rows reversed
    by_id = load_inbreast(root)
    by_csv = load_inbreast(copy, split_order="csv")
    assert [s["meta"]["file_id"] for s in by_csv][0] == by_id[-1]["meta"]["file_id"]
    # Put the split between two masses of one patient: the overlap is a counted warning.
    patients = [s["meta"]["patient"] for s in by_id]
    k = next(i for i in range(1, len(patients)) if patients[i] == patients[i - 1])
    warn = WarningCounter()
    load_inbreast(root, n_train=k, warn=warn)
    assert warn.counts["patient_in_both_splits"] >= 1
    with pytest.raises(ValueError, match="n_train"):
        load_inbreast(root, n_train=0)


@pytest.mark.filterwarnings("ignore::tinyseg.data.errors.DataWarning")  # patient overlap, tested above
def test_load_dataset_inbreast_spec(inbreast_dir, tmp_cache):
    root, mammograms = inbreast_dir
    ds = load_dataset(f"inbreast:{root}", val_frac=0.25)
    assert ds.kind == "inbreast" and (len(ds.train), len(ds.val), len(ds.test)) == (3, 1, 4)
    want = mammogram_samples(mammograms, N_TRAIN)
    assert np.array_equal(ds.test.images, np.stack([w["image"] for w in want[N_TRAIN:]]))
    again = load_dataset(f"inbreast:{root}", val_frac=0.25)  # cached
    assert np.array_equal(again.train.labels, ds.train.labels) and again.val.meta == ds.val.meta


def test_cbis_round_trip_reproduces_in_memory_rois_despite_quirks(cbis_dir):
    root, mammograms = cbis_dir
    text = (root / "mass_case_description_train_set.csv").read_text()
    assert '.dcm\n"' in text and "000001.dcm,Mass" in text  # trailing newline and swapped paths present
    _assert_same_samples(load_cbis(root), mammogram_samples(mammograms, N_TRAIN, mirror_right=False))


def test_load_dataset_cbis_spec_is_ddsm_kind(cbis_dir, tmp_cache):
    root, _ = cbis_dir
    ds = load_dataset(f"cbis:{root}", val_frac=0)
    assert ds.kind == "ddsm" and (len(ds.train), len(ds.val), len(ds.test)) == (N_TRAIN, 0, N_MASSES - N_TRAIN)


def test_cbis_skips_mismatched_and_empty_masks_with_counted_warnings(cbis_dir, tmp_path):
    root, _ = cbis_dir
    copy = tmp_path / "cbis"
    shutil.copytree(root, copy)
    masks = sorted(p for p in copy.rglob("1-1.dcm") if "ROI mask" in str(p))
    from tinyseg.data.image_io import write_dicom
    pixels, info = read_dicom(masks[0])
    write_dicom(masks[0], pixels[:-3].astype(np.uint8), series_uid=info["series_uid"],
                series_description="ROI mask images")  # wrong size
    write_dicom(masks[1], np.zeros_like(pixels, dtype=np.uint8), series_uid=read_dicom(masks[1])[1]["series_uid"],
                series_description="ROI mask images")  # empty
    warn = WarningCounter()
    samples = load_cbis(copy, warn=warn)
    assert len(samples) == N_MASSES - 2
    assert warn.counts["mask_size_mismatch"] == 1 and warn.counts["empty_mask"] == 1


def _write_folder(root, n=5, empty=None, val=False):
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rows = ["name,split"]
    for i in range(n):
        img = (3000 + 200 * rng.standard_normal((90, 70))).astype(np.uint16)
        mask = np.zeros((90, 70), np.uint8)
        if i != empty:
            mask[20 + i:60, 15:50 - i] = 255
        if i % 2:
            write_png(root / "images" / f"case{i}.png", img)
            write_png(root / "masks" / f"case{i}.png", mask)
        else:
            np.save(root / "images" / f"case{i}.npy", img)
            np.save(root / "masks" / f"case{i}.npy", mask // 255)
        split = "test" if i >= n - 2 else ("val" if val and i == n - 3 else "train")
        rows.append(f"case{i}.png,{split}" if i == 1 else f"case{i},{split}")
    (root / "split.csv").write_text("\n".join(rows) + "\n")
    return root


def test_folder_loader_reads_png_and_npy_with_explicit_val(tmp_path, tmp_cache):
    root = _write_folder(tmp_path / "f", n=6, val=True)
    ds = load_dataset(f"folder:{root}")
    assert (len(ds.train), len(ds.val), len(ds.test)) == (3, 1, 2) and ds.kind == "inbreast"
    assert ds.train.labels[0].all()  # crop_scale 1.0: the rectangular mask fills its ROI
    whole = load_dataset(f"folder:{root}", roi="whole")
    assert 0.2 < whole.train.labels[0].mean() < 0.5


def test_folder_loader_counts_empty_masks_and_reports_missing_files(tmp_path, tmp_cache):
    root = _write_folder(tmp_path / "f", n=5, empty=0)
    with pytest.warns(DataWarning, match="empty_mask"):
        ds = load_dataset(f"folder:{root}")
    assert ds.warnings == {"empty_mask": 1} and len(ds.train) + len(ds.val) == 2
    (root / "masks" / "case2.npy").unlink()
    with pytest.raises(FileNotFoundError, match="case2"):
        load_dataset(f"folder:{root}")
    shutil.rmtree(root / "masks")
    with pytest.raises(FileNotFoundError, match="masks"):
        load_dataset(f"folder:{root}")


def test_every_source_is_one_row_of_the_sources_table() -> None:
    """The spec list, the option check and the --data help are read from `SOURCES`."""
    from tinyseg.data.datasets import SOURCES, VALID_SPECS, data_help
    from tinyseg.data.phantom import PRESETS

    assert {s.partition(":")[0] for s in VALID_SPECS} == set(SOURCES)
    assert {f"phantom:{p}" for p in PRESETS} <= set(VALID_SPECS)
    help_text = data_help("phantom")
    for name, source in SOURCES.items():
        assert source.help and (name == "phantom" or source.spec in help_text)
