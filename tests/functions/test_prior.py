"""The position prior of Eq. 6: an additive logit bias is a multiplicative prior on probabilities."""
from __future__ import annotations

import numpy as np
import pytest

import tinyseg as ts
from tinyseg import F


def _t(xp, a, grad=True):  # noqa: ANN001, ANN202
    return ts.Tensor(xp.asarray(a), requires_grad=grad)


def test_add_prior_equals_multiplicative_prior_on_probabilities(xp) -> None:  # noqa: ANN001
    rng = np.random.default_rng(0)
    z = rng.standard_normal((3, 2, 6, 5))
    w = rng.uniform(0.01, 0.99, (2, 6, 5))  # a prior weight per class and pixel
    p = ts.as_numpy(F.softmax(F.add_prior(xp.asarray(z), xp.asarray(np.log(w)))).data)
    p_fcn = ts.as_numpy(F.softmax(xp.asarray(z)).data)
    reweighted = w * p_fcn  # P ∝ w_i P_fcn   [ZX18 Eq. 6]
    np.testing.assert_allclose(p, reweighted / reweighted.sum(axis=1, keepdims=True), rtol=0, atol=1e-14)


def test_add_prior_bias_gradient_is_batch_sum(xp) -> None:  # noqa: ANN001
    rng = np.random.default_rng(1)
    z, b, gy = rng.standard_normal((4, 2, 3, 3)), rng.standard_normal((2, 3, 3)), rng.standard_normal((4, 2, 3, 3))
    tz, tb = _t(xp, z), _t(xp, b)
    y = F.add_prior(tz, tb)
    np.testing.assert_array_equal(ts.as_numpy(y.data), z + b[None])
    y.backward(xp.asarray(gy))
    np.testing.assert_array_equal(ts.as_numpy(tz.grad), gy)
    np.testing.assert_allclose(ts.as_numpy(tb.grad), gy.sum(axis=0), rtol=0, atol=1e-15)


@pytest.mark.parametrize("zs, bs", [((2, 2, 4, 4), (2, 4, 5)), ((2, 2, 4, 4), (1, 4, 4)), ((2, 4, 4), (2, 4, 4))])
def test_add_prior_rejects_mismatched_shapes(zs, bs) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="bias \\(C, H, W\\)"):
        F.add_prior(np.zeros(zs), np.zeros(bs))


def test_add_prior_rejects_mixed_dtypes() -> None:
    with pytest.raises(TypeError, match="float32 but bias is float64"):
        F.add_prior(np.zeros((1, 2, 3, 3), np.float32), np.zeros((2, 3, 3)))
