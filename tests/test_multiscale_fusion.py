"""The backward of the multi-scale fusion U_l = Σ_k α_{k,l} log softmax(z_k)_l, as lesson 05 derives
it ("The fusion's backward"): dL/dα_{k,l} = Σ G_l ℓ_{k,l} and
dL/dz_{k,c} = α_{k,c} G_c − π_{k,c} Σ_l α_{k,l} G_l, with π_k = softmax(z_k) and G = dL/dU."""
from __future__ import annotations

import numpy as np

from tinyseg.autodiff import Tensor
from tinyseg.models import MultiScaleFCN


def _fusion_with_logits_as_leaves(seed: int):
    """A MultiScaleFCN whose four FCNs return fixed leaf logits z_k (so their gradients can be read)."""
    rng = np.random.default_rng(seed)
    m = MultiScaleFCN(fusion="logits", dtype=np.float64)
    m.alpha.data[...] = rng.uniform(0.1, 0.6, m.alpha.shape)  # distinct per FCN and label
    zs = [Tensor(3 * rng.standard_normal((2, 2, 40, 40)), True) for _ in m.fcns]
    for fcn, z in zip(m.fcns, zs):
        fcn.forward = lambda x, z=z: z
    return m, zs, rng


def _log_softmax(z: np.ndarray) -> np.ndarray:
    s = z - z.max(axis=1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))


def test_multiscale_fusion_backward_matches_the_derived_formula():
    m, zs, rng = _fusion_with_logits_as_leaves(0)
    G = rng.standard_normal((2, 2, 40, 40))  # dL/dU, any upstream gradient
    U = m(np.zeros((2, 1, 40, 40)))
    U.backward(G)
    alpha = m.alpha.data
    for k, z in enumerate(zs):
        ell = _log_softmax(z.data)
        pi = np.exp(ell)  # π_k
        a = alpha[k][None, :, None, None]  # α_{k,l}, broadcast over images and pixels
        np.testing.assert_allclose(U.data, sum(alpha[j][None, :, None, None] * _log_softmax(zj.data)
                                               for j, zj in enumerate(zs)), rtol=0, atol=1e-12)
        np.testing.assert_allclose(m.alpha.grad[k], (G * ell).sum(axis=(0, 2, 3)), rtol=1e-12, atol=0)
        want = a * G - pi * (a * G).sum(axis=1, keepdims=True)
        np.testing.assert_allclose(z.grad, want, rtol=0, atol=1e-12)


def test_multiscale_fusion_passes_a_zero_sum_gradient_scaled_by_alpha_when_alpha_is_equal_across_labels():
    """With α_{k,0} = α_{k,1} and an upstream gradient whose rows sum to zero (the cross-entropy's,
    the CRF's), the log-softmax backward passes α_k G through unchanged."""
    m, zs, rng = _fusion_with_logits_as_leaves(1)
    m.alpha.data[...] = np.array([0.25, 0.5, 1.0, 2.0])[:, None]
    G = rng.standard_normal((2, 2, 40, 40))
    G -= G.mean(axis=1, keepdims=True)  # rows sum to zero
    m(np.zeros((2, 1, 40, 40))).backward(G)
    for k, z in enumerate(zs):
        np.testing.assert_allclose(z.grad, m.alpha.data[k, 0] * G, rtol=0, atol=1e-12)
