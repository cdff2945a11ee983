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
    assert md == render_crf_study(one) and "## drawn boxes" in md


def test_crf_study_refuses_bad_options_before_training(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(OptionError):
        run_crf_study(out=tmp_path, seeds=0)
    with pytest.raises(OptionError):
        run_crf_study(out=tmp_path, protocols=("loose",))
    assert not (tmp_path / "runs").exists()
