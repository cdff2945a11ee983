"""Lesson 06, exercise 2: thinning the pixels raises McNemar's p towards the
image-level test.

McNemar's test treats every pixel as an independent trial. Neighbouring pixels are
not independent: an error at the contour comes with errors at its neighbours.
Keeping every b-th pixel in each direction divides the discordant counts by about
b², and the p-value grows with b. The pair here is the prior-only baseline and FCN 1
after two epochs on 16 masses, two segmenters of about the same Dice. On all pixels
the pixel test calls their difference significant, while the image-level tests do
not; keeping every third pixel is already enough for the pixel test to agree with
them. An ROI carries far fewer independent decisions than its 1600 pixels.

Run: ``python lessons/solutions/06_mcnemar_thinning.py`` (exits 1 if a claim does
not hold; trains FCN 1 for two epochs on 16 masses, a few seconds).
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import tinyseg as ts
from tinyseg import data, metrics
from tinyseg.experiments import fast_subset


def main() -> int:
    ds = data.load_dataset("phantom")
    target = ds.test.labels
    prior = data.empirical_prior(ds.train.labels)
    prior_only = data.prior_baseline_predict(prior, len(target))
    with tempfile.TemporaryDirectory() as tmp:
        cfg = ts.TrainConfig(variant="fcn", epochs=2, seed=0, device="cpu",
                             val_frac=0.0)
        run = ts.fit(cfg, Path(tmp) / "run", dataset=fast_subset(ds, 16, 4),
                     quiet=True)
        fcn = run.predict(ds.test.images)
    image_level = metrics.paired_image_test(
        metrics.dice_per_image(prior_only, target),
        metrics.dice_per_image(fcn, target))
    print(f"pooled Dice: prior-only {metrics.dice_pooled(prior_only, target):.4f}, "
          f"FCN {metrics.dice_pooled(fcn, target):.4f}; "
          f"image level: sign test p = {image_level.p_sign:.3f}, "
          f"Wilcoxon p = {image_level.p_wilcoxon:.3f}")
    p = {}
    for b in (1, 2, 3, 4, 6):
        mc = metrics.mcnemar_pixels(prior_only[:, ::b, ::b], fcn[:, ::b, ::b],
                                    target[:, ::b, ::b])
        p[b] = mc.p_exact
        print(f"b = {b}: {target[:, ::b, ::b][0].size:4} pixels per ROI, "
              f"{mc.n01 + mc.n10:5} discordant, McNemar p = {mc.p_exact:.2e}")
    ok = (image_level.p_wilcoxon > 0.05 and p[1] < 0.01 and p[1] < p[2] < p[3]
          and all(p[b] > 0.05 for b in (3, 4, 6)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
