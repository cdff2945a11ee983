"""Figures of the paper, drawn from tinyseg's own data and runs [ZX18 Fig. 2-4].

Every function returns a matplotlib Figure; save it with `tinyseg.utils.savefig`, which writes
byte-reproducible PNGs. Matplotlib is imported inside the functions (Agg backend), so importing
tinyseg never needs a display.

See: lessons/02_fcn.py, lessons/06_evaluation.py.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def prior_map(prior: np.ndarray, learned: np.ndarray | None = None) -> Any:
    """The empirical position prior [ZX18 Fig. 2a], optionally next to a learned prior bias."""
    plt = _plt()
    n = 1 if learned is None else 2
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.4), squeeze=False)
    im = axes[0, 0].imshow(prior, cmap="magma", vmin=0, vmax=1)
    axes[0, 0].set_title("empirical prior P(mass | position)")
    fig.colorbar(im, ax=axes[0, 0], fraction=0.046)
    if learned is not None:
        im = axes[0, 1].imshow(learned, cmap="magma", vmin=0, vmax=1)
        axes[0, 1].set_title("learned prior: softmax(bias)₁")
        fig.colorbar(im, ax=axes[0, 1], fraction=0.046)
    for ax in axes.ravel():
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return fig


def trimap_bands(image: np.ndarray, target: np.ndarray, widths: Sequence[int] = (1, 3, 5)) -> Any:
    """The trimap bands around a true contour at several widths [ZX18 Fig. 2b]."""
    from .metrics import trimap_band

    plt = _plt()
    fig, axes = plt.subplots(1, len(widths) + 1, figsize=(2.6 * (len(widths) + 1), 2.8))
    axes[0].imshow(image, cmap="gray")
    axes[0].contour(target, levels=[0.5], colors="r", linewidths=1)
    axes[0].set_title("ROI and true contour")
    for ax, w in zip(axes[1:], widths):
        ax.imshow(image, cmap="gray")
        ax.imshow(np.ma.masked_where(~trimap_band(target, w), np.ones_like(target)), cmap="autumn", alpha=0.6,
                  vmin=0, vmax=1)
        ax.set_title(f"band, w = {w}")
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return fig


def contours(images: np.ndarray, target: np.ndarray, predictions: Mapping[str, np.ndarray],
             max_images: int = 6) -> Any:
    """Rows of test ROIs with the true contour (red) and each method's contour (green) [ZX18 Fig. 3]."""
    plt = _plt()
    names = list(predictions)
    k = min(max_images, len(images))
    fig, axes = plt.subplots(len(names), k, figsize=(1.9 * k, 2.0 * len(names)), squeeze=False)
    for r, name in enumerate(names):
        for c in range(k):
            ax = axes[r, c]
            ax.imshow(np.asarray(images[c]).reshape(target.shape[1:]), cmap="gray")
            ax.contour(target[c], levels=[0.5], colors="r", linewidths=1.0)
            if predictions[name][c].any():
                ax.contour(predictions[name][c], levels=[0.5], colors="lime", linewidths=1.0)
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=9)
    fig.suptitle("red: ground truth, green: prediction", fontsize=9)
    fig.tight_layout()
    return fig


def trimap_curves(curves: Mapping[str, Sequence[float]], widths: Sequence[int] = (1, 2, 3, 4, 5),
                  errors: Mapping[str, Sequence[float]] | None = None) -> Any:
    """Trimap accuracy against band width, one line per method [ZX18 Fig. 4]."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for name, acc in curves.items():
        err = None if errors is None else 100 * np.asarray(errors[name])
        ax.errorbar(widths, 100 * np.asarray(acc), yerr=err, marker="o", ms=3, capsize=2, label=name)
    ax.set(xlabel="trimap width w (pixels, each side of the contour)", ylabel="accuracy in the band (%)",
           xticks=list(widths))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def training_curves(histories: Mapping[str, Sequence[Mapping[str, float]]]) -> Any:
    """Training loss and validation pooled Dice per epoch, one line per run."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for name, rows in histories.items():
        ep = [r["epoch"] for r in rows]
        axes[0].plot(ep, [r["train_loss"] for r in rows], label=name)
        axes[1].plot(ep, [r["val_dice"] for r in rows], label=name)
    axes[0].set(xlabel="epoch", ylabel="training loss", yscale="log")
    axes[1].set(xlabel="epoch", ylabel="validation pooled Dice")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig
