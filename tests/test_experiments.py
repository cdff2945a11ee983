"""The Table-2 driver end to end (the CI smoke run), its resumability, the rendered table, and
every variant trained from a synthetic INbreast-format folder through the CLI."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from tinyseg import viz
from tinyseg.cli import main
from tinyseg.experiments import PAPER_TABLE2, render_markdown, seed_difference
from tinyseg.models import VARIANTS


@pytest.mark.slow
def test_table2_fast_runs_all_eight_variants_end_to_end(tmp_path: Path, tmp_cache) -> None:  # noqa: ANN001
    out = tmp_path / "t2"
    assert main(["table2", "--seeds", "1", "--epochs", "1", "--fast", "--out", str(out), "--device", "cpu",
                 "--quiet"]) == 0
    table = json.loads((out / "table2.json").read_text())
    assert list(table["rows"]) == list(VARIANTS)
    for v, row in table["rows"].items():
        assert 0.5 < row["dice_pooled_mean"] <= 1 and len(row["trimap_mean"]) == 5
        lo, hi = row["dice_pooled_ci95"]
        assert lo <= row["dice_pooled_mean"] <= hi
        assert row["paper_dice"] == list(PAPER_TABLE2[v])
        if v != "fcn":
            assert 0 <= row["vs_fcn"]["mcnemar_p_exact"] <= 1
    assert set(table["baselines"]) == {"prior_only", "otsu"}
    md = (out / "table2.md").read_text()
    assert "paper's Dice on INbreast" in md and "baseline: prior-only" in md and "adv_multi_fcn_crf" in md

    # Resumable: finished runs are kept as they are, an interrupted one continues from its checkpoint.
    done = out / "runs" / "fcn_s0" / "metrics.json"
    stamp = done.stat().st_mtime_ns
    (out / "runs" / "adv_fcn_s0" / "metrics.json").unlink()
    assert main(["table2", "--seeds", "1", "--epochs", "1", "--fast", "--out", str(out), "--device", "cpu",
                 "--quiet", "--variants", "fcn", "adv_fcn"]) == 0
    assert done.stat().st_mtime_ns == stamp
    assert (out / "runs" / "adv_fcn_s0" / "metrics.json").exists()


def test_table2_rejects_unknown_variants(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert main(["table2", "--variants", "fcn", "unet", "--out", str(tmp_path)]) == 2
    assert "variant='unet' is not allowed" in capsys.readouterr().err


def test_markdown_labels_the_papers_column_by_dataset() -> None:
    row = {"dice_pooled_mean": 0.9, "dice_pooled_std": 0.01, "dice_per_image_mean": 0.9, "dice_per_image_std": 0.0,
           "dice_pooled_ci95": (0.88, 0.92), "trimap_mean": [0.5] * 5, "paper_dice": PAPER_TABLE2["fcn"]}
    base = {"prior_only": {"dice_pooled": 0.89, "dice_per_image_mean": 0.88, "trimap": [0.5] * 5}}
    for data, label, value in (("phantom", "INbreast", "89.48"), ("phantom:ddsm_bcrp", "DDSM-BCRP", "90.21")):
        md = render_markdown({"data": data, "n_test": 58, "rows": {"fcn": row}, "baselines": base,
                              "command": {"seeds": 3, "epochs": 30}})
        assert f"paper's Dice on {label}" in md and f"| {value} |" in md


def test_seed_difference_reads_the_per_seed_differences_of_a_finished_table(tmp_path: Path) -> None:
    rows = {"a": {"dice_pooled_seeds": [0.80, 0.82, 0.90], "dice_pooled_std": 0.04},
            "b": {"dice_pooled_seeds": [0.81, 0.80, 0.85], "dice_pooled_std": 0.02}}
    path = tmp_path / "table2.json"
    path.write_text(json.dumps({"rows": rows, "command": {"epochs": 7}}))
    text = seed_difference(path, "a", "b")
    # differences -1, +2, +5 points: mean +2.00; the larger seed sd is 4 points
    assert "3-seed Table 2 (7 epochs" in text
    assert "gives +2.00 (per seed -1.00, +2.00, +5.00; seed sd up to 4.00 points)" in text
    assert "no finished Table 2" in seed_difference(tmp_path / "missing.json", "a", "b")


def test_figures_draw_from_real_arrays() -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:40, :40]
    target = (((yy - 20) ** 2 + (xx - 20) ** 2) < 100).astype(np.int64)[None].repeat(3, 0)
    images = rng.standard_normal((3, 1, 40, 40))
    figs = [viz.prior_map(target[0] * 0.8, target[0] * 0.7), viz.trimap_bands(images[0, 0], target[0]),
            viz.contours(images, target, {"a": target, "b": 1 - target}),
            viz.trimap_curves({"a": [0.5, 0.6, 0.7, 0.75, 0.8]}),
            viz.training_curves({"a": [{"epoch": 1, "train_loss": 0.5, "val_dice": 0.8},
                                       {"epoch": 2, "train_loss": 0.3, "val_dice": 0.85}]})]
    assert [len(f.axes) for f in figs] == [4, 4, 6, 1, 2]
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="module")
def inbreast_folder(tmp_path_factory):  # noqa: ANN001, ANN201
    folder = tmp_path_factory.mktemp("ib") / "INbreast"
    assert main(["phantom", "--preset", "inbreast", "--format", "inbreast", "--n-masses", "12",
                 "--out", str(folder)]) == 0
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_trains_from_an_inbreast_format_folder(variant: str, inbreast_folder: Path, tmp_path: Path,
                                                             monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("TINYSEG_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    assert main(["train", "--variant", variant, "--data", f"inbreast:{inbreast_folder}", "--epochs", "1",
                 "--n-iter", "2", "--n-iter-eval", "3", "--device", "cpu", "--quiet", "--out", str(run)]) == 0
    m = json.loads((run / "metrics.json").read_text())
    assert m["variant"] == variant and 0 < m["test"]["dice_pooled"] <= 1
    assert os.path.getsize(run / "model.npz") > 0


@pytest.mark.slow
def test_table2_in_two_worker_processes_equals_one_bit_for_bit(tmp_path: Path, tmp_cache) -> None:  # noqa: ANN001
    """--jobs 2 trains the same runs as --jobs 1 (each worker at 1 thread): the same table2.json numbers."""
    tables = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs{jobs}"
        assert main(["table2", "--variants", "fcn", "--seeds", "2", "--epochs", "1", "--fast", "--out", str(out),
                     "--device", "cpu", "--quiet", "--jobs", jobs, "--threads-per-job", "1"]) == 0
        table = json.loads((out / "table2.json").read_text())
        assert set(table.pop("train_seconds_this_invocation")) == {"fcn_s0", "fcn_s1"}
        tables[jobs] = table
    assert tables["1"] == tables["2"]
    assert tables["1"]["rows"]["fcn"]["dice_pooled_seeds"][0] != tables["1"]["rows"]["fcn"]["dice_pooled_seeds"][1]


def test_paper_table2_has_a_row_for_every_variant_and_no_other() -> None:
    """A variant added to the models without its paper row would fail here, not at the end of a
    whole `table2` run."""
    from tinyseg.config import CHOICES
    from tinyseg.models import VARIANTS

    assert set(PAPER_TABLE2) == set(VARIANTS) == set(CHOICES["variant"])
