"""Lesson 01, exercise 2: with an all-ones upstream gradient the wrong sigmoid
passes the check.

The gradient check compares ⟨ȳ, f(x)⟩'s numerical gradient with the op's
backward(ȳ). The wrong backward returns σ(1−σ) whatever ȳ is, which is right exactly
when ȳ = 1.

Run: ``python lessons/solutions/01_all_ones_upstream.py`` (exits 1 if the claim does
not hold).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from tinyseg.utils import lesson_definitions

# the lesson's functions and classes, without running the lesson
lesson01 = lesson_definitions(
    Path(__file__).resolve().parents[1] / "01_autodiff.py")


def numerical_grad(f, x: np.ndarray, gy: np.ndarray,  # noqa: ANN001
                   h: float = 1e-6) -> np.ndarray:
    """Central differences of L(x) = Σ gy · f(x)."""
    g = np.zeros_like(x)
    for k in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[k] += h
        xm[k] -= h
        g[k] = (np.sum(gy * f(xp)) - np.sum(gy * f(xm))) / (2 * h)
    return g


def main() -> int:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    op = lesson01.WrongSigmoidOp()
    op.forward(x)
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    errors = {}
    upstream = (("all ones", np.ones_like(x)),
                ("random", rng.standard_normal(x.shape)))
    for name, gy in upstream:
        error = np.abs(op.backward(gy) - numerical_grad(sigmoid, x, gy)).max()
        errors[name] = float(error)
        print(f"upstream gradient {name:8}: "
              f"max |backward − numerical| = {errors[name]:.1e}")
    return 0 if errors["all ones"] < 1e-8 and errors["random"] > 1e-2 else 1


if __name__ == "__main__":
    sys.exit(main())
