"""Adversarial training [ZX18 Eq. 7-8]: the perturbation, the first-order rise of the loss, batch
independence, gradient summation, and end-to-end gradients of small models."""
from __future__ import annotations

import numpy as np
import pytest

import tinyseg as ts
from tinyseg import F
from tinyseg.adversarial import adversarial_perturbation, loss_and_backward
from tinyseg.gradcheck import check_backward
from tinyseg.models import build_model

def tiny(variant: str, graph: str = "dense", seed: int = 0) -> ts.models.SegmentationModel:
    """A float64 model on 16×16 inputs (FCNs 16→14→7→6→3→1 and 16→14→7→6→3→1 with other widths)."""
    return build_model(variant, prior=np.full((16, 16), 0.3), seed=seed, dtype=np.float64, size=16,
                       fcn_configs=[(2, 3, 3, 2, 4, 3), (3, 3, 2, 2, 3, 3)], crf_graph=graph)


def _batch(n: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 16, 16)), rng.integers(0, 2, (n, 16, 16))


def test_perturbation_has_norm_eps_per_image_and_zero_where_gradient_vanishes(xp) -> None:  # noqa: ANN001
    rng = np.random.default_rng(0)
    g = rng.standard_normal((4, 1, 8, 8)) * np.array([1e-30, 1.0, 1e3, 0.0])[:, None, None, None]
    r = ts.as_numpy(adversarial_perturbation(xp.asarray(g), 0.1))
    norms = np.sqrt((r.reshape(4, -1) ** 2).sum(1))
    np.testing.assert_allclose(norms[:3], 0.1, rtol=1e-12)  # including a gradient of 1e-30 (no underflow)
    assert norms[3] == 0 and np.all(np.isfinite(r))
    np.testing.assert_allclose(r[1] / np.linalg.norm(r[1]), g[1] / np.linalg.norm(g[1]), rtol=1e-12)


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
def test_total_gradient_is_sum_of_clean_and_adversarial_gradients(adv_kernel: str) -> None:
    m = tiny("adv_fcn_crf")
    x, y = _batch(2)
    m.zero_grad()
    res = loss_and_backward(m, x, y, adversarial=True, eps=0.1, lam=0.5, adv_kernel=adv_kernel)
    total = {n: p.grad.copy() for n, p in m.named_parameters()}
    # The same pieces computed separately, with R passed in as a constant.
    img = ts.Tensor(x, requires_grad=True)
    m.zero_grad()
    crf_image = ts.Tensor(x) if adv_kernel == "frozen" else None  # frozen: no gradient through the kernels
    clean = F.cross_entropy(m(img, crf_image=crf_image), y)
    clean.backward()
    r = adversarial_perturbation(img.grad, 0.1)
    adv = F.cross_entropy(m(ts.Tensor(x + r), crf_image=crf_image), y)
    adv.backward()
    F.l2_penalty(m.crf_parameters(), 0.5).backward()
    for n, p in m.named_parameters():
        np.testing.assert_allclose(total[n], p.grad, rtol=1e-10, atol=1e-14, err_msg=n)
    w = m.crf.weights.data
    assert res.loss == pytest.approx(clean.item() + adv.item() + 0.25 * float((w * w).sum()), rel=1e-12)
    assert res.r_ratio > 0


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
