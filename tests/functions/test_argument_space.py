"""One regression test per corner of the argument space where the engine once went wrong.

The rule they pin down (tinyseg.autodiff's docstring, lesson 01's page): values, dtypes and axes
follow NumPy 2; gradients follow PyTorch (floating tensors only, a tensor's gradient in its own
dtype and shape, PyTorch's subgradients, a max's gradient to the element the forward picked);
bad arguments raise `UserError`. The property-based tests in test_op_properties.py cover the
same ground on random arguments.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import tinyseg as ts
from tinyseg.errors import UserError
from tinyseg.functions.arithmetic import MulOp
from tinyseg.functions.pooling import MaxPool2dOp

F = ts.F


def test_transpose_with_a_negative_axis_sends_each_gradient_to_its_own_element() -> None:
    x = ts.Tensor(np.arange(8.0).reshape(2, 2, 2), requires_grad=True)
    F.transpose(x, (0, -1, 1)).backward(np.arange(8.0).reshape(2, 2, 2))
    np.testing.assert_array_equal(x.grad.ravel(), [0, 2, 1, 3, 4, 6, 5, 7])
    y = ts.Tensor(np.zeros((2, 3, 4)), requires_grad=True)
    g = np.random.default_rng(0).standard_normal((2, 4, 3))
    y.transpose(0, -1, -2).backward(g)
    np.testing.assert_array_equal(y.grad, g.transpose(0, 2, 1))
    with pytest.raises(UserError, match="permutation"):
        F.transpose(y, (0, 1, 1))


def test_python_scalars_promote_as_numpy_2_does() -> None:
    ints = ts.Tensor(np.arange(3))
    np.testing.assert_array_equal((ints + 0.5).data, [0.5, 1.5, 2.5])
    assert (ints * 0.5).dtype == np.float64 and (ints + 1).dtype == ints.dtype
    f32 = ts.Tensor(np.ones(3, np.float32), requires_grad=True)
    assert (f32 * 0.5).dtype == np.float32 and (0.5 * f32).dtype == np.float32
    assert (f32 * np.float64(0.5)).dtype == np.float64  # a NumPy scalar is not "weak"
    (f32 * 0.5).sum().backward()
    np.testing.assert_array_equal(f32.grad, 0.5)


def test_a_leaf_gets_its_gradient_in_its_own_dtype() -> None:
    w = ts.Tensor(np.ones(3, np.float32), requires_grad=True)
    (w * np.arange(3.0)).sum().backward()  # float64 arithmetic
    assert w.grad.dtype == np.float32 and w.grad.shape == (3,)
    p = ts.Parameter(np.ones((2, 2), np.float32))
    (p * ts.Tensor(np.full((2, 2), 2.0))).sum().backward()
    assert p.grad.dtype == np.float32
    with pytest.raises(UserError, match="floating-point"):
        ts.Tensor(np.arange(3), requires_grad=True)
    t = ts.Tensor(np.arange(3))
    with pytest.raises(UserError, match="floating-point"):
        t.requires_grad = True


@pytest.mark.parametrize("fn", [F.sum, F.mean])
def test_reduction_axes_follow_numpy_and_refuse_what_numpy_refuses(fn) -> None:
    x = ts.Tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_allclose(fn(x, axis=np.int64(1)).data, getattr(np, fn.__name__)(x.data, axis=1))
    for bad in (2, -3, (0, 2), (0, 0), 1.0):
        with pytest.raises(UserError, match="axis"):
            fn(x, axis=bad)
    with pytest.raises(UserError, match="0-d"):
        fn(ts.Tensor(np.array(1.0)), axis=0)
    assert fn(ts.Tensor(np.array(2.0)), axis=()).item() == 2.0


def test_pow_zero_has_gradient_zero_and_int_powers_keep_int() -> None:
    x = ts.Tensor(np.array([0.0, 2.0]), requires_grad=True)
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])
    assert (ts.Tensor(np.arange(3)) ** 2).dtype == np.int64
    assert (ts.Tensor(np.arange(3)) ** 0.5).dtype == np.float64
    with pytest.raises(UserError, match="negative integer power"):
        ts.Tensor(np.arange(3)) ** -1


def test_log_softmax_and_softmax_both_accept_integers_as_numpy_would() -> None:
    x = np.arange(6).reshape(2, 3)
    ls, s = F.log_softmax(ts.Tensor(x)), F.softmax(ts.Tensor(x))
    assert ls.dtype == s.dtype == np.float64
    np.testing.assert_allclose(np.exp(ls.data), s.data, rtol=1e-15)
    with pytest.raises(UserError, match="axis"):
        F.softmax(ts.Tensor(np.ones((2, 3))), axis=2)


def test_reshape_and_broadcast_to_take_an_int_shape() -> None:
    x = ts.Tensor(np.ones((2, 3)))
    assert F.reshape(x, 6).shape == (6,) and x.reshape(6).shape == (6,)
    assert F.broadcast_to(ts.Tensor(np.ones(1)), 3).shape == (3,)
    with pytest.raises(UserError, match="reshape"):
        F.reshape(x, 5)
    with pytest.raises(UserError, match="broadcast"):
        F.broadcast_to(x, (3, 3))


def test_sum_to_refuses_a_shape_that_does_not_broadcast() -> None:
    with pytest.raises(UserError, match="sum_to"):
        F.sum_to(ts.Tensor(np.ones((3, 4))), (4, 3))
    assert F.sum_to(ts.Tensor(np.ones((3, 4))), (1, 4)).shape == (1, 4)


@pytest.mark.parametrize("call", [
    lambda x, W: F.conv2d(x, W, stride=0),
    lambda x, W: F.conv2d(x, W, pad=-1),
    lambda x, W: F.conv2d(x, W, stride=(1, -1)),
    lambda x, W: F.conv2d(x, np.ones((1, 1, 9, 9))),
    lambda x, W: F.conv_transpose2d(x, W, stride=0),
    lambda x, W: F.conv_transpose2d(x, W, pad=-1),
    lambda x, W: F.conv_transpose2d(x, W, pad=5),
    lambda x, W: F.im2col(x, 3, stride=0),
    lambda x, W: F.im2col(x, 3, pad=-1),
    lambda x, W: F.im2col(x, 9),
    lambda x, W: F.col2im(np.ones((1, 9, 4)), (1, 1, 4, 4), 3, stride=0),
    lambda x, W: F.col2im(np.ones((1, 9, 4)), (1, 1, 4, 4), 3, pad=-2),
    lambda x, W: F.max_pool2d(x, 2, 0),
    lambda x, W: F.max_pool2d(x, 9),
], ids=["conv_stride0", "conv_pad_neg", "conv_stride_pair_neg", "conv_kernel_too_big", "convT_stride0",
        "convT_pad_neg", "convT_no_output", "im2col_stride0", "im2col_pad_neg", "im2col_kernel_too_big",
        "col2im_stride0", "col2im_pad_neg", "pool_stride0", "pool_too_big"])
def test_impossible_conv_and_pool_geometry_raises_a_user_error(call) -> None:
    x, W = np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3))
    with pytest.raises(UserError):
        call(x, W)


@pytest.mark.parametrize("pool2x2", [True, False])
def test_max_pool_sends_a_nan_windows_gradient_to_its_first_nan_on_both_paths(pool2x2: bool) -> None:
    x = np.array([[[[1.0, np.nan, 5.0, 1.0], [np.nan, 2.0, 0.0, np.nan]]]])
    t = ts.Tensor(x, requires_grad=True)
    y = MaxPool2dOp(2, 2, pool2x2=pool2x2)(t)
    assert np.isnan(y.data).all()  # NumPy's max of a window holding NaN is NaN
    y.backward(np.ones(y.shape))
    np.testing.assert_array_equal(t.grad, [[[[0, 1, 0, 0], [0, 0, 0, 1]]]])


def test_l2_penalty_promotes_integer_parameters_instead_of_truncating() -> None:
    assert F.l2_penalty([ts.Tensor([1, 2]), np.ones(2)], 0.3).item() == pytest.approx(1.05)
    assert F.l2_penalty([ts.Tensor(np.ones(2, np.float32))], 0.3).dtype == np.float32


def test_crf_composite_refuses_a_float_n_iter_and_handles_one_pixel() -> None:
    rng = np.random.default_rng(0)
    u, image, w = rng.standard_normal((1, 2, 1, 1)), rng.standard_normal((1, 1, 1, 1)), np.array([1.0, 1.0])
    for fn in (F.mean_field_crf, F.mean_field_crf_composite):
        with pytest.raises(UserError, match="n_iter"):
            fn(u, image, w, n_iter=2.0)
        np.testing.assert_allclose(fn(u, image, w).data, u)  # one pixel: no pair, no message


def test_an_op_object_is_single_use() -> None:
    a, b = ts.Tensor(np.ones(2), requires_grad=True), ts.Tensor(np.ones(2), requires_grad=True)
    op = MulOp()
    op(a, b)
    with pytest.raises(UserError, match="create a new op"):
        op(a, b)


def test_a_fast_forward_is_followed_by_its_own_backward_outside_the_block() -> None:
    from tinyseg import cuda
    from tinyseg.cuda.testing import emulated

    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed (the CUDA emulator needs it)")
    x = np.random.default_rng(0).permutation(64).reshape(1, 1, 8, 8).astype(np.float64)
    plain = ts.Tensor(x, requires_grad=True)
    F.max_pool2d(plain).sum().backward()
    t = ts.Tensor(x, requires_grad=True)
    with emulated(), cuda.fast_paths(True):
        y = F.max_pool2d(t)
    with cuda.fast_paths(False):
        y.sum().backward()  # the forward's fast path still takes it
    np.testing.assert_array_equal(t.grad, plain.grad)


def test_mean_asks_the_dispatcher_once() -> None:
    from tinyseg import _hooks

    calls = []

    def count(target, method, args):
        calls.append((type(target).__name__, method))
        return NotImplemented

    old = _hooks._overrider
    _hooks.install(count)
    try:
        F.mean(ts.Tensor(np.ones(3)))
    finally:
        _hooks.install(old)
    assert calls == [("MeanOp", "forward")]


@pytest.mark.parametrize("name", ["TINYSEG_FAST_PATHS", "TINYSEG_FUSED"])
@pytest.mark.parametrize("value", ["true", "off", "2"])
def test_an_unknown_fast_paths_value_is_refused(name: str, value: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("TINYSEG_FAST_PATHS", "TINYSEG_FUSED")} | {name: value}
    out = subprocess.run([sys.executable, "-c", "import tinyseg.cuda"], capture_output=True, text=True, env=env)
    assert out.returncode != 0 and name in out.stderr and "OptionError" in out.stderr


def test_the_old_names_of_the_fast_path_switches_still_work_with_a_deprecation_warning() -> None:
    code = ("import warnings\nwarnings.simplefilter('error', DeprecationWarning)\n"
            "try:\n    import tinyseg.cuda\nexcept DeprecationWarning as w:\n    print('env:', w)\n")
    env = {k: v for k, v in os.environ.items() if k != "TINYSEG_FAST_PATHS"} | {"TINYSEG_FUSED": "0"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert "env: TINYSEG_FUSED is deprecated" in out.stdout and "TINYSEG_FAST_PATHS=0" in out.stdout
    from tinyseg import cuda

    with pytest.warns(DeprecationWarning, match="fast_paths"):
        with cuda.fused(False):
            assert not cuda.enabled("adam")
    assert cuda.enabled("adam") == ("adam" in cuda.VERIFIED and os.environ.get("TINYSEG_FAST_PATHS", "") != "0")


def test_numpy_functions_see_a_cpu_tensor_as_its_array() -> None:
    t = ts.Tensor(np.arange(4.0))
    a = np.asarray(t)
    assert a.dtype == np.float64 and a.shape == (4,) and np.shares_memory(a, t.data)
    assert float(np.mean(t).item()) == 1.5 and float(np.sum(t).item()) == 6.0
    with pytest.raises(UserError, match="out="):
        t.sum(out=np.empty(()))


def test_pow_reads_the_dtype_without_converting_the_tensor(monkeypatch) -> None:  # noqa: ANN001
    # a GPU tensor refuses np.asarray; pow must not call it just to learn the dtype
    def refuse(self, dtype=None, copy=None):  # noqa: ANN001, ANN202
        raise AssertionError("np.asarray(tensor) was called")

    monkeypatch.setattr(ts.Tensor, "__array__", refuse)
    assert (ts.Tensor(np.arange(3.0)) ** 2).dtype == np.float64
