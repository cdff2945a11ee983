r"""The mean-field CRF unrolled as an RNN, with a hand-written backward   [ZX18 Eq. 2-5].

`mean_field_crf` is one op (`MeanFieldCRFOp`) that runs T mean-field iterations and
backpropagates through all of them to the unaries, the weights and the image (through the
image-dependent kernel, which adversarial training needs). `mean_field_crf_composite`
(`tinyseg.functions.crf_composite`) computes the same thing from primitive ops with dense
(N, P, P) kernels; it is the test oracle (and only meant for small images).

Two labels make every step cheap: with $q = Q(\cdot,1)$, the messages of label 0 are
$K_m\mathbf 1 - K_mq$, so one kernel application $s_m = K_mq$ (`s[m]`) per kernel and
iteration suffices, and $Q = \mathrm{softmax}(Z)$ is $q = \sigma(Z(\cdot,1) - Z(\cdot,0))$
(docs: lesson 03, "The library op and its backward"; the symbols: the glossary's notation table).

The kernels come chunk by chunk from `KernelChunks` (`tinyseg.functions.crf_chunks`), which
decides how many exist at once, when each is built and on how many threads; the op only iterates.

Names: `w[m, l]` is the weight of kernel m for label l; `H`, `W` are the image's height and width.

See: lessons/03_crf.py, tests/functions/test_crf.py.
"""
from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from ..autodiff import Op, Tensor, as_tensor, is_grad_enabled
from ..backend import get_array_module
from ..errors import UserError
from ..gradcheck import register_gradcheck
from .activation import _softmax
from .crf_chunks import KernelChunks
from .crf_kernels import (GRAPHS, crf_contraction_bound, crf_default_weights, crf_kernels,  # noqa: F401  (re-exported)
                          crf_spectral_radius, gaussian_factor)

UNARY_DOMAINS = ("logits", "prob")


def _sigmoid(d: Any) -> tuple[Any, Any]:
    """σ(d) and σ'(d) = σ(1-σ), without overflow for any |d|."""
    xp = get_array_module(d)
    e = xp.exp(-xp.abs(d))
    r = 1 / (1 + e)
    return xp.where(d >= 0, r, e * r), e * r * r


# --8<-- [start:per_label_weights]
def per_label_weights(weights: Any) -> Any:
    """(2,) one weight per kernel or (2, 2) -> (2, 2) `w[m, l]`, kernel m, label l."""
    xp = get_array_module(weights)
    # (2,) -> (2, 2): w[m, 0] = w[m, 1] = weights[m]
    return weights if weights.ndim == 2 else xp.repeat(weights[:, None], 2, axis=1)
# --8<-- [end:per_label_weights]


class MeanFieldCRFOp(Op):
    """T-step mean field; saves the per-iteration logit differences and messages."""

    def __init__(self, n_iter: int, graph: str, include_self: bool, unary_domain: str,
                 authors_self_message: bool, keep_kernels: bool) -> None:
        self.n_iter, self.graph, self.include_self = n_iter, graph, include_self
        self.unary_domain, self.authors_self_message = unary_domain, authors_self_message
        self.keep_kernels = keep_kernels

    def forward(self, unary: Any, image: Any, weights: Any) -> Any:
        xp = get_array_module(unary)
        N, _, H, W = unary.shape
        U = unary.reshape(N, 2, H * W)  # (N, 2, P)
        if self.unary_domain == "prob":  # the paper's printed update: softmax probabilities as unary
            U = _softmax(U, axis=1)
        self.U, self.w = U, per_label_weights(weights.astype(unary.dtype))  # w (2, 2)
        self.kernels = KernelChunks(image.astype(unary.dtype), self.graph, self.include_self, self.keep_kernels)
        Z, self.saved = xp.empty_like(U), {}
        # each chunk of the batch with its kernels (KernelChunks shares the chunks out among threads)
        for i, batch, (Z_chunk, saved) in self.kernels.map(lambda i, batch, ks: self._forward_chunk(U[batch], ks)):
            Z[batch] = Z_chunk
            if self.keep_kernels:
                self.saved[i] = saved
        return Z.reshape(N, 2, H, W)  # (N, 2, P) -> (N, 2, H, W)

    # --8<-- [start:forward_chunk]
    def _forward_chunk(self, U: Any, ks: list[Any]) -> tuple[Any, Any]:
        xp, w = get_array_module(U), self.w
        k1 = [k.apply(xp.ones_like(U[:, 0])) for k in ks]  # K·1 per kernel, (n, P)
        z0, z1 = U[:, 0], U[:, 1]
        deltas, msgs = [], []
        for _ in range(self.n_iter):
            delta = z1 - z0
            q, _ = _sigmoid(delta)
            s = [k1m * q if self.authors_self_message else k.apply(q)  # s_m = K_m q
                 for k, k1m in zip(ks, k1)]
            # label 0's message is K_m 1 - K_m q, label 1's is K_m q
            z0 = U[:, 0] + sum(w[m, 0] * (k1[m] - s[m]) for m in range(2))
            z1 = U[:, 1] + sum(w[m, 1] * s[m] for m in range(2))
            deltas.append(delta)
            msgs.append(s)
        return xp.stack([z0, z1], axis=1), (k1, deltas, msgs)
    # --8<-- [end:forward_chunk]

    def backward(self, gy: Any) -> tuple[Any, Any, Any]:
        xp = get_array_module(gy)
        N, _, H, W = gy.shape
        need_image = self.inputs[1].requires_grad
        gZ = gy.reshape(N, 2, H * W)  # (N, 2, P)
        gU, gw = xp.empty_like(gZ), xp.zeros((2, 2), dtype=gy.dtype)
        gI = xp.zeros((N, H * W), dtype=gy.dtype) if need_image else None

        def chunk(i: int, batch: slice, ks: list[Any]) -> tuple[Any, Any, Any]:
            return self._backward_chunk(gZ[batch], ks, self.saved[i], need_image)

        for i, batch, (gU_chunk, gw_chunk, gI_chunk) in self.kernels.map(chunk):
            gU[batch] = gU_chunk
            gw += gw_chunk  # in the order the chunks were scheduled, whichever thread ran them
            if need_image:
                gI[batch] = gI_chunk
        return self._input_grads(gU, gw, gI, self.U)

    def _input_grads(self, gU: Any, gw: Any, gI: Any, U: Any) -> tuple[Any, Any, Any]:
        """From the gradients of U (N, 2, P), w (2, 2) and the features (N, P) to those of the inputs."""
        N, _, H, W = self.inputs[0].shape
        if self.unary_domain == "prob":  # back through U = softmax(unary)
            gU = U * (gU - (gU * U).sum(axis=1, keepdims=True))
        # --8<-- [start:weights_grad]
        # one weight per kernel (shape (2,)): its gradient sums both labels
        if self.inputs[2].ndim == 1:
            gw = gw.sum(axis=1)
        # --8<-- [end:weights_grad]
        if gI is not None:
            gI = gI.reshape(N, 1, H, W).astype(self.inputs[1].dtype)  # (N, P) -> (N, 1, H, W)
        return gU.reshape(N, 2, H, W), gI, gw.astype(self.inputs[2].dtype)  # (N, 2, P) -> (N, 2, H, W)

    # --8<-- [start:backward_chunk]
    def _backward_chunk(self, gZ: Any, ks: list[Any], saved: Any,
                        need_image: bool) -> tuple[Any, Any, Any]:
        xp, w = get_array_module(gZ), self.w
        k1, deltas, msgs = saved
        g0, g1 = gZ[:, 0], gZ[:, 1]
        gU0, gU1 = g0.copy(), g1.copy()
        gw = xp.zeros((2, 2), dtype=gZ.dtype)
        gk1 = [xp.zeros_like(g0), xp.zeros_like(g0)]  # dL/d(K_m·1)
        gI = xp.zeros_like(g0) if need_image else None
        for t in reversed(range(self.n_iter)):
            q, dq = _sigmoid(deltas[t])  # q_{t-1} and σ'
            gq = 0
            for m, k in enumerate(ks):
                s = msgs[t][m]
                gw[m, 0] += xp.sum(g0 * (k1[m] - s))
                gw[m, 1] += xp.sum(g1 * s)
                # dL/d(K_m q): both labels' messages depend on q
                gs = w[m, 1] * g1 - w[m, 0] * g0
                gk1[m] += w[m, 0] * g0
                if self.authors_self_message:  # message q ⊙ (K·1): diagonal in q
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
        return xp.stack([gU0, gU1], axis=1), gw, gI
    # --8<-- [end:backward_chunk]


def _check(unary: Tensor, image: Tensor, weights: Tensor, n_iter: int, graph: str, unary_domain: str) -> None:
    if unary.ndim != 4 or unary.shape[1] != 2:
        raise UserError(f"mean_field_crf: unary must have shape (N, 2, H, W), got {unary.shape}.")
    N, _, H, W = unary.shape
    if image.shape != (N, 1, H, W):
        raise UserError(f"mean_field_crf: image must have shape {(N, 1, H, W)} to match the unary, "
                         f"got {image.shape}.")
    if weights.shape not in ((2,), (2, 2)):
        raise UserError(f"mean_field_crf: weights must have shape (2,) or (2, 2), got {weights.shape}.")
    if graph not in GRAPHS:
        raise UserError(f"mean_field_crf: unknown graph {graph!r}; use one of {GRAPHS}.")
    if unary_domain not in UNARY_DOMAINS:
        raise UserError(f"mean_field_crf: unknown unary_domain {unary_domain!r}; use one of {UNARY_DOMAINS}.")
    if not isinstance(n_iter, (int, np.integer)) or isinstance(n_iter, bool) or n_iter < 0:
        raise UserError(f"mean_field_crf: n_iter must be a non-negative int, got {n_iter!r}.")


def mean_field_crf(unary: Any, image: Any, weights: Any, n_iter: int = 5, graph: str = "dense",
                   include_self: bool = False, unary_domain: str = "logits",
                   authors_self_message: bool = False) -> Tensor:
    r"""T iterations of mean-field inference in the two-label CRF, as one differentiable op   [ZX18 Eq. 2-5].

    Energy $E(\mathbf y)=-\sum_i U_i(y_i)+\sum_{i<j}[y_i\ne y_j]\sum_m w^{(m)}k^{(m)}_{ij}$ (Potts).
    With $Q_0=\mathrm{softmax}(U)$ and the messages $s_m = K_m Q_{t-1}$, each iteration computes

    $$Z_t = U + \sum_m w^{(m)} s_m,\qquad Q_t=\mathrm{softmax}(Z_t),$$

    which equals the Potts update $U-\sum_m w^{(m)} s_m(\mathbf 1\mathbf 1^\top-\mathrm{Id})$ up
    to a per-pixel constant (docs: lesson 03, "The math"; tests/functions/test_crf.py checks both forms).
    Per-label weights $w_{m,l}$ multiply the message of label $l$; weights of shape (2,) are
    repeated to $w_{m,0} = w_{m,1} = w^{(m)}$ (`per_label_weights`). Kernels: see `crf_kernels` (dense: intensity $e^{-(I_i-I_j)^2/2}/(P-1)$ and
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
        authors_self_message: use the authors' message $Q\odot(K_m\mathbf 1)$ instead of
            $K_mQ$: each pixel's own probability times its kernel row sum (their TF code passes
            no messages between pixels; docs: derivations/mean_field.md).
    Returns:
        $Z_T$, (N, 2, H, W) logits; $Q_T$ = softmax($Z_T$) over axis 1.

    Gradient: hand-written reverse pass through all T iterations to the unary, the weights and
    the image (through `crf_kernels`' ``image_vjp``; docs: lesson 03, "The library op and its
    backward"; checked against finite differences and `mean_field_crf_composite` in tests/functions/test_crf.py).

    Derivation: docs/derivations/mean_field.md (forward), docs/derivations/crf_backward.md and
        docs/derivations/image_gradient.md (backward).
    See: lessons/03_crf.py, tests/functions/test_crf.py.
    """
    unary, image, weights = as_tensor(unary), as_tensor(image), as_tensor(weights)
    _check(unary, image, weights, n_iter, graph, unary_domain)
    keep = is_grad_enabled() and any(t.requires_grad for t in (unary, image, weights))
    return MeanFieldCRFOp(int(n_iter), graph, include_self, unary_domain, authors_self_message, keep)(
        unary, image, weights)


# ---------------------------------------------------------------- gradient-check cases
def _crf_inputs(w_shape: tuple[int, ...], H: int = 4, W: int = 5):
    def make(r: np.random.Generator) -> list[np.ndarray]:
        return [2 * r.standard_normal((2, 2, H, W)), r.standard_normal((2, 1, H, W)), r.uniform(0.5, 2.0, w_shape)]
    return make


def _crf_case(name: str, w_shape: tuple[int, ...], **options: Any) -> None:
    register_gradcheck(f"mean_field_crf/{name}", partial(mean_field_crf, n_iter=3, **options),
                       _crf_inputs(w_shape), [MeanFieldCRFOp])


#         name                            w      options
_crf_case("dense",                        (2,))
_crf_case("dense_per_label_include_self", (2, 2), include_self=True)
_crf_case("dense_prob_domain",            (2,),   unary_domain="prob")
_crf_case("dense_authors_self_message",   (2, 2), authors_self_message=True)
_crf_case("grid4",                        (2,),   graph="grid4")
_crf_case("grid4_per_label_prob",         (2, 2), graph="grid4", unary_domain="prob")
_crf_case("grid4_authors_self_message",   (2, 2), graph="grid4", authors_self_message=True)
