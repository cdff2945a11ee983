"""The CRF's CUDA fast path (tinyseg/cuda/crf.py: crf_dense.cu, crf_grid4.cu) against the plain path.

On the CPU the kernels run through the g++ emulator (`tinyseg.cuda.testing.emulated`), with a small
block and several blocks per image so that every index path of the launch is exercised; on a GPU
they run as compiled, at the real launch configuration, against the plain path on the same GPU.
"""
from __future__ import annotations

import numpy as np
import pytest

import tinyseg.cuda as tc
import tinyseg.functions as F
from tinyseg.autodiff import Tensor, no_grad
from tinyseg.backend import as_numpy, cupy_module, gpu_available
from tinyseg.cuda import crf as crf_fast, kernels
from tinyseg.cuda.testing import emulated, nvrtc
from tinyseg.functions.crf import MeanFieldCRFOp
from tinyseg.gradcheck import GRADCHECK_CASES, run_case

from helpers import crf_inputs, fast_paths_emulated, needs_gxx  # tests/ is on sys.path (rootdir conftest)

needs_gpu = pytest.mark.skipif(not gpu_available(), reason="CuPy with a CUDA GPU is not available")

OPTIONS = {  # weights shape, keyword arguments: every option the fast path takes
    "dense": ((2,), {}),
    "per_label_self": ((2, 2), {"include_self": True}),
    "prob": ((2,), {"unary_domain": "prob"}),
}


def _inputs(xp, dtype, seed=0, N=3, H=4, W=5, w_shape=(2,)):
    return [a.astype(dtype) for a in crf_inputs(xp, seed=seed, N=N, H=H, W=W, w_shape=w_shape)]


def _run(u0, i0, w0, G, n_iter, image_grad=True, **kw):
    """Z_T and the gradients of <Z_T, G>; also whether the op took the fast path."""
    u, w = Tensor(u0.copy(), True), Tensor(w0.copy(), True)
    img = Tensor(i0.copy(), image_grad)
    before = tc.launches[f"crf_{kw.get('graph', 'dense')}_step_backward"]
    z = F.mean_field_crf(u, img, w, n_iter=n_iter, **kw)
    z.backward(G)
    fused = tc.launches[f"crf_{kw.get('graph', 'dense')}_step_backward"] > before
    out = [as_numpy(a) for a in (z.data, u.grad, w.grad)] + [as_numpy(img.grad) if image_grad else None]
    return out, fused


def _compare(fast, plain, rtol):
    for name, a, b in zip(["Z_T", "unary", "weights", "image"], fast, plain):
        if b is None:
            assert a is None, name
            continue
        np.testing.assert_allclose(a, b, rtol=0, atol=rtol * max(1.0, float(np.abs(b).max())), err_msg=name)


@pytest.fixture
def small_launch(monkeypatch):
    """8 threads per block: threads stride over pixels, and images split over several blocks."""
    monkeypatch.setattr(kernels, "BLOCK", 8)


@needs_gxx
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("n_iter", [1, 4])
@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("graph", ["dense", "grid4"])
def test_emulated_fast_path_equals_plain_path(small_launch, graph, option, n_iter, dtype, tol):
    w_shape, kw = OPTIONS[option]
    kw = {**kw, "graph": graph}
    u, img, w = _inputs(np, dtype, seed=n_iter, w_shape=w_shape)
    G = np.random.default_rng(7).standard_normal(u.shape).astype(dtype)
    with fast_paths_emulated():
        fast, took = _run(u, img, w, G, n_iter, **kw)
    plain, took_plain = _run(u, img, w, G, n_iter, **kw)
    assert took and not took_plain
    _compare(fast, plain, tol)


@needs_gxx
@pytest.mark.parametrize("graph", ["dense", "grid4"])
def test_emulated_fast_path_without_image_gradient_and_with_one_block_per_image(small_launch, graph):
    """need_image = 0 skips the image sums; 6 images and 4 pixels of work per block give S = 1."""
    u, img, w = _inputs(np, np.float64, seed=2, N=6, H=2, W=2)
    G = np.random.default_rng(3).standard_normal(u.shape)
    with fast_paths_emulated():
        assert crf_fast._splits(graph, 6, 4, u) == 1
        fast, took = _run(u, img, w, G, 3, image_grad=False, graph=graph)
    plain, _ = _run(u, img, w, G, 3, image_grad=False, graph=graph)
    assert took
    _compare(fast, plain, 1e-12)


@needs_gxx
@pytest.mark.parametrize("name", ["mean_field_crf/dense", "mean_field_crf/grid4"])
def test_emulated_fast_path_passes_the_gradient_check(small_launch, name):
    with fast_paths_emulated():
        run_case(GRADCHECK_CASES[name], np)


def _applies(unary, graph="dense", authors_self_message=False, n_iter=3):
    return crf_fast.applies(MeanFieldCRFOp(n_iter, graph, False, "logits", authors_self_message, True), unary)


def test_fast_path_is_off_for_numpy_outside_emulation_and_when_switched_off():
    u, img, w = _inputs(np, np.float64)
    assert not _applies(u, "dense")
    with emulated():
        assert _applies(u, "dense") and _applies(u, "grid4")
        assert not _applies(u, "grid4", authors_self_message=True)  # the authors' message: plain path only
        assert not _applies(u, "dense", n_iter=0)
        assert not _applies(np.zeros((1, 2, 65, 64)), "dense")  # P > MAX_PIXELS
        assert _applies(np.zeros((1, 2, 65, 64)), "grid4")  # no shared-memory limit
    before = tc.launches["crf_grid4_step"]
    with emulated(), tc.fused(False):
        F.mean_field_crf(u, img, w, n_iter=2, graph="grid4")
    with emulated(), tc.fused(None):  # TINYSEG_FUSED unset: only verified fast paths, and the CRF is not one
        F.mean_field_crf(u, img, w, n_iter=2, graph="grid4")
    assert tc.launches["crf_grid4_step"] == before


@pytest.mark.skipif(not nvrtc.nvrtc_available(), reason='NVRTC not installed (pip install -e ".[cuda-check]")')
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("graph", ["dense", "grid4"])
def test_crf_kernels_compile_with_nvrtc_for_hopper(dtype, graph):
    ptx = nvrtc.compile_ptx(tc.source(f"crf_{graph}.cu", dtype), arch="compute_90", options=("--std=c++17",))
    for name in ("ones", "step", "step_backward", "ones_backward"):
        assert f".entry crf_{graph}_{name}(" in ptx


@needs_gpu
@pytest.mark.parametrize("graph", ["dense", "grid4"])
@pytest.mark.parametrize("train", [True, False])
def test_gpu_fast_path_equals_plain_path_on_40x40_rois(train, graph):
    """The real launch configuration (256 threads, several blocks per image) at the model's size."""
    cp = cupy_module()
    u, img, w = _inputs(cp, np.float32, N=29, H=40, W=40)
    G = cp.asarray(np.random.default_rng(1).standard_normal(u.shape).astype(np.float32))
    n_iter = 5 if train else 10
    with tc.fused(True):
        fast, took = _run(u, img, w, G, n_iter, graph=graph)
    with tc.fused(False):
        plain, took_plain = _run(u, img, w, G, n_iter, graph=graph)
    assert took and not took_plain
    _compare(fast, plain, 2e-4)


@needs_gpu
def test_gpu_fast_path_inference_in_float64_matches_numpy():
    cp = cupy_module()
    u, img, w = _inputs(np, np.float64, N=2, H=40, W=40)
    with no_grad(), tc.fused(True):
        z_np = F.mean_field_crf(u, img, w, n_iter=10).data
        z_cp = as_numpy(F.mean_field_crf(cp.asarray(u), cp.asarray(img), cp.asarray(w), n_iter=10).data)
    np.testing.assert_allclose(z_cp, z_np, rtol=0, atol=1e-10)


def test_fast_path_declines_what_its_kernels_cannot_take():
    """float16 and an empty batch take the plain path instead of failing in the kernel loader or launch."""
    with emulated():
        assert not _applies(np.zeros((1, 2, 4, 5), np.float16))
        assert not _applies(np.zeros((0, 2, 4, 5)), "grid4")
    with fast_paths_emulated():
        z = F.mean_field_crf(np.zeros((0, 2, 4, 5)), np.zeros((0, 1, 4, 5)), np.ones(2), n_iter=2)
    assert z.shape == (0, 2, 4, 5)
