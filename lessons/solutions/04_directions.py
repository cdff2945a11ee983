"""Lesson 04, exercise 1: R raises the loss, −R lowers it by about as much, a random
direction barely moves it.

To first order L(I + D) ≈ L(I) + ⟨g, D⟩. With D = R = ε g/‖g‖ the change is +ε‖g‖,
the largest any direction of norm ε can give; with −R it is −ε‖g‖; the two differ
from each other only in the second-order term. A random direction of norm ε has
⟨g, D⟩ = ε‖g‖ cos θ, and in d = 1600 dimensions cos θ is about ±1/√d = ±1/40: the
gradient direction is one among very many.

The model is FCN 1 with the empirical prior, untrained, in float64 (the claims are
about the loss surface, not about a good model).

Run: ``python lessons/solutions/04_directions.py`` (exits 1 if a claim does not
hold).
"""
from __future__ import annotations

import sys

import numpy as np

import tinyseg as ts
from tinyseg import data


def main() -> int:
    ds = data.load_dataset("phantom")
    flipped = data.flip4(ds.train.images, ds.train.labels)[0]
    mu, sigma = data.fit_normalization(flipped)
    x = data.normalize(ds.test.images[:8], mu, sigma).astype(np.float64)
    y = ds.test.labels[:8]
    prior = data.empirical_prior(ds.train.labels)
    model = ts.models.FCN("fcn1", prior=prior, dtype=np.float64)

    image = ts.Tensor(x, requires_grad=True)
    loss = ts.F.cross_entropy(model(image), y)
    loss.backward()
    g = image.grad

    def change(d: np.ndarray) -> float:
        with ts.no_grad():
            moved = ts.F.cross_entropy(model(ts.Tensor(x + d)), y)
            return moved.item() - loss.item()

    eps = 0.4
    r = ts.adversarial.adversarial_perturbation(g, eps)
    rng = np.random.default_rng(0)
    randoms = [change(ts.adversarial.adversarial_perturbation(
        rng.standard_normal(x.shape), eps)) for _ in range(20)]
    up, down, rand = change(r), change(-r), float(np.mean(np.abs(randoms)))
    print(f"ε = {eps}: ΔL(R) = {up:+.3e}, ΔL(−R) = {down:+.3e}, "
          f"mean |ΔL(random)| over 20 draws = {rand:.3e} "
          f"(ratio to ΔL(R): {rand / up:.3f}; 1/√1600 = {1 / 40:.3f})")
    ok = up > 0 > down and abs(up + down) < 0.1 * up and rand < 0.2 * up
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
