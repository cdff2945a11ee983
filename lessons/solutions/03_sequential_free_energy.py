"""Lesson 03, exercise 3: sequential mean field lowers the free energy at every
single-pixel update.

F(Q) = Σ_i Σ_l Q_il log Q_il − Σ U Q + ½ Σ_{i≠j} C_ij E_Q[y_i ≠ y_j]. Holding every
pixel but i fixed, F is convex in Q_i, and its minimiser is
Q_i = softmax(U_i + Σ_{j≠i} C_ij Q_j): exactly one mean-field update of pixel i
alone. Updating one pixel at a time is coordinate descent, so F can never rise. The
parallel update changes every pixel from the same old Q; it is not a coordinate step
and F can rise. Two pixels that disagree in their unaries but are strongly coupled
show it: each takes the other's label, so parallel updates swap them back and forth
and F rises every other iteration, while sequential updates let the first pixel
settle before the second moves.

Run: ``python lessons/solutions/03_sequential_free_energy.py`` (exits 1 unless the
sequential updates never raise F, on a 4×4 dense CRF and on two coupled pixels,
while the parallel ones raise it on the two pixels).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from tinyseg.utils import lesson_definitions

# the lesson's functions and classes, without running the lesson
lesson03 = lesson_definitions(
    Path(__file__).resolve().parents[1] / "03_crf.py")


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sequential_mean_field(unary: np.ndarray, coupling: np.ndarray,
                          sweeps: int) -> list[float]:
    """One pixel at a time; returns F after every single-pixel update (F(Q_0)
    first)."""
    q = softmax(unary)
    f = [lesson03.free_energy(q, unary, coupling)]
    for _ in range(sweeps):
        for i in range(len(q)):
            # C_ii = 0: pixel i hears only the others
            q[i] = softmax(unary[i] + coupling[i] @ q)
            f.append(lesson03.free_energy(q, unary, coupling))
    return f


def main() -> int:
    rng = np.random.default_rng(0)
    image = rng.standard_normal((4, 4))    # a 4×4 dense CRF with strong coupling
    unary = rng.standard_normal((16, 2))
    kernels = lesson03.dense_kernels(image)
    coupling = sum(wm * k for wm, k in zip((60.0, 4.0), kernels))
    f_seq = sequential_mean_field(unary, coupling, sweeps=5)
    rise_seq = float(np.max(np.diff(f_seq)))
    print("4×4 dense CRF, sequential: 80 single-pixel updates, "
          f"largest change of F {rise_seq:+.1e} (expected ≤ 0)")

    # pixel 0 prefers mass, pixel 1 background, and they are strongly coupled
    pair_unary = np.array([[0.0, 1.0], [0.8, 0.0]])
    pair = np.array([[0.0, 10.0], [10.0, 0.0]])
    f_par = [lesson03.free_energy(q, pair_unary, pair)
             for q in lesson03.mean_field_naive(pair_unary, [pair], [1.0], 8)]
    f_pair_seq = sequential_mean_field(pair_unary, pair, sweeps=4)
    rise_par = float(np.max(np.diff(f_par)))
    rise_pair_seq = float(np.max(np.diff(f_pair_seq)))
    print(f"2 coupled pixels, parallel F: {' '.join(f'{v:.2f}' for v in f_par)} "
          "(expected: rises)")
    print("2 coupled pixels, sequential F: "
          f"{' '.join(f'{v:.2f}' for v in f_pair_seq)} (expected: never rises)")
    ok = rise_seq <= 1e-12 and rise_pair_seq <= 1e-12 and rise_par > 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
