"""Lesson 04, exercise 2: how large ε must be before the prediction changes, and
where pixels flip.

A briefly trained FCN 1 predicts on 8 test ROIs at I and at I + R(ε) for growing ε.
‖I‖ is about 40 (1600 pixels of about unit variance after normalisation). With
ε = 0.1 (the paper's value, ‖R‖/‖I‖ ≈ 0.0025) only a handful of pixels flip; one
percent of the pixels flips only at an ε several times larger, and even at
ε = ‖I‖/2 most pixels keep their label. The pixels that flip lie along the
*predicted* contour, where the two logits are close and a small push changes the
argmax, even though R itself is spread over the whole ROI (the lesson's finding 3).

Run: ``python lessons/solutions/04_eps_flip.py`` (exits 1 if a claim does not hold;
trains FCN 1 for two epochs on 16 masses, some seconds).
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

import tinyseg as ts
from tinyseg import data, metrics
from tinyseg.experiments import fast_subset


def main() -> int:
    ds = data.load_dataset("phantom")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = ts.TrainConfig(variant="fcn", epochs=2, seed=0, device="cpu",
                             val_frac=0.0)
        run = ts.fit(cfg, Path(tmp) / "run", dataset=fast_subset(ds, 16, 4),
                     quiet=True)
        model = run.model
        x = run.normalize(ds.test.images[:8]).astype(np.float32)
    y = ds.test.labels[:8]
    image = ts.Tensor(x, requires_grad=True)
    ts.F.cross_entropy(model(image), y).backward()
    g = ts.as_numpy(image.grad)
    with ts.no_grad():
        clean = ts.as_numpy(model.predict(x))
    x64 = x.reshape(8, -1).astype(np.float64)                    # (8, H*W)
    norm_i = float(np.sqrt((x64 ** 2).sum(1)).mean())
    band = metrics.trimap_band(clean, 2)    # within 2 px of the predicted contour
    flipped_at = {}
    for eps in (0.1, 0.5, 1, 2, 5, 10, 20):
        with ts.no_grad():
            r = ts.adversarial.adversarial_perturbation(g, eps)
            adv = ts.as_numpy(model.predict(x + r))
        flips = adv != clean
        flipped_at[eps] = (float(flips.mean()),
                           float(flips[band].sum() / max(flips.sum(), 1)))
        print(f"ε = {eps:4}: ε/‖I‖ = {eps / norm_i:.4f}, "
              f"{100 * flips.mean():5.2f} % of pixels flip, "
              f"{100 * flipped_at[eps][1]:3.0f} % of them "
              "within 2 px of the predicted contour "
              f"(a band of {100 * band.mean():.0f} % of the pixels)")
    first = min(e for e, (share, _) in flipped_at.items() if share >= 0.01)
    print(f"first ε with ≥ 1 % of the pixels flipped: {first} (‖I‖ ≈ {norm_i:.0f})")
    ok = (flipped_at[0.1][0] < 0.005 and first >= 0.5 and flipped_at[20][0] < 0.5
          # flips concentrate at the predicted contour: their share in the band
          # is over twice its area
          and all(in_band > 2 * band.mean()
                  for share, in_band in flipped_at.values() if share > 0))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
