"""CRF kernels: fast forms against dense brute force, adjoint (dot-product) identities, image VJPs,
default weights and the contraction bound."""
from __future__ import annotations

import numpy as np
import pytest

import tinyseg.functions as F
from tinyseg.backend import as_numpy
from tinyseg.functions import crf_dense
from tinyseg.functions.crf_dense import symmetric_matvec
from tinyseg.functions.crf_kernels import crf_kernels

from helpers import brute_force_kernel  # tests/ is on sys.path (rootdir conftest)

FORMS = [("dense", 0), ("dense", 1), ("grid4", 0), ("grid4", 1)]


def _image(rng: np.random.Generator, N: int = 2, H: int = 4, W: int = 5) -> np.ndarray:
    return rng.standard_normal((N, 1, H, W))


@pytest.mark.parametrize("include_self", [False, True])
@pytest.mark.parametrize("graph,m", FORMS)
def test_crf_kernel_fast_form_matches_dense_brute_force(xp, graph, m, include_self):
    rng = np.random.default_rng(0)
    img = _image(rng)
    x = rng.standard_normal((2, 20))
    k = crf_kernels(xp.asarray(img), graph, include_self)[m]
    got = as_numpy(k.apply(xp.asarray(x)))
    want = np.stack([brute_force_kernel(img[n, 0], graph, m, include_self) @ x[n] for n in range(2)])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-13)


@pytest.mark.parametrize("include_self", [False, True])
@pytest.mark.parametrize("graph,m", FORMS)
def test_crf_kernel_adjoint_passes_dot_product_test(xp, graph, m, include_self):
    """<K x, y> = <x, Kᵀ y> for every implementation (catches one-sided stencils and index slips)."""
    rng = np.random.default_rng(1)
    k = crf_kernels(xp.asarray(_image(rng, 3, 5, 7)), graph, include_self)[m]
    x, y = xp.asarray(rng.standard_normal((3, 35))), xp.asarray(rng.standard_normal((3, 35)))
    lhs, rhs = float(xp.sum(k.apply(x) * y)), float(xp.sum(x * k.adjoint(y)))
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs))


def test_crf_kernel_adjoint_dot_product_test_catches_a_one_sided_stencil():
    """The dot-product test can fail: a stencil that only sends messages eastwards is not symmetric."""
    rng = np.random.default_rng(2)
    k = crf_kernels(_image(rng, 1, 5, 7), "grid4")[0]
    x, y = rng.standard_normal((1, 35)), rng.standard_normal((1, 35))

    def one_sided(v):
        V = v.reshape(1, 5, 7)  # (N, H, W)
        out = np.zeros_like(V)
        out[:, :, :-1] += k.eh * V[:, :, 1:]
        return out.reshape(v.shape)  # (N, P)

    assert abs(np.sum(one_sided(x) * y) - np.sum(x * one_sided(y))) > 1e-3


def test_crf_dense_kernel_keeps_memory_bounded_by_building_in_place():
    """The dense build writes into the given buffer: no (N, P, P) float64 temporary of its own."""
    rng = np.random.default_rng(3)
    img = _image(rng, 3).astype(np.float32)
    buf = np.empty((3, 20, 20), np.float32)
    k = crf_kernels(img, "dense", out=buf)[0]
    assert k.K is buf and k.K.dtype == np.float32
    np.testing.assert_allclose(np.diagonal(buf, axis1=1, axis2=2), 1.0)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_crf_symmetric_matvec_reads_the_upper_triangle_only(dtype, tol):
    """BLAS symv from the upper triangle equals the full symmetric product; NaN below the diagonal is never read."""
    rng = np.random.default_rng(5)
    A = rng.standard_normal((3, 30, 30))
    S = (A + A.transpose(0, 2, 1)).astype(dtype)  # symmetric
    x = rng.standard_normal((3, 2, 30)).astype(dtype)[:, 1]  # a strided map, as the op passes U[:, 1]
    stored = S.copy()
    stored[:, np.tril_indices(30, -1)[0], np.tril_indices(30, -1)[1]] = np.nan
    got = symmetric_matvec(stored, x)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, np.einsum("nij,nj->ni", S.astype(np.float64), x), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_crf_symmetric_matvec_calls_the_same_blas_routine_as_scipys_wrapper(dtype):
    """The GIL-free call through `scipy.linalg.cython_blas` gives SciPy's `symv` result bit for bit
    (same routine, same library), for a strided map and an empty batch; SciPy's wrapper is the fallback."""
    from scipy.linalg.blas import get_blas_funcs

    assert crf_dense._symv_for(dtype)[0] is not None  # the ctypes path is the one taken here
    rng = np.random.default_rng(9)
    K = rng.standard_normal((3, 50, 50)).astype(dtype)  # only its upper triangle is read
    x = rng.standard_normal((3, 2, 50)).astype(dtype)[:, 0]  # strided
    wrapper = get_blas_funcs("symv", (K,))
    expected = np.stack([wrapper(1.0, Kn.T, xn, lower=1) for Kn, xn in zip(K, x)])
    np.testing.assert_array_equal(symmetric_matvec(K, x), expected)
    assert symmetric_matvec(K[:0], x[:0]).shape == (0, 50)
    with pytest.raises(TypeError, match="float32 or float64"):
        symmetric_matvec(K.astype(np.float16), x.astype(np.float16))


def test_crf_symmetric_matvec_falls_back_to_scipys_wrapper(monkeypatch):
    """Without SciPy's C-level interface the wrapper computes the same product."""
    rng = np.random.default_rng(10)
    K, x = rng.standard_normal((2, 20, 20)), rng.standard_normal((2, 20))
    fast = symmetric_matvec(K, x)
    monkeypatch.setitem(crf_dense._SYMV, np.dtype(np.float64), (None, None))
    np.testing.assert_array_equal(symmetric_matvec(K, x), fast)


def test_crf_dense_kernel_cpu_computes_the_upper_triangle():
    """On the CPU the build writes the entries j >= i, exactly e^{-(I_i-I_j)^2/2}, and no column left of its row block."""
    rng = np.random.default_rng(6)
    img = rng.standard_normal((2, 1, 9, 30))  # P = 270: three row blocks of 128
    buf = np.full((2, 270, 270), -7.0)
    crf_kernels(img, "dense", out=buf)
    I = img.reshape(2, 270)
    exact = np.exp(-0.5 * (I[:, :, None] - I[:, None, :]) ** 2)
    upper = np.triu(np.ones((270, 270), bool))
    np.testing.assert_allclose(buf[:, upper], exact[:, upper], rtol=1e-15, atol=0)
    rows, cols = np.indices((270, 270))
    assert np.all(buf[:, cols < rows // 128 * 128] == -7.0)  # left of each row block: never written
    below = ~upper & (cols >= rows // 128 * 128)  # inside a diagonal block: written, exactly
    np.testing.assert_allclose(buf[:, below], exact[:, below], rtol=1e-15, atol=0)


@pytest.mark.parametrize("graph", ["dense", "grid4"])
def test_crf_kernel_image_vjp_matches_finite_differences(xp, graph):
    """d(aᵀ K(I) b)/dI, the feature gradient that reaches the image (docs/derivations/image_gradient.md)."""
    rng = np.random.default_rng(4)
    img = rng.standard_normal((2, 1, 4, 5))
    a, b = rng.standard_normal((2, 20)), rng.standard_normal((2, 20))

    def f(im):
        return float(xp.sum(xp.asarray(a) * crf_kernels(xp.asarray(im), graph)[0].apply(xp.asarray(b))))

    got = as_numpy(crf_kernels(xp.asarray(img), graph)[0].image_vjp(xp.asarray(a), xp.asarray(b)))
    num, h = np.zeros((2, 20)), 1e-6
    for idx in np.ndindex(2, 20):
        d = np.zeros((2, 20))
        d[idx] = h
        num[idx] = (f(img + d.reshape(img.shape)) - f(img - d.reshape(img.shape))) / (2 * h)
    np.testing.assert_allclose(got, num, rtol=0, atol=1e-6 * np.abs(num).max())


def test_crf_dense_image_vjp_filter_form_equals_dense_form():
    r"""docs/derivations/image_gradient.md: with S = (D + Dᵀ) ⊙ K, D = a bᵀ, ∇_I = -(I ⊙ S1 - S I) equals the filter-only form."""
    rng = np.random.default_rng(5)
    img = rng.standard_normal((1, 1, 4, 5))
    a, b = rng.standard_normal((1, 20)), rng.standard_normal((1, 20))
    K = brute_force_kernel(img[0, 0], "dense", 0, include_self=False)
    D = np.outer(a[0], b[0])
    S = (D + D.T) * K
    I = img.reshape(20)
    dense_form = -(I * S.sum(axis=1) - S @ I)
    filter_form = crf_kernels(img, "dense")[0].image_vjp(a, b)[0]
    np.testing.assert_allclose(filter_form, dense_form, rtol=0, atol=1e-14)


def test_crf_default_weights_and_shapes():
    np.testing.assert_array_equal(F.crf_default_weights("dense"), [1.0, 1.0])
    np.testing.assert_array_equal(F.crf_default_weights("grid4", per_label=True), np.full((2, 2), 0.25))
    with pytest.raises(ValueError, match="graph"):
        F.crf_default_weights("grid8")


@pytest.mark.parametrize("graph", ["dense", "grid4"])
def test_crf_spectral_radius_matches_eigvalsh(xp, graph):
    rng = np.random.default_rng(6)
    img = rng.standard_normal((2, 1, 6, 7))
    got = F.crf_spectral_radius(xp.asarray(img), graph, n_power_iter=300)
    for n in range(2):
        for m in range(2):
            lam = np.linalg.eigvalsh(brute_force_kernel(img[n, 0], graph, m, False))
            assert got[n, m] == pytest.approx(np.abs(lam).max(), rel=1e-4)


@pytest.mark.parametrize("graph", ["dense", "grid4"])
def test_crf_default_weights_are_contractive_on_standardised_40x40_rois(graph):
    """The contraction bound of docs/derivations/mean_field.md: ½ Σ w λ_max ≈ 0.85 (dense) and ≈ 0.87 (grid4) at the default weights, below 1."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[:40, :40]
    blob = np.exp(-((y - 20) ** 2 + (x - 18) ** 2) / 150.0) + 0.3 * rng.standard_normal((40, 40))
    img = ((blob - blob.mean()) / blob.std()).reshape(1, 1, 40, 40)
    bound = F.crf_contraction_bound(F.crf_default_weights(graph), img, graph)
    assert 0.5 < bound[0] < 1.0
    assert F.crf_contraction_bound(4 * F.crf_default_weights(graph), img, graph)[0] > 1.0
