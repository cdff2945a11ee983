"""Lesson 03, exercise 2: above the contraction bound, mean field (here) still
converges, only slower.

The bound ½ Σ_m w_m λ_max(K_m) < 1 makes the parallel update a contraction, which
guarantees a unique fixed point and geometric convergence. It is sufficient, not
necessary. On the lesson's 40×40 ROI with w = (4, 4) the bound is above 1, yet max
|Q_t − Q_(t−1)| still shrinks, much more slowly than at w = (1, 1). There is no
period-2 oscillation: |Q_t − Q_(t−2)| is not small while |Q_t − Q_(t−1)| is large.
With w = (16, 16) the pairwise term swamps the unaries: after a transient of large
steps Q settles on nearly one label for the whole ROI.

Run: ``python lessons/solutions/03_strong_coupling.py`` (exits 1 if a claim does not
hold; about 10 s).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import tinyseg as ts
from tinyseg import data
from tinyseg.utils import lesson_definitions

# the lesson's functions and classes, without running the lesson
lesson03 = lesson_definitions(
    Path(__file__).resolve().parents[1] / "03_crf.py")


def main() -> int:
    rng = np.random.default_rng(0)
    # the draws of the lesson's finding 1
    rng.standard_normal((3, 3)), rng.standard_normal((9, 2))
    ds = data.load_dataset("phantom")                # the lesson's ROI and unaries
    flipped = data.flip4(ds.train.images, ds.train.labels)[0]
    mu, sigma = data.fit_normalization(flipped)
    x = data.normalize(ds.test.images[:1], mu, sigma).astype(np.float64)
    mass_logit = 4 * (ds.test.labels[0] - 0.5) + rng.standard_normal((40, 40))
    u = np.stack([np.zeros((40, 40)), mass_logit])[None]         # (1, 2, 40, 40)
    unary = u[0].reshape(2, -1).T                                   # (P, 2)
    kernels = lesson03.dense_kernels(x[0, 0])
    T = 40
    res = {}
    for w in ((1.0, 1.0), (4.0, 4.0), (16.0, 16.0)):
        w = np.array(w)
        bound = float(np.max(ts.F.crf_contraction_bound(w, x, graph="dense")))
        qs = lesson03.mean_field_naive(unary, kernels, w, T)
        step1 = [np.abs(qs[t] - qs[t - 1]).max() for t in range(1, T + 1)]
        step2 = [np.abs(qs[t] - qs[t - 2]).max() for t in range(2, T + 1)]
        mass = float((qs[-1][:, 1] > 0.5).mean())
        res[w[0]] = bound, step1, step2, mass
        print(f"w = ({w[0]:g}, {w[1]:g}): bound {bound:.2f}; "
              "max |Q_t − Q_(t−1)| at t = 10, 20, 40: "
              f"{step1[9]:.1e}, {step1[19]:.1e}, {step1[-1]:.1e}; "
              f"max |Q_t − Q_(t−2)| at t = 10: {step2[7]:.1e}; "
              f"share of pixels labelled mass at t = {T}: {mass:.2f}")
    b1, s1, _, m1 = res[1.0]
    b4, s4, d4, _ = res[4.0]
    _, s16, _, m16 = res[16.0]
    ok = (b1 < 1 < b4
          and s4[-1] < 1e-3 and s4[-1] < s4[9]         # (4, 4) still converges
          and s4[19] > 100 * s1[19]                    # ... far slower than (1, 1)
          and all(b >= a for a, b in zip(s4[1:], d4))  # no period-2 oscillation
          and s16[-1] < 1e-6 and max(m16, 1 - m16) > 0.95 and 0.05 < m1 < 0.95)
    print("claims hold" if ok else "a claim does not hold")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
