"""Lesson 04, exercise 3: R is normalised per image, so each image gets ε whatever
the batch.

Eq. 7 divides each image's gradient by its own norm. The FCN treats the images of a
batch independently and the loss is their mean, so g_n is image n's own gradient
divided by N; the division by ‖g_n‖ removes both that factor and the loss's scale. R
for an image is therefore the same whether it is computed in a batch of 8 or alone.
Normalising the whole batch's gradient at once, ε g/‖g‖, would instead share one
budget ε between the images: image n would get ε‖g_n‖/‖g‖, about ε/√N, so the
perturbation would shrink as the batch grows, and an image the model already fits
well (a small gradient) would get less than the others.

Run: ``python lessons/solutions/04_per_image_norm.py`` (exits 1 if a claim does not
hold).
"""
from __future__ import annotations

import sys

import numpy as np

import tinyseg as ts
from tinyseg import data


def image_gradient(model: ts.nn.Module, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    image = ts.Tensor(x, requires_grad=True)
    ts.F.cross_entropy(model(image), y).backward()
    return image.grad


def main() -> int:
    ds = data.load_dataset("phantom")
    flipped = data.flip4(ds.train.images, ds.train.labels)[0]
    mu, sigma = data.fit_normalization(flipped)
    x = data.normalize(ds.test.images[:8], mu, sigma).astype(np.float64)
    y = ds.test.labels[:8]
    prior = data.empirical_prior(ds.train.labels)
    model = ts.models.FCN("fcn1", prior=prior, dtype=np.float64)
    eps = 0.1

    perturbation = ts.adversarial.adversarial_perturbation
    r_batch = perturbation(image_gradient(model, x, y), eps)
    r_alone = np.concatenate(
        [perturbation(image_gradient(model, x[n:n + 1], y[n:n + 1]), eps)
         for n in range(8)])
    g = image_gradient(model, x, y)
    r_whole = eps * g / np.sqrt((g ** 2).sum())    # one norm for the whole batch
    norms = np.sqrt((r_whole.reshape(8, -1) ** 2).sum(1))
    g_norms = np.sqrt((g.reshape(8, -1) ** 2).sum(1))
    per_image = np.sqrt((r_batch.reshape(8, -1) ** 2).sum(1))
    diff = np.abs(r_batch - r_alone).max()
    print(f"per image: max |R in a batch of 8 − R alone| = {diff:.1e} "
          "(expected < 1e-12); "
          f"‖R_n‖ from {per_image.min():.4f} to {per_image.max():.4f} "
          f"(expected ε = {eps})")
    print(f"whole-batch normalisation: ‖R_n‖ from {norms.min():.4f} "
          f"to {norms.max():.4f}, ε/√8 = {eps / np.sqrt(8):.4f}; "
          f"√Σ‖R_n‖² = {np.sqrt((norms ** 2).sum()):.4f} "
          "(expected ε: one budget shared)")
    ok = (diff < 1e-12 and np.allclose(per_image, eps)
          and np.allclose(norms, eps * g_norms / np.sqrt((g_norms ** 2).sum()))
          and norms.max() < eps / 2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
