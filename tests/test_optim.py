"""Adam and SGD against direct implementations of their formulas."""
from __future__ import annotations

import numpy as np
import pytest

import tinyseg as ts
from tinyseg.optim import SGD, Adam


def _reference_adam(p, grads, lr=3e-3, b1=0.9, b2=0.999, eps=1e-8):  # noqa: ANN001, ANN202
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    return p


def test_adam_matches_formula_with_bias_correction() -> None:
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(5)]
    param = ts.Parameter(p0.copy())
    opt = Adam([param], lr=0.01)
    for g in grads:
        param.grad = g
        opt.step()
    np.testing.assert_allclose(param.data, _reference_adam(p0, grads, lr=0.01), rtol=1e-12, atol=1e-14)


def test_adam_in_blocks_matches_the_formula_for_large_and_non_contiguous_parameters() -> None:
    """Parameters larger than Adam.BLOCK are updated a block at a time; a non-contiguous one whole."""
    rng = np.random.default_rng(1)
    big = rng.standard_normal((3, Adam.BLOCK + 123))
    strided = rng.standard_normal((Adam.BLOCK + 7, 2)).T  # (2, BLOCK + 7), not C-contiguous
    params = [ts.Parameter(big.copy()), ts.Parameter(np.zeros((2, Adam.BLOCK + 7)))]
    params[1].data = strided.copy(order="F")  # updated in place: keep `strided` for the reference
    assert not params[1].data.flags.c_contiguous
    grads = [[rng.standard_normal(p.shape) for p in params] for _ in range(3)]
    opt = Adam(params, lr=0.01)
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = g
        opt.step()
    for k, p0 in enumerate((big, strided)):
        np.testing.assert_allclose(params[k].data, _reference_adam(p0, [gs[k] for gs in grads], lr=0.01),
                                   rtol=1e-12, atol=1e-14)


def test_adam_first_step_moves_each_weight_by_lr() -> None:
    # With bias correction the first step is lr·g/|g| (up to eps): the signature of PyTorch's Adam.
    param = ts.Parameter(np.zeros(3))
    param.grad = np.array([1e-3, -2.0, 5.0])
    Adam([param], lr=0.1).step()
    np.testing.assert_allclose(param.data, [-0.1, 0.1, -0.1], rtol=1e-4)


def test_adam_state_round_trip_continues_identically() -> None:
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal(4) for _ in range(4)]
    a, b = ts.Parameter(np.ones(4)), ts.Parameter(np.ones(4))
    oa = Adam([a])
    for g in grads[:2]:
        a.grad = g
        oa.step()
    b.data = a.data.copy()
    ob = Adam([b])
    ob.load_state_dict(oa.state_dict())
    for g in grads[2:]:
        a.grad, b.grad = g, g.copy()
        oa.step()
        ob.step()
    np.testing.assert_array_equal(a.data, b.data)


def test_adam_skips_parameters_without_gradient_and_keeps_dtype() -> None:
    p, q = ts.Parameter(np.ones(2, np.float32)), ts.Parameter(np.ones(2, np.float32))
    p.grad = np.ones(2, np.float32)
    Adam([p, q]).step()
    assert p.data.dtype == np.float32 and np.all(q.data == 1) and np.all(p.data < 1)


def test_sgd_momentum_matches_formula() -> None:
    p = ts.Parameter(np.array([1.0]))
    opt = SGD([p], lr=0.1, momentum=0.9)
    buf, ref = 0.0, 1.0
    for g in [1.0, 2.0, -1.0]:
        p.grad = np.array([g])
        opt.step()
        buf = 0.9 * buf + g
        ref -= 0.1 * buf
    np.testing.assert_allclose(p.data, [ref])


def test_bad_optimizer_arguments_raise() -> None:
    with pytest.raises(ValueError, match="empty"):
        Adam([])
    with pytest.raises(ValueError, match="lr"):
        Adam([ts.Parameter(np.ones(1))], lr=0)
