"""The synthetic generator: determinism, calibration, presets, `load_dataset("phantom")`, npz round trip."""
from __future__ import annotations

import numpy as np
import pytest

from tinyseg.cli import main as cli_main
from tinyseg.data import (empirical_prior, generate_mammograms, generate_rois, get_preset, load_dataset,
                          otsu_baseline, prior_baseline_predict)
from tinyseg.data.phantom import power_law_noise
from tinyseg.metrics import dice_pooled


@pytest.fixture(scope="module")
def default_dataset(tmp_path_factory):
    """The default dataset, built once for this module in a private cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TINYSEG_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield load_dataset("phantom")


def test_generator_is_deterministic_and_per_sample_independent():
    a = generate_rois("inbreast", 0, indices=[0, 7])
    b = generate_rois("inbreast", 0, indices=[7])  # sample 7 alone: same stream, same data
    assert np.array_equal(a[1].image, b[0].image) and np.array_equal(a[1].mask, b[0].mask)
    again = generate_rois("inbreast", 0, indices=[0])[0]
    assert np.array_equal(a[0].image, again.image) and a[0].meta == again.meta
    other = generate_rois("inbreast", 1, indices=[0])[0]
    assert not np.array_equal(a[0].image, other.image)
    assert a[0].image.dtype == np.uint16 and a[0].image.max() < 2 ** 14


def test_power_law_noise_has_the_requested_spectral_slope():
    x = power_law_noise(np.random.default_rng(0), (256, 256), beta=3.0, f0=1e-3)
    assert abs(x.mean()) < 1e-12 and x.std() == pytest.approx(1.0)
    power = np.abs(np.fft.fft2(x)) ** 2
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(256), np.fft.fftfreq(256), indexing="ij"))
    band = (f > 0.02) & (f < 0.3)
    slope = np.polyfit(np.log(f[band]), np.log(power[band]), 1)[0]
    assert -3.3 < slope < -2.7


def test_default_preset_calibration(default_dataset):
    ds = default_dataset
    assert (len(ds.train), len(ds.val), len(ds.test)) == (46, 12, 58) and ds.kind == "inbreast"
    prior = empirical_prior(ds.train.labels)
    prior_dice = dice_pooled(prior_baseline_predict(prior, len(ds.test)), ds.test.labels)
    otsu_dice = dice_pooled(otsu_baseline(ds.test.images), ds.test.labels)
    all_labels = np.concatenate([ds.train.labels, ds.val.labels, ds.test.labels])
    assert 0.82 <= prior_dice <= 0.90, prior_dice
    assert otsu_dice <= 0.75, otsu_dice
    assert 0.62 <= all_labels.mean() <= 0.75, all_labels.mean()


def test_dataset_arrays_follow_the_interface(default_dataset):
    for split in (default_dataset.train, default_dataset.val, default_dataset.test):
        assert split.images.dtype == np.float32 and split.images.shape[1:] == (1, 40, 40)
        assert split.labels.dtype == np.int64 and set(np.unique(split.labels)) <= {0, 1}
        assert len(split.meta) == len(split) and 0 <= split.images.min() and split.images.max() <= 1
    # Validation = the last 12 training masses in split order, before any flip.
    assert [m["index"] for m in default_dataset.val.meta] == list(range(46, 58))
    assert {m["split"] for m in default_dataset.val.meta} == {"val"}
    assert [m["index"] for m in default_dataset.test.meta] == list(range(58, 116))


def test_load_dataset_caches_atomically_and_reproduces(tmp_cache):
    a = load_dataset("phantom:inbreast", crop_scale=1.2)
    files = list((tmp_cache / "datasets").glob("*.npz"))
    assert len(files) == 1 and not list((tmp_cache / "datasets").glob("*.tmp"))
    b = load_dataset("phantom:inbreast", crop_scale=1.2)  # from the cache
    c = load_dataset("phantom:inbreast", crop_scale=1.2, cache=False)
    for x in (b, c):
        assert np.array_equal(a.train.images, x.train.images) and np.array_equal(a.test.labels, x.test.labels)
        assert a.val.meta == x.val.meta
    files[0].write_bytes(b"garbage")  # a damaged cache file is rebuilt, not trusted
    d = load_dataset("phantom:inbreast", crop_scale=1.2)
    assert np.array_equal(a.test.images, d.test.images)
    # crop_scale 1.2 leaves a margin: the mass fills about 1/1.44 of what it fills at 1.0
    assert 0.40 <= np.concatenate([a.train.labels, a.test.labels]).mean() <= 0.55


def test_ddsm_preset_counts_and_kind(tmp_cache):
    ds = load_dataset("phantom:ddsm_bcrp", val_frac=0.2)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (67, 17, 87) and ds.kind == "ddsm"
    assert sum(m["margin"] == "spiculated" for m in ds.train.meta + ds.test.meta) > 0.5 * 171


def test_load_dataset_rejects_bad_specs_and_options(tmp_cache, tmp_path):
    with pytest.raises(ValueError, match="valid specs"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="unknown phantom preset"):
        load_dataset("phantom:ddsm")
    with pytest.raises(FileNotFoundError, match="not found"):
        load_dataset(f"inbreast:{tmp_path / 'nowhere'}")
    with pytest.raises(ValueError, match="needs a path"):
        load_dataset("npz:")
    with pytest.raises(ValueError, match="unknown option"):
        load_dataset("phantom", mirror_right=True)
    with pytest.raises(ValueError, match="val_frac"):
        load_dataset("phantom", val_frac=1.0)
    with pytest.raises(ValueError, match="difficulty"):
        get_preset("inbreast", difficulty="brutal")
    with pytest.raises(ValueError, match="preset fields"):
        get_preset("inbreast", kind="ddsm")


def test_npz_round_trip_through_the_cli_reproduces_the_phantom_rois(tmp_cache, tmp_path, capsys):
    assert cli_main(["phantom", "--preset", "inbreast", "--out", str(tmp_path / "out"), "--format", "npz"]) == 0
    assert "npz:" in capsys.readouterr().out
    from_file = load_dataset(f"npz:{tmp_path / 'out' / 'phantom.npz'}")
    in_memory = load_dataset("phantom")
    assert from_file.kind == "inbreast" and from_file.name == "npz:phantom.npz"
    for a, b in ((from_file.train, in_memory.train), (from_file.val, in_memory.val), (from_file.test, in_memory.test)):
        assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)


def test_npz_written_from_the_ddsm_preset_is_ddsm_kind(tmp_cache, tmp_path):
    from tinyseg.data.writers import write_npz

    preset = get_preset("ddsm_bcrp")
    rois = generate_rois(preset, 0, indices=[0, 1, 2, 83, 84, 85])
    path = write_npz(rois, tmp_path / "ddsm.npz", preset, 0)
    ds = load_dataset(f"npz:{path}", val_frac=0)
    assert ds.kind == "ddsm" and (len(ds.train), len(ds.val), len(ds.test)) == (4, 0, 2)


def test_difficulty_changes_contrast_only():
    easy = generate_rois(get_preset("inbreast", difficulty="easy"), 0, indices=[3])[0]
    hard = generate_rois(get_preset("inbreast", difficulty="hard"), 0, indices=[3])[0]
    assert easy.meta["contrast"] > hard.meta["contrast"] and np.array_equal(easy.mask, hard.mask)


def test_mammograms_are_deterministic_and_annotated_inside_the_breast():
    a = generate_mammograms("inbreast", 3, n_masses=3, size=(512, 416), spacing_mm=0.56)
    b = generate_mammograms("inbreast", 3, n_masses=3, size=(512, 416), spacing_mm=0.56)
    assert sum(len(m.masses) for m in a) == 3
    for m, n in zip(a, b):
        assert np.array_equal(m.pixels, n.pixels) and m.file_id == n.file_id and m.patient == n.patient
        assert m.pixels.dtype == np.uint16 and len(m.file_id) == 8 and len(m.patient) == 16
        for mass in m.masses:
            x, y = np.rint(mass["polygon"].mean(axis=0)).astype(int)
            assert m.pixels[y, x] > 2000  # the mass centre lies in breast tissue, not air
    assert [int(m.file_id) for m in a] == sorted(int(m.file_id) for m in a)


def test_larger_mammograms_keep_their_masses_size_in_mm():
    """The size option: the pixel size shrinks with the image, so a mass keeps its diameter in mm."""
    from tinyseg.data.mammogram import default_spacing, generate_mammogram

    assert default_spacing((1024, 832)) == pytest.approx(0.28)
    assert default_spacing((4096, 3328)) == pytest.approx(0.07)
    m = generate_mammogram(get_preset("inbreast"), 0, 0, 1, size=(1536, 1248))
    assert m.pixels.shape == (1536, 1248) and m.pixels.dtype == np.uint16
    assert m.spacing_mm == pytest.approx(0.28 * 1024 / 1536)
    poly = m.masses[0]["polygon"]
    extent_mm = (poly.max(axis=0) - poly.min(axis=0)).mean() * m.spacing_mm
    assert 0.5 < extent_mm / m.masses[0]["meta"]["diameter_mm"] < 1.6


def test_rle_dicom_round_trips_exactly_and_the_cli_writes_it(tmp_path, capsys):
    from pydicom import dcmread
    from pydicom.uid import RLELossless

    from tinyseg.data.image_io import read_dicom, write_dicom

    pixels = generate_mammograms("inbreast", 1, n_masses=1, size=(512, 416))[0].pixels
    write_dicom(tmp_path / "plain.dcm", pixels)
    write_dicom(tmp_path / "rle.dcm", pixels, rle=True)
    assert dcmread(tmp_path / "rle.dcm").file_meta.TransferSyntaxUID == RLELossless
    assert np.array_equal(read_dicom(tmp_path / "rle.dcm")[0], pixels)
    assert (tmp_path / "rle.dcm").stat().st_size < 0.7 * (tmp_path / "plain.dcm").stat().st_size
    assert cli_main(["phantom", "--format", "inbreast", "--n-masses", "1", "--size", "600x480", "--rle",
                     "--out", str(tmp_path / "ib")]) == 0
    (dcm,) = (tmp_path / "ib" / "AllDICOMs").glob("*.dcm")
    ds = dcmread(dcm)
    assert ds.file_meta.TransferSyntaxUID == RLELossless and (ds.Rows, ds.Columns) == (600, 480)
    assert cli_main(["phantom", "--format", "inbreast", "--size", "600", "--out", str(tmp_path / "x")]) == 2
    assert "ROWSxCOLUMNS" in capsys.readouterr().err
