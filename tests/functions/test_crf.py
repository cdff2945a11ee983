"""F.mean_field_crf: closed-form oracles (fixed points, limits, identities) and the hand-written
backward against the composite built from primitive ops (docs/derivations/crf_backward.md)."""
from __future__ import annotations

import gc
import itertools
import weakref

import numpy as np
import pytest

import tinyseg.functions as F
from tinyseg.autodiff import Tensor, no_grad
from tinyseg.backend import as_numpy
from tinyseg.functions import crf_chunks
from tinyseg.gradcheck import GRADCHECK_CASES, run_case

from helpers import brute_force_kernel, crf_inputs  # tests/ is on sys.path (rootdir conftest)

CONFIGS = [  # (weights shape, keyword arguments): every option of the op
    ((2,), {}),
    ((2, 2), {"include_self": True}),
    ((2,), {"unary_domain": "prob"}),
    ((2, 2), {"authors_self_message": True}),
    ((2,), {"graph": "grid4"}),
    ((2, 2), {"graph": "grid4", "include_self": True, "unary_domain": "prob"}),
    ((2,), {"graph": "grid4", "authors_self_message": True}),
]
IDS = ["dense", "dense_per_label_self", "dense_prob", "dense_authors", "grid4", "grid4_per_label_self_prob",
       "grid4_authors"]


_inputs = crf_inputs


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _q(fn, *args, **kw):
    with no_grad():
        return _softmax(as_numpy(fn(*args, **kw).data))


@pytest.mark.parametrize("w_shape,kw", CONFIGS, ids=IDS)
def test_crf_rows_of_q_sum_to_one(xp, w_shape, kw):
    q = _q(F.mean_field_crf, *_inputs(xp, w_shape=w_shape), n_iter=4, **kw)
    np.testing.assert_allclose(q.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert np.all((q > 0) & (q < 1))


@pytest.mark.parametrize("graph", ["dense", "grid4"])
@pytest.mark.parametrize("n_iter", [0, 1, 5])
def test_crf_zero_weights_give_exactly_softmax_of_unary(xp, graph, n_iter):
    u, img, _ = _inputs(xp)
    z = F.mean_field_crf(u, img, xp.zeros(2), n_iter=n_iter, graph=graph)
    np.testing.assert_array_equal(as_numpy(z.data), as_numpy(u))


def test_crf_prob_domain_uses_softmax_probabilities_as_the_unary(xp):
    """The paper's printed update: with w = 0, Z = P, so Q = softmax(P) is at most e/(1+e) confident."""
    u, img, _ = _inputs(xp, scale=20.0)
    z = as_numpy(F.mean_field_crf(u, img, xp.zeros(2), n_iter=3, unary_domain="prob").data)
    np.testing.assert_allclose(z, _softmax(as_numpy(u)), rtol=0, atol=1e-15)
    assert _softmax(z).max() <= np.e / (1 + np.e) + 1e-12


@pytest.mark.parametrize("w_shape,kw", CONFIGS, ids=IDS)
def test_crf_potts_conventions_agree(xp, w_shape, kw):
    """μ = 11ᵀ − I (penalty) and the attractive identity give the same Q (docs/derivations/mean_field.md)."""
    args = _inputs(xp, w_shape=w_shape)
    q_potts = _q(F.mean_field_crf_composite, *args, n_iter=4, compatibility="potts", **kw)
    q_attr = _q(F.mean_field_crf_composite, *args, n_iter=4, **kw)
    np.testing.assert_allclose(q_potts, q_attr, rtol=0, atol=1e-14)
    np.testing.assert_allclose(_q(F.mean_field_crf, *args, n_iter=4, **kw), q_potts, rtol=0, atol=1e-13)


@pytest.mark.parametrize("w_shape,kw", CONFIGS, ids=IDS)
def test_crf_hand_written_backward_equals_composite(xp, w_shape, kw):
    """Forward and every gradient (unary, image, weights) agree with autodiff through primitives to 1e-10."""
    u0, i0, w0 = _inputs(xp, seed=3, w_shape=w_shape)
    G = xp.asarray(np.random.default_rng(9).standard_normal(u0.shape))
    results = []
    for fn in (F.mean_field_crf, F.mean_field_crf_composite):
        u, img, w = Tensor(u0.copy(), True), Tensor(i0.copy(), True), Tensor(w0.copy(), True)
        z = fn(u, img, w, n_iter=3, **kw)
        z.backward(G)
        results.append([as_numpy(a) for a in (z.data, u.grad, img.grad, w.grad)])
    for name, a, b in zip(["Z_T", "unary", "image", "weights"], *results):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10 * max(1.0, np.abs(b).max()), err_msg=name)


@pytest.mark.parametrize("graph", ["dense", "grid4"])
def test_crf_image_gradient_matches_directional_finite_differences(xp, graph):
    """A fast float64 FD check of the image gradient (the full element-wise checks run under --gradcheck)."""
    u, img, w = _inputs(xp, seed=4)
    rng = np.random.default_rng(5)
    G = xp.asarray(rng.standard_normal(u.shape))
    t = Tensor(img.copy(), True)
    F.mean_field_crf(u, t, w, n_iter=3, graph=graph).backward(G)
    for _ in range(3):
        v, h = xp.asarray(rng.standard_normal(img.shape)), 1e-6
        lp = float(xp.sum(F.mean_field_crf(u, img + h * v, w, n_iter=3, graph=graph).data * G))
        lm = float(xp.sum(F.mean_field_crf(u, img - h * v, w, n_iter=3, graph=graph).data * G))
        assert (lp - lm) / (2 * h) == pytest.approx(float(xp.sum(t.grad * v)), rel=1e-6)


@pytest.mark.gradcheck
@pytest.mark.parametrize("name", sorted(n for n in GRADCHECK_CASES if n.startswith("mean_field_crf/")))
def test_crf_gradcheck_cases_pass_finite_differences(xp, name):
    """Element-wise float64 central differences for unary, image and weights, 1e-6 relative."""
    run_case(GRADCHECK_CASES[name], xp)


def test_crf_gradcheck_cases_cover_every_option():
    names = {n for n in GRADCHECK_CASES if n.startswith("mean_field_crf/")}
    assert {"mean_field_crf/dense", "mean_field_crf/grid4", "mean_field_crf/dense_prob_domain",
            "mean_field_crf/dense_per_label_include_self", "mean_field_crf/grid4_authors_self_message"} <= names


def test_crf_authors_self_message_is_q_times_kernel_row_sums():
    """The authors' code (`authors_self_message=True`): the message is Q ⊙ (K·1); without the flag it is the stencil K·Q.

    Both are compared with the dense brute-force kernel."""
    u, img, w = _inputs(np, seed=6, w_shape=(2, 2))
    Ks = [brute_force_kernel(img[n, 0], "grid4", m, False) for n in range(2) for m in range(2)]
    Q0 = _softmax(u).reshape(2, 2, 20)  # (N, 2, P)
    for authors in (True, False):
        z = F.mean_field_crf(u, img, w, n_iter=1, graph="grid4", authors_self_message=authors).data
        for n in range(2):
            msg = [Q0[n] * Ks[2 * n + m].sum(axis=1) if authors else Q0[n] @ Ks[2 * n + m] for m in range(2)]
            want = u[n].reshape(2, 20) + sum(w[m][:, None] * msg[m] for m in range(2))
            np.testing.assert_allclose(z[n].reshape(2, 20), want, rtol=0, atol=1e-13)


def _exact_marginals(u, img, w, graph):
    """P(y_i = 1) by enumerating all 2^P labellings of a tiny image (P = 9: 512)."""
    P = u.shape[-1] * u.shape[-2]
    Kw = sum(wm * brute_force_kernel(img[0, 0], graph, m, False) for m, wm in enumerate(w))
    Y = np.array(list(itertools.product([0, 1], repeat=P)))  # (2^P, P)
    same = (Y[:, :, None] == Y[:, None, :])  # (2^P, P, P): the attractive form of Potts
    score = u[0].reshape(2, P)[Y, np.arange(P)].sum(axis=1) + 0.5 * (same * Kw).sum(axis=(1, 2))
    p = np.exp(score - score.max())
    return (p / p.sum()) @ Y


@pytest.mark.parametrize("graph", ["dense", "grid4"])
def test_crf_mean_field_marginals_close_to_brute_force_with_error_shrinking_like_w_squared(graph):
    rng = np.random.default_rng(0)
    u, img = rng.standard_normal((1, 2, 3, 3)), rng.standard_normal((1, 1, 3, 3))
    errors = []
    for wv in (0.2, 0.1, 0.05):
        w = np.array([wv, wv])
        q = _q(F.mean_field_crf, u, img, w, n_iter=100, graph=graph)[0, 1].reshape(9)
        errors.append(np.abs(q - _exact_marginals(u, img, w, graph)).max())
    assert errors[0] < 0.02
    for big, small in zip(errors, errors[1:]):
        assert 3.5 < big / small < 4.7  # halving w divides the error by about 4


@pytest.mark.parametrize("graph", ["dense", "grid4"])
def test_crf_converges_to_a_fixed_point_in_the_contractive_regime(graph):
    rng = np.random.default_rng(1)
    u, img = rng.standard_normal((2, 2, 12, 12)), rng.standard_normal((2, 1, 12, 12))
    w = F.crf_default_weights(graph)
    rho = F.crf_contraction_bound(w, img, graph).max()
    assert rho < 1
    q = {T: _q(F.mean_field_crf, u, img, w, n_iter=T, graph=graph) for T in (1, 5, 10, 60, 61)}
    assert np.abs(q[61] - q[60]).max() < 1e-8  # fixed-point residual ‖Q − softmax(U + Σ w K Q)‖
    # Geometric estimate in the logit difference δ (σ is 1/4-Lipschitz):
    # ‖δ10 − δ5‖ ≤ ρ^4/(1−ρ)·‖δ1 − δ0‖.
    delta = {T: np.log(q[T][:, 1] / q[T][:, 0]) for T in q}
    delta[0] = u[:, 1] - u[:, 0]
    bound = rho ** 4 / (1 - rho) * np.linalg.norm(delta[1] - delta[0])
    assert np.linalg.norm(delta[10] - delta[5]) <= bound


@pytest.mark.parametrize("graph", ["dense", "grid4"])
def test_crf_is_equivariant_to_flips_and_transposes(xp, graph):
    u, img, w = _inputs(xp, N=2, H=5, W=5, w_shape=(2, 2))
    z = as_numpy(F.mean_field_crf(u, img, w, n_iter=3, graph=graph).data)
    for flip in (lambda a: a[..., ::-1, :], lambda a: a[..., ::-1], lambda a: a.swapaxes(-1, -2)):
        uf, imgf = xp.ascontiguousarray(flip(u)), xp.ascontiguousarray(flip(img))
        zf = F.mean_field_crf(uf, imgf, w, n_iter=3, graph=graph)
        np.testing.assert_allclose(as_numpy(zf.data), flip(z), rtol=0, atol=1e-13)


def test_crf_batch_images_are_independent_across_chunks(monkeypatch):
    """Image b's output and gradients do not depend on the other images, whatever the chunking."""
    u0, i0, w0 = _inputs(np, seed=7, N=5, w_shape=(2, 2))
    G = np.random.default_rng(8).standard_normal(u0.shape)

    def run(u, i, g):
        ut, it, wt = Tensor(u, True), Tensor(i, True), Tensor(w0.copy(), True)
        z = F.mean_field_crf(ut, it, wt, n_iter=3)
        z.backward(g)
        return z.data, ut.grad, it.grad, wt.grad

    whole = run(u0, i0, G)
    monkeypatch.setattr(crf_chunks, "_CHUNK_BYTES", 2 * 20 * 20 * 8)  # force chunks of 2 images
    for keep_bytes, threads in ((1 << 30, "1"), (1 << 30, "2"), (2 * 20 * 20 * 8, "2"), (0, "1")):
        monkeypatch.setattr(crf_chunks, "_WAVE_BYTES", keep_bytes)  # keep all 3 chunks, 1, none
        monkeypatch.setenv("TINYSEG_NUM_THREADS", threads)
        chunked = run(u0, i0, G)
        for a, b in zip(whole, chunked):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-14)
    alone = run(u0[3:4], i0[3:4], G[3:4])
    for a, b in zip(whole[:3], alone[:3]):
        np.testing.assert_allclose(a[3:4], b, rtol=0, atol=1e-14)


@pytest.mark.parametrize("threads", ["1", "2"])
@pytest.mark.parametrize("wave_chunks, kept, rebuilt", [(3, [0, 1, 2], []), (2, [1, 2], [0]), (1, [2], [1, 0])])
def test_crf_dense_cpu_builds_in_waves_keeps_the_last_and_rebuilds_the_rest(monkeypatch, wave_chunks, kept, rebuilt,
                                                                            threads):
    """3 chunks in waves of at most `wave_chunks`, the last one full: after the forward pass only the
    last wave's kernels are alive; the backward pass uses them first and builds the earlier waves
    again, last first (on two threads two builds may start in either order)."""
    u0, i0, w0 = _inputs(np, seed=7, N=6)
    G = np.random.default_rng(8).standard_normal(u0.shape)

    def run() -> tuple[np.ndarray, np.ndarray, list[int]]:
        ut = Tensor(u0, True)
        z = F.mean_field_crf(ut, Tensor(i0), Tensor(w0), n_iter=2)
        gc.collect()
        alive = sorted(chunk for chunk, ref in built if ref() is not None)
        z.backward(G)
        return z.data, ut.grad, alive

    built: list[tuple[int, weakref.ref]] = []
    whole = run()
    chunk_bytes = 2 * 20 * 20 * 8
    monkeypatch.setattr(crf_chunks, "_CHUNK_BYTES", chunk_bytes)  # chunks of 2 images
    monkeypatch.setattr(crf_chunks, "_WAVE_BYTES", wave_chunks * chunk_bytes)
    monkeypatch.setenv("TINYSEG_NUM_THREADS", threads)

    def counting(image, *args, **kwargs):
        ks = F.crf_kernels(image, *args, **kwargs)
        first = np.flatnonzero((i0[:, 0] == image[0, 0]).all(axis=(1, 2)))[0]  # which images
        built.append((int(first) // 2, weakref.ref(ks[0].K)))
        return ks

    monkeypatch.setattr(crf_chunks, "crf_kernels", counting)
    z, gu, alive = run()
    assert alive == kept
    chunks = [chunk for chunk, _ in built]
    assert sorted(chunks[:3]) == [0, 1, 2]
    assert chunks[3:] == rebuilt if threads == "1" else sorted(chunks[3:]) == sorted(rebuilt)
    np.testing.assert_allclose(z, whole[0], rtol=0, atol=1e-14)
    np.testing.assert_allclose(gu, whole[1], rtol=0, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("graph", ["dense", "grid4"])
def test_crf_no_nan_or_inf_for_huge_unaries_or_strong_weights(xp, graph, dtype):
    rng = np.random.default_rng(10)
    for u_scale, w in ((1e4, 1.0), (1.0, 1e3), (1e4, -1e3)):
        u = Tensor(xp.asarray((u_scale * rng.standard_normal((2, 2, 6, 6))).astype(dtype)), True)
        img = Tensor(xp.asarray(rng.standard_normal((2, 1, 6, 6)).astype(dtype)), True)
        wt = Tensor(xp.asarray(np.array([w, w], dtype)), True)
        z = F.mean_field_crf(u, img, wt, n_iter=5, graph=graph)
        z.backward(xp.asarray(rng.standard_normal(z.shape).astype(dtype)))
        for a in (z.data, u.grad, img.grad, wt.grad):
            assert a.dtype == dtype and bool(xp.all(xp.isfinite(a)))


def test_crf_float32_agrees_with_float64():
    u, img, w = _inputs(np, seed=11, N=2, H=8, W=8)
    z64 = F.mean_field_crf(u, img, w, n_iter=5).data
    z32 = F.mean_field_crf(u.astype(np.float32), img.astype(np.float32), w.astype(np.float32), n_iter=5).data
    assert z32.dtype == np.float32
    np.testing.assert_allclose(z32, z64, rtol=0, atol=1e-5 * np.abs(z64).max())


@pytest.mark.parametrize("kwargs,match", [
    ({"unary": np.zeros((2, 3, 4, 5))}, "unary"),
    ({"image": np.zeros((2, 1, 4, 4))}, "image"),
    ({"weights": np.zeros(3)}, "weights"),
    ({"graph": "grid8"}, "graph"),
    ({"unary_domain": "energy"}, "unary_domain"),
    ({"n_iter": -1}, "n_iter"),
])
def test_crf_rejects_bad_input_with_a_message(kwargs, match):
    args = {"unary": np.zeros((2, 2, 4, 5)), "image": np.zeros((2, 1, 4, 5)), "weights": np.zeros(2)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        F.mean_field_crf(**args)
