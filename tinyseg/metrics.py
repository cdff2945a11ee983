r"""Segmentation metrics: Dice (pooled, as the paper; and per image) and pixel accuracy.

Every metric takes binary predictions and targets of shape (N, H, W) (bool or integer arrays in
{0, 1}; NumPy or CuPy) and validates them with `check_binary_pair`, so later metrics (trimap
accuracy, McNemar) share the same checks and counts (`confusion`).

The paper's Dice is pooled over the whole test set: TP, FP and FN are summed over all
N·H·W pixels, then $\mathrm{Dice} = 2TP / (2TP + FP + FN)$. [ZX18 §4]
notes/data-and-evaluation.md §4.1.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .backend import as_numpy


class Confusion(NamedTuple):
    """Pixel counts of a binary segmentation, summed over the given axes."""
    tp: Any
    fp: Any
    fn: Any
    tn: Any


def check_binary_pair(pred: Any, target: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate a prediction/target pair and return them as NumPy bool arrays of shape (N, H, W).

    Raises:
        ValueError: shapes differ or are not (N, H, W), a float array (argmax or threshold it
            first), values outside {0, 1}, or an empty set.
    """
    p, t = as_numpy(pred), as_numpy(target)
    p, t = np.asarray(p), np.asarray(t)
    for name, a in (("pred", p), ("target", t)):
        if a.dtype != bool and not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name} has dtype {a.dtype}; pass class labels (bool or int in {{0, 1}}), e.g. "
                             f"logits.argmax(axis=1) or probabilities > 0.5")
        if a.ndim != 3:
            raise ValueError(f"{name} must be (N, H, W), got shape {a.shape}; add a batch axis for one image")
        if a.dtype != bool and a.size and (a.min() < 0 or a.max() > 1):
            raise ValueError(f"{name} holds values outside {{0, 1}} (min {a.min()}, max {a.max()})")
    if p.shape != t.shape:
        raise ValueError(f"pred {p.shape} and target {t.shape} must have the same shape")
    if p.shape[0] == 0:
        raise ValueError("empty set: pred and target hold no image")
    return p.astype(bool), t.astype(bool)


def confusion(pred: Any, target: Any, per_image: bool = False) -> Confusion:
    """TP, FP, FN, TN counts, pooled (ints) or per image (each an (N,) int64 array)."""
    p, t = check_binary_pair(pred, target)
    axis = (1, 2) if per_image else None
    return Confusion(*(np.sum(a, axis=axis, dtype=np.int64) for a in (p & t, p & ~t, ~p & t, ~p & ~t)))


def dice_pooled(pred: Any, target: Any) -> float:
    r"""Dice with TP, FP, FN summed over every pixel of every image, as the paper reports it.  [ZX18 §4]

    $\mathrm{Dice} = 2\sum TP / (2\sum TP + \sum FP + \sum FN)$; 1.0 when both are empty everywhere.

    Args:
        pred: (N, H, W) predicted labels in {0, 1}.
        target: (N, H, W) ground truth in {0, 1}.

    See: tests/test_metrics.py.
    """
    c = confusion(pred, target)
    den = 2 * c.tp + c.fp + c.fn
    return 1.0 if den == 0 else float(2 * c.tp / den)


def dice_per_image(pred: Any, target: Any) -> np.ndarray:
    r"""Dice of each image; 1 by convention when an image's prediction and target are both empty.

    Returns:
        (N,) float64.
    """
    c = confusion(pred, target, per_image=True)
    den = 2 * c.tp + c.fp + c.fn
    return np.where(den == 0, 1.0, 2 * c.tp / np.maximum(den, 1)).astype(np.float64)


def pixel_accuracy(pred: Any, target: Any) -> float:
    """Fraction of pixels, over the whole set, whose predicted label equals the target."""
    p, t = check_binary_pair(pred, target)
    return float(np.mean(p == t))
