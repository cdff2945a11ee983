"""Primitive ops: element-wise arithmetic, reductions, shape ops, indexing and matmul.

Each op is an `<Name>Op` class with a hand-written backward, a snake_case function that users
call, and a registered gradient-check case. Binary ops broadcast like NumPy; their backward
reduces the upstream gradient back to each input's shape with `sum_to` — the adjoint of
`broadcast_to`.

Each backward is the chain rule applied to one elementary derivative (d(ab)/da = b, d e^x/dx = e^x,
…), derived on lesson 01's page, docs/lessons/01_autodiff.md, with broadcasting's sum_to.

Longer than the usual ~300 lines because it holds every primitive op of the engine, each short;
split by kind, a reader would look for `mul` in one file and `sum_to`, which its backward
calls, in another.

See: lessons/01_autodiff.py, tests/functions/test_arithmetic.py.
"""
from __future__ import annotations

import operator
from typing import Any, Sequence

import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple

from ..autodiff import Op, Tensor
from ..backend import get_array_module
from ..errors import UserError
from ..gradcheck import register_gradcheck

Axis = int | Sequence[int] | None
Shape = int | Sequence[int]


# ---------------------------------------------------------------- argument checks
def _shape_of(x: Any) -> tuple[int, ...]:
    return tuple(getattr(x, "shape", np.shape(x)))


def _as_shape(shape: Shape, fn: str) -> tuple[int, ...]:
    """An int or a sequence of ints as a shape tuple (NumPy accepts both)."""
    try:
        return (operator.index(shape),) if not isinstance(shape, (tuple, list)) else tuple(map(operator.index, shape))
    except TypeError:
        raise UserError(f"{fn}: shape must be an int or a sequence of ints, got {shape!r}.") from None


def _axes(axis: Axis, ndim: int, fn: str) -> tuple[int, ...]:
    """`axis` (None, an int or a sequence of ints, negative counting from the end) as sorted
    non-negative axes; refuses an axis out of range or given twice, as NumPy does."""
    if axis is None:
        return tuple(range(ndim))
    try:
        return tuple(sorted(normalize_axis_tuple(axis, ndim)))
    except (TypeError, ValueError) as e:  # AxisError is a ValueError
        allowed = (f"distinct ints in [-{ndim}, {ndim - 1}], a tuple of them, or None" if ndim
                   else "None or () (a 0-d tensor has no axes)")
        raise UserError(f"{fn}: axis={axis!r} is not valid for a {ndim}-D tensor ({e}); use {allowed}.") from None


def _check_broadcast(fn: str, a: Any, b: Any) -> None:
    try:
        np.broadcast_shapes(_shape_of(a), _shape_of(b))
    except ValueError:
        raise UserError(f"{fn}: shapes {_shape_of(a)} and {_shape_of(b)} do not broadcast; NumPy's rule: "
                        "aligned from the right, each pair of sizes equal or one of them 1.") from None


# --8<-- [start:sum_to]
def _sum_to(gy: Any, shape: tuple[int, ...]) -> Any:
    """Sum `gy` over the axes that broadcasting added or stretched, giving `shape`."""
    if tuple(gy.shape) == tuple(shape):
        return gy
    lead = gy.ndim - len(shape)                  # axes broadcasting added in front
    stretched = tuple(lead + i for i, n in enumerate(shape)
                      if n == 1 and gy.shape[lead + i] != 1)  # size-1 axes it stretched
    out = gy.sum(axis=tuple(range(lead)) + stretched, keepdims=True)
    return out.reshape(shape) if lead else out   # drop the added axes
# --8<-- [end:sum_to]


class AddOp(Op):
    def forward(self, a: Any, b: Any) -> Any:
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, gy: Any) -> tuple[Any, Any]:
        return _sum_to(gy, self.shapes[0]), _sum_to(gy, self.shapes[1])


# ---------------------------------------------------------------- element-wise binary ops
class SubOp(Op):
    def forward(self, a: Any, b: Any) -> Any:
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, gy: Any) -> tuple[Any, Any]:
        return _sum_to(gy, self.shapes[0]), _sum_to(-gy, self.shapes[1])


# --8<-- [start:mul_op]
class MulOp(Op):
    def forward(self, a: Any, b: Any) -> Any:
        self.a, self.b = a, b
        return a * b

    def backward(self, gy: Any) -> tuple[Any, Any]:
        return _sum_to(gy * self.b, self.a.shape), _sum_to(gy * self.a, self.b.shape)
# --8<-- [end:mul_op]


class DivOp(Op):
    def forward(self, a: Any, b: Any) -> Any:
        self.a, self.b = a, b
        return a / b

    def backward(self, gy: Any) -> tuple[Any, Any]:
        ga = gy / self.b
        return _sum_to(ga, self.a.shape), _sum_to(-ga * self.a / self.b, self.b.shape)


def add(a: Any, b: Any) -> Tensor:
    """Element-wise ``a + b`` with NumPy broadcasting. Gradient: gy summed to each input's shape."""
    _check_broadcast("add", a, b)
    return AddOp()(a, b)


def sub(a: Any, b: Any) -> Tensor:
    """Element-wise ``a - b`` with broadcasting. Gradient: (gy, −gy), summed to the input shapes."""
    _check_broadcast("sub", a, b)
    return SubOp()(a, b)


def mul(a: Any, b: Any) -> Tensor:
    """Element-wise ``a * b`` with broadcasting. Gradient: (gy·b, gy·a), summed to the input shapes."""
    _check_broadcast("mul", a, b)
    return MulOp()(a, b)


def div(a: Any, b: Any) -> Tensor:
    """Element-wise ``a / b`` with broadcasting. Gradient: (gy/b, −gy·a/b²)."""
    _check_broadcast("div", a, b)
    return DivOp()(a, b)


# ---------------------------------------------------------------- element-wise unary ops
class NegOp(Op):
    def forward(self, x: Any) -> Any:
        return -x

    def backward(self, gy: Any) -> Any:
        return -gy


class PowOp(Op):
    def __init__(self, exponent: int | float) -> None:
        self.exponent = exponent

    def forward(self, x: Any) -> Any:
        self.x = x
        return x ** self.exponent

    def backward(self, gy: Any) -> Any:
        p = self.exponent
        if p == 0:  # x**0 is constant; p·x^(p−1) would give 0·inf = NaN at x = 0
            return get_array_module(gy).zeros_like(gy)
        return gy * p * self.x ** (p - 1)


class ExpOp(Op):
    def forward(self, x: Any) -> Any:
        self.y = get_array_module(x).exp(x)
        return self.y

    def backward(self, gy: Any) -> Any:
        return gy * self.y  # d exp(x) = exp(x): save the output, not the input


class LogOp(Op):
    def forward(self, x: Any) -> Any:
        self.x = x
        return get_array_module(x).log(x)

    def backward(self, gy: Any) -> Any:
        return gy / self.x


def neg(x: Any) -> Tensor:
    """``-x``. Gradient: −gy."""
    return NegOp()(x)


def pow(x: Any, exponent: int | float) -> Tensor:  # noqa: A001  (mirrors operator.pow)
    """``x ** exponent`` for a constant exponent, with NumPy's dtypes (an int tensor squared stays
    int). Gradient: gy · p · x^(p−1); 0 for p = 0 (also at x = 0, as PyTorch)."""
    if isinstance(exponent, Tensor) or not isinstance(exponent, (int, float, np.integer, np.floating)):
        raise UserError(f"pow: exponent must be a constant real number, got {type(exponent).__name__}; "
                        "for a tensor exponent write exp(b * log(a)).")
    dtype = x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype  # no host copy of a GPU tensor
    if dtype.kind in "iub" and isinstance(exponent, (int, np.integer)) and exponent < 0:
        raise UserError(f"pow: an integer tensor to the negative integer power {exponent} (NumPy refuses it); "
                        "convert the tensor to float first, or use a float exponent.")
    return PowOp(exponent)(x)


def exp(x: Any) -> Tensor:
    """Element-wise exponential. Gradient: gy · exp(x) (from the saved output)."""
    return ExpOp()(x)


def log(x: Any) -> Tensor:
    """Element-wise natural logarithm. Gradient: gy / x. For log-probabilities use `log_softmax`."""
    return LogOp()(x)


# ---------------------------------------------------------------- reductions
class SumOp(Op):
    def __init__(self, axis: Axis = None, keepdims: bool = False) -> None:
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x: Any) -> Any:
        self.shape = x.shape
        self.axes = _axes(self.axis, x.ndim, "sum")  # sorted, non-negative
        return x.sum(axis=None if self.axis is None else self.axes, keepdims=self.keepdims)

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        kept = tuple(1 if i in self.axes else n for i, n in enumerate(self.shape))
        return xp.broadcast_to(gy.reshape(kept), self.shape).copy()


class MeanOp(Op):
    def __init__(self, axis: Axis = None, keepdims: bool = False) -> None:
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x: Any) -> Any:
        self.shape = x.shape
        self.axes = _axes(self.axis, x.ndim, "mean")
        self.count = int(np.prod([x.shape[a] for a in self.axes]))
        total = x.sum(axis=None if self.axis is None else self.axes, keepdims=self.keepdims)
        return total / self.count  # true division: an int tensor's mean is float64, as in NumPy

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        kept = tuple(1 if i in self.axes else n for i, n in enumerate(self.shape))
        return xp.broadcast_to(gy.reshape(kept) / self.count, self.shape).copy()


def sum(x: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Sum over `axis` (all axes by default; an int, negative ints count from the end, or a tuple).
    Gradient: gy broadcast back to x's shape."""
    return SumOp(axis, bool(keepdims))(x)


def mean(x: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Mean over `axis` (all axes by default). Gradient: gy / count, broadcast back."""
    return MeanOp(axis, bool(keepdims))(x)


# ---------------------------------------------------------------- shape ops
class ReshapeOp(Op):
    def __init__(self, shape: Sequence[int]) -> None:
        self.shape = tuple(shape)

    def forward(self, x: Any) -> Any:
        self.in_shape = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise UserError(f"reshape: cannot reshape {x.shape} ({x.size} elements) to {self.shape}; the "
                            "sizes must multiply to the same count (one -1 may stand for the rest).") from None

    def backward(self, gy: Any) -> Any:
        return gy.reshape(self.in_shape)


class TransposeOp(Op):
    def __init__(self, axes: Sequence[int] | None = None) -> None:
        self.axes = None if axes is None else tuple(axes)

    def forward(self, x: Any) -> Any:
        self.perm = tuple(reversed(range(x.ndim))) if self.axes is None else _permutation(self.axes, x.ndim)
        return x.transpose(self.perm)

    def backward(self, gy: Any) -> Any:
        return gy.transpose(tuple(np.argsort(self.perm)))  # the inverse permutation


def _permutation(axes: Sequence[int], ndim: int) -> tuple[int, ...]:
    """`axes` with negative entries counted from the end; refuses anything but a permutation."""
    try:
        perm = normalize_axis_tuple(tuple(axes), ndim)
    except (TypeError, ValueError):
        perm = ()
    if len(perm) != ndim:
        raise UserError(f"transpose: axes={tuple(axes)!r} is not a permutation of the {ndim} axes; give each "
                        f"of 0..{ndim - 1} (or its negative) once, or None to reverse them.")
    return perm


class BroadcastToOp(Op):
    def __init__(self, shape: Sequence[int]) -> None:
        self.shape = tuple(shape)

    def forward(self, x: Any) -> Any:
        self.in_shape = x.shape
        try:
            return get_array_module(x).broadcast_to(x, self.shape)
        except ValueError:
            raise UserError(f"broadcast_to: shape {x.shape} cannot be broadcast to {self.shape} (NumPy's rule: "
                            "aligned from the right, each size equal or 1 in the input).") from None

    def backward(self, gy: Any) -> Any:
        return _sum_to(gy, self.in_shape)


class SumToOp(Op):
    def __init__(self, shape: Sequence[int]) -> None:
        self.shape = tuple(shape)

    def forward(self, x: Any) -> Any:
        self.in_shape = x.shape
        try:
            fits = np.broadcast_shapes(self.shape, x.shape) == x.shape
        except ValueError:
            fits = False
        if not fits:
            raise UserError(f"sum_to: {x.shape} cannot be summed to {self.shape}; the target must broadcast "
                            f"to {x.shape} (the adjoint of broadcast_to).")
        return _sum_to(x, self.shape)

    def backward(self, gy: Any) -> Any:
        return get_array_module(gy).broadcast_to(gy, self.in_shape).copy()


def reshape(x: Any, shape: Shape) -> Tensor:
    """Reshape without copying data (`shape` an int or a sequence of ints, one may be -1).
    Gradient: gy reshaped back."""
    return ReshapeOp(_as_shape(shape, "reshape"))(x)


def transpose(x: Any, axes: Sequence[int] | None = None) -> Tensor:
    """Permute axes (reverse them when `axes` is None). Gradient: gy under the inverse permutation."""
    return TransposeOp(axes)(x)


def broadcast_to(x: Any, shape: Shape) -> Tensor:
    """Broadcast `x` to `shape`. Adjoint of `sum_to`: gradient is gy summed back to x's shape."""
    return BroadcastToOp(_as_shape(shape, "broadcast_to"))(x)


def sum_to(x: Any, shape: Shape) -> Tensor:
    """Sum `x` down to the broadcast-compatible `shape`. Adjoint of `broadcast_to`."""
    return SumToOp(_as_shape(shape, "sum_to"))(x)


# ---------------------------------------------------------------- indexing
def _is_basic_index(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items)


class GetItemOp(Op):
    def __init__(self, index: Any) -> None:
        self.index = index

    def forward(self, x: Any) -> Any:
        self.in_shape = x.shape
        return x[self.index]

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        gx = xp.zeros(self.in_shape, dtype=gy.dtype)
        if _is_basic_index(self.index):
            gx[self.index] = gy  # basic slicing never repeats an element
        else:
            xp.add.at(gx, self.index, gy)  # fancy indexing may pick an element twice: scatter-add
        return gx


def getitem(x: Any, index: Any) -> Tensor:
    """``x[index]`` (basic or fancy indexing). Gradient: gy scattered back, repeated picks summed."""
    return GetItemOp(index)(x)


# ---------------------------------------------------------------- matmul
# --8<-- [start:matmul_op]
class MatmulOp(Op):
    def forward(self, a: Any, b: Any) -> Any:
        if a.ndim < 2 or b.ndim < 2:
            raise UserError(f"matmul needs arrays of at least 2 dimensions, got "
                            f"shapes {a.shape} and {b.shape}; reshape vectors to "
                            "(n, 1) or (1, n).")
        if a.shape[-1] != b.shape[-2]:
            raise UserError(f"matmul: shapes {a.shape} and {b.shape} do not fit: "
                            f"the last axis of a ({a.shape[-1]}) must equal the "
                            f"second-to-last of b ({b.shape[-2]}).")
        self.a, self.b = a, b
        try:
            return a @ b            # batch axes (all but the last two) broadcast
        except ValueError:
            raise UserError(f"matmul: the batch axes of {a.shape} and {b.shape} do "
                            "not broadcast.") from None

    def backward(self, gy: Any) -> tuple[Any, Any]:
        ga = gy @ self.b.swapaxes(-1, -2)   # gy bᵀ, for each matrix of the stack
        gb = self.a.swapaxes(-1, -2) @ gy   # aᵀ gy
        return _sum_to(ga, self.a.shape), _sum_to(gb, self.b.shape)
# --8<-- [end:matmul_op]


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product ``a @ b`` with batch broadcasting (both at least 2-D).

    Gradient: ``ga = gy @ bᵀ``, ``gb = aᵀ @ gy``, each summed over broadcast batch axes.
    """
    return MatmulOp()(a, b)


# ---------------------------------------------------------------- gradient-check cases
def _pos(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.uniform(0.5, 2.0, shape)


_n = np.random.Generator.standard_normal
register_gradcheck("add/broadcast", lambda a, b: add(a, b), lambda r: [_n(r, (3, 4)), _n(r, (4,))], [AddOp])
register_gradcheck("sub/broadcast", lambda a, b: sub(a, b), lambda r: [_n(r, (2, 1, 3)), _n(r, (4, 1))], [SubOp])
register_gradcheck("mul/broadcast", lambda a, b: mul(a, b), lambda r: [_n(r, (2, 3, 4)), _n(r, (3, 1))], [MulOp])
register_gradcheck("div/broadcast", lambda a, b: div(a, b), lambda r: [_n(r, (3, 4)), _pos(r, 3, 1)], [DivOp])
register_gradcheck("neg", lambda a: neg(a), lambda r: [_n(r, (3, 2))], [NegOp])
register_gradcheck("pow/cube", lambda a: pow(a, 3.0), lambda r: [_n(r, (3, 4))], [PowOp])
register_gradcheck("pow/sqrt", lambda a: pow(a, 0.5), lambda r: [_pos(r, 5)], [PowOp])
register_gradcheck("exp", lambda a: exp(a), lambda r: [_n(r, (3, 4))], [ExpOp])
register_gradcheck("log", lambda a: log(a), lambda r: [_pos(r, 3, 4)], [LogOp])
register_gradcheck("sum/all", lambda a: sum(a), lambda r: [_n(r, (3, 4))], [SumOp])
register_gradcheck("sum/axis_keepdims", lambda a: sum(a, axis=(0, 2), keepdims=True),
                   lambda r: [_n(r, (2, 3, 4))], [SumOp])
register_gradcheck("sum/negative_axis", lambda a: sum(a, axis=-1), lambda r: [_n(r, (2, 3, 4))], [SumOp])
register_gradcheck("mean/axis", lambda a: mean(a, axis=1), lambda r: [_n(r, (2, 3, 4))], [MeanOp])
register_gradcheck("reshape", lambda a: reshape(a, (4, 6)), lambda r: [_n(r, (2, 3, 4))], [ReshapeOp])
register_gradcheck("transpose/axes", lambda a: transpose(a, (2, 0, 1)), lambda r: [_n(r, (2, 3, 4))], [TransposeOp])
register_gradcheck("transpose/reverse", lambda a: transpose(a), lambda r: [_n(r, (2, 3, 4))], [TransposeOp])
register_gradcheck("broadcast_to", lambda a: broadcast_to(a, (2, 3, 4)), lambda r: [_n(r, (3, 1))], [BroadcastToOp])
register_gradcheck("sum_to", lambda a: sum_to(a, (3, 1)), lambda r: [_n(r, (2, 3, 4))], [SumToOp])
register_gradcheck("getitem/slice", lambda a: getitem(a, (slice(1, None), slice(None, None, 2))),
                   lambda r: [_n(r, (4, 5))], [GetItemOp])
register_gradcheck("getitem/fancy_repeated", lambda a: getitem(a, np.array([0, 2, 2, 1])),
                   lambda r: [_n(r, (3, 4))], [GetItemOp])
register_gradcheck("matmul/2d", lambda a, b: matmul(a, b), lambda r: [_n(r, (3, 4)), _n(r, (4, 5))], [MatmulOp])
register_gradcheck("matmul/batched_broadcast", lambda a, b: matmul(a, b),
                   lambda r: [_n(r, (2, 3, 4)), _n(r, (4, 2))], [MatmulOp])
register_gradcheck("composite/softmax_cross_entropy_from_primitives",
                   lambda z, y: neg(mean(sum(mul(y, sub(z, log(sum(exp(z), axis=1, keepdims=True)))), axis=1))),
                   lambda r: [_n(r, (5, 3)), np.eye(3)[r.integers(0, 3, 5)]],
                   [ExpOp, LogOp, SumOp, SubOp, MulOp, MeanOp, NegOp], wrt=[0])
