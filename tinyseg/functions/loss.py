r"""Losses: the pixel-wise negative log-likelihood of Eq. 1, its fused softmax form, the L2 penalty.

$$
L_{FCN} = -\frac{1}{N N_i} \sum_{n=1}^{N} \sum_{i=1}^{N_i} \log P(y_{n,i} \mid I_n; \theta)
$$

(the paper's Eq. 1 [ZX18 Eq. 1], with $N_i = 1600$ pixels per 40×40 image).

`nll_loss(log_softmax(z), y)` is the composite; `cross_entropy(z, y)` computes the same number in
one op whose backward is exactly ``(softmax(z) − onehot(y)) / count`` — no log-probability
gradient is materialised. `l2_penalty` is the ``λ/2 ‖w‖²`` term of the total loss [ZX18 Eq. 8].

See: lessons/02_fcn.py, tests/functions/test_loss.py.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..autodiff import Op, Tensor
from ..backend import get_array_module
from ..gradcheck import register_gradcheck
from .activation import _log_softmax, _softmax


def _check_target(x: Any, target: Any, op: str, values: bool = True) -> None:
    """Shapes (N, C, *S) and (N, *S), an integer target, and (if `values`) every label in [0, C)."""
    if x.ndim < 2:
        raise ValueError(f"{op}: the input must be (N, C, ...) with the class axis at 1, got shape {tuple(x.shape)}.")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: the input must be floating point, got {x.dtype}.")
    expected = (x.shape[0],) + tuple(x.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(f"{op}: target has shape {tuple(target.shape)} but the input {tuple(x.shape)} needs "
                         f"{expected} (the input without its class axis 1).")
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class labels, got dtype {target.dtype}; "
                        "use target.astype('int64').")
    C = x.shape[1]
    if not values:  # the caller validated the labels once (training does, to avoid a GPU sync per step)
        return
    bad = (target < 0) | (target >= C)
    if bool(bad.any()):  # one device→host transfer on the GPU
        value = int(target[bad][0])
        raise ValueError(f"{op}: target contains label {value}, outside [0, {C}) for {C} classes "
                         "(labels must be 0 = background, 1 = mass for the paper's two classes).")


def _onehot(target: Any, C: int, dtype: Any) -> Any:
    """(N, *S) labels -> (N, C, *S) one-hot in `dtype`."""
    xp = get_array_module(target)
    classes = xp.arange(C).reshape((1, C) + (1,) * (target.ndim - 1))  # (1, C, 1, ...)
    return (target[:, None] == classes).astype(dtype)  # (N, C, *S)


class NllLossOp(Op):
    def forward(self, logp: Any, target: Any) -> Any:
        _check_target(logp, target, "nll_loss")
        xp = get_array_module(logp)
        self.target, self.C, self.count = target, logp.shape[1], target.size
        picked = xp.take_along_axis(logp, target[:, None], axis=1)  # (N, 1, *S)
        return xp.asarray(-picked.sum() / self.count, dtype=logp.dtype)

    def backward(self, gy: Any) -> tuple[Any, None]:
        return _onehot(self.target, self.C, gy.dtype) * (-gy / self.count), None


# --8<-- [start:cross_entropy]
class CrossEntropyOp(Op):
    def __init__(self, check_labels: bool = True) -> None:
        self.check_labels = check_labels

    def forward(self, logits: Any, target: Any) -> Any:
        _check_target(logits, target, "cross_entropy", values=self.check_labels)
        xp = get_array_module(logits)
        self.logits, self.target, self.count = logits, target, target.size
        # the value equals nll_loss(log_softmax(logits))
        logp = _log_softmax(logits, axis=1)  # (N, C, *S)
        picked = xp.take_along_axis(logp, target[:, None], axis=1)  # (N, 1, *S)
        return xp.asarray(-picked.sum() / self.count, dtype=logits.dtype)

    def backward(self, gy: Any) -> tuple[Any, None]:
        p = _softmax(self.logits, axis=1)  # exactly softmax(logits)
        # (softmax − onehot) / count, times the loss's upstream gradient gy (1 when
        # backward starts at the loss)
        return (p - _onehot(self.target, p.shape[1], p.dtype)) / self.count * gy, None
# --8<-- [end:cross_entropy]


class L2PenaltyOp(Op):
    def __init__(self, lam: float) -> None:
        self.lam = lam

    def forward(self, *params: Any) -> Any:
        xp = get_array_module(*params)
        self.params = params
        total = sum(xp.vdot(p.ravel(), p.ravel()) for p in params)  # Σ ‖w‖², one BLAS dot per array
        # NumPy's dtype for λ/2 · Σ w² (λ a Python float): float32 parameters stay float32, ints give float64
        return xp.asarray(self.lam / 2 * total, dtype=np.result_type(*(p.dtype for p in params), self.lam))

    def backward(self, gy: Any) -> tuple[Any, ...]:
        return tuple(p * (self.lam * gy) for p in self.params)


def nll_loss(logp: Any, target: Any) -> Tensor:
    r"""Mean negative log-likelihood of the target class over all pixels.  [ZX18 Eq. 1]

    $$
    L = -\frac{1}{N \cdot P} \sum_{n} \sum_{i} \mathrm{logp}[n, y_{n,i}, i]
    $$

    Args:
        logp: log-probabilities ``(N, C, H, W)`` (or ``(N, C, *S)``), e.g. ``log_softmax(z)``.
        target: integer labels ``(N, H, W)`` in ``[0, C)``; checked, with an error naming a bad label.
    Returns:
        A 0-d tensor (the mean over the ``N·H·W`` pixels), in logp's dtype.

    Gradient: ``g logp = −gy · onehot(target) / (N·H·W)``; none for target.

    Derivation: docs/derivations/conv.md#softmax-cross-entropy-eq-1.
    See: lessons/02_fcn.py, tests/functions/test_loss.py::test_cross_entropy_equals_nll_loss_of_log_softmax.
    """
    return NllLossOp()(logp, target)


def cross_entropy(logits: Any, target: Any, check_labels: bool = True) -> Tensor:
    r"""Fused ``nll_loss(log_softmax(logits, axis=1), target)``: the loss of Eq. 1 from logits.  [ZX18 Eq. 1]

    $$
    L = \frac{1}{N P} \sum_{n,i} \Big( \log \sum_k e^{z_{n,k,i}} - z_{n,y_{n,i},i} \Big),
    \qquad \frac{\partial L}{\partial z} = \frac{\mathrm{softmax}(z) - \mathrm{onehot}(y)}{N P}
    $$

    Uses the log-sum-exp shift: finite for logits as large as ±1e4.

    Args:
        logits: ``(N, C, H, W)`` (or ``(N, C, *S)``) unnormalised scores.
        target: integer labels ``(N, H, W)`` in ``[0, C)``; checked.
        check_labels: check every label value (one device→host transfer on the GPU); training
            turns it off after validating the labels once.
    Returns:
        A 0-d tensor, the mean over all pixels, in the logits' dtype.

    Gradient: ``g logits = gy · (softmax(logits) − onehot(target)) / count``, exactly; none for target.

    Derivation: docs/derivations/conv.md#softmax-cross-entropy-eq-1.
    See: lessons/02_fcn.py, tests/functions/test_loss.py::test_cross_entropy_backward_is_exactly_softmax_minus_onehot_over_count.
    """
    return CrossEntropyOp(check_labels)(logits, target)


def l2_penalty(params: Sequence[Any], lam: float) -> Tensor:
    r"""The weight penalty ``λ/2 · Σ‖w‖²`` of the total loss.  [ZX18 Eq. 8]

    $$
    R(w) = \frac{\lambda}{2} \sum_{p} \lVert w_p \rVert_2^2
    $$

    Args:
        params: a non-empty sequence of tensors (e.g. the CRF weights, as ``--l2-scope crf`` trains).
        lam: λ ≥ 0.
    Returns:
        A 0-d tensor in NumPy's dtype for λ/2 · Σ w² (float32 for float32 parameters).

    Gradient: ``g w_p = gy · λ · w_p``.

    Derivation: the derivative of a square, λ/2·w² → λw (docs/lessons/01_autodiff.md).
    See: lessons/03_crf.py, tests/functions/test_loss.py::test_l2_penalty_value_and_gradient.
    """
    params = tuple(params)
    if not params:
        raise ValueError("l2_penalty: no parameters given; pass at least one tensor (or skip the penalty).")
    lam = float(lam)
    if not np.isfinite(lam) or lam < 0:
        raise ValueError(f"l2_penalty: lam must be finite and ≥ 0, got {lam}.")
    return L2PenaltyOp(lam)(*params)


# ---------------------------------------------------------------- gradient-check cases
_n = np.random.Generator.standard_normal
register_gradcheck("nll_loss/nchw", lambda logp, t: nll_loss(logp, t),
                   lambda r: [_n(r, (2, 3, 4, 5)), r.integers(0, 3, (2, 4, 5))], [NllLossOp])
register_gradcheck("cross_entropy/two_classes_nchw", lambda z, t: cross_entropy(z, t),
                   lambda r: [2 * _n(r, (3, 2, 5, 4)), r.integers(0, 2, (3, 5, 4))], [CrossEntropyOp])
register_gradcheck("cross_entropy/flat_four_classes", lambda z, t: cross_entropy(z, t),
                   lambda r: [_n(r, (7, 4)), r.integers(0, 4, (7,))], [CrossEntropyOp])
register_gradcheck("l2_penalty/two_params", lambda a, b: l2_penalty([a, b], 0.3),
                   lambda r: [_n(r, (3, 4)), _n(r, (5,))], [L2PenaltyOp])
