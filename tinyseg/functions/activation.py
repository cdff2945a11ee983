r"""Activations: tanh (the FCN's hidden layers) and softmax / log_softmax (its output).  [ZX18 Eq. 1]

`log_softmax` uses the log-sum-exp shift, $\log\sum_k e^{x_k} = m + \log\sum_k e^{x_k - m}$
with $m = \max_k x_k$, so logits of any magnitude (the tests use ±1e4) give finite
results. Each backward uses the op's saved OUTPUT, not its input.

See: lessons/02_fcn.py, tests/functions/test_activation.py.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autodiff import Op, Tensor
from numpy.lib.array_utils import normalize_axis_index

from ..backend import get_array_module
from ..errors import UserError
from ..gradcheck import register_gradcheck


def _floating(x: Any) -> Any:
    """`x` as floats the way NumPy's ufuncs promote it (``np.exp`` of int8 is float16, of int64
    float64); floating arrays unchanged."""
    return x if x.dtype.kind in "fc" else x.astype(np.result_type(x.dtype, np.float16))


def _class_axis(axis: int, ndim: int, fn: str) -> int:
    try:
        return normalize_axis_index(axis, ndim)
    except (TypeError, ValueError):
        raise UserError(f"{fn}: axis={axis!r} is not valid for a {ndim}-D tensor; use one int in "
                        f"[-{ndim}, {ndim - 1}].") from None


def _softmax(x: Any, axis: int) -> Any:
    """Raw-array softmax with the max shift (`softmax`, `cross_entropy`'s backward, the CRF's "prob" unary)."""
    xp = get_array_module(x)
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def _log_softmax(x: Any, axis: int) -> Any:
    """Raw-array log_softmax by log-sum-exp (`log_softmax`, and `cross_entropy`)."""
    xp = get_array_module(x)
    z = x - x.max(axis=axis, keepdims=True)  # ≤ 0, max 0: exp cannot overflow, the sum is ≥ 1
    z -= xp.log(xp.exp(z).sum(axis=axis, keepdims=True))
    return z


# --8<-- [start:tanh_op]
class TanhOp(Op):
    def forward(self, x: Any) -> Any:
        self.y = get_array_module(x).tanh(x)
        return self.y

    def backward(self, gy: Any) -> Any:
        return gy * (1 - self.y * self.y)  # d tanh = 1 − tanh²: from the saved output
# --8<-- [end:tanh_op]


class SoftmaxOp(Op):
    def __init__(self, axis: int = 1) -> None:
        self.axis = axis

    def forward(self, x: Any) -> Any:
        self.y = _softmax(_floating(x), _class_axis(self.axis, x.ndim, "softmax"))
        return self.y

    def backward(self, gy: Any) -> Any:
        gyy = gy * self.y
        return gyy - self.y * gyy.sum(axis=self.axis, keepdims=True)  # y ⊙ (gy − ⟨gy, y⟩)


class LogSoftmaxOp(Op):
    def __init__(self, axis: int = 1) -> None:
        self.axis = axis

    def forward(self, x: Any) -> Any:
        self.y = _log_softmax(_floating(x), _class_axis(self.axis, x.ndim, "log_softmax"))
        return self.y

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        return gy - xp.exp(self.y) * gy.sum(axis=self.axis, keepdims=True)  # gy − softmax ⊙ Σ gy


def tanh(x: Any) -> Tensor:
    r"""Hyperbolic tangent, the FCN's hidden activation.  [ZX18 Table 1]

    $$
    y = \tanh x
    $$

    Args:
        x: any shape.
    Returns:
        Same shape and dtype.

    Gradient: ``gx = gy · (1 − y²)``, from the saved output.

    Derivation: docs/derivations/conv.md#tanh.
    See: lessons/02_fcn.py, tests/functions/test_activation.py::test_tanh_forward_and_backward_match_numpy.
    """
    return TanhOp()(x)


def softmax(x: Any, axis: int = 1) -> Tensor:
    r"""Softmax over `axis` (the class axis of NCHW logits by default).  [ZX18 Eq. 1]

    $$
    y_k = \frac{e^{x_k - m}}{\sum_j e^{x_j - m}}, \quad m = \max_j x_j
    $$

    Args:
        x: e.g. logits ``(N, C, H, W)``.
        axis: the class axis.
    Returns:
        Probabilities, same shape, summing to 1 over `axis`.

    Gradient: ``gx = y ⊙ (gy − Σ_axis gy ⊙ y)``.

    Derivation: docs/derivations/conv.md#softmax-cross-entropy-eq-1.
    See: lessons/02_fcn.py, tests/functions/test_activation.py::test_softmax_backward_matches_jacobian.
    """
    return SoftmaxOp(axis)(x)


def log_softmax(x: Any, axis: int = 1) -> Tensor:
    r"""Log-probabilities by log-sum-exp; finite for logits as large as ±1e4.  [ZX18 Eq. 1]

    $$
    y_k = x_k - m - \log \sum_j e^{x_j - m}, \quad m = \max_j x_j
    $$

    Args:
        x: e.g. logits ``(N, C, H, W)``.
        axis: the class axis.
    Returns:
        ``log softmax(x)``, same shape.

    Gradient: ``gx = gy − softmax(x) ⊙ Σ_axis gy`` (softmax = exp of the saved output).

    Derivation: docs/derivations/conv.md#softmax-cross-entropy-eq-1.
    See: lessons/02_fcn.py, tests/functions/test_activation.py::test_log_softmax_is_finite_for_huge_logits.
    """
    return LogSoftmaxOp(axis)(x)


# ---------------------------------------------------------------- gradient-check cases
_n = np.random.Generator.standard_normal
register_gradcheck("tanh", lambda x: tanh(x), lambda r: [_n(r, (3, 4, 5))], [TanhOp])
register_gradcheck("softmax/class_axis_nchw", lambda x: softmax(x), lambda r: [_n(r, (2, 3, 4, 5))], [SoftmaxOp])
register_gradcheck("softmax/last_axis", lambda x: softmax(x, axis=-1), lambda r: [2 * _n(r, (4, 6))], [SoftmaxOp])
register_gradcheck("log_softmax/class_axis_nchw", lambda x: log_softmax(x), lambda r: [_n(r, (2, 2, 4, 5))],
                   [LogSoftmaxOp])
register_gradcheck("log_softmax/axis0_large_logits", lambda x: log_softmax(x, axis=0),
                   lambda r: [50 + 3 * _n(r, (5, 4))], [LogSoftmaxOp])
