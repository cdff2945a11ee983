"""Lesson 06, exercise 1: trimap bands and accuracies with the chessboard metric
against the Euclidean one.

A pixel is in the band of width w when a pixel of the other class lies within
distance w. The chessboard ball (max(|du|, |dv|) ≤ w, a square) contains the
Euclidean one (a disc), so the chessboard band contains the Euclidean band at every
width and is larger: already at w = 1 it adds the diagonal neighbours. The extra
pixels lie further from the contour, where both segmenters are more often right, so
the chessboard accuracy is higher at every width. Between the two baselines of Table
2, prior-only and Otsu, the ranking is the same under both metrics and for the
pooled and the mean per-image accuracies: the metric moves the curves, not the
order.

Run: ``python lessons/solutions/06_chessboard_trimap.py`` (exits 1 if a claim does
not hold).
"""
from __future__ import annotations

import sys

import numpy as np

from tinyseg import data, metrics
from tinyseg.data.baselines import otsu_baseline


def main() -> int:
    ds = data.load_dataset("phantom")
    target = ds.test.labels
    prior = data.empirical_prior(ds.train.labels)
    preds = {"prior-only": data.prior_baseline_predict(prior, len(target)),
             "otsu": otsu_baseline(ds.test.images)}
    widths = (1, 2, 3, 4, 5)
    ok = True
    for w in widths:
        e = metrics.trimap_band(target, w)
        c = metrics.trimap_band(target, w, metric="chessboard")
        print(f"w = {w}: Euclidean band {int(e.sum()):6} pixels, "
              f"chessboard {int(c.sum()):6} (×{c.sum() / e.sum():.2f}); "
              f"Euclidean ⊆ chessboard: {not (e & ~c).any()}")
        ok &= not (e & ~c).any() and c.sum() > e.sum()
    acc = {}
    for name, pred in preds.items():
        for metric in ("euclidean", "chessboard"):
            pooled = metrics.trimap_accuracy(pred, target, widths, metric=metric)
            per_image = np.nanmean(metrics.trimap_accuracy(
                pred, target, widths, metric=metric, per_image=True), axis=0)
            acc[name, metric] = pooled, per_image
            print(f"{name:10} {metric:10} "
                  f"pooled {' '.join(f'{a:.3f}' for a in pooled)}; "
                  f"mean per image {' '.join(f'{a:.3f}' for a in per_image)}")
        ok &= bool(np.all(acc[name, "chessboard"][0] > acc[name, "euclidean"][0]))
    same_order = all(np.all(acc["prior-only", m][k] > acc["otsu", m][k])
                     for m in ("euclidean", "chessboard") for k in (0, 1))
    print("prior-only above Otsu at every width, both metrics, "
          f"pooled and per image: {same_order}")
    return 0 if ok and same_order else 1


if __name__ == "__main__":
    sys.exit(main())
