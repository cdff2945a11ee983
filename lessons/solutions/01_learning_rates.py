"""Lesson 01, exercise 4: gradient descent at three learning rates, and Adam under a
rescaled loss.

Gradient descent's step is η·g, so it depends on the scale of g: too small a rate
stalls, too large a rate overshoots. Adam's step is η·m̂/(√v̂ + ε): scaling every
gradient by c scales m̂ by c and √v̂ by |c|, so the step does not change (up to ε).

Run: ``python lessons/solutions/01_learning_rates.py`` (exits 1 if Adam's steps
differ).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import tinyseg as ts
from tinyseg import F
from tinyseg.utils import lesson_definitions

# the lesson's functions and classes, without running the lesson
lesson01 = lesson_definitions(
    Path(__file__).resolve().parents[1] / "01_autodiff.py")


def main() -> int:
    rng = np.random.default_rng(1)
    x_np, t = lesson01.two_moons(400, rng)
    x = ts.Tensor(x_np)
    start = lesson01.init_mlp(16, rng, np)
    for lr in (0.01, 0.1, 1.0):
        params = [ts.Parameter(p.data.copy()) for p in start]
        opt = lesson01.HandSGD(params, lr=lr)
        losses = lesson01.train(lesson01.mlp, params, opt, x, t, 300)
        print(f"gradient descent, lr {lr:<4}: "
              f"loss {losses[0]:.3f} → {losses[-1]:.3f}")

    # Adam on the loss and on 1000 × the loss: the parameters follow the same path.
    paths = []
    for scale in (1.0, 1000.0):
        params = [ts.Parameter(p.data.copy()) for p in start]
        opt = lesson01.HandAdam(params, lr=0.01)
        for _ in range(50):
            loss = F.cross_entropy(lesson01.mlp(params, x), t) * scale
            opt.zero_grad()
            loss.backward()
            opt.step()
        paths.append(np.concatenate([p.data.ravel() for p in params]))
    diff = float(np.abs(paths[0] - paths[1]).max())
    print("Adam, loss × 1 against loss × 1000, 50 steps: "
          f"max |Δ parameter| = {diff:.1e}")
    return 0 if diff < 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
