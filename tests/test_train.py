"""Training runs: directory contents, selection, resume equals uninterrupted, interruption
safety, load_run / predict, and the train / evaluate / segment commands with bad input."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import tinyseg as ts
from tinyseg.cli import main
from tinyseg.experiments import fast_subset
from tinyseg.config import TrainConfig
from tinyseg.data import Split
from tinyseg.runs import load_run
from tinyseg.train import Trainer, fit


@pytest.fixture(scope="module")
def small_ds(tmp_path_factory):  # noqa: ANN001, ANN201
    import os

    old = os.environ.get("TINYSEG_CACHE")
    os.environ["TINYSEG_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    try:
        from tinyseg.data import load_dataset

        return fast_subset(load_dataset("phantom"), 12, 4)
    finally:
        if old is None:
            os.environ.pop("TINYSEG_CACHE")
        else:
            os.environ["TINYSEG_CACHE"] = old


def _cfg(**kw) -> TrainConfig:  # noqa: ANN003
    return TrainConfig(**{"variant": "fcn", "epochs": 2, "device": "cpu", **kw})


def test_run_directory_holds_every_file_and_metrics(tmp_path: Path, small_ds) -> None:  # noqa: ANN001
    run = fit(_cfg(), tmp_path / "r", quiet=True, dataset=small_ds)
    for name in ("config.json", "model.npz", "stats.npz", "history.csv", "metrics.json", "checkpoint.npz",
                 "test_pred.npz"):
        assert (tmp_path / "r" / name).exists(), name
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert 0 < m["test"]["dice_pooled"] <= 1 and 0 < m["prior_baseline"]["dice_pooled"] <= 1
    assert set(m["test"]["trimap_accuracy"]) == {"1", "2", "3", "4", "5"}
    assert m["selected_epoch"] in (1, 2)
    assert len((tmp_path / "r" / "history.csv").read_text().splitlines()) == 3
    pred = run.predict(small_ds.test.images[:3])
    assert pred.shape == (3, 40, 40) and set(np.unique(pred)) <= {0, 1}


def test_selected_parameters_are_the_best_validation_epoch(tmp_path: Path, small_ds) -> None:  # noqa: ANN001
    fit(_cfg(epochs=3), tmp_path / "r", quiet=True, dataset=small_ds)
    hist = [line.split(",") for line in (tmp_path / "r" / "history.csv").read_text().splitlines()[1:]]
    best = 1 + int(np.argmax([float(h[2]) for h in hist]))
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["selected_epoch"] == best


def test_val_frac_zero_keeps_the_last_epoch(tmp_path: Path, small_ds) -> None:  # noqa: ANN001
    ds = fast_subset(small_ds, 12, 0)
    fit(_cfg(epochs=2, val_frac=0.0), tmp_path / "r", quiet=True, dataset=ds)
    with np.load(tmp_path / "r" / "model.npz") as a, np.load(tmp_path / "r" / "checkpoint.npz") as c:
        for k in a.files:
            np.testing.assert_array_equal(a[k], c[f"param/{k}"])


@pytest.mark.parametrize("variant", ["fcn", "adv_fcn_crf"])
def test_resumed_run_equals_uninterrupted_run(tmp_path: Path, small_ds, variant: str) -> None:  # noqa: ANN001
    kw = {"variant": variant, "crf_graph": "grid4"}
    fit(_cfg(epochs=2, **kw), tmp_path / "full", quiet=True, dataset=small_ds)
    fit(_cfg(epochs=1, **kw), tmp_path / "part", quiet=True, dataset=small_ds)
    fit(_cfg(epochs=2, **kw), tmp_path / "part", resume=True, quiet=True, dataset=small_ds)
    for name in ("model.npz", "checkpoint.npz"):
        with np.load(tmp_path / "full" / name) as a, np.load(tmp_path / "part" / name) as b:
            for k in a.files:
                if k == "meta":
                    continue
                np.testing.assert_array_equal(a[k], b[k], err_msg=f"{name}:{k}")
    strip = [lambda t: [ln.rsplit(",", 1)[0] for ln in t.splitlines()]]
    assert strip[0]((tmp_path / "full" / "history.csv").read_text()) == strip[0](
        (tmp_path / "part" / "history.csv").read_text())


def test_interrupted_run_leaves_intact_files_and_resumes(tmp_path: Path, small_ds, monkeypatch) -> None:  # noqa: ANN001
    calls = {"n": 0}
    original = Trainer.run_epoch

    def flaky(self, **kwargs):  # noqa: ANN001, ANN003, ANN202
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self, **kwargs)

    monkeypatch.setattr(Trainer, "run_epoch", flaky)
    with pytest.raises(KeyboardInterrupt):
        fit(_cfg(epochs=3), tmp_path / "r", quiet=True, dataset=small_ds)
    monkeypatch.setattr(Trainer, "run_epoch", original)
    assert not list((tmp_path / "r").glob("*.tmp")), "no half-written temporary files"
    with np.load(tmp_path / "r" / "checkpoint.npz") as z:
        assert json.loads(bytes(z["meta"]).decode())["epoch"] == 1
    with pytest.raises(FileExistsError, match="--resume"):
        fit(_cfg(epochs=3), tmp_path / "r", quiet=True, dataset=small_ds)
    fit(_cfg(epochs=3), tmp_path / "r", resume=True, quiet=True, dataset=small_ds)
    assert len((tmp_path / "r" / "history.csv").read_text().splitlines()) == 4


def test_resume_with_other_hyperparameters_is_refused(tmp_path: Path, small_ds) -> None:  # noqa: ANN001
    fit(_cfg(epochs=1), tmp_path / "r", quiet=True, dataset=small_ds)
    with pytest.raises(ValueError, match="lr"):
        fit(_cfg(epochs=2, lr=1e-4), tmp_path / "r", resume=True, quiet=True, dataset=small_ds)


def test_load_run_rebuilds_the_model_and_refuses_other_variants(tmp_path: Path, small_ds) -> None:  # noqa: ANN001
    fit(_cfg(epochs=1), tmp_path / "r", quiet=True, dataset=small_ds)
    run = load_run(tmp_path / "r")
    assert run.variant == "fcn" and isinstance(run.model, ts.models.SegmentationModel)
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    cfg["train"]["variant"] = cfg["variant"] = "fcn_crf"
    (tmp_path / "r" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="does not match variant"):
        load_run(tmp_path / "r")
    with pytest.raises(FileNotFoundError, match="finished tinyseg run"):
        load_run(tmp_path / "missing")


def test_predict_rejects_bad_images(tmp_path: Path, small_ds) -> None:  # noqa: ANN001
    run = fit(_cfg(epochs=1), tmp_path / "r", quiet=True, dataset=small_ds)
    with pytest.raises(ValueError, match="shape"):
        run.predict(np.zeros((2, 40, 40), np.float32))
    bad = np.zeros((1, 1, 40, 40), np.float32)
    bad[0, 0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        run.predict(bad)


def test_bad_configurations_give_clear_errors(small_ds) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="variant='unet' is not allowed; use one of: fcn, adv_fcn"):
        _cfg(variant="unet").validate()
    with pytest.raises(ValueError, match="eps"):
        _cfg(eps=-0.1).validate()
    with pytest.raises(ValueError, match="val_frac"):
        _cfg(val_frac=1.5).validate()


def test_cli_errors_exit_2_with_a_message(tmp_path: Path, capsys, tmp_cache) -> None:  # noqa: ANN001
    assert main(["train", "--variant", "unet", "--out", str(tmp_path / "x")]) == 2
    assert "variant='unet' is not allowed" in capsys.readouterr().err
    assert main(["train", "--eps", "0", "--out", str(tmp_path / "x")]) == 2
    assert "eps" in capsys.readouterr().err
    assert main(["train", "--data", "nosuch:thing", "--out", str(tmp_path / "x")]) == 2
    assert "nosuch" in capsys.readouterr().err
    assert main(["segment", str(tmp_path / "norun"), "img.png", "--out", str(tmp_path / "m.png")]) == 2


@pytest.mark.slow
def test_train_evaluate_segment_on_a_synthetic_inbreast_folder(tmp_path: Path, tmp_cache) -> None:  # noqa: ANN001
    """End to end through the files a user would have: DICOM + XML, the CLI, a mask at full size."""
    folder = tmp_path / "inbreast"
    assert main(["phantom", "--preset", "inbreast", "--format", "inbreast", "--n-masses", "24",
                 "--out", str(folder)]) == 0
    run_dir = tmp_path / "run"
    assert main(["train", "--variant", "fcn", "--data", f"inbreast:{folder}", "--epochs", "3", "--quiet",
                 "--device", "cpu", "--out", str(run_dir)]) == 0
    assert main(["evaluate", str(run_dir)]) == 0
    for name in ("metrics_contours.png", "metrics_trimap.png", "training_curves.png"):
        assert (run_dir / name).stat().st_size > 0, name
    from tinyseg.data import load_dataset, read_image

    ds = load_dataset(f"inbreast:{folder}")
    meta = next(m for m in ds.test.meta if not m["mirrored"])  # a left breast: box in file coordinates
    dicom = folder / "AllDICOMs" / meta["source"]
    image = read_image(dicom)
    out = tmp_path / "mask.png"
    assert main(["segment", str(run_dir), str(dicom), "--out", str(out)]) == 0  # whole image as the ROI
    import matplotlib.image as mpimg

    assert mpimg.imread(out).shape[:2] == image.shape
    assert (tmp_path / "mask_overlay.png").exists()
    # With the mass's own box the prediction is a blob of sensible size inside that box, nothing outside.
    x0, y0, x1, y1 = meta["box"]
    assert main(["segment", str(run_dir), str(dicom), "--roi", f"{x0},{y0},{x1},{y1}", "--out", str(out)]) == 0
    m = mpimg.imread(out)
    m = (m[..., 0] if m.ndim == 3 else m) > 0.5
    assert m.shape == image.shape
    inside = m[y0:y1 + 1, x0:x1 + 1]
    assert 0.3 < inside.mean() <= 1.0, inside.mean()
    assert m.sum() == inside.sum()


def test_evaluate_on_other_data_writes_its_own_file_and_keeps_metrics_json(tmp_path: Path, small_ds,  # noqa: ANN001
                                                                             tmp_cache) -> None:  # noqa: ANN001
    fit(_cfg(epochs=1), tmp_path / "r", quiet=True, dataset=small_ds)
    before = (tmp_path / "r" / "metrics.json").read_text()
    assert main(["evaluate", str(tmp_path / "r"), "--data", "phantom:ddsm_bcrp"]) == 0
    assert (tmp_path / "r" / "metrics.json").read_text() == before
    other = json.loads((tmp_path / "r" / "metrics_phantom_ddsm_bcrp_seed0.json").read_text())
    assert other["test"]["n_images"] == 87 and other["selected_epoch"] == json.loads(before)["selected_epoch"]


def test_training_data_with_nan_or_bad_labels_is_refused(tmp_path: Path, small_ds) -> None:  # noqa: ANN001
    tr = small_ds.train
    bad_x = tr.images.copy()
    bad_x[0, 0, 5, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit(_cfg(epochs=1), tmp_path / "a", quiet=True,
            dataset=dataclasses.replace(small_ds, train=Split(bad_x, tr.labels, tr.meta)))
    bad_y = tr.labels.copy()
    bad_y[0, 0, 0] = 2
    with pytest.raises(ValueError, match="0 or 1"):
        fit(_cfg(epochs=1), tmp_path / "b", quiet=True,
            dataset=dataclasses.replace(small_ds, train=Split(tr.images, bad_y, tr.meta)))
    assert not (tmp_path / "a" / "config.json").exists(), "a refused run writes nothing"


def test_segment_refuses_an_unreadable_image(tmp_path: Path, small_ds, capsys) -> None:  # noqa: ANN001
    fit(_cfg(epochs=1), tmp_path / "r", quiet=True, dataset=small_ds)
    garbage = tmp_path / "scan.png"
    garbage.write_bytes(b"\x89PNG not really an image")
    assert main(["segment", str(tmp_path / "r"), str(garbage), "--out", str(tmp_path / "m.png")]) == 2
    err = capsys.readouterr().err
    assert "scan.png" in err and not (tmp_path / "m.png").exists()


def test_cli_refuses_to_overwrite_a_run_without_resume(tmp_path: Path, capsys, tmp_cache) -> None:  # noqa: ANN001
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.json").write_text("{}")
    assert main(["train", "--out", str(tmp_path / "r"), "--epochs", "1", "--quiet"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert (tmp_path / "r" / "config.json").read_text() == "{}"
