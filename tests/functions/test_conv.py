"""conv2d / conv_transpose2d / im2col / col2im against naive loops, scipy, and each other (adjoints)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import correlate

import tinyseg as ts
from tinyseg import F
from tinyseg.functions.conv import Conv2dOp, ConvTranspose2dOp

# (x shape, W shape for conv2d (C_out, C_in, KH, KW), stride, pad)
CONV_CASES = [
    ((2, 1, 9, 9), (3, 1, 5, 5), 1, 0),
    ((2, 3, 7, 6), (4, 3, 3, 3), 2, 1),
    ((1, 2, 8, 5), (3, 2, 2, 3), (2, 1), (0, 2)),
    ((3, 4, 7, 7), (5, 4, 7, 7), 1, 0),  # 1×1 output: the flat path
    ((2, 2, 6, 7), (3, 2, 5, 5), 3, 0),  # 1×1 output after cropping (stride 3 leaves rows unused)
    ((1, 2, 5, 5), (2, 2, 3, 3), 1, 2),
]
IDS = ["valid5x5", "stride2_pad1", "pairs", "kernel_covers_input", "cropped_1x1", "pad2"]


def _pair(v):  # noqa: ANN001, ANN202
    return (v, v) if isinstance(v, int) else v


def _t(xp, a, grad=True):  # noqa: ANN001, ANN202
    return ts.Tensor(xp.asarray(a), requires_grad=grad)


def naive_conv2d(x, W, b, stride, pad):  # noqa: ANN001, ANN201
    (sh, sw), (ph, pw) = _pair(stride), _pair(pad)
    N, C, H, Wd = x.shape
    C_out, _, KH, KW = W.shape
    xp_ = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    OH, OW = (H + 2 * ph - KH) // sh + 1, (Wd + 2 * pw - KW) // sw + 1
    y = np.zeros((N, C_out, OH, OW))
    for n in range(N):
        for o in range(C_out):
            for oh in range(OH):
                for ow in range(OW):
                    y[n, o, oh, ow] = b[o] + np.sum(xp_[n, :, sh * oh:sh * oh + KH, sw * ow:sw * ow + KW] * W[o])
    return y


def naive_conv2d_backward(x, W, gy, stride, pad):  # noqa: ANN001, ANN201
    (sh, sw), (ph, pw) = _pair(stride), _pair(pad)
    N, C, H, Wd = x.shape
    C_out, _, KH, KW = W.shape
    xp_ = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    gxp, gW = np.zeros_like(xp_), np.zeros_like(W)
    for n in range(N):
        for o in range(C_out):
            for oh in range(gy.shape[2]):
                for ow in range(gy.shape[3]):
                    win = (n, slice(None), slice(sh * oh, sh * oh + KH), slice(sw * ow, sw * ow + KW))
                    gW[o] += gy[n, o, oh, ow] * xp_[win]
                    gxp[win] += gy[n, o, oh, ow] * W[o]
    return gxp[:, :, ph:ph + H, pw:pw + Wd], gW, gy.sum(axis=(0, 2, 3))


def scipy_conv2d(x, W, b, stride, pad):  # noqa: ANN001, ANN201
    (sh, sw), (ph, pw) = _pair(stride), _pair(pad)
    xp_ = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = np.stack([np.stack([sum(correlate(xp_[n, c], W[o, c], mode="valid") for c in range(x.shape[1])) + b[o]
                            for o in range(W.shape[0])]) for n in range(x.shape[0])])
    return y[:, :, ::sh, ::sw]


def naive_conv_transpose2d(x, W, stride, pad):  # noqa: ANN001, ANN201
    (sh, sw), (ph, pw) = _pair(stride), _pair(pad)
    N, C_in, H, Wd = x.shape
    _, C_out, KH, KW = W.shape
    y = np.zeros((N, C_out, (H - 1) * sh + KH, (Wd - 1) * sw + KW))
    for n in range(N):
        for c in range(C_in):
            for h in range(H):
                for w in range(Wd):
                    y[n, :, sh * h:sh * h + KH, sw * w:sw * w + KW] += x[n, c, h, w] * W[c]
    return y[:, :, ph:y.shape[2] - ph, pw:y.shape[3] - pw]


def naive_conv_transpose2d_backward(x, W, gy, stride, pad):  # noqa: ANN001, ANN201
    (sh, sw), (ph, pw) = _pair(stride), _pair(pad)
    N, C_in, H, Wd = x.shape
    _, C_out, KH, KW = W.shape
    gyp = np.pad(gy, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # the full (uncropped) output's gradient
    gx, gW = np.zeros_like(x), np.zeros_like(W)
    for n in range(N):
        for c in range(C_in):
            for h in range(H):
                for w in range(Wd):
                    win = gyp[n, :, sh * h:sh * h + KH, sw * w:sw * w + KW]
                    gx[n, c, h, w] = np.sum(win * W[c])
                    gW[c] += x[n, c, h, w] * win
    return gx, gW, gy.sum(axis=(0, 2, 3))


@pytest.mark.parametrize("xs, ws, stride, pad", CONV_CASES, ids=IDS)
def test_conv2d_forward_matches_naive_loops_and_scipy(xp, xs, ws, stride, pad) -> None:  # noqa: ANN001
    rng = np.random.default_rng(0)
    x, W, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    y = ts.as_numpy(F.conv2d(_t(xp, x), _t(xp, W), _t(xp, b), stride=stride, pad=pad).data)
    np.testing.assert_allclose(y, naive_conv2d(x, W, b, stride, pad), rtol=0, atol=1e-10)
    np.testing.assert_allclose(y, scipy_conv2d(x, W, b, stride, pad), rtol=0, atol=1e-10)


@pytest.mark.parametrize("xs, ws, stride, pad", CONV_CASES, ids=IDS)
def test_conv2d_backward_matches_naive_loop_derivative(xp, xs, ws, stride, pad) -> None:  # noqa: ANN001
    rng = np.random.default_rng(1)
    x, W, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    tx, tW, tb = _t(xp, x), _t(xp, W), _t(xp, b)
    y = F.conv2d(tx, tW, tb, stride=stride, pad=pad)
    gy = rng.standard_normal(y.shape)
    y.backward(xp.asarray(gy))
    for got, ref in zip((tx.grad, tW.grad, tb.grad), naive_conv2d_backward(x, W, gy, stride, pad)):
        np.testing.assert_allclose(ts.as_numpy(got), ref, rtol=0, atol=1e-10)


# (x shape, W shape for conv_transpose2d (C_in, C_out, KH, KW), stride, pad)
TCONV_CASES = [
    ((2, 3, 4, 5), (3, 2, 3, 3), 1, 0),
    ((2, 2, 3, 4), (2, 3, 3, 2), 2, 1),
    ((1, 2, 3, 3), (2, 2, 4, 3), (3, 2), (1, 0)),
    ((3, 4, 1, 1), (4, 2, 6, 5), 1, 0),  # 1×1 input, kernel = output (the FCN's last layer): flat path
    ((2, 3, 2, 2), (3, 2, 5, 5), 1, 2),
]


@pytest.mark.parametrize("xs, ws, stride, pad", TCONV_CASES)
def test_conv_transpose2d_forward_and_backward_match_naive_loops(xp, xs, ws, stride, pad) -> None:  # noqa: ANN001
    rng = np.random.default_rng(2)
    x, W, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[1])
    tx, tW, tb = _t(xp, x), _t(xp, W), _t(xp, b)
    y = F.conv_transpose2d(tx, tW, tb, stride=stride, pad=pad)
    np.testing.assert_allclose(ts.as_numpy(y.data), naive_conv_transpose2d(x, W, stride, pad) + b[:, None, None],
                               rtol=0, atol=1e-10)
    gy = rng.standard_normal(y.shape)
    y.backward(xp.asarray(gy))
    for got, ref in zip((tx.grad, tW.grad, tb.grad), naive_conv_transpose2d_backward(x, W, gy, stride, pad)):
        np.testing.assert_allclose(ts.as_numpy(got), ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("xs, ws, stride, pad", [  # sizes where (H + 2·pad − KH) is a multiple of the stride
    ((2, 1, 9, 9), (3, 1, 5, 5), 1, 0), ((2, 3, 9, 7), (2, 3, 3, 3), 2, 1), ((1, 2, 8, 5), (3, 2, 2, 3), (2, 1), (0, 2)),
    ((3, 4, 7, 7), (5, 4, 7, 7), 1, 0), ((1, 2, 5, 5), (2, 2, 3, 3), 1, 2), ((1, 2, 1, 1), (3, 2, 1, 1), 1, 0)])
def test_conv_transpose2d_is_adjoint_of_conv2d(xp, xs, ws, stride, pad) -> None:  # noqa: ANN001
    rng = np.random.default_rng(3)
    x, W = xp.asarray(rng.standard_normal(xs)), xp.asarray(rng.standard_normal(ws))
    Ax = F.conv2d(x, W, stride=stride, pad=pad).data
    u = xp.asarray(rng.standard_normal(Ax.shape))
    ATu = F.conv_transpose2d(u, W, stride=stride, pad=pad).data  # same W: (C_out, C_in) read as (C_in', C_out')
    assert ATu.shape == x.shape
    lhs, rhs = float(xp.sum(Ax * u)), float(xp.sum(x * ATu))
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


def test_conv2d_input_gradient_is_conv_transpose2d_of_upstream_gradient(xp) -> None:  # noqa: ANN001
    # The oracle is the naive scatter loop above, not F.conv_transpose2d: both library sides go
    # through the same col2im, so comparing them with each other would let a broken col2im pass.
    rng = np.random.default_rng(4)
    x, W = _t(xp, rng.standard_normal((2, 3, 9, 9))), _t(xp, rng.standard_normal((4, 3, 3, 3)))
    y = F.conv2d(x, W, stride=2, pad=1)
    gy = rng.standard_normal(y.shape)
    y.backward(xp.asarray(gy))
    ref = naive_conv_transpose2d(gy, ts.as_numpy(W.data), stride=2, pad=1)  # W (C_out, C_in) read as (C_in', C_out')
    assert ref.shape == x.shape
    np.testing.assert_allclose(ts.as_numpy(x.grad), ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("xs, k, stride, pad", [((2, 3, 7, 6), (3, 3), 1, 0), ((2, 2, 7, 8), (3, 2), 2, 1),
                                                ((1, 2, 6, 6), (5, 5), 1, 0), ((2, 1, 4, 4), (4, 4), 1, 0),
                                                ((1, 2, 5, 9), (2, 3), (2, 3), (1, 2))])
def test_col2im_is_adjoint_of_im2col(xp, xs, k, stride, pad) -> None:  # noqa: ANN001
    rng = np.random.default_rng(5)
    x = xp.asarray(rng.standard_normal(xs))
    col = F.im2col(x, k, stride, pad).data
    c = xp.asarray(rng.standard_normal(col.shape))
    back = F.col2im(c, xs, k, stride, pad).data
    lhs, rhs = float(xp.sum(col * c)), float(xp.sum(x * back))
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


def test_im2col_columns_are_the_windows(xp) -> None:  # noqa: ANN001
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 6, 7))
    col = ts.as_numpy(F.im2col(xp.asarray(x), (3, 2), 2, 1).data)  # (N, C*KH*KW, OH*OW)
    xp_ = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    OH, OW = (6 + 2 - 3) // 2 + 1, (7 + 2 - 2) // 2 + 1
    assert col.shape == (2, 3 * 3 * 2, OH * OW)
    for oh in range(OH):
        for ow in range(OW):
            window = xp_[:, :, 2 * oh:2 * oh + 3, 2 * ow:2 * ow + 2].reshape(2, -1)
            np.testing.assert_array_equal(col[:, :, oh * OW + ow], window)


@pytest.mark.parametrize("op, xs, ws, stride", [
    (Conv2dOp, (3, 12, 7, 7), (20, 12, 7, 7), 1),           # conv3 of Table 1, scaled down
    (Conv2dOp, (2, 3, 8, 9), (4, 3, 6, 7), 3),              # 1×1 output with cropped rows/columns
    (ConvTranspose2dOp, (3, 20, 1, 1), (20, 2, 40, 40), 1),  # the FCN's 1×1 → 40×40 transpose conv
])
def test_flat_1x1_paths_match_general_path(xp, op, xs, ws, stride) -> None:  # noqa: ANN001
    rng = np.random.default_rng(7)
    x, W, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0 if op is Conv2dOp else 1])
    results = []
    for flat in (True, False):
        tx, tW, tb = _t(xp, x), _t(xp, W), _t(xp, b)
        o = op(stride, 0, flat=flat)
        y = o(tx, tW, tb)
        assert o.flat is flat  # the flat path was really taken (and the oracle really not)
        y.backward(xp.asarray(np.random.default_rng(8).standard_normal(y.shape)))
        results.append([ts.as_numpy(a) for a in (y.data, tx.grad, tW.grad, tb.grad)])
    for a, b_ in zip(*results):
        np.testing.assert_allclose(a, b_, rtol=0, atol=1e-10)


def test_conv2d_skips_input_gradient_when_input_needs_none(xp) -> None:  # noqa: ANN001
    rng = np.random.default_rng(9)
    x = xp.asarray(rng.standard_normal((2, 1, 8, 8)))
    for op, W in ((Conv2dOp(), _t(xp, rng.standard_normal((3, 1, 5, 5)))),
                  (ConvTranspose2dOp(), _t(xp, rng.standard_normal((1, 3, 5, 5))))):
        y = op(x, W)
        gx, gW, gb = op.backward(xp.ones(y.shape))
        assert gx is None and gb is None and gW.shape == W.shape


def test_conv_ops_keep_float32(xp) -> None:  # noqa: ANN001
    rng = np.random.default_rng(10)
    f32 = np.float32
    cases = [(F.conv2d, (2, 2, 9, 9), (3, 2, 3, 3), 3), (F.conv2d, (2, 3, 5, 5), (4, 3, 5, 5), 4),
             (F.conv_transpose2d, (2, 3, 4, 4), (3, 2, 3, 3), 2), (F.conv_transpose2d, (2, 3, 1, 1), (3, 2, 5, 5), 2)]
    for f, xs, ws, nb in cases:
        tx, tW, tb = (_t(xp, rng.standard_normal(s).astype(f32)) for s in (xs, ws, (nb,)))
        y = f(tx, tW, tb)
        y.backward(xp.ones(y.shape, dtype=f32))
        assert {a.dtype for a in (y.data, tx.grad, tW.grad, tb.grad)} == {np.dtype(f32)}, f.__name__


def test_table1_fcn1_shapes_run_from_40x40_roi_to_40x40_logits(xp) -> None:  # noqa: ANN001
    rng = np.random.default_rng(11)
    x = _t(xp, rng.standard_normal((2, 1, 40, 40)).astype(np.float32))
    h = x
    for c_in, c_out, k in [(1, 6, 5), (6, 12, 5)]:
        h = F.max_pool2d(F.tanh(F.conv2d(h, _t(xp, 0.1 * rng.standard_normal((c_out, c_in, k, k)).astype(np.float32)))))
    assert h.shape == (2, 12, 7, 7)
    h = F.tanh(F.conv2d(h, _t(xp, 0.01 * rng.standard_normal((588, 12, 7, 7)).astype(np.float32))))
    assert h.shape == (2, 588, 1, 1)
    z = F.conv_transpose2d(h, _t(xp, 0.01 * rng.standard_normal((588, 2, 40, 40)).astype(np.float32)))
    assert z.shape == (2, 2, 40, 40)
    F.cross_entropy(z, xp.asarray(rng.integers(0, 2, (2, 40, 40)))).backward()
    assert x.grad.shape == x.shape and x.grad.dtype == np.float32 and bool(xp.isfinite(x.grad).all())


@pytest.mark.parametrize("f, xs, ws, match", [
    (F.conv2d, (2, 3, 8, 8), (4, 2, 3, 3), "channels"),
    (F.conv2d, (3, 8, 8), (4, 3, 3, 3), "4-D"),
    (F.conv2d, (1, 1, 3, 3), (1, 1, 5, 5), "larger than the padded input"),
    (F.conv_transpose2d, (2, 3, 4, 4), (2, 3, 3, 3), "C_in"),
])
def test_conv_ops_reject_bad_shapes_with_clear_errors(f, xs, ws, match) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match=match):
        f(np.zeros(xs), np.zeros(ws))


def test_conv_ops_reject_mixed_dtypes_instead_of_upcasting() -> None:
    with pytest.raises(TypeError, match="float64 but W is float32"):
        F.conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3), np.float32))
    with pytest.raises(ValueError, match=r"b must have shape \(2,\)"):
        F.conv_transpose2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 2, 3, 3)), np.zeros(3))


def test_conv2d_input_gradient_is_flipped_kernel_correlation_of_dilated_gradient(xp) -> None:  # noqa: ANN001
    # docs/derivations/conv.md: for stride s, gx is the stride-1 correlation of the upstream
    # gradient, dilated (s − 1 zeros between entries) and zero-padded by K − 1, with the kernel
    # flipped in both spatial axes and its channel axes swapped; then the padding is cropped.
    # Rows: stride 2 on 8 rows leaves the last row in no window; columns: stride 3, pad 1.
    (sh, sw), (ph, pw) = (2, 3), (0, 1)
    rng = np.random.default_rng(12)
    x, W = _t(xp, rng.standard_normal((2, 3, 8, 10))), _t(xp, rng.standard_normal((4, 3, 3, 2)))
    y = F.conv2d(x, W, stride=(sh, sw), pad=(ph, pw))
    gy = rng.standard_normal(y.shape)
    y.backward(xp.asarray(gy))
    N, C, H, Wd = x.shape
    C_out, _, KH, KW = W.shape
    OH, OW = gy.shape[2:]
    Hp, Wp = H + 2 * ph, Wd + 2 * pw
    d = np.zeros((N, C_out, Hp + KH - 1, Wp + KW - 1))  # dilated, padded by K − 1 in front
    d[:, :, KH - 1:KH - 1 + sh * OH:sh, KW - 1:KW - 1 + sw * OW:sw] = gy
    Wflip = ts.as_numpy(W.data).transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]  # (C_in, C_out, KH, KW)
    gxp = np.stack([np.stack([sum(correlate(d[n, o], Wflip[c, o], mode="valid") for o in range(C_out))
                              for c in range(C)]) for n in range(N)])  # (N, C, Hp, Wp)
    assert gxp.shape == (N, C, Hp, Wp)
    np.testing.assert_allclose(ts.as_numpy(x.grad), gxp[:, :, ph:ph + H, pw:pw + Wd], rtol=0, atol=1e-12)
    assert np.abs(ts.as_numpy(x.grad)[:, :, -1]).max() == 0  # the last row is in no window


def test_conv_transpose2d_of_a_1x1_input_is_a_dense_layer(xp) -> None:  # noqa: ANN001
    # On a 1×1 input the transpose convolution is x (N, C_in) times W as a (C_in, C_out·KH·KW)
    # matrix: a fully connected layer, as the FCN's last layer uses it.
    rng = np.random.default_rng(13)
    x, W, b = rng.standard_normal((3, 5, 1, 1)), rng.standard_normal((5, 2, 6, 4)), rng.standard_normal(2)
    y = ts.as_numpy(F.conv_transpose2d(xp.asarray(x), xp.asarray(W), xp.asarray(b)).data)
    dense = np.einsum("nc,cokl->nokl", x[:, :, 0, 0], W) + b[:, None, None]  # (N, C_out, KH, KW)
    np.testing.assert_allclose(y, dense, rtol=0, atol=1e-12)
