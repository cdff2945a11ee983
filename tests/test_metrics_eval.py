"""Trimap accuracy, McNemar, paired tests and bootstrap CIs against brute force and test vectors."""
from __future__ import annotations

import numpy as np
import pytest

from tinyseg import metrics


def _disk(r: float = 10, n: int = 40) -> np.ndarray:
    yy, xx = np.mgrid[:n, :n]
    return ((yy - 19.5) ** 2 + (xx - 19.5) ** 2 <= r * r).astype(np.int64)


def _brute_band(g: np.ndarray, w: int) -> np.ndarray:
    """Pixels whose distance to the nearest pixel of the other class is ≤ w, by brute force."""
    fg, bg = np.argwhere(g == 1), np.argwhere(g == 0)
    band = np.zeros(g.shape, bool)
    for (i, j) in np.ndindex(g.shape):
        other = bg if g[i, j] else fg
        band[i, j] = np.sqrt(((other - (i, j)) ** 2).sum(1)).min() <= w
    return band


@pytest.mark.parametrize("w", [1, 2, 3])
def test_trimap_band_on_a_disk_matches_brute_force(w: int) -> None:
    g = _disk()
    np.testing.assert_array_equal(metrics.trimap_band(g, w), _brute_band(g, w))


def test_trimap_band_width_one_is_the_inner_and_outer_4_neighbour_boundary() -> None:
    g = _disk().astype(bool)
    up = np.pad(g, 1)
    neighbours_differ = ((up[:-2, 1:-1] != g) | (up[2:, 1:-1] != g) | (up[1:-1, :-2] != g) | (up[1:-1, 2:] != g))
    np.testing.assert_array_equal(metrics.trimap_band(g, 1), neighbours_differ)


def test_trimap_ignores_the_roi_frame_and_empty_masks() -> None:
    g = np.zeros((10, 10), int)
    g[:, :5] = 1  # touches the frame: only the vertical edge is a contour
    band = metrics.trimap_band(g, 1)
    assert band[:, 4].all() and band[:, 5].all() and band.sum() == 20
    assert not metrics.trimap_band(np.zeros((5, 5), int), 2).any()
    assert not metrics.trimap_band(np.ones((5, 5), int), 2).any()


def test_trimap_accuracy_rises_towards_pixel_accuracy_and_is_exact_for_perfect_prediction() -> None:
    g = np.stack([_disk(10), _disk(7)])
    pred = np.stack([_disk(9), _disk(8)])
    acc = metrics.trimap_accuracy(pred, g)
    assert np.all(np.diff(acc) >= 0) and acc[-1] <= 1
    np.testing.assert_array_equal(metrics.trimap_accuracy(g, g), np.ones(5))
    per = metrics.trimap_accuracy(pred, g, per_image=True)
    assert per.shape == (2, 5)


def test_per_image_trimap_rows_are_the_pooled_accuracy_of_each_image_alone() -> None:
    # Band sizes differ between the images, so dividing by the set's band size (not the image's) fails.
    g = np.stack([_disk(10), _disk(5), np.zeros((40, 40), np.int64)])
    pred = np.stack([_disk(9), _disk(7), np.zeros((40, 40), np.int64)])
    per = metrics.trimap_accuracy(pred, g, per_image=True)
    assert per.shape == (3, 5)
    for n in range(3):
        np.testing.assert_allclose(per[n], metrics.trimap_accuracy(pred[n:n + 1], g[n:n + 1]), rtol=1e-12,
                                   err_msg=f"image {n}")
    assert np.isnan(per[2]).all()  # an empty mask has no band
    band = _brute_band(g[1], 2)  # one entry by brute force, independent of trimap_accuracy
    assert per[1, 1] == pytest.approx(((pred[1] == g[1]) & band).sum() / band.sum(), rel=1e-12)
    assert 0 < per[1, 1] < 1


def test_chessboard_trimap_is_dilation_minus_erosion() -> None:
    g = _disk()
    band = metrics.trimap_band(g, 1, metric="chessboard")
    assert band.sum() > metrics.trimap_band(g, 1).sum()  # the square reaches diagonal neighbours too
    with pytest.raises(ValueError, match="chessboard"):
        metrics.trimap_band(g, 1, metric="manhattan")


def test_mcnemar_exact_p_test_vector_small() -> None:
    assert metrics.mcnemar(2, 10).p_exact == pytest.approx(0.03857421875, rel=1e-12)


def test_mcnemar_large_counts_in_log_space() -> None:
    r = metrics.mcnemar(9969, 8956)
    assert r.p_exact == pytest.approx(1.866e-13, rel=2e-3)
    assert r.chi2 == pytest.approx(54.116, rel=1e-4)
    assert r.p_chi2 == pytest.approx(1.890e-13, rel=2e-3)


def test_mcnemar_symmetric_and_bounded() -> None:
    assert metrics.mcnemar(5, 5).p_exact == 1.0
    assert metrics.mcnemar(0, 0).p_exact == 1.0
    assert metrics.mcnemar(3, 9).p_exact == metrics.mcnemar(9, 3).p_exact
    with pytest.raises(ValueError):
        metrics.mcnemar(-1, 2)


def test_mcnemar_pixels_counts_discordant_correctness() -> None:
    t = np.array([[[1, 1, 0, 0]]])
    a = np.array([[[1, 0, 0, 1]]])  # right, wrong, right, wrong
    b = np.array([[[1, 1, 1, 1]]])  # right, right, wrong, wrong
    r = metrics.mcnemar_pixels(a, b, t)
    assert (r.n01, r.n10) == (1, 1) and r.table == ((1, 1), (1, 1))


def test_paired_image_test_sign_and_wilcoxon() -> None:
    a = np.linspace(0.7, 0.9, 20)
    r = metrics.paired_image_test(a, a + 0.01)
    assert r.n == 20 and r.p_sign == pytest.approx(2 * 0.5 ** 20) and r.p_wilcoxon < 1e-3
    assert r.mean_difference == pytest.approx(0.01)
    with pytest.raises(ValueError):
        metrics.paired_image_test(a, a[:5])


def test_bootstrap_ci_covers_the_true_pooled_dice_about_95_percent_of_the_time() -> None:
    """Many test sets drawn from a model whose population pooled Dice is known.

    Image n has a mass fraction q_n ~ U(0.1, 0.5) and flips each pixel with probability
    f_n ~ U(0, 0.4) (q and f independent), so per pixel E[TP] = E[q](1 − E[f]) and
    E[FP] + E[FN] = E[f]: the pooled Dice of an infinite test set is
    2·0.3·0.8 / (2·0.3·0.8 + 0.2) = 12/17. Images differ, so only resampling whole images gives
    the right width. 400 seeded test sets of 40 images: binomial sd of the coverage about 0.011.
    """
    truth = 2 * 0.3 * 0.8 / (2 * 0.3 * 0.8 + 0.2)
    rng = np.random.default_rng(0)
    covered, widths, estimates = 0, [], []
    for r in range(400):
        q, f = rng.uniform(0.1, 0.5, (40, 1, 1)), rng.uniform(0.0, 0.4, (40, 1, 1))
        g = rng.random((40, 8, 8)) < q
        p = g ^ (rng.random((40, 8, 8)) < f)
        lo, hi = metrics.bootstrap_dice_ci(p, g, n_boot=500, level=0.95, seed=r)
        covered += lo <= truth <= hi
        widths.append(hi - lo)
        estimates.append(metrics.dice_pooled(p, g))
    assert abs(np.mean(estimates) - truth) < 0.005  # the generative model has the Dice claimed
    assert 0.92 <= covered / 400 <= 0.98, covered / 400
    # The mean width matches ±1.96 sd of the estimate across test sets (a 90 % interval is 16 % narrower).
    assert np.mean(widths) / (2 * 1.959964 * np.std(estimates)) == pytest.approx(1, abs=0.08)


def test_bootstrap_ci_contains_the_estimate_and_narrows_with_more_images() -> None:
    rng = np.random.default_rng(0)
    g = rng.random((200, 8, 8)) < 0.5
    p = np.where(rng.random(g.shape) < 0.8, g, ~g)
    d = metrics.dice_pooled(p, g)
    lo, hi = metrics.bootstrap_dice_ci(p, g, n_boot=500)
    lo2, hi2 = metrics.bootstrap_dice_ci(p[:20], g[:20], n_boot=500)
    assert lo < d < hi and (hi - lo) < (hi2 - lo2)
