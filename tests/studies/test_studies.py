"""The studies: small grids end to end, resumable, and bit-identical with --jobs."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tinyseg.errors import OptionError
from tinyseg.studies import render_crf_study, run_crf_study


@pytest.mark.slow
def test_crf_study_small_grid_is_bit_identical_with_two_jobs_and_resumes(tmp_path, tmp_cache) -> None:  # noqa: ANN001
    kw = dict(protocols=("drawn",), seeds=1, epochs_grid=(1, 2), fast=True)
    one = run_crf_study(out=tmp_path / "one", threads_per_job=1, **kw)
    two = run_crf_study(out=tmp_path / "two", jobs=2, threads_per_job=1, **kw)
    assert json.dumps(one["protocols"]) == json.dumps(two["protocols"])
    for name in ("fcn_e1_s0", "fcn_e2_s0", "fcn_crf_s0"):
        a, b = (np.load(tmp_path / d / "runs" / "drawn" / name / "model.npz") for d in ("one", "two"))
        assert all(np.array_equal(a[k], b[k]) for k in a.files)
    row = one["protocols"]["drawn"]["budgets"]["1"]
    assert set(row) == {"fcn", "crf_default", "crf_learned"}
    v = row["crf_default"]["vs_fcn"]
    lo, hi = v["dice_pooled_difference_ci95"]
    assert lo <= v["dice_pooled_difference"] + 1e-12 and v["dice_pooled_difference"] <= hi + 1e-12
    mtime = (tmp_path / "one" / "runs" / "drawn" / "fcn_crf_s0" / "model.npz").stat().st_mtime_ns
    again = run_crf_study(out=tmp_path / "one", threads_per_job=1, **kw)  # finished runs are skipped
    assert (tmp_path / "one" / "runs" / "drawn" / "fcn_crf_s0" / "model.npz").stat().st_mtime_ns == mtime
    assert json.dumps(again["protocols"]) == json.dumps(one["protocols"])
    md = (tmp_path / "one" / "crf_study.md").read_text()
    assert md == render_crf_study(one) and "**Drawn boxes**" in md


@pytest.mark.slow
def test_crf_study_without_the_learned_weights_trains_no_fcn_crf(tmp_path, tmp_cache) -> None:  # noqa: ANN001
    study = run_crf_study(protocols=("drawn",), seeds=1, epochs_grid=(1,), fast=True, out=tmp_path, learned=False)
    assert sorted(p.name for p in (tmp_path / "runs" / "drawn").iterdir()) == ["fcn_e1_s0"]
    res = study["protocols"]["drawn"]
    assert set(res["budgets"]["1"]) == {"fcn", "crf_default"} and "learned_weights" not in res
    assert study["command"]["learned"] is False
    assert "| not run | not run |" in render_crf_study(study)


def test_crf_study_refuses_bad_options_before_training(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(OptionError):
        run_crf_study(out=tmp_path, seeds=0)
    with pytest.raises(OptionError):
        run_crf_study(out=tmp_path, protocols=("loose",))
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_adversarial_study_small_grid_attacks_every_model_at_every_eps(tmp_path, tmp_cache) -> None:  # noqa: ANN001
    from tinyseg.studies import render_adversarial_study, run_adversarial_study

    study = run_adversarial_study(seeds=1, train_eps=(0.5,), n_train=(8, None), out=tmp_path, fast=True)
    assert study["train_eps"] == [0.1, 0.5]  # the paper's ε always joins the grid
    assert set(study["robustness"]) == {"fcn_crf", "adv_fcn_crf_eps0.1", "adv_fcn_crf_eps0.5"}
    for model, row in study["robustness"].items():
        assert set(row["attacked"]) == {"0.1", "0.5"}
        assert ("vs_plain" in row["attacked"]["0.5"]) == (model != "fcn_crf")
        # a bigger attack never helps much: Dice at ε = 0.5 is at most a hair above Dice at ε = 0.1
        assert row["attacked"]["0.5"]["dice_pooled_mean"] <= row["attacked"]["0.1"]["dice_pooled_mean"] + 0.01
    assert list(study["small_data"]) == ["8", "all"] and study["small_data"]["8"]["n_train_masses"] == 8
    assert (tmp_path / "runs" / "adv_fcn_crf_eps0.1_n8_s0" / "metrics.json").exists()
    assert (tmp_path / "adversarial_study.md").read_text() == render_adversarial_study(study)


def test_size_thirds_split_by_rank_into_near_equal_groups() -> None:
    from tinyseg.studies import size_thirds

    labels = np.zeros((7, 4, 4), np.int64)
    for k, n in enumerate([5, 1, 9, 3, 16, 2, 7]):
        labels[k].reshape(-1)[:n] = 1
    frac, third = size_thirds(labels)
    np.testing.assert_allclose(frac, np.array([5, 1, 9, 3, 16, 2, 7]) / 16)
    assert third.tolist() == [1, 0, 2, 0, 2, 0, 1]  # ranks 3,0,5,2,6,1,4: ranks 0-2 small, 3-4 middle, 5-6 large


@pytest.mark.slow
def test_multiscale_study_small_grid_covers_every_third(tmp_path, tmp_cache) -> None:  # noqa: ANN001
    from tinyseg.studies import render_multiscale_study, run_multiscale_study

    study = run_multiscale_study(seeds=1, out=tmp_path, fast=True)
    groups = study["groups"]
    assert list(groups) == ["all", "small", "middle", "large"]
    assert sum(groups[t]["n"] for t in ("small", "middle", "large")) == groups["all"]["n"] == study["n_test"]
    assert groups["small"]["mass_fraction_range"][1] <= groups["large"]["mass_fraction_range"][0]
    assert (tmp_path / "multiscale_study.md").read_text() == render_multiscale_study(study)
