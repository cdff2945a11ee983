"""The autodiff engine: graph recording, reverse order, accumulation, no_grad, freeing, depth."""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import tinyseg as ts
from tinyseg import F


def test_shared_subexpression_gradients_accumulate() -> None:
    x = ts.Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    a = x * x
    y = (a + a * x + x).sum()  # d/dx = 2x + 3x^2 + 1
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 3 * x.data ** 2 + 1, rtol=1e-12)


def test_leaf_gradient_accumulates_across_backward_calls() -> None:
    x = ts.Tensor(np.ones(2), requires_grad=True)
    (x * 3.0).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad, [6.0, 6.0])


def test_softmax_cross_entropy_from_primitives_matches_hand_derivation() -> None:
    rng = np.random.default_rng(0)
    z = rng.standard_normal((6, 3))
    y = np.eye(3)[rng.integers(0, 3, 6)]
    Z = ts.Tensor(z, requires_grad=True)
    logp = Z - F.log(F.sum(F.exp(Z), axis=1, keepdims=True))
    loss = -F.mean(F.sum(logp * y, axis=1))
    loss.backward()
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    np.testing.assert_allclose(Z.grad, (p - y) / 6, rtol=1e-10, atol=1e-14)


def test_broadcasting_chain_gradient_matches_hand_derivation() -> None:
    rng = np.random.default_rng(1)
    W, b, x = rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal((5, 3))
    Wt, bt = ts.Tensor(W, requires_grad=True), ts.Tensor(b, requires_grad=True)
    h = F.matmul(ts.Tensor(x), Wt) + bt
    (h * h).sum().backward()
    H = x @ W + b
    np.testing.assert_allclose(Wt.grad, x.T @ (2 * H), rtol=1e-10)
    np.testing.assert_allclose(bt.grad, (2 * H).sum(0), rtol=1e-10)


def test_no_grad_records_no_graph() -> None:
    x = ts.Tensor(np.ones(3), requires_grad=True)
    with ts.no_grad():
        y = (x * 2).sum()
    assert y.creator is None and not y.requires_grad
    with pytest.raises(RuntimeError, match="does not require a gradient"):
        y.backward()
    assert ts.is_grad_enabled()


def test_graph_is_freed_after_backward() -> None:
    x = ts.Tensor(np.ones(3), requires_grad=True)
    y = F.exp(x * 2.0).sum()
    op_ref = weakref.ref(y.creator)
    y.backward()
    gc.collect()
    assert op_ref() is None, "the graph should be released after backward()"


def test_retain_graph_allows_second_backward() -> None:
    x = ts.Tensor(np.ones(3), requires_grad=True)
    y = F.exp(x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * np.exp(np.ones(3)))


def test_second_backward_through_freed_graph_raises() -> None:
    x = ts.Tensor(np.ones(3), requires_grad=True)
    y = F.exp(x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()
    np.testing.assert_allclose(x.grad, np.exp(np.ones(3)))  # the first gradient, unchanged


def test_backward_through_freed_intermediate_raises() -> None:
    x = ts.Tensor(np.ones(3), requires_grad=True)
    h = F.exp(x)
    h.sum().backward()  # frees the graph that produced h
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        (h * 2.0).sum().backward()


def test_chain_of_10000_ops_needs_no_recursion() -> None:
    x = ts.Tensor(np.array([1.0]), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0001 ** 10_000], rtol=1e-9)


def test_backward_on_non_scalar_without_gradient_raises() -> None:
    x = ts.Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="explicit"):
        (x * 2).backward()


def test_backward_gradient_of_wrong_shape_raises() -> None:
    x = ts.Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match="shape"):
        (x * 2).backward(np.ones(4))


def test_inputs_without_requires_grad_get_no_gradient() -> None:
    x, c = ts.Tensor(np.ones(2), requires_grad=True), ts.Tensor(np.ones(2))
    (x * c).sum().backward()
    assert c.grad is None and x.grad is not None


def test_numpy_array_on_the_left_dispatches_to_tensor() -> None:
    x = ts.Tensor(np.ones(2), requires_grad=True)
    y = np.array([2.0, 3.0]) * x
    assert isinstance(y, ts.Tensor)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [2.0, 3.0])


def test_parameter_requires_grad_by_default() -> None:
    assert ts.Parameter(np.zeros(2)).requires_grad


def test_parameter_gradient_reuses_one_array_across_steps_with_the_same_values() -> None:
    p = ts.Parameter(np.array([1.0, 2.0, 3.0]))
    (p * p).sum().backward()
    first = p.grad
    np.testing.assert_array_equal(first, [2.0, 4.0, 6.0])
    p.zero_grad()
    assert p.grad is None
    (p * p * p).sum().backward()  # 3p²
    assert p.grad is first  # the same array, rewritten: no fresh allocation per step
    np.testing.assert_array_equal(p.grad, [3.0, 12.0, 27.0])
    (p * 2.0).sum().backward()  # no zero_grad: accumulates, as for a Tensor
    np.testing.assert_array_equal(p.grad, [5.0, 14.0, 29.0])


def test_parameters_sharing_one_upstream_gradient_get_separate_arrays() -> None:
    """``a + b`` hands the same upstream array to both inputs; in-place accumulation later must not
    leak from one parameter's gradient into the other's."""
    a, b = ts.Parameter(np.zeros(3)), ts.Parameter(np.zeros(3))
    (a + b).sum().backward()
    assert a.grad is not b.grad
    (a * 5.0).sum().backward()
    np.testing.assert_array_equal(a.grad, [6.0, 6.0, 6.0])
    np.testing.assert_array_equal(b.grad, [1.0, 1.0, 1.0])


def test_a_gradient_the_user_assigned_is_not_written_in_place() -> None:
    p = ts.Parameter(np.ones(2))
    mine = np.array([10.0, 20.0])
    p.grad = mine
    (p * 3.0).sum().backward()
    np.testing.assert_array_equal(p.grad, [13.0, 23.0])
    np.testing.assert_array_equal(mine, [10.0, 20.0])


def test_parameter_gradient_buffer_follows_shape_and_dtype_changes() -> None:
    p = ts.Parameter(np.ones(2))
    (p * 2.0).sum().backward()
    p.zero_grad()
    p.data = np.ones(3, dtype=np.float32)
    (p * 2.0).sum().backward()
    assert p.grad.shape == (3,) and p.grad.dtype == np.float32
