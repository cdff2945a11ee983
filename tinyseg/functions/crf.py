r"""The mean-field CRF unrolled as an RNN, with a hand-written backward   [ZX18 Eq. 2-5].

`mean_field_crf` is one fused op (`MeanFieldCRFOp`) that runs T mean-field iterations and
backpropagates through all of them to the unaries, the weights and the image (through the
image-dependent kernel, which adversarial training needs). `mean_field_crf_composite` computes
the same thing from primitive ops with dense (N, P, P) kernels; it is the test oracle (and only
meant for small images).

Two labels make every step cheap (CRF note §3.2, §5): with $q = Q_{:,1}$,
$KQ_{:,0} = K\mathbf 1 - Kq$, so one kernel application per kernel and iteration suffices, and
$Q = \mathrm{softmax}(Z)$ is $q = \sigma(Z_1 - Z_0)$.

See: lessons/03_crf.py, tests/test_crf.py.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autodiff import Op, Tensor, as_tensor, is_grad_enabled
from ..backend import get_array_module, is_cupy_array
from ..gradcheck import register_gradcheck
from . import arithmetic as A
from . import crf_fused
from .crf_kernels import (GRAPHS, crf_contraction_bound, crf_default_weights, crf_kernels,  # noqa: F401  (re-exported)
                          crf_spectral_radius, gaussian_factor)

UNARY_DOMAINS = ("logits", "prob")
_CHUNK_BYTES = 16 * 2**20  # dense kernels built and iterated per chunk of this size (stays in L3)


def _sigmoid(d: Any) -> tuple[Any, Any]:
    """σ(d) and σ'(d) = σ(1-σ), without overflow for any |d|."""
    xp = get_array_module(d)
    e = xp.exp(-xp.abs(d))
    r = 1 / (1 + e)
    return xp.where(d >= 0, r, e * r), e * r * r


class MeanFieldCRFOp(Op):
    """Fused T-step mean field; saves only the per-iteration q's, messages and the kernels."""

    def __init__(self, n_iter: int, graph: str, include_self: bool, unary_domain: str,
                 authors_self_message: bool, keep_kernels: bool) -> None:
        self.n_iter, self.graph, self.include_self = n_iter, graph, include_self
        self.unary_domain, self.authors = unary_domain, authors_self_message
        self.keep_kernels = keep_kernels

    def forward(self, unary: Any, image: Any, weights: Any) -> Any:
        xp = get_array_module(unary)
        N, _, H, W = unary.shape
        P = H * W
        U = unary.reshape(N, 2, P)  # (N, 2, P)
        if self.unary_domain == "prob":  # the paper's printed update: softmax probabilities as unary
            e = xp.exp(U - U.max(axis=1, keepdims=True))
            U = e / e.sum(axis=1, keepdims=True)
        self.U = U
        w = weights.astype(unary.dtype)
        self.W = w if w.ndim == 2 else xp.repeat(w[:, None], 2, axis=1)  # (2,) -> (2, 2): (kernel, label)
        img = image.astype(unary.dtype)  # (N, 1, H, W)
        self.fused = self.n_iter > 0 and crf_fused.fused_available(unary, self.graph, self.authors)
        if self.fused:  # GPU fast path: one hand-written kernel per iteration (crf_fused.py)
            Z, state = crf_fused.crf_forward(U, img.reshape(N, H, W), self.W, self.n_iter, self.graph,
                                             1.0 if self.include_self else 0.0)
            self.state = state if self.keep_kernels else None
            return Z.reshape(N, 2, H, W)  # (N, 2, P) -> (N, 2, H, W)
        size = N
        if self.graph == "dense" and not is_cupy_array(unary):
            size = max(1, min(N, _CHUNK_BYTES // (P * P * unary.dtype.itemsize)))
        # Dense kernels on the GPU: one (N, P, P) kernel kept for backward (memory is plentiful,
        # launches are not). On the CPU: one reused chunk buffer that stays in cache, and the
        # backward rebuilds each chunk's kernel instead of keeping 297 MB per batch of 29.
        self.rebuild = self.graph == "dense" and not is_cupy_array(unary)
        keep_all = self.keep_kernels and not self.rebuild
        buf = None
        if self.graph == "dense":
            buf = xp.empty((N if keep_all else size, P, P), dtype=unary.dtype)
        self.chunks, Z = [], xp.empty_like(U)
        for n0 in range(0, N, size):
            n1 = min(N, n0 + size)
            out = None if buf is None else buf[n0:n1] if keep_all else buf[: n1 - n0]
            ks = crf_kernels(img[n0:n1], self.graph, self.include_self, out=out)
            Z[n0:n1], state = self._forward_chunk(U[n0:n1], ks)
            if self.keep_kernels:
                self.chunks.append((n0, n1, None if self.rebuild else ks, state))
        if self.keep_kernels and self.rebuild:
            self.img, self.buf = img, buf
        return Z.reshape(N, 2, H, W)  # (N, 2, P) -> (N, 2, H, W)

    # --8<-- [start:forward_chunk]
    def _forward_chunk(self, U: Any, ks: list[Any]) -> tuple[Any, Any]:
        xp, W = get_array_module(U), self.W
        k1 = [k.apply(xp.ones_like(U[:, 0])) for k in ks]  # K·1 per kernel, (n, P)
        z0, z1 = U[:, 0], U[:, 1]
        deltas, msgs = [], []
        for _ in range(self.n_iter):
            delta = z1 - z0
            q, _ = _sigmoid(delta)
            s = [k1m * q if self.authors else k.apply(q) for k, k1m in zip(ks, k1)]  # A_m(:,1) = K_m q
            z0 = U[:, 0] + sum(W[m, 0] * (k1[m] - s[m]) for m in range(2))  # A_m(:,0) = K_m 1 - K_m q
            z1 = U[:, 1] + sum(W[m, 1] * s[m] for m in range(2))
            deltas.append(delta)
            msgs.append(s)
        return xp.stack([z0, z1], axis=1), (k1, deltas, msgs)
    # --8<-- [end:forward_chunk]

    def backward(self, gy: Any) -> tuple[Any, Any, Any]:
        xp = get_array_module(gy)
        N, _, H, W = gy.shape
        need_image = self.inputs[1].requires_grad
        gZ = gy.reshape(N, 2, -1)  # (N, 2, P)
        gU, gW = xp.empty_like(gZ), xp.zeros((2, 2), dtype=gy.dtype)
        gI = xp.zeros((N, H * W), dtype=gy.dtype) if need_image else None
        if self.fused:
            gU, gW, gI = crf_fused.crf_backward(gZ, self.state, need_image)
        for n0, n1, ks, state in [] if self.fused else self.chunks:
            if ks is None:  # rebuilt chunk by chunk in the forward's buffer (CPU dense)
                ks = crf_kernels(self.img[n0:n1], self.graph, self.include_self, out=self.buf[: n1 - n0])
            gU[n0:n1], gWc, gIc = self._backward_chunk(gZ[n0:n1], ks, state, need_image)
            gW += gWc
            if need_image:
                gI[n0:n1] = gIc
        if self.unary_domain == "prob":  # back through U = softmax(unary)
            gU = self.U * (gU - (gU * self.U).sum(axis=1, keepdims=True))
        gw = gW if self.inputs[2].ndim == 2 else gW.sum(axis=1)
        if gI is not None:
            gI = gI.reshape(N, 1, H, W).astype(self.inputs[1].dtype)  # (N, P) -> (N, 1, H, W)
        return gU.reshape(N, 2, H, W), gI, gw.astype(self.inputs[2].dtype)  # (N, 2, P) -> (N, 2, H, W)

    # --8<-- [start:backward_chunk]
    def _backward_chunk(self, gZ: Any, ks: list[Any], state: Any, need_image: bool) -> tuple[Any, Any, Any]:
        xp, W = get_array_module(gZ), self.W
        k1, deltas, msgs = state
        g0, g1 = gZ[:, 0], gZ[:, 1]
        gU0, gU1 = g0.copy(), g1.copy()
        gW = xp.zeros((2, 2), dtype=gZ.dtype)
        gk1 = [xp.zeros_like(g0), xp.zeros_like(g0)]  # dL/d(K_m·1)
        gI = xp.zeros_like(g0) if need_image else None
        for t in reversed(range(self.n_iter)):
            q, dq = _sigmoid(deltas[t])  # q_{t-1} and σ'
            gq = 0
            for m, k in enumerate(ks):
                s = msgs[t][m]
                gW[m, 0] += xp.sum(g0 * (k1[m] - s))
                gW[m, 1] += xp.sum(g1 * s)
                gs = W[m, 1] * g1 - W[m, 0] * g0  # dL/d(K_m q): both labels' messages depend on q
                gk1[m] += W[m, 0] * g0
                if self.authors:  # message q ⊙ (K·1): diagonal in q
                    gq = gq + k1[m] * gs
                    gk1[m] += gs * q
                else:
                    kgs = k.adjoint(gs)
                    gq = gq + kgs
                    if need_image and k.depends_on_image:
                        gI += k.image_vjp(gs, q, ka=kgs, kb=s)
            g1 = dq * gq  # q = σ(z1 - z0)
            g0 = -g1
            gU0 += g0
            gU1 += g1
        if need_image:
            for m, k in enumerate(ks):
                if k.depends_on_image:  # the K·1 term, as the pair (dL/dK1, 1)
                    gI += k.image_vjp(gk1[m], xp.ones_like(g0), kb=k1[m])
        return xp.stack([gU0, gU1], axis=1), gW, gI
    # --8<-- [end:backward_chunk]


def _check(unary: Tensor, image: Tensor, weights: Tensor, n_iter: int, graph: str, unary_domain: str) -> None:
    if unary.ndim != 4 or unary.shape[1] != 2:
        raise ValueError(f"mean_field_crf: unary must have shape (N, 2, H, W), got {unary.shape}.")
    N, _, H, W = unary.shape
    if image.shape != (N, 1, H, W):
        raise ValueError(f"mean_field_crf: image must have shape {(N, 1, H, W)} to match the unary, "
                         f"got {image.shape}.")
    if weights.shape not in ((2,), (2, 2)):
        raise ValueError(f"mean_field_crf: weights must have shape (2,) or (2, 2), got {weights.shape}.")
    if graph not in GRAPHS:
        raise ValueError(f"mean_field_crf: unknown graph {graph!r}; use one of {GRAPHS}.")
    if unary_domain not in UNARY_DOMAINS:
        raise ValueError(f"mean_field_crf: unknown unary_domain {unary_domain!r}; use one of {UNARY_DOMAINS}.")
    if int(n_iter) != n_iter or n_iter < 0:
        raise ValueError(f"mean_field_crf: n_iter must be a non-negative integer, got {n_iter!r}.")


def mean_field_crf(unary: Any, image: Any, weights: Any, n_iter: int = 5, graph: str = "dense",
                   include_self: bool = False, unary_domain: str = "logits",
                   authors_self_message: bool = False) -> Tensor:
    r"""T iterations of mean-field inference in the two-label CRF, as one differentiable op   [ZX18 Eq. 2-5].

    Energy $E(\mathbf y)=-\sum_i U_i(y_i)+\sum_{i<j}[y_i\ne y_j]\sum_m w^{(m)}k^{(m)}_{ij}$ (Potts).
    With $Q^{(0)}=\mathrm{softmax}(U)$, each iteration computes

    $$Z_t = U + \sum_m w_m\,K^{(m)}Q^{(t-1)},\qquad Q^{(t)}=\mathrm{softmax}(Z_t),$$

    which equals the Potts update $U-\sum_m w_m K^{(m)}Q^{(t-1)}(\mathbf 1\mathbf 1^\top-I)$ up
    to a per-pixel constant (CRF note §3.2). Per-label weights $w_{m,l}$ multiply the message
    of label $l$. Kernels: see `crf_kernels` (dense: intensity $e^{-(I_i-I_j)^2/2}/(P-1)$ and
    position $\tfrac12e^{-\|p_i-p_j\|^2}$; grid4: contrast $e^{-(I_i-I_j)^2}$ and constant on
    4-neighbours). Softmax via log-sum-exp, no clipping.

    Args:
        unary: (N, 2, H, W) logits (the FCN output).
        image: (N, 1, H, W), the normalised ROI the FCN sees; may require a gradient.
        weights: (2,) one weight per kernel [kernel 0 = intensity/contrast, 1 = position/constant],
            or (2, 2) per kernel and label.
        n_iter: T (5 in training, 10 at test in the paper); T = 0 returns the unary.
        graph: ``"dense"`` (the paper) or ``"grid4"`` (the authors' code, with real messages).
        include_self: keep the self pair $k_{ii}$ (the paper excludes it).
        unary_domain: ``"logits"`` ($U$ = unary) or ``"prob"`` ($U$ = softmax(unary), the
            paper's printed update).
        authors_self_message: use the authors' message $Q\odot(K\mathbf 1)$ instead of $KQ$
            (their TF code passes no messages between pixels, note §1.3).
    Returns:
        $Z_T$, (N, 2, H, W) logits; $Q_T$ = softmax($Z_T$) over axis 1.

    Gradient: hand-written reverse pass through all T iterations (note §4) to the unary, the
    weights and the image (filter-only form §4.3 for dense, edge form §4.4 for grid4).

    See: lessons/03_crf.py, tests/test_crf.py.
    """
    unary, image, weights = as_tensor(unary), as_tensor(image), as_tensor(weights)
    _check(unary, image, weights, n_iter, graph, unary_domain)
    keep = is_grad_enabled() and any(t.requires_grad for t in (unary, image, weights))
    return MeanFieldCRFOp(int(n_iter), graph, include_self, unary_domain, authors_self_message, keep)(
        unary, image, weights)


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
        kint = A.mul(A.exp(A.mul(sq, xp.asarray(-0.5, dtype))), (1 - eye + keep) / (P - 1))
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
        B = None  # (no Python scalars: Op.__call__ would make them NumPy arrays next to CuPy ones)
        for m, K in enumerate(ks):
            msg = A.mul(Q, A.matmul(K, xp.ones((N, H * W, 1), unary.dtype))) if authors_self_message \
                else A.matmul(K, Q)  # (N, P, 2)
            term = A.mul(msg, A.getitem(weights, m))  # w_m scalar, or (2,) over labels
            B = term if B is None else A.add(B, term)
        if compatibility == "potts":
            Z = A.sub(U, A.matmul(B, xp.ones((2, 2), unary.dtype) - xp.eye(2, dtype=unary.dtype)))  # μ symmetric
        else:
            Z = A.add(U, B)
        Q = _softmax_last(Z)
    return A.reshape(A.transpose(Z, (0, 2, 1)), (N, 2, H, W))  # (N, P, 2) -> (N, 2, H, W)


# ---------------------------------------------------------------- gradient-check cases
def _crf_inputs(w_shape: tuple[int, ...], H: int = 4, W: int = 5):
    def make(r: np.random.Generator) -> list[np.ndarray]:
        return [2 * r.standard_normal((2, 2, H, W)), r.standard_normal((2, 1, H, W)), r.uniform(0.5, 2.0, w_shape)]
    return make


_CASES = {  # name: (weights shape, keyword arguments)
    "dense": ((2,), {}),
    "dense_per_label_include_self": ((2, 2), {"include_self": True}),
    "dense_prob_domain": ((2,), {"unary_domain": "prob"}),
    "dense_authors_self_message": ((2, 2), {"authors_self_message": True}),
    "grid4": ((2,), {"graph": "grid4"}),
    "grid4_per_label_prob": ((2, 2), {"graph": "grid4", "unary_domain": "prob"}),
    "grid4_authors_self_message": ((2, 2), {"graph": "grid4", "authors_self_message": True}),
}
for _name, (_ws, _kw) in _CASES.items():
    register_gradcheck(f"mean_field_crf/{_name}",
                       lambda u, i, w, _kw=_kw: mean_field_crf(u, i, w, n_iter=3, **_kw),
                       _crf_inputs(_ws), [MeanFieldCRFOp])
