"""tanh, softmax and log_softmax against NumPy/SciPy and explicit Jacobians; finiteness at ±1e4."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import log_softmax as scipy_log_softmax
from scipy.special import softmax as scipy_softmax

import tinyseg as ts
from tinyseg import F


def _t(xp, a, grad=True):  # noqa: ANN001, ANN202
    return ts.Tensor(xp.asarray(a), requires_grad=grad)


def _vjp_by_jacobian(y_fn, x, gy, axis):  # noqa: ANN001, ANN202
    """Σ_k gy_k ∂y_k/∂x_j with the Jacobian built explicitly for every vector along `axis`."""
    xm, gm = np.moveaxis(x, axis, -1), np.moveaxis(gy, axis, -1)
    out = np.zeros_like(xm)
    for idx in np.ndindex(*xm.shape[:-1]):
        J = y_fn(xm[idx])  # (K, K) Jacobian of one vector
        out[idx] = J.T @ gm[idx]
    return np.moveaxis(out, -1, axis)


def _softmax_jacobian(v):  # noqa: ANN001, ANN202
    p = scipy_softmax(v)
    return np.diag(p) - np.outer(p, p)


def _log_softmax_jacobian(v):  # noqa: ANN001, ANN202
    p = scipy_softmax(v)
    return np.eye(len(v)) - p[None, :]  # ∂(x_k − lse)/∂x_j = δ_kj − p_j


def test_tanh_forward_and_backward_match_numpy(xp) -> None:  # noqa: ANN001
    rng = np.random.default_rng(0)
    x, gy = 2 * rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 4, 5))
    tx = _t(xp, x)
    y = F.tanh(tx)
    y.backward(xp.asarray(gy))
    np.testing.assert_allclose(ts.as_numpy(y.data), np.tanh(x), rtol=0, atol=1e-15)
    np.testing.assert_allclose(ts.as_numpy(tx.grad), gy / np.cosh(x) ** 2, rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape, axis", [((2, 3, 4, 5), 1), ((4, 6), -1), ((5, 2, 3), 0)])
def test_softmax_backward_matches_jacobian(xp, shape, axis) -> None:  # noqa: ANN001
    rng = np.random.default_rng(1)
    x, gy = 3 * rng.standard_normal(shape), rng.standard_normal(shape)
    tx = _t(xp, x)
    y = F.softmax(tx, axis=axis)
    y.backward(xp.asarray(gy))
    np.testing.assert_allclose(ts.as_numpy(y.data), scipy_softmax(x, axis=axis), rtol=0, atol=1e-14)
    np.testing.assert_allclose(ts.as_numpy(tx.grad), _vjp_by_jacobian(_softmax_jacobian, x, gy, axis),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape, axis", [((2, 3, 4, 5), 1), ((4, 6), -1), ((5, 2, 3), 0)])
def test_log_softmax_forward_and_backward_match_scipy_and_jacobian(xp, shape, axis) -> None:  # noqa: ANN001
    rng = np.random.default_rng(2)
    x, gy = 3 * rng.standard_normal(shape), rng.standard_normal(shape)
    tx = _t(xp, x)
    y = F.log_softmax(tx, axis=axis)
    y.backward(xp.asarray(gy))
    np.testing.assert_allclose(ts.as_numpy(y.data), scipy_log_softmax(x, axis=axis), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ts.as_numpy(tx.grad), _vjp_by_jacobian(_log_softmax_jacobian, x, gy, axis),
                               rtol=0, atol=1e-12)


def test_log_softmax_equals_log_of_softmax(xp) -> None:  # noqa: ANN001
    x = xp.asarray(np.random.default_rng(3).standard_normal((2, 2, 5, 5)))
    np.testing.assert_allclose(ts.as_numpy(F.log_softmax(x).data), np.log(ts.as_numpy(F.softmax(x).data)),
                               rtol=0, atol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_softmax_is_finite_for_huge_logits(xp, dtype) -> None:  # noqa: ANN001
    x = np.array([[1e4, -1e4], [-1e4, 1e4], [1e4, 1e4], [-1e4, -1e4]], dtype=dtype)  # (4, 2), class axis 1
    tx = _t(xp, x)
    y = F.log_softmax(tx, axis=1)
    y.backward(xp.asarray(np.array([[1., 2.], [3., -1.], [0.5, 0.], [1., 1.]], dtype=dtype)))
    got, g = ts.as_numpy(y.data), ts.as_numpy(tx.grad)
    assert np.all(np.isfinite(got)) and np.all(np.isfinite(g))
    np.testing.assert_allclose(got, [[0, -2e4], [-2e4, 0], [-np.log(2)] * 2, [-np.log(2)] * 2], rtol=1e-6)
    np.testing.assert_allclose(g, [[-2, 2], [3, -3], [0.25, -0.25], [0, 0]], atol=1e-6)


def test_softmax_is_finite_for_huge_logits(xp) -> None:  # noqa: ANN001
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]])
    tx = _t(xp, x)
    y = F.softmax(tx, axis=1)
    y.backward(xp.asarray(np.ones((2, 3))))
    np.testing.assert_allclose(ts.as_numpy(y.data), [[1, 0, 0], [1 / 3] * 3], atol=1e-15)
    assert np.all(np.isfinite(ts.as_numpy(tx.grad)))


def test_activations_keep_float32(xp) -> None:  # noqa: ANN001
    x = np.random.default_rng(4).standard_normal((2, 2, 3, 3)).astype(np.float32)
    for f in (F.tanh, F.softmax, F.log_softmax):
        tx = _t(xp, x)
        y = f(tx)
        y.backward(xp.ones(y.shape, dtype=np.float32))
        assert y.dtype == np.float32 and tx.grad.dtype == np.float32, f.__name__
