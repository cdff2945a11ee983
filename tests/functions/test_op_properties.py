"""Property-based tests: every differentiable function and operator on its whole argument space.

Hypothesis draws the arguments — ranks 0-4, negative axes and axis tuples, keepdims,
broadcasting pairs, Python and NumPy scalars on either side, integer operands, Fortran-ordered
and strided views, float32 and float64, conv and pooling geometry (valid and impossible), NaN
and huge entries — and each test checks the engine's rule (tinyseg.autodiff's docstring):

* the forward equals the NumPy expression: values, dtype and shape;
* the gradient of every floating input has that input's dtype and shape, and (in float64)
  equals central finite differences (`tinyseg.gradcheck.check_backward`);
* an argument NumPy refuses, or an impossible geometry, raises `UserError`.

The default profile ``ci`` (tests/conftest.py) is derandomised with a fixed example count;
``pytest --hypothesis-profile=deep tests/functions/test_op_properties.py`` draws ten times as many.
"""
from __future__ import annotations

import operator
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinyseg as ts
from tinyseg.errors import UserError
from tinyseg.functions.pooling import MaxPool2dOp
from tinyseg.gradcheck import check_backward

F = ts.F
FLOATS = (np.float32, np.float64)


def _fewer(fraction: float) -> settings:
    """A fraction of the active profile's examples, for the costlier tests (`deep` still gets 10×)."""
    return settings(max_examples=max(5, int(settings.default.max_examples * fraction)))
seeds = st.integers(0, 2**32 - 1)


# ---------------------------------------------------------------- strategies and helpers
def _values(seed: int, shape: tuple, dtype: Any, low: float | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind in "iu":
        if low is not None:  # away from zero, as for floats
            return (rng.integers(1, 4, shape) * rng.choice([-1, 1], shape)).astype(dtype)
        return rng.integers(-3, 4, shape).astype(dtype)
    a = rng.standard_normal(shape) if low is None else rng.uniform(low, 2.0, shape) * rng.choice([-1, 1], shape)
    return np.asarray(a, dtype=dtype)


def _layout(a: np.ndarray, kind: int) -> np.ndarray:
    """The same values as a C-contiguous array (0), a Fortran-ordered one (1) or a strided view (2)."""
    if a.ndim == 0 or kind == 0:
        return a
    if kind == 1:
        return np.asfortranarray(a)
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    wide[..., ::2] = a
    return wide[..., ::2]  # a non-contiguous view


layouts = st.integers(0, 2)


def _assert_like_numpy(out: ts.Tensor, ref: Any) -> None:
    ref = np.asarray(ref)
    assert out.dtype == ref.dtype, (out.dtype, ref.dtype)
    assert out.shape == ref.shape, (out.shape, ref.shape)
    tol = 1e-5 if ref.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out.data, ref, rtol=tol, atol=tol, equal_nan=True)


def _check_gradients(fn: Callable[..., ts.Tensor], args: list[Any], diff: list[int], seed: int) -> None:
    """Each differentiable input's gradient has its dtype and shape, and in float64 equals finite
    differences (non-differentiable arguments are passed as they are)."""
    tensors = [ts.Tensor(a, requires_grad=True) if i in diff else a for i, a in enumerate(args)]
    y = fn(*tensors)
    y.backward(np.random.default_rng(seed).standard_normal(y.shape).astype(y.dtype))
    for i in diff:
        g = tensors[i].grad
        assert g is not None and g.dtype == args[i].dtype and g.shape == args[i].shape, (i, g, args[i].dtype)
    raw = [np.asarray(a, np.float64) if i in diff else a for i, a in enumerate(args)]
    fixed = {i: a for i, a in enumerate(raw) if i not in diff}
    order = sorted(diff)

    def f64(*xs: Any) -> ts.Tensor:
        full = dict(fixed)
        full.update({i: x for i, x in zip(order, xs)})
        return fn(*[full[i] for i in range(len(raw))])

    check_backward(f64, [raw[i] for i in order], seed=seed, rtol=1e-5, atol=1e-8)


# ---------------------------------------------------------------- binary operators
BINARY = {"add": (F.add, operator.add), "sub": (F.sub, operator.sub), "mul": (F.mul, operator.mul),
          "div": (F.div, operator.truediv)}
scalars = st.one_of(st.integers(-3, 3), st.floats(-3, 3, allow_nan=False, width=32),
                    st.sampled_from([np.float64(0.75), np.float32(-1.5), np.int64(2)]))


@pytest.mark.parametrize("name", BINARY)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=3),
       dtypes=st.tuples(st.sampled_from(FLOATS + (np.int64,)), st.sampled_from(FLOATS + (np.int64,))),
       views=st.tuples(layouts, layouts), seed=seeds)
def test_binary_ops_broadcast_promote_and_differentiate_as_numpy(name, shapes, dtypes, views, seed) -> None:
    fn, op = BINARY[name]
    a = _layout(_values(seed, shapes.input_shapes[0], dtypes[0]), views[0])
    b = _layout(_values(seed + 1, shapes.input_shapes[1], dtypes[1], low=0.5 if name == "div" else None), views[1])
    _assert_like_numpy(fn(ts.Tensor(a), ts.Tensor(b)), op(a, b))
    _assert_like_numpy(op(ts.Tensor(a), ts.Tensor(b)), op(a, b))  # the Tensor operator
    diff = [i for i, x in enumerate((a, b)) if x.dtype.kind == "f"]
    if diff:
        _check_gradients(fn, [a, b], diff, seed)


@pytest.mark.parametrize("name", BINARY)
@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=3), dtype=st.sampled_from(FLOATS + (np.int64,)),
       scalar=scalars, left=st.booleans(), seed=seeds)
def test_scalars_on_either_side_follow_numpy_2_promotion(name, shape, dtype, scalar, left, seed) -> None:
    _, op = BINARY[name]
    x = _values(seed, shape, dtype, low=0.5 if (name == "div" and not left) else None)
    if name == "div" and left:
        assume(scalar != 0)
    args = (scalar, x) if not left else (x, scalar)
    with np.errstate(all="ignore"):
        ref = op(*args)
        out = op(*[ts.Tensor(v) if v is x else v for v in args])
    _assert_like_numpy(out, ref)
    if x.dtype.kind == "f":
        k = 1 if not left else 0
        _check_gradients(lambda t: op(*((scalar, t) if k else (t, scalar))), [x], [0], seed)


@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3))
def test_shapes_that_do_not_broadcast_raise_a_user_error(shapes) -> None:
    a_shape = shapes.input_shapes[0] + (2,)
    b_shape = shapes.input_shapes[1] + (3,)
    with pytest.raises(UserError, match="broadcast"):
        F.add(ts.Tensor(np.ones(a_shape)), ts.Tensor(np.ones(b_shape)))


# ---------------------------------------------------------------- unary ops
UNARY = {
    "neg": (F.neg, np.negative, None), "exp": (F.exp, np.exp, None), "log": (F.log, np.log, 0.5),
    "tanh": (F.tanh, np.tanh, None),
}


@pytest.mark.parametrize("name", UNARY)
@given(shape=hnp.array_shapes(min_dims=0, max_dims=4, max_side=3), dtype=st.sampled_from(FLOATS),
       view=layouts, seed=seeds)
def test_unary_ops_match_numpy_and_differentiate(name, shape, dtype, view, seed) -> None:
    fn, ref, low = UNARY[name]
    x = _layout(np.abs(_values(seed, shape, dtype, low)) if low else _values(seed, shape, dtype), view)
    _assert_like_numpy(fn(ts.Tensor(x)), ref(x))
    _check_gradients(fn, [x], [0], seed)


@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=3), dtype=st.sampled_from(FLOATS + (np.int64,)),
       exponent=st.sampled_from([0, 1, 2, 3, -1, -2, 0.5, 1.5, -0.5, np.float64(2.0), np.int64(3)]), seed=seeds)
def test_pow_follows_numpy_dtypes_and_pytorch_subgradients(shape, dtype, exponent, seed) -> None:
    x = _values(seed, shape, dtype, low=0.5)
    if np.dtype(dtype).kind == "i":
        x = np.abs(x) + 1
        if isinstance(exponent, (int, np.integer)) and exponent < 0:
            with pytest.raises(UserError, match="negative integer power"):
                F.pow(ts.Tensor(x), exponent)
            return
    elif not float(exponent).is_integer():
        x = np.abs(x)
    _assert_like_numpy(ts.Tensor(x) ** exponent, x ** exponent)
    if x.dtype.kind == "f":
        _check_gradients(lambda t: t ** exponent, [x], [0], seed)


@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=3), data=st.data(),
       dtype=st.sampled_from(FLOATS + (np.int64, np.int8)), scale=st.sampled_from([1.0, 1e4]), seed=seeds)
def test_softmax_and_log_softmax_on_any_axis_match_numpy(shape, data, dtype, scale, seed) -> None:
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = _values(seed, shape, dtype)
    if x.dtype.kind == "f":
        x = (x * scale).astype(dtype)
    xf = x.astype(np.result_type(x.dtype, np.float16))
    m = xf.max(axis=axis, keepdims=True)
    ref_log = xf - m - np.log(np.exp(xf - m).sum(axis=axis, keepdims=True))
    for fn, ref in ((F.log_softmax, ref_log), (F.softmax, np.exp(ref_log))):
        out = fn(ts.Tensor(x), axis=axis)
        assert out.dtype == ref.dtype and np.all(np.isfinite(out.data))
        tol = {np.float16: 2e-2, np.float32: 1e-4}.get(ref.dtype.type, 1e-10)
        np.testing.assert_allclose(out.data, ref, rtol=tol, atol=tol)
        if x.dtype.kind == "f" and scale == 1.0:
            _check_gradients(lambda t, fn=fn: fn(t, axis=axis), [x], [0], seed)
    bad = data.draw(st.sampled_from([len(shape), -len(shape) - 1]))
    with pytest.raises(UserError, match="axis"):
        F.softmax(ts.Tensor(x), axis=bad)


# ---------------------------------------------------------------- reductions
def _valid_axes(ndim: int) -> st.SearchStrategy:
    if ndim == 0:
        return st.sampled_from([None, ()])
    one = st.integers(-ndim, ndim - 1)
    many = st.lists(one, max_size=ndim, unique_by=lambda a: a % ndim).map(tuple)
    return st.one_of(st.none(), one, one.map(np.int64), many)


def _invalid_axes(ndim: int) -> st.SearchStrategy:
    out = st.one_of(st.integers(ndim, ndim + 2), st.integers(-ndim - 3, -ndim - 1))
    if ndim == 0:
        return out
    return st.one_of(out, st.integers(0, ndim - 1).map(lambda a: (a, a - ndim)), st.just(0.0))


@pytest.mark.parametrize("name", ["sum", "mean"])
@given(shape=hnp.array_shapes(min_dims=0, max_dims=4, max_side=3), data=st.data(),
       dtype=st.sampled_from(FLOATS + (np.int64, np.bool_)), keepdims=st.booleans(), view=layouts, seed=seeds)
def test_reductions_take_numpy_axes_and_refuse_the_rest(name, shape, data, dtype, keepdims, view, seed) -> None:
    fn, ref = getattr(F, name), getattr(np, name)
    x = _layout(_values(seed, shape, np.int64 if dtype is np.bool_ else dtype).astype(dtype), view)
    axis = data.draw(_valid_axes(len(shape)))
    _assert_like_numpy(fn(ts.Tensor(x), axis=axis, keepdims=keepdims), ref(x, axis=axis, keepdims=keepdims))
    method = getattr(ts.Tensor(x), name)(axis, keepdims)
    _assert_like_numpy(method, ref(x, axis=axis, keepdims=keepdims))
    if x.dtype.kind == "f":
        _check_gradients(lambda t: fn(t, axis=axis, keepdims=keepdims), [x], [0], seed)
    with pytest.raises(UserError, match="axis"):
        fn(ts.Tensor(x), axis=data.draw(_invalid_axes(len(shape))))


# ---------------------------------------------------------------- shape ops and indexing
@given(shape=hnp.array_shapes(min_dims=0, max_dims=4, max_side=3), data=st.data(),
       dtype=st.sampled_from(FLOATS), view=layouts, seed=seeds)
def test_reshape_and_transpose_match_numpy_with_any_axis_spelling(shape, data, dtype, view, seed) -> None:
    x = _layout(_values(seed, shape, dtype), view)
    size = x.size
    target = data.draw(st.sampled_from([size, (-1,), (1, size), tuple(reversed(shape)), (*shape, 1)]))
    _assert_like_numpy(F.reshape(ts.Tensor(x), target), x.reshape(target))
    _check_gradients(lambda t: F.reshape(t, target), [x], [0], seed)
    with pytest.raises(UserError, match="reshape"):
        F.reshape(ts.Tensor(x), (size + 1,))
    perm = data.draw(st.permutations(range(x.ndim)))
    spelled = tuple(a - x.ndim if data.draw(st.booleans()) else a for a in perm)
    axes = data.draw(st.sampled_from([None, spelled]))
    _assert_like_numpy(F.transpose(ts.Tensor(x), axes), x.transpose(axes))
    _check_gradients(lambda t: F.transpose(t, axes), [x], [0], seed)
    if x.ndim:
        with pytest.raises(UserError, match="permutation"):
            F.transpose(ts.Tensor(x), (0,) * x.ndim if x.ndim > 1 else (x.ndim,))


@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=3), dtype=st.sampled_from(FLOATS),
       seed=seeds)
def test_broadcast_to_and_sum_to_are_adjoint_and_refuse_bad_shapes(shapes, dtype, seed) -> None:
    small, big = shapes.input_shapes[0], shapes.result_shape
    x, y = _values(seed, small, dtype), _values(seed + 1, big, dtype)
    bx = F.broadcast_to(ts.Tensor(x), big)
    _assert_like_numpy(bx, np.broadcast_to(x, big))
    sy = F.sum_to(ts.Tensor(y), small)
    assert sy.shape == small and sy.dtype == y.dtype
    np.testing.assert_allclose(np.vdot(bx.data, y), np.vdot(x, sy.data), rtol=1e-4 if dtype is np.float32 else 1e-12)
    _check_gradients(lambda t: F.broadcast_to(t, big), [x], [0], seed)
    _check_gradients(lambda t: F.sum_to(t, small), [y], [0], seed)
    with pytest.raises(UserError, match="broadcast"):
        F.broadcast_to(ts.Tensor(np.ones(big + (2,), dtype)), big + (3,))
    with pytest.raises(UserError, match="sum_to"):
        F.sum_to(ts.Tensor(y), big + (2,))


@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), data=st.data(), dtype=st.sampled_from(FLOATS),
       seed=seeds)
def test_getitem_with_basic_and_fancy_indices_scatters_gradients_back(shape, data, dtype, seed) -> None:
    x = _values(seed, shape, dtype)
    index = tuple(data.draw(st.one_of(st.integers(-n, n - 1),
                                      st.builds(slice, st.integers(-n, n) | st.none(), st.integers(-n, n) | st.none(),
                                                st.sampled_from([None, 1, 2, -1]))))
                  for n in shape)
    fancy = data.draw(st.booleans())
    if fancy:
        index = np.array(data.draw(st.lists(st.integers(-shape[0], shape[0] - 1), min_size=1, max_size=5)))
    _assert_like_numpy(ts.Tensor(x)[index], x[index])
    _check_gradients(lambda t: t[index], [x], [0], seed)


@given(batch=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3),
       nkm=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
       dtype=st.sampled_from(FLOATS), views=st.tuples(layouts, layouts), seed=seeds)
def test_matmul_broadcasts_batch_axes_and_refuses_mismatched_ones(batch, nkm, dtype, views, seed) -> None:
    n, k, m = nkm
    a = _layout(_values(seed, batch.input_shapes[0] + (n, k), dtype), views[0])
    b = _layout(_values(seed + 1, batch.input_shapes[1] + (k, m), dtype), views[1])
    _assert_like_numpy(ts.Tensor(a) @ ts.Tensor(b), a @ b)
    _check_gradients(F.matmul, [a, b], [0, 1], seed)
    with pytest.raises(UserError, match="matmul"):
        F.matmul(ts.Tensor(a), ts.Tensor(_values(seed, (k + 1, m), dtype)))


# ---------------------------------------------------------------- convolution and pooling geometry
def _naive_conv(x: np.ndarray, W: np.ndarray, s: tuple, p: tuple) -> np.ndarray:
    N, C, H, Wd = x.shape
    O, _, KH, KW = W.shape
    xp_ = np.zeros((N, C, H + 2 * p[0], Wd + 2 * p[1]), x.dtype)
    xp_[:, :, p[0]:p[0] + H, p[1]:p[1] + Wd] = x
    OH, OW = (H + 2 * p[0] - KH) // s[0] + 1, (Wd + 2 * p[1] - KW) // s[1] + 1
    y = np.zeros((N, O, OH, OW), np.float64)
    for i in range(OH):
        for j in range(OW):
            patch = xp_[:, :, i * s[0]:i * s[0] + KH, j * s[1]:j * s[1] + KW]
            y[:, :, i, j] = np.einsum("ncij,ocij->no", patch, W)
    return y


def _naive_conv_transpose(x: np.ndarray, W: np.ndarray, s: tuple, p: tuple) -> np.ndarray:
    N, C, H, Wd = x.shape
    _, O, KH, KW = W.shape
    full = np.zeros((N, O, (H - 1) * s[0] + KH, (Wd - 1) * s[1] + KW))
    for h in range(H):
        for w in range(Wd):
            full[:, :, h * s[0]:h * s[0] + KH, w * s[1]:w * s[1] + KW] += np.einsum("nc,coij->noij", x[:, :, h, w], W)
    return full[:, :, p[0]:full.shape[2] - p[0], p[1]:full.shape[3] - p[1]]


geometry = st.fixed_dictionaries({
    "N": st.integers(1, 2), "C": st.integers(1, 2), "O": st.integers(1, 2), "H": st.integers(1, 5),
    "W": st.integers(1, 5), "KH": st.integers(1, 3), "KW": st.integers(1, 3),
    "stride": st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))),
    "pad": st.one_of(st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2)))})
bad_geometry = st.one_of(
    st.fixed_dictionaries({"stride": st.integers(-2, 0)}), st.fixed_dictionaries({"pad": st.integers(-3, -1)}),
    st.fixed_dictionaries({"stride": st.tuples(st.integers(1, 2), st.integers(-1, 0))}),
    st.fixed_dictionaries({"pad": st.tuples(st.integers(-1, -1), st.integers(0, 1))}),
    st.fixed_dictionaries({"stride": st.sampled_from([1.5, "2", (1, 2, 3)])}))


def _pair(v: Any) -> tuple:
    return (v, v) if isinstance(v, int) else v


@_fewer(0.6)
@given(g=geometry, dtype=st.sampled_from(FLOATS), bad=bad_geometry, seed=seeds)
def test_conv2d_and_its_transpose_on_any_geometry(g, dtype, bad, seed) -> None:
    s, p = _pair(g["stride"]), _pair(g["pad"])
    x = _values(seed, (g["N"], g["C"], g["H"], g["W"]), dtype)
    W = _values(seed + 1, (g["O"], g["C"], g["KH"], g["KW"]), dtype)
    if g["KH"] > g["H"] + 2 * p[0] or g["KW"] > g["W"] + 2 * p[1]:
        with pytest.raises(UserError, match="larger than the padded input"):
            F.conv2d(x, W, stride=s, pad=p)
    else:
        y = F.conv2d(ts.Tensor(x), ts.Tensor(W), stride=s, pad=p)
        assert y.dtype == dtype
        np.testing.assert_allclose(y.data, _naive_conv(x, W, s, p), rtol=1e-4, atol=1e-5)
        _check_gradients(lambda a, b: F.conv2d(a, b, stride=s, pad=p), [x, W], [0, 1], seed)
    Wt = _values(seed + 2, (g["C"], g["O"], g["KH"], g["KW"]), dtype)
    OH, OW = (g["H"] - 1) * s[0] + g["KH"] - 2 * p[0], (g["W"] - 1) * s[1] + g["KW"] - 2 * p[1]
    if OH < 1 or OW < 1:
        with pytest.raises(UserError, match="no output"):
            F.conv_transpose2d(x, Wt, stride=s, pad=p)
    else:
        y = F.conv_transpose2d(ts.Tensor(x), ts.Tensor(Wt), stride=s, pad=p)
        assert y.dtype == dtype
        np.testing.assert_allclose(y.data, _naive_conv_transpose(x, Wt, s, p), rtol=1e-4, atol=1e-5)
        _check_gradients(lambda a, b: F.conv_transpose2d(a, b, stride=s, pad=p), [x, Wt], [0, 1], seed)
    args = {"stride": 1, "pad": 0, **bad}
    for call in (lambda: F.conv2d(x, W, **args), lambda: F.conv_transpose2d(x, Wt, **args),
                 lambda: F.im2col(x, (g["KH"], g["KW"]), **args)):
        with pytest.raises(UserError):
            call()


@_fewer(0.6)
@given(g=geometry, dtype=st.sampled_from(FLOATS), seed=seeds)
def test_im2col_and_col2im_are_adjoint_on_any_geometry(g, dtype, seed) -> None:
    s, p, k = _pair(g["stride"]), _pair(g["pad"]), (g["KH"], g["KW"])
    assume(k[0] <= g["H"] + 2 * p[0] and k[1] <= g["W"] + 2 * p[1])
    shape = (g["N"], g["C"], g["H"], g["W"])
    x = _values(seed, shape, dtype)
    col = F.im2col(ts.Tensor(x), k, s, p)
    c = _values(seed + 1, col.shape, dtype)
    back = F.col2im(ts.Tensor(c), shape, k, s, p)
    assert col.dtype == back.dtype == dtype and back.shape == shape
    np.testing.assert_allclose(np.vdot(col.data, c), np.vdot(x, back.data), rtol=1e-4 if dtype is np.float32 else 1e-12)
    _check_gradients(lambda t: F.im2col(t, k, s, p), [x], [0], seed)
    _check_gradients(lambda t: F.col2im(t, shape, k, s, p), [c], [0], seed)


def _naive_pool(x: np.ndarray, k: int, s: int) -> tuple[np.ndarray, np.ndarray]:
    """The max of each window and the gradient of sum(G * max) (to the first max / first NaN)."""
    N, C, H, W = x.shape
    OH, OW = (H - k) // s + 1, (W - k) // s + 1
    y, pick = np.zeros((N, C, OH, OW), x.dtype), np.zeros(x.shape, bool)
    for i in range(OH):
        for j in range(OW):
            win = x[:, :, i * s:i * s + k, j * s:j * s + k].reshape(N, C, k * k)
            y[:, :, i, j] = win.max(axis=-1)
            a = win.argmax(axis=-1)
            for n in range(N):
                for c in range(C):
                    pick[n, c, i * s + a[n, c] // k, j * s + a[n, c] % k] = True
    return y, pick


@given(shape=st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 6), st.integers(1, 6)),
       k=st.integers(1, 3), s=st.integers(1, 3), dtype=st.sampled_from(FLOATS), n_nan=st.integers(0, 3),
       pool2x2=st.booleans(), seed=seeds)
def test_max_pool_picks_the_first_max_or_first_nan_on_every_path(shape, k, s, dtype, n_nan, pool2x2, seed) -> None:
    if pool2x2:
        k = s = 2
    x = np.random.default_rng(seed).permutation(int(np.prod(shape))).reshape(shape).astype(dtype) * 0.1
    if shape[2] < k or shape[3] < k:
        with pytest.raises(UserError, match="smaller than"):
            F.max_pool2d(x, k, s)
        return
    x.reshape(-1)[np.random.default_rng(seed + 1).integers(0, x.size, n_nan)] = np.nan
    for plain_window_path in (False, True):
        t = ts.Tensor(x, requires_grad=True)
        y = MaxPool2dOp(k, s, pool2x2=not plain_window_path)(t)
        ref, pick = _naive_pool(x, k, s)
        _assert_like_numpy(y, ref)
        y.backward(np.ones(y.shape, dtype))
        if s >= k:  # windows do not overlap: the gradient is 1 exactly where the window picked
            np.testing.assert_array_equal(t.grad != 0, pick)
        assert t.grad.dtype == dtype
    if n_nan == 0:
        _check_gradients(lambda a: F.max_pool2d(a, k, s), [x], [0], seed)


# ---------------------------------------------------------------- losses, the prior and the CRF
@given(N=st.integers(1, 3), C=st.integers(2, 4), spatial=hnp.array_shapes(min_dims=0, max_dims=2, max_side=3),
       dtype=st.sampled_from(FLOATS), seed=seeds)
def test_cross_entropy_equals_nll_of_log_softmax_and_numpy(N, C, spatial, dtype, seed) -> None:
    z = _values(seed, (N, C, *spatial), dtype)
    t = np.random.default_rng(seed).integers(0, C, (N, *spatial))
    zf = z.astype(np.float64)
    logp = zf - zf.max(1, keepdims=True) - np.log(np.exp(zf - zf.max(1, keepdims=True)).sum(1, keepdims=True))
    ref = -np.take_along_axis(logp, t[:, None], 1).mean()
    for out in (F.cross_entropy(ts.Tensor(z), t), F.nll_loss(F.log_softmax(ts.Tensor(z)), t)):
        assert out.dtype == dtype and out.shape == ()
        np.testing.assert_allclose(out.item(), ref, rtol=1e-5 if dtype is np.float32 else 1e-12)
    _check_gradients(lambda a: F.cross_entropy(a, t), [z], [0], seed)


@given(shapes=st.lists(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3), min_size=1, max_size=3),
       dtypes=st.lists(st.sampled_from(FLOATS + (np.int64,)), min_size=3, max_size=3),
       lam=st.one_of(st.just(0.0), st.floats(1e-6, 2)), seed=seeds)
def test_l2_penalty_promotes_like_numpy_and_differentiates(shapes, dtypes, lam, seed) -> None:
    params = [_values(seed + i, s, d) for i, (s, d) in enumerate(zip(shapes, dtypes))]
    out = F.l2_penalty([ts.Tensor(p) for p in params], lam)
    ref_dtype = np.result_type(*(p.dtype for p in params), lam)
    assert out.dtype == ref_dtype
    np.testing.assert_allclose(out.item(), lam / 2 * sum(float((p.astype(np.float64) ** 2).sum()) for p in params),
                               rtol=1e-5)
    diff = [i for i, p in enumerate(params) if p.dtype.kind == "f"]
    if diff:
        _check_gradients(lambda *ps: F.l2_penalty(ps, lam), params, diff, seed)


@_fewer(0.4)
@given(N=st.integers(1, 2), H=st.integers(1, 4), W=st.integers(1, 4), graph=st.sampled_from(["dense", "grid4"]),
       n_iter=st.integers(0, 3), w_shape=st.sampled_from([(2,), (2, 2)]), dtype=st.sampled_from(FLOATS),
       seed=seeds)
def test_mean_field_crf_equals_its_composite_and_differentiates(N, H, W, graph, n_iter, w_shape, dtype, seed) -> None:
    u = _values(seed, (N, 2, H, W), dtype)
    image = _values(seed + 1, (N, 1, H, W), dtype)
    w = np.abs(_values(seed + 2, w_shape, dtype)) * 0.5
    op = F.mean_field_crf(ts.Tensor(u), ts.Tensor(image), ts.Tensor(w), n_iter=n_iter, graph=graph)
    comp = F.mean_field_crf_composite(u, image, w, n_iter=n_iter, graph=graph)
    assert op.dtype == dtype and op.shape == u.shape and np.all(np.isfinite(op.data))
    np.testing.assert_allclose(op.data, comp.data, rtol=1e-4 if dtype is np.float32 else 1e-10, atol=1e-5)
    _check_gradients(lambda a, b, c: F.mean_field_crf(a, b, c, n_iter=n_iter, graph=graph), [u, image, w], [0, 1, 2],
                     seed)
    with pytest.raises(UserError, match="n_iter"):
        F.mean_field_crf(u, image, w, n_iter=float(n_iter))
