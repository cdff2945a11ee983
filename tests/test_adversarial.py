"""Adversarial training [ZX18 Eq. 7-8]: the perturbation, the first-order rise of the loss, batch
independence, gradient summation, and end-to-end gradients of small models."""
from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pytest

import tinyseg as ts
import tinyseg.cuda as tc
from tinyseg import F
from tinyseg.adversarial import adversarial_perturbation, loss_and_backward
from tinyseg.gradcheck import check_backward
from tinyseg.models import build_model


def tiny(variant: str, graph: str = "dense", seed: int = 0,
         dtype: type = np.float64) -> ts.models.SegmentationModel:
    """A model on 16×16 inputs (FCNs 16→14→7→6→3→1 and 16→14→7→6→3→1 with other widths)."""
    return build_model(variant, prior=np.full((16, 16), 0.3), seed=seed, dtype=dtype, size=16,
                       fcn_configs=[(2, 3, 3, 2, 4, 3), (3, 3, 2, 2, 3, 3)], crf_graph=graph)


def _emulation() -> tuple[Any, bool]:
    """The CUDA test support's ``emulated`` context and whether g++ can run it.

    Looked up in ``tinyseg.cuda.testing`` and, before the test support moved there, ``tinyseg.cuda``.
    """
    for package in ("tinyseg.cuda.testing", "tinyseg.cuda"):
        try:
            emulate = importlib.import_module(package + ".emulate")
        except ImportError:
            continue
        return importlib.import_module(package).emulated, bool(emulate.available())
    return None, False


def naive_cross_entropy(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean pixel-wise NLL of softmax(z) [ZX18 Eq. 1] and its gradient dL/dz, written out in NumPy."""
    z = z - z.max(axis=1, keepdims=True)
    q = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)  # (N, 2, H, W)
    onehot = np.stack([y == 0, y == 1], axis=1)          # (N, 2, H, W)
    return float(-np.log(q[onehot]).mean()), (q - onehot) / y.size


def _batch(n: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 16, 16)), rng.integers(0, 2, (n, 16, 16))


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_perturbation_has_norm_eps_per_image_and_zero_where_gradient_vanishes(xp, dtype, tol) -> None:  # noqa: ANN001
    # float32 is the training dtype, and where the per-image pre-scaling matters: scaled by the
    # batch's max |g| (1e3) instead of its own, the 1e-30 image's ĝ² underflows and its R becomes 0.
    rng = np.random.default_rng(0)
    g = (rng.standard_normal((4, 1, 8, 8)) * np.array([1e-30, 1.0, 1e3, 0.0])[:, None, None, None]).astype(dtype)
    assert np.all(g[0] != 0) and np.all(g[3] == 0)  # the tiny image is tiny, not zero, even in float32
    r = ts.as_numpy(adversarial_perturbation(xp.asarray(g), 0.1))
    assert r.dtype == dtype
    r64 = r.astype(np.float64).reshape(4, -1)
    norms = np.sqrt((r64 ** 2).sum(1))
    np.testing.assert_allclose(norms[:3], 0.1, rtol=tol)  # including a gradient of 1e-30 (no underflow)
    assert norms[3] == 0 and np.all(np.isfinite(r))
    g64 = g.astype(np.float64).reshape(4, -1)
    for n in (0, 1, 2):  # the direction of each image's own gradient
        np.testing.assert_allclose(r64[n] / norms[n], g64[n] / np.linalg.norm(g64[n]), rtol=tol, atol=tol,
                                   err_msg=f"image {n}")


def test_nonpositive_eps_is_refused() -> None:
    with pytest.raises(ValueError, match="eps"):
        adversarial_perturbation(np.ones((1, 1, 2, 2)), 0.0)


@pytest.mark.parametrize("variant", ["fcn", "fcn_crf"])
def test_loss_rises_at_i_plus_r_as_the_first_order_prediction_says(variant: str) -> None:
    m = tiny(variant)
    x, y = _batch(1)
    img = ts.Tensor(x, requires_grad=True)
    loss = F.cross_entropy(m(img), y)
    loss.backward()
    g = img.grad
    errors = []
    for eps in (1e-2, 5e-3, 2.5e-3):
        r = adversarial_perturbation(g, eps)
        rise = F.cross_entropy(m(ts.Tensor(x + r)), y).item() - loss.item()
        predicted = eps * np.linalg.norm(g)
        assert rise > 0
        errors.append(abs(rise - predicted))
    # O(ε²): halving ε divides the error by about 4.
    assert errors[0] / errors[1] > 3 and errors[1] / errors[2] > 3, errors


def test_perturbation_is_batch_independent() -> None:
    m = tiny("adv_fcn_crf")
    x, y = _batch(3)
    rs = []
    for xs, ys in ((x, y), (x[:1], y[:1])):
        img = ts.Tensor(xs, requires_grad=True)
        F.cross_entropy(m(img), ys).backward()
        rs.append(adversarial_perturbation(img.grad, 0.1)[0])
    np.testing.assert_allclose(rs[0], rs[1], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("adv_kernel", ["full", "frozen"])
def test_total_loss_and_gradient_equal_an_independent_computation_of_eq_8(adv_kernel: str) -> None:
    """L(I) + L(I + R) + λ/2‖w‖², its parameter gradient and ‖R‖/‖I‖, against NumPy written here.

    Only the model's forward and backward are shared with the library: the loss and dL/dz are the
    NumPy softmax cross-entropy above, R = ε g/‖g‖ is computed directly (no pre-scaling), and the
    l2 gradient is λw.
    """
    eps, lam = 0.1, 0.5
    m = tiny("adv_fcn_crf")
    x, y = _batch(2)
    x = x * np.array([0.5, 3.0])[:, None, None, None]  # different norms, so the ratio's mean is checked
    m.zero_grad()
    res = loss_and_backward(m, x, y, adversarial=True, eps=eps, lam=lam, adv_kernel=adv_kernel)
    total = {n: p.grad.copy() for n, p in m.named_parameters()}

    m.zero_grad()
    crf_image = ts.Tensor(x) if adv_kernel == "frozen" else None  # frozen: no gradient through the kernels
    img = ts.Tensor(x, requires_grad=True)
    z = m(img, crf_image=crf_image)
    clean, gz = naive_cross_entropy(z.data, y)
    z.backward(gz)
    g = img.grad.reshape(2, -1)                                                   # (N, H*W)
    r = (eps * g / np.linalg.norm(g, axis=1, keepdims=True)).reshape(x.shape)
    z_adv = m(ts.Tensor(x + r), crf_image=crf_image)
    adv, gz_adv = naive_cross_entropy(z_adv.data, y)
    z_adv.backward(gz_adv)
    crf_ids = {id(p) for p in m.crf_parameters()}
    assert crf_ids
    for n, p in m.named_parameters():
        want = p.grad + (lam * p.data if id(p) in crf_ids else 0)
        np.testing.assert_allclose(total[n], want, rtol=1e-10, atol=1e-14, err_msg=n)
    w2 = sum(float((p.data ** 2).sum()) for p in m.crf_parameters())
    assert res.clean_loss == pytest.approx(clean, rel=1e-12)
    assert res.adv_loss == pytest.approx(adv, rel=1e-12)
    assert res.loss == pytest.approx(clean + adv + lam / 2 * w2, rel=1e-12)
    norms_i = np.linalg.norm(x.reshape(2, -1), axis=1)
    assert res.r_ratio == pytest.approx(np.mean(np.linalg.norm(r.reshape(2, -1), axis=1) / norms_i), rel=1e-12)


@pytest.mark.parametrize("path", ["plain", "kernel"])
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_logged_r_ratio_is_the_mean_over_images_of_norm_r_over_norm_i(path: str, dtype: type, tol: float) -> None:
    # ‖R_n‖ = ε for every image whose gradient does not vanish, so the mean of ‖R_n‖/‖I_n‖ is the
    # mean of ε/‖I_n‖. Norms that differ by 8x tell it from a sum (3x) and from Σ‖R‖/Σ‖I‖.
    emulated, available = _emulation()
    if path == "kernel" and not available:
        pytest.skip("the CUDA kernel runs on the CPU through the g++ emulator: g++ (C++20) is not available")
    eps = 0.1
    x, y = _batch(3)
    x = (x * np.array([0.5, 1.0, 4.0])[:, None, None, None]).astype(dtype)
    want = np.mean(eps / np.linalg.norm(x.astype(np.float64).reshape(3, -1), axis=1))
    m = tiny("adv_fcn", dtype=dtype)
    before = tc.launches["adversarial_input"]
    with tc.fast_paths(path == "kernel"), (emulated() if path == "kernel" else tc.fast_paths(False)):
        res = loss_and_backward(m, x, y, adversarial=True, eps=eps)
    assert tc.launches["adversarial_input"] - before == (path == "kernel")  # the path really taken
    assert res.r_ratio == pytest.approx(want, rel=tol)


def test_frozen_and_full_kernels_differ_only_for_crf_models() -> None:
    x, y = _batch(2)
    out = {}
    for variant in ("adv_fcn", "adv_fcn_crf"):
        for k in ("full", "frozen"):
            m = tiny(variant)
            m.zero_grad()
            out[variant, k] = loss_and_backward(m, x, y, adversarial=True, eps=0.5, adv_kernel=k).adv_loss
    assert out["adv_fcn", "full"] == out["adv_fcn", "frozen"]
    assert out["adv_fcn_crf", "full"] != out["adv_fcn_crf", "frozen"]


@pytest.mark.gradcheck
@pytest.mark.parametrize("graph", ["dense", "grid4"])
def test_fcn_crf_image_gradient_matches_finite_differences(graph: str) -> None:
    m = tiny("fcn_crf", graph)
    x, y = _batch(2)
    check_backward(lambda img: F.cross_entropy(m(img), y), [x], name=f"FCN-CRF ({graph}) image gradient")


@pytest.mark.gradcheck
@pytest.mark.parametrize("variant", ["adv_fcn_crf", "adv_multi_fcn_crf"])
def test_adversarial_loss_of_small_model_matches_finite_differences(variant: str) -> None:
    """End to end: d/dθ of L(I) + L(I + R) + λ/2‖w‖² with R held constant, against finite differences."""
    m = tiny(variant)
    x, y = _batch(2)
    img = ts.Tensor(x, requires_grad=True)
    F.cross_entropy(m(img), y).backward()
    r = adversarial_perturbation(img.grad, 0.1)
    params = m.parameters()

    def total() -> ts.Tensor:  # R is a constant: only θ varies
        loss = F.cross_entropy(m(ts.Tensor(x)), y) + F.cross_entropy(m(ts.Tensor(x + r)), y)
        return loss + F.l2_penalty(m.crf_parameters(), 0.5)

    m.zero_grad()
    total().backward()
    rng, h = np.random.default_rng(1), 1e-6
    for p in params:  # one random direction per parameter tensor
        data, v = p.data, rng.standard_normal(p.shape)
        p.data = data + h * v
        lp = total().item()
        p.data = data - h * v
        lm = total().item()
        p.data = data
        num, ana = (lp - lm) / (2 * h), float((p.grad * v).sum())
        assert abs(num - ana) <= 1e-6 * max(abs(num), abs(ana)) + 1e-9, (p.shape, num, ana)
