"""The mean-field math of docs/derivations/mean_field.md, checked on the op: weights of shape (2,)
as repeated per-label weights, the recursion of the logit difference δ, its Jacobian and the
contraction bound."""
from __future__ import annotations

import numpy as np
import pytest

import tinyseg.functions as F
from tinyseg.autodiff import Tensor, no_grad

from helpers import brute_force_kernel, crf_inputs  # tests/ is on sys.path (rootdir conftest)


def _sigmoid(d: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-d))


def _deltas(u, img, w, graph, T):
    """δ_t = Z_t(·,1) − Z_t(·,0) of the op for t = 0..T, shape (T+1, N, P)."""
    out = []
    with no_grad():
        for t in range(T + 1):
            z = F.mean_field_crf(u, img, w, n_iter=t, graph=graph).data
            out.append((z[:, 1] - z[:, 0]).reshape(z.shape[0], -1))
    return np.stack(out)


def _kbar_and_b(u, img, w, graph, n):
    """K̄ = Σ_m (w[m,0] + w[m,1]) K_m and b = δ_0 − Σ_m w[m,0] K_m 1, image n, brute-force kernels."""
    w2 = np.repeat(w[:, None], 2, axis=1) if w.ndim == 1 else w  # (2,) -> (2, 2)
    Ks = [brute_force_kernel(img[n, 0], graph, m, False) for m in range(2)]
    kbar = sum((w2[m, 0] + w2[m, 1]) * Ks[m] for m in range(2))
    d0 = (u[n, 1] - u[n, 0]).reshape(-1)
    b = d0 - sum(w2[m, 0] * Ks[m].sum(axis=1) for m in range(2))
    return kbar, b


@pytest.mark.parametrize("graph", ["dense", "grid4"])
def test_crf_weights_of_shape_2_equal_repeated_per_label_weights_and_sum_their_gradients(graph):
    u, img, w = crf_inputs(np, seed=11, w_shape=(2,))
    G = np.random.default_rng(12).standard_normal(u.shape)
    grads = {}
    for shape, w0 in (("(2,)", w), ("(2, 2)", np.repeat(w[:, None], 2, axis=1))):
        wt = Tensor(w0.copy(), True)
        z = F.mean_field_crf(u, img, wt, n_iter=3, graph=graph)
        z.backward(G)
        grads[shape] = (z.data, wt.grad)
    np.testing.assert_array_equal(grads["(2,)"][0], grads["(2, 2)"][0])  # the same forward
    # dL/dw^(m) = dL/dw[m,0] + dL/dw[m,1]
    np.testing.assert_allclose(grads["(2,)"][1], grads["(2, 2)"][1].sum(axis=1), rtol=1e-12, atol=0)
    assert np.all(grads["(2, 2)"][1][:, 0] != grads["(2, 2)"][1][:, 1])  # the two labels differ


@pytest.mark.parametrize("graph", ["dense", "grid4"])
@pytest.mark.parametrize("w_shape", [(2,), (2, 2)])
def test_crf_delta_recursion_is_b_plus_kbar_sigma_delta(graph, w_shape):
    """δ_t = b + K̄ σ(δ_{t−1}), with K̄ and b from brute-force kernels (docs: the contraction bound)."""
    u, img, w = crf_inputs(np, seed=13, w_shape=w_shape)
    deltas = _deltas(u, img, w, graph, T=4)
    for n in range(u.shape[0]):
        kbar, b = _kbar_and_b(u, img, w, graph, n)
        np.testing.assert_allclose(deltas[0, n], (u[n, 1] - u[n, 0]).reshape(-1), rtol=0, atol=1e-14)
        for t in range(1, 5):
            want = b + kbar @ _sigmoid(deltas[t - 1, n])
            np.testing.assert_allclose(deltas[t, n], want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("graph", ["dense", "grid4"])
def test_crf_jacobian_is_kbar_diag_sigma_prime_with_norm_below_the_bound(graph):
    """One iteration's Jacobian ∂δ_1/∂δ_0 − Id (central differences through the op) is K̄ diag(σ'(δ_0)),
    its spectral norm is at most F.crf_contraction_bound, and consecutive differences of the op's
    iterates shrink at least by that factor."""
    u, img, _ = crf_inputs(np, seed=14, N=1, H=4, W=4)
    w = np.array([[1.5, 0.7], [0.9, 1.3]]) if graph == "dense" else np.array([[0.2, 0.1], [0.15, 0.25]])
    rho = F.crf_contraction_bound(w, img, graph)[0]
    assert 0.2 < rho < 1  # a bound that says something, and a contraction
    kbar, _ = _kbar_and_b(u, img, w, graph, 0)
    d0 = (u[0, 1] - u[0, 0]).reshape(-1)
    P, h = d0.size, 1e-6
    jac = np.empty((P, P))
    for j in range(P):  # move δ_0 at pixel j by moving the label-1 unary: δ_1 = δ_0 + f(δ_0) − b
        e = np.zeros((1, 2, 4, 4))
        e[0, 1].flat[j] = h
        dp, dm = _deltas(u + e, img, w, graph, 1)[1, 0], _deltas(u - e, img, w, graph, 1)[1, 0]
        jac[:, j] = (dp - dm) / (2 * h)
    jac -= np.eye(P)  # δ_0 enters δ_1 once directly (through b) and once through K̄ σ(δ_0)
    want = kbar * (_sigmoid(d0) * (1 - _sigmoid(d0)))[None, :]
    np.testing.assert_allclose(jac, want, rtol=0, atol=1e-8)
    assert np.linalg.norm(want, 2) <= rho * (1 + 1e-9)
    deltas = _deltas(u, img, w, graph, T=8)[:, 0]
    steps = np.linalg.norm(np.diff(deltas, axis=0), axis=1)  # ‖Δ_t‖_2, t = 1..8
    assert np.all(steps[1:] <= rho * steps[:-1] * (1 + 1e-9))
    assert steps[-1] < steps[0]
