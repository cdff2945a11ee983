"""`tinyseg segment`: Run.predict_proba against predict, the overlay modes, and the batch form
(--boxes) with bad rows: the good rows are written, the bad ones reported, exit status 1."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinyseg.cli import main
from tinyseg.config import TrainConfig
from tinyseg.experiments import fast_subset
from tinyseg.models import build_model
from tinyseg.runs import Run
from tinyseg.train import fit


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):  # noqa: ANN001, ANN201
    """A 1-epoch fcn run on 12 synthetic training masses."""
    import os

    old = os.environ.get("TINYSEG_CACHE")
    os.environ["TINYSEG_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    try:
        from tinyseg.data import load_dataset

        ds = fast_subset(load_dataset("phantom"), 12, 4)
    finally:
        if old is None:
            os.environ.pop("TINYSEG_CACHE")
        else:
            os.environ["TINYSEG_CACHE"] = old
    out = tmp_path_factory.mktemp("run") / "fcn"
    fit(TrainConfig(variant="fcn", epochs=1, device="cpu"), out, quiet=True, dataset=ds)
    return out


def _image(H: int = 300, W: int = 200, seed: int = 0) -> np.ndarray:
    """A uint16 'mammogram': noisy background with a bright disc around (x, y) = (120, 150)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:H, :W]
    disc = np.hypot(xx - 120, yy - 150) < 25
    return (4000 + 300 * disc + 60 * rng.standard_normal((H, W))).clip(0, 16383).astype(np.uint16)


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.array(im)


def test_predict_proba_thresholded_at_one_half_is_predict(run_dir: Path) -> None:
    from tinyseg.runs import load_run

    rng = np.random.default_rng(1)
    rois = rng.uniform(0, 1, (5, 1, 40, 40)).astype(np.float32)
    trained = load_run(run_dir)
    # A CRF variant too: its probabilities are the last mean-field marginals.
    crf = Run(run_dir, build_model("fcn_crf", trained.stats["prior"], n_iter_eval=3).eval(), trained.config,
              trained.stats)
    for r in (trained, crf):
        p = r.predict_proba(rois)
        assert p.shape == (5, 40, 40) and p.dtype.kind == "f"
        assert np.all((p >= 0) & (p <= 1)) and 0 < p.std()
        np.testing.assert_array_equal((p > 0.5).astype(np.int64), r.predict(rois))
    assert trained.predict_proba(rois[:0]).shape == (0, 40, 40)


@pytest.mark.parametrize("overlay", ["crop", "full", "none"])
def test_segment_writes_a_full_size_8bit_mask_and_the_chosen_overlay(run_dir: Path, tmp_path: Path,
                                                                       overlay: str) -> None:
    image = _image()
    np.save(tmp_path / "scan.npy", image)
    out = tmp_path / "mask.png"
    x0, y0, x1, y1 = 90, 120, 150, 180
    assert main(["segment", str(run_dir), str(tmp_path / "scan.npy"), "--roi", f"{x0},{y0},{x1},{y1}",
                 "--out", str(out), "--overlay", overlay]) == 0
    mask = _read(out)
    assert mask.shape == image.shape and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
    assert mask[y0:y1 + 1, x0:x1 + 1].sum() == mask.sum(), "nothing outside the box"
    path = tmp_path / "mask_overlay.png"
    if overlay == "none":
        assert not path.exists()
        return
    rgb = _read(path)
    # crop: the box plus a margin of max(half its side, 32) px, clipped to the image.
    expected = (min(y1 + 32 + 1, 300) - max(y0 - 32, 0), min(x1 + 32 + 1, 200) - max(x0 - 32, 0))
    assert rgb.shape == ((*image.shape, 3) if overlay == "full" else (*expected, 3)) and rgb.dtype == np.uint8


def test_batch_segments_every_good_row_reports_the_bad_ones_and_exits_1(run_dir: Path, tmp_path: Path,
                                                                        capsys) -> None:  # noqa: ANN001
    data = tmp_path / "data"
    (data / "pngs").mkdir(parents=True)
    np.save(data / "a.npy", _image(seed=0))
    Image.fromarray((_image(seed=1) // 64).astype(np.uint8)).save(data / "pngs" / "b.png")
    rows = [["image", "x0", "y0", "x1", "y1", "id"],
            ["a.npy", "90", "120", "150", "180", "first"],
            ["a.npy", "150", "120", "90", "180", "empty_box"],   # x1 < x0
            ["missing.dcm", "1", "1", "20", "20", ""],          # no such image
            ["a.npy", "90", "120", "150", "999", "outside"],    # beyond the image
            ["pngs/b.png", "80", "110", "160", "190", ""]]      # default id: <stem>_<row>
    with open(data / "boxes.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    out = tmp_path / "out"
    assert main(["segment", str(run_dir), "--boxes", str(data / "boxes.csv"), "--out", str(out), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "row 2" in captured.err and "missing.dcm" in captured.err and "3 failed" in captured.out
    for name in ("first", "b_5"):
        assert _read(out / f"{name}.png").shape == (300, 200), name
        assert (out / f"{name}_overlay.png").exists(), name
    assert not (out / "empty_box.png").exists() and not (out / "outside.png").exists()
    with open(out / "segment.csv", newline="") as f:
        summary = list(csv.DictReader(f))
    assert [r["id"] for r in summary] == ["first", "empty_box", "missing_3", "outside", "b_5"]
    assert [r["status"] == "ok" for r in summary] == [True, False, False, False, True]
    good = summary[0]
    assert int(good["mass_pixels"]) == int((_read(out / "first.png") > 0).sum())
    assert good["mass_pixels"] == "0" or 0.5 < float(good["mean_mass_probability"]) <= 1
    assert (good["x0"], good["y0"], good["x1"], good["y1"]) == ("90", "120", "150", "180")


def test_batch_form_refuses_an_image_or_roi_and_a_bad_header(run_dir: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("path,x0,y0,x1,y1\nimg.png,1,1,5,5\n")
    assert main(["segment", str(run_dir), "img.png", "--boxes", str(boxes), "--out", str(tmp_path / "o")]) == 2
    assert "--boxes" in capsys.readouterr().err
    assert main(["segment", str(run_dir), "--boxes", str(boxes), "--out", str(tmp_path / "o")]) == 2
    assert "missing image" in capsys.readouterr().err
    assert main(["segment", str(run_dir), "--out", str(tmp_path / "m.png")]) == 2
    assert not (tmp_path / "o").exists()
    assert json.loads((run_dir / "config.json").read_text())["variant"] == "fcn"
