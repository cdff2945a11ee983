"""Lesson 03, exercise 1: with the self pair, mean field moves further from the
exact marginals.

The Potts energy of a pair (i, i) is [y_i ≠ y_i] = 0 for every labeling: the self
pair does not change the CRF, so the exact marginals stay the same. Mean field with
k_ii ≠ 0, however, adds w k_ii Q_i(l) to pixel i's own logit: each pixel's current
belief is fed back to itself as if it were evidence from a neighbour, so beliefs
harden and the error against the exact marginals grows. That is why j = i is
excluded.

Run: ``python lessons/solutions/03_self_pair.py`` (exits 1 if the self pair does not
increase the error at every coupling strength).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from tinyseg.utils import lesson_definitions

# the lesson's functions and classes, without running the lesson
lesson03 = lesson_definitions(
    Path(__file__).resolve().parents[1] / "03_crf.py")


def main() -> int:
    rng = np.random.default_rng(0)          # the 3×3 CRF of the lesson's finding 1
    image = rng.standard_normal((3, 3))
    unary = rng.standard_normal((9, 2))
    kernels = lesson03.dense_kernels(image)
    with_self = [k.copy() for k in kernels]
    # the diagonal that dense_kernels removed: exp(0)/(P−1) and ½ exp(0)
    np.fill_diagonal(with_self[0], 1.0 / 8)
    np.fill_diagonal(with_self[1], 0.5)
    ok = True
    for w in (0.4, 0.2, 0.1):
        weights = np.array([w * 8, w])
        # the same with either kernel set
        exact = lesson03.exact_marginals(unary, kernels, weights)
        errs = [np.abs(lesson03.mean_field_naive(unary, k, weights, 50)[-1][:, 1]
                       - exact).max()
                for k in (kernels, with_self)]
        exact_self = lesson03.exact_marginals(unary, with_self, weights)
        print(f"w = {w}: max error without self pair {errs[0]:.4f}, "
              f"with self pair {errs[1]:.4f}; "
              "exact marginals unchanged by the self pair: "
              f"|Δ| = {np.abs(exact - exact_self).max():.1e}")
        ok &= errs[1] > errs[0] and np.abs(exact - exact_self).max() < 1e-12
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
