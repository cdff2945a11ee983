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


def test_bootstrap_ci_contains_the_estimate_and_narrows_with_more_images() -> None:
    rng = np.random.default_rng(0)
    g = rng.random((200, 8, 8)) < 0.5
    p = np.where(rng.random(g.shape) < 0.8, g, ~g)
    d = metrics.dice_pooled(p, g)
    lo, hi = metrics.bootstrap_dice_ci(p, g, n_boot=500)
    lo2, hi2 = metrics.bootstrap_dice_ci(p[:20], g[:20], n_boot=500)
    assert lo < d < hi and (hi - lo) < (hi2 - lo2)
