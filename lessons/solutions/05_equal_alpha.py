"""Lesson 05, exercise 2: with every α = c, the fusion is the normalised product of
the p_k to the power c.

U_l = c Σ_k log p_k(l), so softmax(U)_l = Π_k p_k(l)^c / Σ_l' Π_k p_k(l')^c: a
geometric mean of the four predictions, sharpened (c > 1) or flattened (c < 1). The
argmax of U is the sign of c Σ_k log(p_k(1)/p_k(0)), the same for every c > 0: the
prediction does not change with c, only its confidence does. As c → 0 every
probability tends to ½; as c → ∞ each tends to 0 or 1.

Run: ``python lessons/solutions/05_equal_alpha.py`` (exits 1 if a claim does not
hold).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import tinyseg as ts
from tinyseg.utils import lesson_definitions

# the lesson's functions and classes, without running the lesson
lesson05 = lesson_definitions(
    Path(__file__).resolve().parents[1] / "05_multiscale.py")


def main() -> int:
    rng = np.random.default_rng(0)
    # four FCNs' outputs
    logits = [rng.standard_normal((2, 2, 40, 40)) for _ in range(4)]
    p = [ts.F.softmax(z, axis=1).data for z in logits]
    ok, preds = True, []
    for c in (0.01, 0.25, 1.0, 4.0, 100.0):
        alpha = np.full((4, 2), c)
        q = ts.F.softmax(lesson05.fuse_by_hand(logits, alpha), axis=1).data
        product = np.prod([pk ** c for pk in p], axis=0)
        product = product / product.sum(axis=1, keepdims=True)
        err = np.abs(q - product).max()
        preds.append(q.argmax(axis=1))
        dist = np.abs(q[:, 1] - 0.5).mean()
        print(f"c = {c:6}: max |softmax(U) − normalised Π p_k^c| = {err:.1e}; "
              f"mean |q − ½| = {dist:.3f}")
        ok &= err < 1e-12
    same = all(np.array_equal(preds[0], pr) for pr in preds)
    print(f"the predicted label is the same for every c: {same}")
    q_small = ts.F.softmax(lesson05.fuse_by_hand(logits, np.full((4, 2), 0.01)),
                           axis=1).data
    q_big = ts.F.softmax(lesson05.fuse_by_hand(logits, np.full((4, 2), 100.0)),
                         axis=1).data
    ok &= (same and np.abs(q_small - 0.5).max() < 0.05
           and np.mean(np.abs(q_big[:, 1] - 0.5) > 0.49) > 0.9)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
