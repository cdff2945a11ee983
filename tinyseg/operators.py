"""Python's operators on a `Tensor`: ``a + b``, ``a @ b``, ``a[i]``, ``a.sum()``, ...

Each one calls the differentiable function of `tinyseg.functions.arithmetic` that records it in
the graph (``a + b`` is ``add(a, b)``, ``a.T`` is ``transpose(a, None)``), so the engine in
`tinyseg.autodiff` never has to know about them. `Tensor` inherits them from `TensorOperators`.

See: tinyseg/functions/arithmetic.py, tests/test_autodiff.py.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import UserError

if TYPE_CHECKING:
    from .autodiff import Tensor


def _F() -> Any:
    from .functions import arithmetic  # noqa: PLC0415  (arithmetic imports tinyseg.autodiff, which imports this)

    return arithmetic


def _refuse_dtype_out(fn: str, dtype: Any, out: Any) -> None:
    if dtype is not None or out is not None:
        raise UserError(f"Tensor.{fn}: dtype= and out= are not supported (a differentiable result is a new "
                        "tensor); convert the data first, e.g. Tensor(t.data.astype(np.float64)).")


class TensorOperators:
    """The operator methods of `Tensor` (a mixin: it holds no data of its own)."""

    def __add__(self, other: Any) -> Tensor:
        return _F().add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return _F().add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return _F().sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return _F().sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return _F().mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return _F().mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return _F().div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return _F().div(other, self)

    def __neg__(self) -> Tensor:
        return _F().neg(self)

    def __pow__(self, exponent: float) -> Tensor:
        return _F().pow(self, exponent)

    def __matmul__(self, other: Any) -> Tensor:
        return _F().matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return _F().matmul(other, self)

    def __getitem__(self, index: Any) -> Tensor:
        return _F().getitem(self, index)

    def reshape(self, *shape: Any) -> Tensor:
        return _F().reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)

    def transpose(self, *axes: Any) -> Tensor:
        return _F().transpose(self, (axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes) or None)

    @property
    def T(self) -> Tensor:
        return _F().transpose(self, None)

    # `dtype` and `out` exist so that np.sum(t) and np.mean(t), which call these methods, work.
    def sum(self, axis: Any = None, keepdims: bool = False, dtype: Any = None, out: Any = None) -> Tensor:
        _refuse_dtype_out("sum", dtype, out)
        return _F().sum(self, axis, keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False, dtype: Any = None, out: Any = None) -> Tensor:
        _refuse_dtype_out("mean", dtype, out)
        return _F().mean(self, axis, keepdims)

    def exp(self) -> Tensor:
        return _F().exp(self)

    def log(self) -> Tensor:
        return _F().log(self)
