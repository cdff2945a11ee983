"""The layer fast paths (tinyseg/cuda/layers.py, adversarial.py) and the CRF's, through the ops
that they override, against the plain path — on the CPU through the g++ emulator, every fast
path switched on (as ``TINYSEG_FUSED=1`` does).

The GPU runs the same comparison for real in tests/cuda/test_gpu_parity.py (cupy against numpy).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import tinyseg as ts
import tinyseg.cuda as tc
import tinyseg.functions as F
from tinyseg.adversarial import adversarial_input, adversarial_perturbation, loss_and_backward
from tinyseg.cuda import kernels
from tinyseg.cuda.testing import nvrtc
from tinyseg.functions.im2col import _col2im
from tinyseg.gradcheck import GRADCHECK_CASES, run_case
from tinyseg.models import VARIANTS, build_model

from helpers import FAST, NO_KERNEL, case_outputs, fast_paths_emulated, needs_gxx  # tests/ is on sys.path (rootdir conftest)

pytestmark = needs_gxx



@pytest.fixture(autouse=True)
def small_launches(monkeypatch):
    """Small blocks and capped grids, so grid-stride loops and multi-block images are exercised."""
    monkeypatch.setattr(kernels, "BLOCK", 16)
    monkeypatch.setattr(kernels, "MAX_BLOCKS", 3)


def _case_run(case, arrays):
    y, grads = case_outputs(case, [a.copy() for a in arrays])
    return [y] + grads


def test_no_kernel_list_names_existing_cases():
    assert set(NO_KERNEL) <= {n for n in GRADCHECK_CASES if n.startswith(FAST)}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(n for n in GRADCHECK_CASES if n.startswith(FAST)))
def test_every_fast_path_case_equals_its_plain_path(name, dtype):
    case = GRADCHECK_CASES[name]
    arrays = [np.asarray(a) for a in case.make_inputs(np.random.default_rng(0))]
    arrays = [a.astype(dtype) if a.dtype.kind == "f" else a for a in arrays]
    with tc.fused(False):
        plain = _case_run(case, arrays)
    before = sum(tc.launches.values())
    with fast_paths_emulated():
        fast = _case_run(case, arrays)
    launched = sum(tc.launches.values()) - before
    if name in NO_KERNEL:
        assert launched == 0, f"{name} launched {launched} kernels, but NO_KERNEL says: {NO_KERNEL[name]}"
        return
    assert launched > 0, "no kernel ran: the fast path was not taken"
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for k, (a, b) in enumerate(zip(fast, plain)):
        np.testing.assert_allclose(a, b, rtol=0, atol=tol * max(1.0, float(np.abs(b).max())), err_msg=f"{name} output {k}")


@pytest.mark.gradcheck
@pytest.mark.parametrize("name", sorted(n for n in GRADCHECK_CASES if n.startswith(FAST) and n not in NO_KERNEL))
def test_every_fast_path_passes_the_gradient_check(name):
    with fast_paths_emulated():
        run_case(GRADCHECK_CASES[name], np)


def test_max_pool_fast_path_keeps_the_first_maximum_on_ties_and_drops_odd_edges():
    x = np.random.default_rng(0).integers(0, 3, (2, 3, 7, 9)).astype(np.float64)  # many ties
    gy = np.random.default_rng(1).standard_normal((2, 3, 3, 4))
    outs = []
    for on in (False, True):
        t = ts.Tensor(x.copy(), requires_grad=True)
        before = tc.launches["maxpool2x2_backward"]
        with fast_paths_emulated() if on else tc.fused(False):
            y = F.max_pool2d(t)
            y.backward(gy)
        assert (tc.launches["maxpool2x2_backward"] > before) is on
        outs.append((y.data, t.grad))
    np.testing.assert_array_equal(outs[1][0], outs[0][0])
    np.testing.assert_array_equal(outs[1][1], outs[0][1])
    assert not outs[1][1][:, :, 6, :].any() and not outs[1][1][:, :, :, 8].any()


def test_col2im_gather_sums_in_the_plain_path_order():
    """Stride 1: the gather adds the kernel offsets in the plain loop's order, so the results are identical."""
    col = np.random.default_rng(2).standard_normal((2, 3 * 9, 6 * 5)).astype(np.float32)
    plain = _col2im(col, (2, 3, 8, 7), 3, 3, 1, 1, 0, 0)
    before = tc.launches["col2im_gather"]
    with fast_paths_emulated():
        fast = _col2im(col, (2, 3, 8, 7), 3, 3, 1, 1, 0, 0)
    assert tc.launches["col2im_gather"] == before + 1
    np.testing.assert_array_equal(fast, plain)


def test_cross_entropy_fast_path_is_finite_on_extreme_logits():
    z = np.array([[[1e4, -1e4]], [[-1e4, 1e4]]], dtype=np.float32).transpose(0, 2, 1)[..., None]  # (2, 2, 1, 1)
    t = np.array([[[1]], [[1]]])
    before = tc.launches["softmax_xent_backward"]
    with fast_paths_emulated():
        zt = ts.Tensor(z.copy(), requires_grad=True)
        loss = F.cross_entropy(zt, t)
        loss.backward()
    assert tc.launches["softmax_xent_backward"] == before + 1
    assert np.isfinite(loss.data) and loss.data == pytest.approx(1e4)
    np.testing.assert_allclose(zt.grad.ravel(), [0.5, -0.5, 0.0, 0.0], atol=1e-7)  # (p − onehot) / 2


def test_cross_entropy_fast_path_still_checks_the_labels():
    with fast_paths_emulated(), pytest.raises(ValueError, match="label 2"):
        F.cross_entropy(np.zeros((1, 2, 3, 3)), np.full((1, 3, 3), 2))


@pytest.mark.parametrize("graph", ["dense", "grid4"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_training_step_equals_the_plain_path_when_emulated(variant, graph):
    """Loss, every parameter gradient and the eval-mode logits, fast paths against plain, float64."""
    if graph == "grid4" and "crf" not in variant:
        pytest.skip("no CRF")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 1, 40, 40))
    y = rng.integers(0, 2, (2, 40, 40))
    results = []
    for on in (False, True):
        m = build_model(variant, np.full((40, 40), 0.4), seed=0, crf_graph=graph, dtype=np.float64)
        before = dict(tc.launches)
        with fast_paths_emulated() if on else tc.fused(False):
            res = loss_and_backward(m, x, y, adversarial=m.adversarial, eps=0.1)
            m.eval()
            with ts.no_grad():
                logits = m(ts.Tensor(x)).data
        ran = {k for k, v in tc.launches.items() if v > before.get(k, 0)}
        results.append((res.loss, {n: p.grad for n, p in m.named_parameters()}, logits, ran))
    (l0, g0, z0, ran0), (l1, g1, z1, ran1) = results
    assert not ran0
    assert {"col2im_gather", "softmax_xent_forward", "tanh_backward"} <= ran1
    assert ("crf" not in variant) or {f"crf_{graph}_step", f"crf_{graph}_step_backward"} <= ran1
    assert ("adv" not in variant) or "adversarial_input" in ran1
    assert l1 == pytest.approx(l0, rel=1e-12)
    np.testing.assert_allclose(z1, z0, rtol=0, atol=1e-10)
    for n in g0:
        np.testing.assert_allclose(g1[n], g0[n], rtol=0, atol=1e-10 * max(1.0, float(np.abs(g0[n]).max())), err_msg=n)


@pytest.mark.skipif(not nvrtc.nvrtc_available(), reason='NVRTC not installed (pip install -e ".[cuda-check]")')
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("filename", sorted(p.name for p in Path(tc.__file__).parent.glob("*.cu")))
def test_every_cuda_source_compiles_with_nvrtc_for_hopper(filename, dtype):
    """The GPU's compiler accepts what the emulator ran (g++ is more lenient about some C++)."""
    ptx = nvrtc.compile_ptx(tc.source(filename, dtype), arch="compute_90", options=("--std=c++17",))
    names = re.findall(r'extern "C" __global__ void (\w+)\(', tc.source(filename, dtype))
    assert names
    for name in names:
        assert f".entry {name}(" in ptx, name


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-14), (np.float32, 1e-6)])
def test_adversarial_input_kernel_equals_the_plain_perturbation(dtype, tol):
    """x_adv = I + ε ĝ/‖ĝ‖ per image and the mean ‖R‖/‖I‖; an image whose gradient vanishes gets R = 0."""
    rng = np.random.default_rng(4)
    g = (rng.standard_normal((3, 1, 9, 7)) * [[[[1e-30]]], [[[1.0]]], [[[1e3]]]]).astype(dtype)
    g[0] = 0
    images = rng.standard_normal((3, 1, 9, 7)).astype(dtype)
    before = tc.launches["adversarial_input"]
    with fast_paths_emulated():
        x_adv, ratio = adversarial_input(g, images, 0.1)
    assert tc.launches["adversarial_input"] == before + 1
    r = adversarial_perturbation(g, 0.1)
    np.testing.assert_array_equal(x_adv[0], images[0])
    np.testing.assert_allclose(x_adv, images + r, rtol=0, atol=tol)
    want = np.mean(np.sqrt((r.reshape(3, -1) ** 2).sum(1)) / np.sqrt((images.reshape(3, -1) ** 2).sum(1)))
    assert float(ratio) == pytest.approx(want, rel=10 * tol)
