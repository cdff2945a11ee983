"""max_pool2d against naive loops; the first-max tie rule; the 2×2 path against the general path."""
from __future__ import annotations

import numpy as np
import pytest

import tinyseg as ts
from tinyseg import F
from tinyseg.functions.pooling import MaxPool2dOp


def _t(xp, a, grad=True):  # noqa: ANN001, ANN202
    return ts.Tensor(xp.asarray(a), requires_grad=grad)


def naive_max_pool2d(x, k, s):  # noqa: ANN001, ANN201
    """Forward and the gradient map for upstream gy, by loops; ties go to the first max in row-major order."""
    N, C, H, W = x.shape
    OH, OW = (H - k) // s + 1, (W - k) // s + 1
    y = np.zeros((N, C, OH, OW), dtype=x.dtype)
    arg = np.zeros((N, C, OH, OW, 2), dtype=int)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    best = None
                    for i in range(k):
                        for j in range(k):
                            v = x[n, c, s * oh + i, s * ow + j]
                            if best is None or v > best:  # strict: an equal later value does not win
                                best, arg[n, c, oh, ow] = v, (s * oh + i, s * ow + j)
                    y[n, c, oh, ow] = best

    def backward(gy):  # noqa: ANN001, ANN202
        gx = np.zeros_like(x)
        for n, c, oh, ow in np.ndindex(*y.shape):
            h, w = arg[n, c, oh, ow]
            gx[n, c, h, w] += gy[n, c, oh, ow]
        return gx

    return y, backward


@pytest.mark.parametrize("shape, k, s", [((2, 3, 6, 8), 2, 2), ((2, 2, 7, 5), 2, 2), ((1, 2, 9, 9), 3, 2),
                                         ((2, 2, 5, 6), 2, 1), ((1, 1, 7, 7), 3, 3)])
@pytest.mark.parametrize("data", ["random", "ties"])
def test_max_pool2d_forward_and_backward_match_naive_loops(xp, shape, k, s, data) -> None:  # noqa: ANN001
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape) if data == "random" else rng.integers(0, 2, shape).astype(float)
    tx = _t(xp, x)
    y = F.max_pool2d(tx, k, s)
    ref_y, ref_backward = naive_max_pool2d(x, k, s)
    np.testing.assert_array_equal(ts.as_numpy(y.data), ref_y)
    gy = rng.standard_normal(y.shape)
    y.backward(xp.asarray(gy))
    np.testing.assert_allclose(ts.as_numpy(tx.grad), ref_backward(gy), rtol=0, atol=1e-12)


@pytest.mark.parametrize("pool2x2", [True, False])
def test_max_pool2d_ties_send_gradient_to_first_max_in_row_major_order(xp, pool2x2) -> None:  # noqa: ANN001
    # Four 2×2 windows: all equal; max at top-right and bottom-left; max at bottom-left and bottom-right; unique.
    x = np.array([[1., 1., 0., 5.],
                  [1., 1., 5., 0.],
                  [0., 0., 2., 3.],
                  [7., 7., 1., 3.]])[None, None]
    tx = _t(xp, x)
    y = MaxPool2dOp(2, 2, pool2x2=pool2x2)(tx)
    y.backward(xp.asarray(np.array([[10., 20.], [30., 40.]])[None, None]))
    expected = np.array([[10., 0., 0., 20.],
                         [0., 0., 0., 0.],
                         [0., 0., 0., 40.],
                         [30., 0., 0., 0.]])
    np.testing.assert_array_equal(ts.as_numpy(tx.grad)[0, 0], expected)


@pytest.mark.parametrize("shape", [(29, 6, 36, 36), (3, 12, 14, 14), (2, 3, 7, 9)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool2d_2x2_path_matches_general_path_even_with_ties(xp, shape, dtype) -> None:  # noqa: ANN001
    rng = np.random.default_rng(1)
    x = rng.integers(-2, 3, shape).astype(dtype)  # many ties in every window
    gy = rng.standard_normal((shape[0], shape[1], shape[2] // 2, shape[3] // 2)).astype(dtype)
    out = []
    for pool2x2 in (True, False):
        tx = _t(xp, x)
        op = MaxPool2dOp(2, 2, pool2x2=pool2x2)
        y = op(tx)
        assert op.pool2x2 is pool2x2
        y.backward(xp.asarray(gy))
        out.append((ts.as_numpy(y.data), ts.as_numpy(tx.grad)))
    np.testing.assert_array_equal(out[0][0], out[1][0])
    np.testing.assert_array_equal(out[0][1], out[1][1])


def test_max_pool2d_floors_odd_sizes_and_cropped_edge_gets_zero_gradient(xp) -> None:  # noqa: ANN001
    x = np.arange(2 * 7 * 5, dtype=float).reshape(1, 2, 7, 5)  # the max of each window is its bottom-right
    tx = _t(xp, x)
    y = F.max_pool2d(tx)
    assert y.shape == (1, 2, 3, 2)
    y.sum().backward()
    g = ts.as_numpy(tx.grad)
    assert g[:, :, 6, :].sum() == 0 and g[:, :, :, 4].sum() == 0  # dropped last row and column
    assert g.sum() == 12 and np.all(g[:, :, 1:6:2, 1:4:2] == 1)


def test_max_pool2d_keeps_float32(xp) -> None:  # noqa: ANN001
    for k, s in ((2, 2), (3, 2)):
        tx = _t(xp, np.random.default_rng(2).standard_normal((2, 3, 8, 8)).astype(np.float32))
        y = F.max_pool2d(tx, k, s)
        y.backward(xp.ones(y.shape, dtype=np.float32))
        assert y.dtype == np.float32 and tx.grad.dtype == np.float32


@pytest.mark.parametrize("args, match", [(((1, 1, 1, 4),), "smaller than"), (((2, 8, 8),), "4-D"),
                                         (((1, 1, 4, 4), 0), "kernel_size"), (((1, 1, 4, 4), 2, 1.5), "stride")])
def test_max_pool2d_rejects_bad_input_with_clear_errors(args, match) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match=match):
        F.max_pool2d(np.zeros(args[0]), *args[1:])
