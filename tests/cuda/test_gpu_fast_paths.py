"""Every CUDA fast path against the plain path ON THE GPU, in float32 and float64: each gradient-check
case whose op a fast path overrides, the float64 gradient check through the fast paths, and one
training step of every variant and graph, fused against plain on the same device.

These are the checks that admit a fast path to `tinyseg.cuda.VERIFIED` (benchmarks/gpu_check.sh runs
them with TINYSEG_FAST_PATHS=1 and benchmarks/gpu_verified.py turns the result into records). Without a GPU
they skip, unless TINYSEG_GPU_DRYRUN=1 asks for a dry run: the same tests on NumPy arrays through the
g++ emulator (how the script is checked before it spends GPU time).

When TINYSEG_GPU_CHECK_OUT names a folder, each test appends the fast paths it exercised to
``fast_paths_taken.jsonl`` there, so that a path counts as verified only through tests that ran it.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

import tinyseg.cuda as tc
from tinyseg.backend import cupy_module, gpu_available
from tinyseg.gradcheck import GRADCHECK_CASES, run_case

from helpers import (FAST, NO_KERNEL, VARIANT_GRAPHS, assert_grads_close, case_outputs,  # tests/ is on sys.path
                     fast_paths_emulated, variant_step)  # (rootdir conftest)

DRYRUN = os.environ.get("TINYSEG_GPU_DRYRUN") == "1"
pytestmark = pytest.mark.skipif(not gpu_available() and not DRYRUN,
                                reason="CuPy with a CUDA GPU is not available (TINYSEG_GPU_DRYRUN=1 emulates)")
CASES = sorted(n for n in GRADCHECK_CASES if n.startswith(FAST) and n not in NO_KERNEL)


def _device_array(a: np.ndarray):  # noqa: ANN202
    return a if DRYRUN and not gpu_available() else cupy_module().asarray(a)


@contextlib.contextmanager
def _fast(on: bool):  # noqa: ANN202
    """Every fast path on (on the GPU, or emulated in a dry run) or off."""
    if not on:
        with tc.fast_paths(False):
            yield
    elif DRYRUN and not gpu_available():
        with fast_paths_emulated():
            yield
    else:
        with tc.fast_paths(True):
            yield


@pytest.fixture(autouse=True)
def record_taken(request):  # noqa: ANN001, ANN201
    """Append the fast paths this test exercised to $TINYSEG_GPU_CHECK_OUT/fast_paths_taken.jsonl."""
    before = dict(tc.registry.taken)
    yield
    out = os.environ.get("TINYSEG_GPU_CHECK_OUT")
    ran = sorted(k for k, v in tc.registry.taken.items() if v > before.get(k, 0))
    if out:
        with open(Path(out) / "fast_paths_taken.jsonl", "a") as f:
            f.write(json.dumps({"test": request.node.nodeid, "taken": ran}) + "\n")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", CASES)
def test_fast_path_case_equals_the_plain_path_on_the_device(name: str, dtype) -> None:  # noqa: ANN001
    case = GRADCHECK_CASES[name]
    arrays = [np.asarray(a) for a in case.make_inputs(np.random.default_rng(0))]
    arrays = [_device_array(a.astype(dtype) if a.dtype.kind == "f" else a) for a in arrays]
    results = {}
    for on in (False, True):
        before = sum(tc.registry.taken.values())
        with _fast(on):
            y, grads = case_outputs(case, [a.copy() for a in arrays])
        results[on] = [y] + grads
        taken = sum(tc.registry.taken.values()) - before
        assert (taken > 0) == on, f"{name}: fast paths taken {taken} times with fast paths {'on' if on else 'off'}"
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for k, (a, b) in enumerate(zip(results[True], results[False])):
        np.testing.assert_allclose(a, b, rtol=0, atol=tol * max(1.0, float(np.abs(b).max())),
                                   err_msg=f"{name} output {k}")


@pytest.mark.gradcheck
@pytest.mark.parametrize("name", CASES)
def test_fast_path_passes_the_float64_gradient_check_on_the_device(name: str) -> None:
    xp = np if DRYRUN and not gpu_available() else cupy_module()
    with _fast(True):
        run_case(GRADCHECK_CASES[name], xp=xp)


@pytest.mark.parametrize("variant, graph", VARIANT_GRAPHS)
def test_training_step_with_fast_paths_equals_the_plain_step_on_the_device(variant: str, graph: str) -> None:
    rng = np.random.default_rng(0)
    n = 4 if DRYRUN and not gpu_available() else 29
    x = _device_array(rng.standard_normal((n, 1, 40, 40)).astype(np.float32))
    y = _device_array(rng.integers(0, 2, (n, 40, 40)))
    device = "cpu" if DRYRUN and not gpu_available() else "gpu"
    out = {}
    for on in (False, True):
        with _fast(on):
            out[on] = variant_step(variant, graph, x, y, device, adam=True)
    plain, fast = out[False], out[True]
    assert fast["loss"] == pytest.approx(plain["loss"], rel=1e-4)
    assert fast["r_ratio"] == pytest.approx(plain["r_ratio"], rel=1e-4)
    assert_grads_close(fast["grads"], plain["grads"])
    # Adam's first step is lr·g/(|g| + eps): where g is near zero, float32 rounding of g moves it
    # by a fraction of lr, so the parameters are compared to 2 % of lr.
    for k, p in plain["params"].items():
        np.testing.assert_allclose(fast["params"][k], p, rtol=0, atol=0.02 * 3e-3, err_msg=f"parameter {k} after one Adam step")
