"""Lesson 02, exercise 3: only the difference of the two prior rows matters, and
training keeps their sum.

Softmax over the two classes ignores a constant added to both logits of a pixel, so
the bias b + c·1 gives the same probabilities and the same loss as b. Its gradient
therefore has no component along (1, 1) at any pixel: ∂L/∂b_0 = −∂L/∂b_1 (for two
classes, p_0 − y_0 = −(p_1 − y_1)). Adam's step is per coordinate, m/(√v + ε);
opposite gradients give opposite steps, so b_0 + b_1 stays where it started while
b_1 − b_0, the log-odds of the prior, is learned.

Run: ``python lessons/solutions/02_prior_rows.py`` (exits 1 if a claim does not
hold; trains FCN 1 for one epoch on 16 masses, a few seconds).
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

import tinyseg as ts
from tinyseg import data
from tinyseg.experiments import fast_subset


def main() -> int:
    rng = np.random.default_rng(0)
    ds = data.load_dataset("phantom")
    prior = data.empirical_prior(ds.train.labels)
    logits = rng.standard_normal((3, 2, 40, 40))
    target = ds.train.labels[:3]

    layer = ts.nn.PositionPrior((40, 40), prior, dtype=np.float64)
    loss = ts.F.cross_entropy(layer(ts.Tensor(logits)), target)
    loss.backward()
    g = layer.bias.grad                                               # (2, 40, 40)
    shifted = ts.F.cross_entropy(ts.F.add_prior(logits, layer.bias.data + 5.0),
                                 target)
    d_loss = abs(shifted.item() - loss.item())
    d_grad = np.abs(g[0] + g[1]).max()
    print(f"(a) loss with both rows + 5: |Δ| = {d_loss:.1e} (expected < 1e-12)")
    print(f"(b) max |∂L/∂b_0 + ∂L/∂b_1| = {d_grad:.1e}, "
          f"max |∂L/∂b_1| = {np.abs(g[1]).max():.1e} "
          "(expected: the sum zero to rounding)")

    subset = fast_subset(ds, 16, 4)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = ts.TrainConfig(variant="fcn", epochs=1, seed=0, device="cpu",
                             val_frac=0.0)
        run = ts.fit(cfg, Path(tmp) / "run", dataset=subset, quiet=True)
        b = run.model.fcn.prior.bias.numpy().astype(np.float64)
    # fit starts the bias at the prior of the masses it trains on
    b_init = ts.nn.prior_logit_init(data.empirical_prior(subset.train.labels),
                                    (40, 40)).astype(np.float64)
    moved_diff = np.abs((b[1] - b[0]) - (b_init[1] - b_init[0])).max()
    moved_sum = np.abs((b[1] + b[0]) - (b_init[1] + b_init[0])).max()
    print("(c) after one epoch of Adam: "
          f"b_1 − b_0 moved by up to {moved_diff:.1e}, "
          f"b_0 + b_1 by up to {moved_sum:.1e} "
          "(expected: the sum a thousand times less, float32 rounding)")
    ok = (d_loss < 1e-12 and d_grad < 1e-12
          and moved_diff > 0 and moved_sum < 1e-3 * moved_diff)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
