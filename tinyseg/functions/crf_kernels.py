r"""The CRF's pairwise kernels as linear maps on per-pixel values   [ZX18 Eq. 4].

Mean field only ever needs "apply kernel $K$ to a map $x$" (the message $Kq$) and, for the
image gradient, "the gradient of $a^\top K b$ with respect to the image". Each kernel here is an
object bound to a batch of images that provides exactly these:

* `apply(x)`: $Kx$ for x of shape (N, P), one map per image ($P = H\cdot W$ pixels).
* `adjoint(x)`: $K^\top x$. Every kernel is symmetric, so this is `apply`; the dot-product
  tests check $\langle Kx, y\rangle = \langle x, Ky\rangle$ for each implementation.
* `image_vjp(a, b)`: $\partial (a^\top K b) / \partial I$ per image, shape (N, P)
  (None for kernels that do not depend on the image).

Kernels (index 0 depends on the image, index 1 does not; the weights follow this order):

* ``"dense"`` (the paper): kernel 0 $e^{-(I_i-I_j)^2/2}/(P-1)$ over all pairs, a dense
  symmetric matrix (on the CPU only its upper triangle is computed); kernel 1
  $\tfrac12 e^{-\|p_i-p_j\|^2}$ ($p$ in pixels) as the exact separable product $G_y X G_x^\top$.
* ``"grid4"`` (the authors' code): kernel 0 $e^{-(I_i-I_j)^2}$ and kernel 1 $1$, both on
  4-neighbours, as stencils.

Self pairs ($j = i$) are excluded unless ``include_self=True``: the diagonal term
$k_{ii}x_i$ is subtracted from the full product. The dense intensity kernel is divided by
$P-1$ so that its message is an average (docs: derivations/mean_field.md, and `crf_default_weights`).

Longer than the usual ~300 lines because it holds both graphs' kernels behind one interface,
with their image gradients. How the CPU builds and multiplies the dense kernel fast lives in
`tinyseg.functions.crf_dense`; the threads and memory budget of the dense kernels in
`tinyseg.functions.crf_chunks`.

See: lessons/03_crf.py, tests/functions/test_crf_kernels.py.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import get_array_module, is_cupy_array
from ..config import CHOICES
from .crf_dense import build_dense_kernel, symmetric_matvec

GRAPHS = CHOICES["crf_graph"]  # "dense" (the paper), "grid4" (the authors' code)


class DenseIntensityKernel:
    r"""$K_{ij} = e^{-(I_i-I_j)^2/2}/(P-1)$ over all pixel pairs of each image, as a dense matrix.

    $K$ is symmetric. On the CPU only its upper triangle $j \ge i$ is computed, in blocks of
    rows from the diagonal rightwards (about half the exponentials), and `symmetric_matvec`
    multiplies by the whole matrix from it, never reading below the diagonal; on the GPU
    the whole matrix is computed and multiplied in one batched product (fewer, larger launches).

    Args:
        image: (N, P) raw array, the features $I$.
        include_self: keep the diagonal $k_{ii} = 1/(P-1)$.
        out: optional (N, P, P) buffer to build the unscaled kernel in (so the mean-field op can
            reuse one buffer, or keep the kernel for its backward pass).
    """

    depends_on_image = True

    def __init__(self, image: Any, include_self: bool = False, out: Any = None) -> None:
        xp = get_array_module(image)
        N, P = image.shape
        self.image = image
        self.scale = 1.0 / max(P - 1, 1)
        self.self_weight = 1.0 if include_self else 0.0
        self.upper_only = not is_cupy_array(image)
        K = xp.empty((N, P, P), dtype=image.dtype) if out is None else out
        self.K = build_dense_kernel(image, K, self.upper_only)  # (N, P, P), unscaled, diagonal 1

    def apply(self, x: Any) -> Any:
        """(N, P) -> (N, P): the scaled kernel times x, self pair removed unless kept."""
        if self.upper_only:
            kx = symmetric_matvec(self.K, x)
        else:
            kx = (self.K @ x[:, :, None])[:, :, 0]  # (N, P, 1) -> (N, P)
        return self.scale * (kx - (1.0 - self.self_weight) * x)

    adjoint = apply  # K is symmetric

    # --8<-- [start:dense_image_vjp]
    def commutator(self, x: Any, kx: Any = None) -> Any:
        r"""$[I, K]\,x = I\odot Kx - K(I\odot x)$; pass `kx` if $Kx$ is known."""
        kx = self.apply(x) if kx is None else kx
        return self.image * kx - self.apply(self.image * x)

    def image_vjp(self, a: Any, b: Any, ka: Any = None, kb: Any = None) -> Any:
        r"""$\nabla_I\,a^\top K b = -(a\odot[I,K]b + b\odot[I,K]a)$ (filter-only form).

        Derived in docs/derivations/image_gradient.md. The diagonal carries a factor
        $(I_i-I_i) = 0$, so the self pair does not matter here.
        `ka`, `kb` are $Ka$, $Kb$ when already computed.
        """
        return -(a * self.commutator(b, kb) + b * self.commutator(a, ka))
    # --8<-- [end:dense_image_vjp]


def gaussian_factor(n: int, xp: Any, dtype: Any) -> Any:
    r"""(n, n) matrix $G_{ab} = e^{-(a-b)^2}$ on pixel coordinates $0..n-1$."""
    r = xp.arange(n, dtype=dtype)
    return xp.exp(-(r[:, None] - r[None, :]) ** 2)


class SeparablePositionKernel:
    r"""$K_{ij} = \tfrac12 e^{-\|p_i-p_j\|^2}$ with $p$ in pixels, applied as $\tfrac12 G_y X G_x^\top$.

    Exact: with $p_i = (u_i, v_i)$ (row, column), $e^{-\|p_i-p_j\|^2} =
    e^{-(u_i-u_j)^2}e^{-(v_i-v_j)^2}$, so the (P, P) kernel is the Kronecker product
    $G_y\otimes G_x$ of the row and column factors and never needs to be formed.

    Args:
        H: image height.
        W: image width.
        xp: array module of the maps it will be applied to.
        dtype: dtype of the maps it will be applied to.
        include_self: keep the diagonal $k_{ii} = \tfrac12$.
    """

    depends_on_image = False

    def __init__(self, H: int, W: int, xp: Any, dtype: Any, include_self: bool = False) -> None:
        self.H, self.W = H, W
        self.Gy, self.Gx = gaussian_factor(H, xp, dtype), gaussian_factor(W, xp, dtype)
        self.self_weight = 1.0 if include_self else 0.0

    # --8<-- [start:separable_position]
    def apply(self, x: Any) -> Any:
        """(N, P) -> (N, P)."""
        X = x.reshape(-1, self.H, self.W)  # (N, H, W)
        kx = (self.Gy @ X @ self.Gx.T).reshape(x.shape)  # (N, H, W) -> (N, P)
        return 0.5 * (kx - (1.0 - self.self_weight) * x)
    # --8<-- [end:separable_position]

    def adjoint(self, x: Any) -> Any:
        """(N, P) -> (N, P): $\\tfrac12 G_y^\\top X G_x$, the transposed product (equal to `apply`)."""
        X = x.reshape(-1, self.H, self.W)  # (N, H, W)
        kx = (self.Gy.T @ X @ self.Gx).reshape(x.shape)  # (N, H, W) -> (N, P)
        return 0.5 * (kx - (1.0 - self.self_weight) * x)

    def image_vjp(self, a: Any, b: Any, **_: Any) -> None:
        return None  # the features p are constants


class Grid4Kernel:
    r"""4-neighbour stencil: $(Kx)_i = \sum_{j\in N_4(i)} k_{ij}x_j$, zero outside the image.

    ``contrast=True``: $k_{ij} = e^{-(I_i-I_j)^2}$ (the authors' contrast kernel, no ½);
    ``contrast=False``: $k_{ij} = 1$ (their smoothness kernel). Self pair $k_{ii} = 1$ when kept.

    Args:
        image: (N, H, W) raw array.
        contrast: which of the two kernels.
        include_self: add $x_i$ (the self pair).
    """

    def __init__(self, image: Any, contrast: bool, include_self: bool = False) -> None:
        xp = get_array_module(image)
        self.shape = image.shape  # (N, H, W)
        self.image = image
        self.depends_on_image = contrast
        self.self_weight = 1.0 if include_self else 0.0
        if contrast:
            self.eh = xp.exp(-(image[:, :, 1:] - image[:, :, :-1]) ** 2)  # (N, H, W-1): edge (y,x)-(y,x+1)
            self.ev = xp.exp(-(image[:, 1:, :] - image[:, :-1, :]) ** 2)  # (N, H-1, W): edge (y,x)-(y+1,x)
        else:
            dtype = image.dtype
            N, H, W = image.shape
            self.eh, self.ev = xp.ones((1, H, W - 1), dtype), xp.ones((1, H - 1, W), dtype)

    def apply(self, x: Any) -> Any:
        """(N, P) -> (N, P): each edge sends its value both ways."""
        xp = get_array_module(x)
        N, H, W = x.shape[0], self.shape[1], self.shape[2]
        X = x.reshape(N, H, W)  # (N, H, W)
        out = X * self.self_weight if self.self_weight else xp.zeros_like(X)  # a new array either way
        out[:, :, :-1] += self.eh * X[:, :, 1:]  # from the east neighbour
        out[:, :, 1:] += self.eh * X[:, :, :-1]  # from the west neighbour
        out[:, :-1, :] += self.ev * X[:, 1:, :]  # from the south neighbour
        out[:, 1:, :] += self.ev * X[:, :-1, :]  # from the north neighbour
        return out.reshape(x.shape)  # (N, H, W) -> (N, P)

    adjoint = apply  # every edge is undirected: K is symmetric

    # --8<-- [start:grid4_image_vjp]
    def image_vjp(self, a: Any, b: Any, **_: Any) -> Any:
        r"""$\nabla_I\,a^\top K b$ through the edge weights $e=e^{-\Delta^2}$.

        $\Delta = I_{next}-I$ on each edge to the east or south neighbour.

        Edge form (docs: derivations/image_gradient.md):
        $\partial(a^\top Kb)/\partial e_{ij} = a_ib_j + a_jb_i$,
        $de/d\Delta = -2\Delta e$.
        """
        if not self.depends_on_image:
            return None
        xp = get_array_module(a)
        N, H, W = self.shape
        A, B, img = a.reshape(N, H, W), b.reshape(N, H, W), self.image  # (N, H, W)
        g = xp.zeros_like(A)
        # d(aᵀKb)/de for each edge, times de/dΔ = -2Δe,
        # then dΔ/dI = +1 (next pixel), -1 (this pixel).
        ge = (A[:, :, :-1] * B[:, :, 1:] + A[:, :, 1:] * B[:, :, :-1]) \
            * (-2.0 * (img[:, :, 1:] - img[:, :, :-1]) * self.eh)  # (N, H, W-1)
        g[:, :, 1:] += ge
        g[:, :, :-1] -= ge
        ge = (A[:, :-1, :] * B[:, 1:, :] + A[:, 1:, :] * B[:, :-1, :]) \
            * (-2.0 * (img[:, 1:, :] - img[:, :-1, :]) * self.ev)  # (N, H-1, W)
        g[:, 1:, :] += ge
        g[:, :-1, :] -= ge
        return g.reshape(a.shape)  # (N, H, W) -> (N, P)
    # --8<-- [end:grid4_image_vjp]


def crf_kernels(image: Any, graph: str = "dense", include_self: bool = False, out: Any = None) -> list[Any]:
    r"""Build the two pairwise kernels of `graph` for a batch of images   [ZX18 Eq. 4].

    Args:
        image: (N, 1, H, W) or (N, H, W) raw array (the normalised ROI the FCN sees).
        graph: ``"dense"`` (intensity + separable position) or ``"grid4"`` (contrast + constant).
        include_self: keep the self pair $k_{ii}$.
        out: optional (N, P, P) buffer for the dense intensity kernel.
    Returns:
        [kernel 0 (image-dependent), kernel 1 (image-independent)], each with
        ``apply``/``adjoint``/``image_vjp`` on (N, P) maps.

    See: lessons/03_crf.py, tests/functions/test_crf_kernels.py.
    """
    xp = get_array_module(image)
    img = image.reshape(image.shape[0], image.shape[-2], image.shape[-1])  # (N, H, W)
    N, H, W = img.shape
    if graph == "dense":
        return [DenseIntensityKernel(img.reshape(N, H * W), include_self, out),  # (N, P)
                SeparablePositionKernel(H, W, xp, img.dtype, include_self)]
    if graph == "grid4":
        return [Grid4Kernel(img, True, include_self), Grid4Kernel(img, False, include_self)]
    raise ValueError(f"Unknown CRF graph {graph!r}: use one of {GRAPHS}.")


def crf_default_weights(graph: str = "dense", per_label: bool = False) -> np.ndarray:
    r"""Initial CRF weights inside the contraction bound (`crf_contraction_bound`; tests/functions/test_crf_kernels.py).

    Dense: $w_{int} = 1$ (the $1/(P-1)$-scaled intensity kernel, $\lambda_{\max}\le1$) and
    $w_{pos} = 1$ (pixel units, $\lambda_{\max}\approx1.07$), so
    $\tfrac12\sum_m w^{(m)}\lambda_{\max}(K_m)\approx0.86$ on standardised ROIs. Grid4: 0.25 each
    ($\lambda_{\max}\approx4$ and $3.4$).

    Args:
        graph: ``"dense"`` or ``"grid4"``.
        per_label: return shape (2, 2) (kernel, label) instead of (2,).
    Returns:
        float64 array of shape (2,) or (2, 2), kernel order as in `crf_kernels`.
    """
    if graph not in GRAPHS:
        raise ValueError(f"Unknown CRF graph {graph!r}: use one of {GRAPHS}.")
    w = np.array([1.0, 1.0]) if graph == "dense" else np.array([0.25, 0.25])
    return np.repeat(w[:, None], 2, axis=1) if per_label else w


def crf_spectral_radius(image: Any, graph: str = "dense", include_self: bool = False,
                        n_power_iter: int = 100) -> np.ndarray:
    r"""$\lambda_{\max}(K_m)$ per image and kernel, by power iteration (for `crf_contraction_bound`).

    The kernels are symmetric and non-negative, so $\lambda_{\max}$ is the spectral radius
    (Perron–Frobenius). Iterating $K + c\,\mathrm{Id}$ with $c$ the largest row sum keeps the
    spectrum in $[0, 2c]$ (a bipartite grid would otherwise oscillate); the Rayleigh quotient approaches
    $\lambda_{\max}$ from below.

    Args:
        image: (N, 1, H, W) raw array.
        graph: as in `mean_field_crf`.
        include_self: as in `mean_field_crf`.
        n_power_iter: number of power iterations.

    Returns:
        (N, 2) float64 NumPy array.
    """
    xp = get_array_module(image)
    img = image.astype(xp.float64)
    N = img.shape[0]
    P = img.shape[-1] * img.shape[-2]
    out = np.zeros((N, 2))
    for m, k in enumerate(crf_kernels(img, graph, include_self)):
        ones = xp.ones((N, P))
        shift = k.apply(ones).max(axis=1, keepdims=True)  # (N, 1) Gershgorin bound ≥ |λ|
        x = ones / np.sqrt(P)
        for _ in range(n_power_iter):
            y = k.apply(x) + shift * x
            x = y / xp.linalg.norm(y, axis=1, keepdims=True)
        lam = (x * k.apply(x)).sum(axis=1)  # Rayleigh quotient, x has unit norm
        out[:, m] = np.asarray(lam.get() if hasattr(lam, "get") else lam)
    return out


def crf_contraction_bound(weights: Any, image: Any, graph: str = "dense", include_self: bool = False) -> np.ndarray:
    r"""Per-image bound on the mean-field Jacobian: $\tfrac14\sum_m|w_{m,0}+w_{m,1}|\,\lambda_{\max}(K_m)$.

    With two labels the update acts on $\delta = Z(\cdot,1) - Z(\cdot,0)$ as
    $\delta \mapsto b + \bar K\sigma(\delta)$ with $\bar K = \sum_m (w_{m,0}+w_{m,1})K_m$ and $b$
    constant; its Jacobian is $\bar K\operatorname{diag}(\sigma'(\delta))$ and $\sigma'\le\frac14$.
    For weights of shape (2,) this is $\tfrac12\sum_m |w^{(m)}|\lambda_{\max}(K_m)$.
    Below 1 the iteration is a contraction: mean field converges and backprop through T
    iterations stays bounded (docs: derivations/mean_field.md, "Convergence").

    Args:
        weights: (2,) or (2, 2) array.
        image: (N, 1, H, W) raw array.
        graph: as in `mean_field_crf`.
        include_self: as in `mean_field_crf`.

    Returns:
        (N,) float64 NumPy array.
    """
    w = np.asarray(weights.get() if hasattr(weights, "get") else weights, dtype=np.float64)
    # --8<-- [start:contraction_bound]
    w2 = np.repeat(w[:, None], 2, axis=1) if w.ndim == 1 else w  # (2,) -> (2, 2)
    lam = crf_spectral_radius(image, graph, include_self)  # (N, 2): each λ_max(K_m)
    return 0.25 * lam @ np.abs(w2.sum(axis=1))  # ¼ Σ_m |w[m, 0] + w[m, 1]| λ_max(K_m)
    # --8<-- [end:contraction_bound]
