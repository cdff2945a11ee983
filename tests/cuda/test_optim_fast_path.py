"""Adam's one-launch GPU update (the ``adam_multi`` fast path, tinyseg/cuda/optim.cu) against the
NumPy update, through the emulator; and which Adam a GPU runs by default."""
from __future__ import annotations

import numpy as np
import pytest

import tinyseg as ts
import tinyseg.cuda as tc
from tinyseg.optim import Adam

from helpers import fast_paths_emulated, needs_gxx  # tests/ is on sys.path (rootdir conftest)


@needs_gxx
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-15), (np.float32, 1e-6)])
def test_multi_tensor_adam_equals_the_per_parameter_update(dtype, tol):
    rng = np.random.default_rng(0)
    shapes = [(5, 7), (3,), (2, 3, 4), (1,)]
    runs = []
    for emulated in (False, True):
        params = [ts.Parameter(rng.standard_normal(s).astype(dtype)) for s in shapes]
        opt = Adam(params, lr=0.01)
        grad_rng = np.random.default_rng(1)
        before = tc.launches["adam_multi"]
        for step in range(4):
            for k, p in enumerate(params):
                g = grad_rng.standard_normal(p.shape[::-1]).astype(dtype).T  # non-contiguous for 2-D and 3-D
                p.grad = None if (k == 1 and step == 2) else g  # a parameter without a gradient is left alone
            if emulated:
                with fast_paths_emulated():
                    opt.step()
            else:
                opt.step()
        assert (tc.launches["adam_multi"] - before) == (4 if emulated else 0)
        runs.append(([p.data for p in params], opt.m, opt.v))
        rng = np.random.default_rng(0)  # same initial values for the second run
    for a, b in zip(runs[0], runs[1]):
        for x, y in zip(a, b):
            np.testing.assert_allclose(y, x, rtol=tol, atol=tol)


@needs_gxx
def test_multi_tensor_adam_falls_back_on_mixed_dtypes():
    params = [ts.Parameter(np.ones(3, np.float32)), ts.Parameter(np.ones(2, np.float64))]
    for p in params:
        p.grad = np.ones_like(p.data)
    opt = Adam(params, lr=0.1)
    before = tc.launches["adam_multi"]
    with fast_paths_emulated():
        opt.step()
    assert tc.launches["adam_multi"] == before
    np.testing.assert_allclose(params[0].data, 0.9, rtol=1e-6)  # first Adam step moves by lr


def test_only_the_verified_adam_is_on_by_default():
    """TINYSEG_FUSED unset: the per-parameter CuPy Adam (verified on an H100) may run, nothing else."""
    assert set(tc.VERIFIED) == {"adam"}
    assert {"command", "gpu", "date"} <= set(tc.VERIFIED["adam"])
    with tc.fused(None):
        assert tc.enabled("adam") and not tc.enabled("adam_multi") and not tc.enabled("crf")
    with tc.fused(False):
        assert not tc.enabled("adam")
    with tc.fused(True):
        assert all(tc.enabled(name) for name in tc.FAST_PATHS)
