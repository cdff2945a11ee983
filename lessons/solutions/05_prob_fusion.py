"""Lesson 05, exercise 3: linear fusion of probabilities caps the confidence until α
grows.

With ``fusion="prob"`` the fused score is U_l = Σ_k α_{k,l} p_k(l), and softmax is
applied to it as to logits. Each p_k(l) lies in [0, 1], so |U_1 − U_0| ≤ Σ_k
max(α_{k,0}, α_{k,1}); with the initial α = ¼ this is 1, and the fused probability
never leaves [σ(−1), σ(1)] ≈ [0.27, 0.73], however sure the four FCNs are. The loss
per pixel is then at least −log σ(1) ≈ 0.31: to fit the labels, training must make α
large. The fusion of log-probabilities (the default) has no such cap: log p_k is
unbounded below, so α = ¼ already allows confident predictions.

Run: ``python lessons/solutions/05_prob_fusion.py`` (exits 1 if a claim does not
hold).
"""
from __future__ import annotations

import sys

import numpy as np

import tinyseg as ts

SIGMA_1 = 1 / (1 + np.exp(-1.0))


def main() -> int:
    x = ts.Tensor(3 * np.random.default_rng(0).standard_normal((4, 1, 40, 40)))
    ok = True
    for fusion in ("prob", "logits"):
        model = ts.models.MultiScaleFCN(fusion=fusion, seed=0, dtype=np.float64)
        for fcn in model.fcns:             # make every FCN very sure of itself
            fcn.deconv.W.data *= 50
        with ts.no_grad():
            q = ts.F.softmax(model(x), axis=1).data[:, 1]
        print(f"fusion={fusion!r}, α = ¼: "
              f"fused P(mass) in [{q.min():.3f}, {q.max():.3f}] "
              f"(σ(±1) = {1 - SIGMA_1:.3f}, {SIGMA_1:.3f})")
        if fusion == "prob":
            ok &= q.min() >= 1 - SIGMA_1 - 1e-12 and q.max() <= SIGMA_1 + 1e-12
            model.alpha.data[:] = 10.0                   # let α grow
            with ts.no_grad():
                q10 = ts.F.softmax(model(x), axis=1).data[:, 1]
            print("fusion='prob', α = 10: "
                  f"fused P(mass) in [{q10.min():.3f}, {q10.max():.3f}]")
            ok &= q10.min() < 0.01 and q10.max() > 0.99
        else:
            ok &= q.min() < 0.01 and q.max() > 0.99
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
