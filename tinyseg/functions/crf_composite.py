r"""`mean_field_crf` built from primitive ops: the test oracle of the hand-written CRF op   [ZX18 Eq. 2-5].

Every step is an ordinary differentiable op (reshape, matmul, exp, softmax from primitives), so
its gradient comes from autodiff; the kernels are brute-force dense (N, P, P) matrices, so it is
only meant for small images. tests/test_crf.py compares `mean_field_crf` with it, forward and
backward.

See: lessons/03_crf.py, tests/test_crf.py.
"""
from __future__ import annotations

from typing import Any

from ..autodiff import Tensor, as_tensor
from ..backend import get_array_module
from . import arithmetic as A
from .crf import _check
from .crf_kernels import gaussian_factor


def _softmax_last(z: Tensor) -> Tensor:
    """Softmax over the last axis from primitives; the shift is a constant (softmax ignores it)."""
    e = A.exp(A.sub(z, z.data.max(axis=-1, keepdims=True)))
    return A.div(e, A.sum(e, axis=-1, keepdims=True))


def _dense_kernels(image: Tensor, graph: str, include_self: bool) -> list[Any]:
    """Brute-force (N, P, P) / (P, P) kernels from primitives; the image ones stay differentiable."""
    xp = get_array_module(image.data)
    N, _, H, W = image.shape
    P, dtype = H * W, image.dtype
    eye = xp.eye(P, dtype=dtype)
    keep = eye if include_self else 0 * eye
    diff = A.sub(A.reshape(image, (N, P, 1)), A.reshape(image, (N, 1, P)))  # (N, P, P)
    sq = A.mul(diff, diff)
    if graph == "dense":
        kint = A.mul(A.exp(A.mul(sq, xp.asarray(-0.5, dtype))), (1 - eye + keep) / max(P - 1, 1))  # P = 1: no pair
        kpos = 0.5 * xp.kron(gaussian_factor(H, xp, dtype), gaussian_factor(W, xp, dtype)) * (1 - eye + keep)
        return [kint, kpos]
    y, x = xp.divmod(xp.arange(P), W)
    adj = ((xp.abs(y[:, None] - y[None, :]) + xp.abs(x[:, None] - x[None, :])) == 1).astype(dtype)  # (P, P)
    return [A.add(A.mul(A.exp(A.neg(sq)), adj), keep), adj + keep]


def mean_field_crf_composite(unary: Any, image: Any, weights: Any, n_iter: int = 5, graph: str = "dense",
                             include_self: bool = False, unary_domain: str = "logits",
                             authors_self_message: bool = False, compatibility: str = "attractive") -> Tensor:
    r"""`mean_field_crf` built from primitive ops with brute-force dense kernels (the test oracle).

    Uses the full $Q$ (no $q$ trick), (N, P, P) kernels (so small images only) and, with
    ``compatibility="potts"``, the literal Potts update $Z = U - \big(\sum_m w_mK^{(m)}Q\big)\mu^\top$,
    $\mu=\mathbf 1\mathbf 1^\top-I$, whose logits differ from the attractive form by a per-pixel
    constant.

    Args:
        unary: as in `mean_field_crf`.
        image: as in `mean_field_crf`.
        weights: as in `mean_field_crf`.
        n_iter: as in `mean_field_crf`.
        graph: as in `mean_field_crf`.
        include_self: as in `mean_field_crf`.
        unary_domain: as in `mean_field_crf`.
        authors_self_message: as in `mean_field_crf`.
        compatibility: ``"attractive"`` ($Z = U + B$) or ``"potts"`` ($Z = U - B\mu^\top$).

    Returns:
        $Z_T$, (N, 2, H, W). Gradient: by autodiff through the primitives.

    See: lessons/03_crf.py, tests/test_crf.py.
    """
    unary, image, weights = as_tensor(unary), as_tensor(image), as_tensor(weights)
    _check(unary, image, weights, n_iter, graph, unary_domain)
    xp = get_array_module(unary.data)
    N, _, H, W = unary.shape
    U = A.transpose(A.reshape(unary, (N, 2, H * W)), (0, 2, 1))  # (N, P, 2)
    if unary_domain == "prob":
        U = _softmax_last(U)
    ks = _dense_kernels(image, graph, include_self)
    Z, Q = U, _softmax_last(U)
    for _ in range(n_iter):
        B = 0  # Σ_m: Op.__call__ puts a Python scalar on the device of the arrays beside it
        for m, K in enumerate(ks):
            msg = A.mul(Q, A.matmul(K, xp.ones((N, H * W, 1), unary.dtype))) if authors_self_message \
                else A.matmul(K, Q)  # (N, P, 2)
            term = A.mul(msg, A.getitem(weights, m))  # w_m scalar, or (2,) over labels
            B = A.add(B, term)
        if compatibility == "potts":
            Z = A.sub(U, A.matmul(B, xp.ones((2, 2), unary.dtype) - xp.eye(2, dtype=unary.dtype)))  # μ symmetric
        else:
            Z = A.add(U, B)
        Q = _softmax_last(Z)
    return A.reshape(A.transpose(Z, (0, 2, 1)), (N, 2, H, W))  # (N, P, 2) -> (N, 2, H, W)
