"""Lesson 06, exercise 3: what the bootstrap interval measures, and what it assumes.

`bootstrap_dice_ci` resamples test images with replacement; the spread of the pooled
Dice over resamples estimates how much it would vary from one set of n independent
test images to another, which falls like 1/√n. Fewer images give a wider interval.
Copying the test set four times gives an interval about half as wide, although no
information was added: the bootstrap believes the copies are new, independent
images. The interval is only as honest as that assumption, the same one that makes
the pixel-level McNemar test anti-conservative when pixels stand in for images. It
also says nothing about training seeds (Table 2 reports their spread separately).

Run: ``python lessons/solutions/06_bootstrap_width.py`` (exits 1 if a claim does not
hold).
"""
from __future__ import annotations

import sys

import numpy as np

from tinyseg import data, metrics


def width(pred: np.ndarray, target: np.ndarray) -> float:
    lo, hi = metrics.bootstrap_dice_ci(pred, target, n_boot=4000, seed=0)
    return hi - lo


def main() -> int:
    ds = data.load_dataset("phantom")
    target = ds.test.labels
    prior = data.empirical_prior(ds.train.labels)
    pred = data.prior_baseline_predict(prior, len(target))
    widths = {n: width(pred[:n], target[:n]) for n in (58, 29, 14)}
    for n, w in widths.items():
        print(f"first {n:2} test images: 95 % interval width {w:.4f}")
    copied = width(np.concatenate([pred] * 4), np.concatenate([target] * 4))
    ratio = copied / widths[58]
    print(f"the 58 images copied 4 times: width {copied:.4f}, "
          f"{ratio:.2f} of the original (1/√4 = 0.50)")
    ok = widths[58] < widths[29] < widths[14] and 0.4 < ratio < 0.6
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
