"""Forward values of the primitive ops against NumPy, and broadcasting / accumulation rules."""
from __future__ import annotations

import numpy as np
import pytest

import tinyseg as ts
from tinyseg import F


def _t(xp, a, grad=True):  # noqa: ANN001, ANN202
    return ts.Tensor(xp.asarray(a), requires_grad=grad)


@pytest.mark.parametrize("name, ref", [("add", np.add), ("sub", np.subtract), ("mul", np.multiply),
                                       ("div", np.divide)])
def test_binary_ops_forward_match_numpy_with_broadcasting(xp, name, ref) -> None:  # noqa: ANN001
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3, 4)), rng.uniform(0.5, 2, (3, 1))
    y = getattr(F, name)(_t(xp, a), _t(xp, b))
    np.testing.assert_allclose(ts.as_numpy(y.data), ref(a, b), rtol=1e-12)


def test_unary_ops_and_reductions_forward_match_numpy(xp) -> None:  # noqa: ANN001
    rng = np.random.default_rng(1)
    a = rng.uniform(0.5, 2, (2, 3, 4))
    x = _t(xp, a)
    cases = [(F.exp(x), np.exp(a)), (F.log(x), np.log(a)), (F.neg(x), -a), (F.pow(x, 2.5), a ** 2.5),
             (F.sum(x, axis=(0, 2)), a.sum(axis=(0, 2))), (F.mean(x, axis=-1, keepdims=True), a.mean(-1, keepdims=True)),
             (F.reshape(x, (6, 4)), a.reshape(6, 4)), (F.transpose(x, (1, 2, 0)), a.transpose(1, 2, 0)),
             (F.broadcast_to(F.sum(x, axis=0, keepdims=True), (5, 3, 4)), np.broadcast_to(a.sum(0, keepdims=True), (5, 3, 4))),
             (F.sum_to(x, (1, 4)), a.sum(axis=(0, 1)).reshape(1, 4)), (x[1:, ::2], a[1:, ::2]),
             (F.matmul(x, _t(xp, a.transpose(0, 2, 1))), a @ a.transpose(0, 2, 1))]
    for y, ref in cases:
        np.testing.assert_allclose(ts.as_numpy(y.data), ref, rtol=1e-12)


def test_broadcast_to_is_adjoint_of_sum_to() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((3, 1)), rng.standard_normal((2, 3, 4))
    lhs = np.sum(F.broadcast_to(x, y.shape).data * y)
    rhs = np.sum(x * F.sum_to(y, x.shape).data)
    assert abs(lhs - rhs) < 1e-10


def test_broadcasting_gradient_sums_over_stretched_axes(xp) -> None:  # noqa: ANN001
    a, b = _t(xp, np.ones((2, 3))), _t(xp, np.full((3,), 2.0))
    (a * b).sum().backward()
    np.testing.assert_allclose(ts.as_numpy(b.grad), np.full(3, 2.0))  # two rows each contribute 1
    np.testing.assert_allclose(ts.as_numpy(a.grad), np.full((2, 3), 2.0))


def test_fancy_getitem_gradient_sums_repeated_picks(xp) -> None:  # noqa: ANN001
    x = _t(xp, np.arange(4.0))
    x[np.array([1, 1, 3])].sum().backward()
    np.testing.assert_array_equal(ts.as_numpy(x.grad), [0, 2, 0, 1])


def test_mismatched_shapes_raise_clear_error() -> None:
    with pytest.raises(ValueError):
        F.add(ts.Tensor(np.ones((2, 3))), ts.Tensor(np.ones((4,))))
    with pytest.raises(ValueError, match="matmul"):
        F.matmul(ts.Tensor(np.ones(3)), ts.Tensor(np.ones((3, 2))))


def test_float32_stays_float32() -> None:
    x = ts.Tensor(np.ones((2, 2), np.float32), requires_grad=True)
    y = (x * 2.0 + 1.0) / 3.0
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32
