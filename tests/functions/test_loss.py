"""nll_loss (Eq. 1) and the fused cross_entropy against naive references and each other; l2_penalty."""
from __future__ import annotations

import numpy as np
import pytest

import tinyseg as ts
from tinyseg import F


def _t(xp, a, grad=True):  # noqa: ANN001, ANN202
    return ts.Tensor(xp.asarray(a), requires_grad=grad)


def _logits_and_target(seed, shape=(3, 2, 5, 4)):  # noqa: ANN001, ANN202
    rng = np.random.default_rng(seed)
    return 3 * rng.standard_normal(shape), rng.integers(0, shape[1], (shape[0],) + shape[2:])


def test_nll_loss_matches_naive_loop_mean(xp) -> None:  # noqa: ANN001
    logp, y = _logits_and_target(0, (2, 3, 4, 5))
    total, count = 0.0, 0
    for n, h, w in np.ndindex(*y.shape):
        total -= logp[n, y[n, h, w], h, w]
        count += 1
    tl = _t(xp, logp)
    loss = F.nll_loss(tl, xp.asarray(y))
    assert loss.shape == ()
    assert abs(loss.item() - total / count) < 1e-12
    loss.backward(xp.asarray(2.5))
    ref = np.zeros_like(logp)
    for n, h, w in np.ndindex(*y.shape):
        ref[n, y[n, h, w], h, w] = -2.5 / count
    np.testing.assert_allclose(ts.as_numpy(tl.grad), ref, rtol=0, atol=1e-15)


@pytest.mark.parametrize("shape", [(3, 2, 5, 4), (29, 2, 40, 40), (6, 4)])
def test_cross_entropy_equals_nll_loss_of_log_softmax(xp, shape) -> None:  # noqa: ANN001
    z, y = _logits_and_target(1, shape)
    y = xp.asarray(y)
    fused, composite = _t(xp, z), _t(xp, z)
    a = F.cross_entropy(fused, y)
    b = F.nll_loss(F.log_softmax(composite, axis=1), y)
    assert abs(a.item() - b.item()) < 1e-12
    a.backward()
    b.backward()
    np.testing.assert_allclose(ts.as_numpy(fused.grad), ts.as_numpy(composite.grad), rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_backward_is_exactly_softmax_minus_onehot_over_count(xp, dtype) -> None:  # noqa: ANN001
    z, y = _logits_and_target(2)
    z = z.astype(dtype)
    tz = _t(xp, z)
    F.cross_entropy(tz, xp.asarray(y)).backward()
    onehot = np.moveaxis(np.eye(2, dtype=dtype)[y], -1, 1)  # (N, H, W, 2) -> (N, 2, H, W)
    p = ts.as_numpy(F.softmax(xp.asarray(z), axis=1).data)
    expected = (p - onehot) / y.size
    got = ts.as_numpy(tz.grad)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, expected)


def test_cross_entropy_scales_with_upstream_gradient(xp) -> None:  # noqa: ANN001
    z, y = _logits_and_target(3)
    t1, t2 = _t(xp, z), _t(xp, z)
    F.cross_entropy(t1, xp.asarray(y)).backward()
    F.cross_entropy(t2, xp.asarray(y)).backward(xp.asarray(-0.75))
    np.testing.assert_allclose(ts.as_numpy(t2.grad), -0.75 * ts.as_numpy(t1.grad), rtol=1e-14, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_is_finite_for_huge_logits(xp, dtype) -> None:  # noqa: ANN001
    z = np.array([[1e4, -1e4], [-1e4, 1e4], [1e4, 1e4], [-1e4, 1e4]], dtype=dtype)  # (4, 2)
    y = np.array([0, 0, 1, 1])  # right, wrong by 2e4, a tie, right
    tz = _t(xp, z)
    loss = F.cross_entropy(tz, xp.asarray(y))
    loss.backward()
    g = ts.as_numpy(tz.grad)
    assert np.isfinite(loss.item()) and np.all(np.isfinite(g))
    np.testing.assert_allclose(loss.item(), (2e4 + np.log(2)) / 4, rtol=1e-6)
    np.testing.assert_allclose(g, np.array([[0, 0], [-1, 1], [0.5, -0.5], [0, 0]]) / 4, atol=1e-7)
    comp = F.nll_loss(F.log_softmax(xp.asarray(z)), xp.asarray(y))
    assert np.isfinite(comp.item())


@pytest.mark.parametrize("f", [F.cross_entropy, F.nll_loss])
@pytest.mark.parametrize("target, match, err", [
    (np.array([[[0, 2], [1, 0]]]), "label 2, outside \\[0, 2\\)", ValueError),
    (np.array([[[0, -1], [1, 0]]]), "label -1", ValueError),
    (np.array([[[0, 1], [1, 0]]], dtype=float), "integer class labels", TypeError),
    (np.array([[0, 1], [1, 0]]), "target has shape \\(2, 2\\)", ValueError),
    (np.array([[[0, 1, 1], [1, 0, 0]]]), "needs \\(1, 2, 2\\)", ValueError),
])
def test_losses_reject_bad_targets_with_clear_errors(xp, f, target, match, err) -> None:  # noqa: ANN001
    z = xp.asarray(np.zeros((1, 2, 2, 2)))
    with pytest.raises(err, match=match):
        f(z, xp.asarray(target))


def test_l2_penalty_value_and_gradient(xp) -> None:  # noqa: ANN001
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal(5)
    ta, tb = _t(xp, a), _t(xp, b)
    r = F.l2_penalty([ta, tb], 0.5)
    assert abs(r.item() - 0.25 * (np.sum(a * a) + np.sum(b * b))) < 1e-12
    r.backward(xp.asarray(2.0))
    np.testing.assert_allclose(ts.as_numpy(ta.grad), 2.0 * 0.5 * a, rtol=0, atol=1e-15)
    np.testing.assert_allclose(ts.as_numpy(tb.grad), 2.0 * 0.5 * b, rtol=0, atol=1e-15)


def test_l2_penalty_rejects_empty_params_and_negative_lambda() -> None:
    with pytest.raises(ValueError, match="no parameters"):
        F.l2_penalty([], 0.5)
    with pytest.raises(ValueError, match="≥ 0"):
        F.l2_penalty([np.ones(2)], -1.0)


def test_losses_keep_float32(xp) -> None:  # noqa: ANN001
    z, y = _logits_and_target(5)
    y = xp.asarray(y)
    for make in (lambda t: F.cross_entropy(t, y), lambda t: F.nll_loss(F.log_softmax(t), y),
                 lambda t: F.l2_penalty([t], 0.1)):
        tz = _t(xp, z.astype(np.float32))
        loss = make(tz)
        loss.backward()
        assert loss.dtype == np.float32 and tz.grad.dtype == np.float32
