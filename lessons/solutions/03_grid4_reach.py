"""Lesson 03, exercise 4: how far a message travels in T iterations, grid4 against
dense.

Change the unary of one pixel and run T iterations of `F.mean_field_crf`. On the
4-neighbour graph (the authors' code) a pixel hears only its neighbours in each
iteration, so after T iterations exactly the pixels within Manhattan distance T of
the changed one have moved. On the paper's dense graph every pixel hears every other
one: after one iteration the whole ROI has moved. With T = 5 in training, a grid4
CRF can smooth over about 5 pixels only; the dense CRF links the whole 40×40 ROI at
once.

Run: ``python lessons/solutions/03_grid4_reach.py`` (exits 1 if the changed pixels
differ from those predicted).
"""
from __future__ import annotations

import sys

import numpy as np

import tinyseg as ts


def main() -> int:
    rng = np.random.default_rng(0)
    H = W = 40
    image = rng.standard_normal((1, 1, H, W))
    unary = rng.standard_normal((1, 2, H, W))
    bumped = unary.copy()
    bumped[0, 1, 20, 20] += 3.0                       # one pixel's evidence changes
    yy, xx = np.mgrid[:H, :W]
    manhattan = np.abs(yy - 20) + np.abs(xx - 20)
    ok = True
    for graph in ("grid4", "dense"):
        for T in (1, 3, 5):
            q = [ts.F.softmax(ts.F.mean_field_crf(u, image, np.array([1.0, 1.0]),
                                                  n_iter=T, graph=graph),
                              axis=1).data[0, 1] for u in (unary, bumped)]
            moved = np.abs(q[1] - q[0]) > 0
            expected = manhattan <= T if graph == "grid4" else np.ones((H, W), bool)
            diamond = np.array_equal(moved, manhattan <= T)
            print(f"{graph:5}, T = {T}: "
                  f"{int(moved.sum()):4} of {H * W} pixels moved; "
                  + ("exactly those within Manhattan distance T" if diamond
                     else "not only the diamond"))
            ok &= np.array_equal(moved, expected)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
