"""CuPy against NumPy through the same code: every gradient-check case and every variant,
forward and backward, at float32 tolerances (skipped without CuPy and a GPU)."""
from __future__ import annotations

import numpy as np
import pytest

import tinyseg as ts
from tinyseg.adversarial import loss_and_backward
from tinyseg.backend import cupy_module, gpu_available
from tinyseg.gradcheck import GRADCHECK_CASES
from tinyseg.models import build_model

from helpers import VARIANT_GRAPHS, assert_grads_close, case_outputs, variant_step  # tests/ is on sys.path (rootdir conftest)

pytestmark = pytest.mark.skipif(not gpu_available(), reason="CuPy with a CUDA GPU is not available")


_run = case_outputs


@pytest.mark.parametrize("name", sorted(GRADCHECK_CASES))
def test_every_gradcheck_case_agrees_on_cupy_and_numpy_in_float32(name: str) -> None:
    cp = cupy_module()
    case = GRADCHECK_CASES[name]
    inputs = [np.asarray(a) for a in case.make_inputs(np.random.default_rng(0))]
    inputs = [a.astype(np.float32) if a.dtype.kind == "f" else a for a in inputs]
    y_np, g_np = _run(case, inputs)
    y_cp, g_cp = _run(case, [cp.asarray(a) for a in inputs])
    np.testing.assert_allclose(y_cp, y_np, rtol=2e-4, atol=2e-5)
    for a, b in zip(g_cp, g_np):
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-4 * max(1.0, float(np.abs(b).max())))


@pytest.mark.parametrize("variant, graph", VARIANT_GRAPHS)
def test_every_variant_training_step_agrees_on_cupy_and_numpy(variant: str, graph: str) -> None:
    cp = cupy_module()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 1, 40, 40)).astype(np.float32)
    y = rng.integers(0, 2, (4, 40, 40))
    on_cpu = variant_step(variant, graph, x, y, "cpu", logits=True)
    on_gpu = variant_step(variant, graph, cp.asarray(x), cp.asarray(y), "gpu", logits=True)
    assert on_gpu["loss"] == pytest.approx(on_cpu["loss"], rel=1e-4)
    np.testing.assert_allclose(on_gpu["logits"], on_cpu["logits"], rtol=1e-3, atol=1e-3)
    assert_grads_close(on_gpu["grads"], on_cpu["grads"])


def test_float64_gradient_checks_run_on_cupy() -> None:
    cp = cupy_module()
    for name in ("conv2d/stride2_pad1_odd", "mean_field_crf/dense", "mean_field_crf/grid4"):
        ts.gradcheck.run_case(GRADCHECK_CASES[name], xp=cp)


def test_train_command_runs_on_the_gpu(tmp_path, tmp_cache) -> None:  # noqa: ANN001
    from tinyseg.cli import main

    assert main(["train", "--variant", "adv_fcn_crf", "--epochs", "1", "--device", "gpu", "--quiet",
                 "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "metrics.json").exists()


def test_fused_adam_on_cupy_matches_the_numpy_update() -> None:
    cp = cupy_module()
    from tinyseg.optim import Adam

    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((5, 7)).astype(np.float32)
    grads = [rng.standard_normal((5, 7)).astype(np.float32) for _ in range(4)]
    a, b = ts.Parameter(p0.copy()), ts.Parameter(cp.asarray(p0))
    oa, ob = Adam([a], lr=0.01), Adam([b], lr=0.01)
    for g in grads:
        a.grad, b.grad = g, cp.asarray(g)
        oa.step()
        ob.step()
    np.testing.assert_allclose(ts.as_numpy(b.data), a.data, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ts.as_numpy(ob.m[0]), oa.m[0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ts.as_numpy(ob.v[0]), oa.v[0], rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("graph", ["dense", "grid4"])
def test_gpu_training_step_runs_every_fast_path_and_matches_the_plain_path_on_the_gpu(graph) -> None:
    """Fast paths on and off on the same GPU: every kernel of tinyseg/cuda ran, and the results agree."""
    import tinyseg.cuda as tc

    cp = cupy_module()
    rng = np.random.default_rng(0)
    x = cp.asarray(rng.standard_normal((29, 1, 40, 40)).astype(np.float32))
    y = cp.asarray(rng.integers(0, 2, (29, 40, 40)))
    out = {}
    for on in (True, False):
        before = dict(tc.launches)
        with tc.fast_paths(on):
            step = variant_step("adv_multi_fcn_crf", graph, x, y, "gpu", adam=True)
        ran = {k for k, v in tc.launches.items() if v > before.get(k, 0)}
        out[on] = (step["loss"], step["grads"], ran)  # (Adam's update is compared in test_fused_adam_... above)
    (l1, g1, ran1), (l0, g0, ran0) = out[True], out[False]
    assert not ran0
    assert {"col2im_gather", "maxpool2x2_forward", "maxpool2x2_backward", "softmax_xent_forward",
            "softmax_xent_backward", "tanh_backward", "adam_multi", "adversarial_input", "log_softmax_forward",
            "log_softmax_backward", f"crf_{graph}_step",
            f"crf_{graph}_step_backward", f"crf_{graph}_ones_backward"} <= ran1
    assert l1 == pytest.approx(l0, rel=1e-4)
    assert_grads_close(g1, g0)


def test_gpu_step_runs_no_unverified_kernel_by_default() -> None:
    """TINYSEG_FAST_PATHS unset: the GPU runs the plain CuPy code; of tinyseg's kernels only VERIFIED ones may run."""
    import tinyseg.cuda as tc

    cp = cupy_module()
    rng = np.random.default_rng(0)
    x = cp.asarray(rng.standard_normal((4, 1, 40, 40)).astype(np.float32))
    y = cp.asarray(rng.integers(0, 2, (4, 40, 40)))
    m = build_model("adv_fcn_crf", np.full((40, 40), 0.4), seed=0).to("gpu")
    before = dict(tc.launches)
    with tc.fast_paths(None):
        loss_and_backward(m, x, y, adversarial=True, eps=0.1)
    assert {k for k, v in tc.launches.items() if v > before.get(k, 0)} == set()
