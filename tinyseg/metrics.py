r"""Segmentation metrics: Dice (pooled, as the paper; and per image), pixel accuracy, trimap
accuracy, McNemar's test, an image-level paired test and bootstrap confidence intervals.

Every metric takes binary predictions and targets of shape (N, H, W) (bool or integer arrays in
{0, 1}; NumPy or CuPy) and validates them with `check_binary_pair`, so later metrics (trimap
accuracy, McNemar) share the same checks and counts (`confusion`).

The paper's Dice is pooled over the whole test set: TP, FP and FN are summed over all
N·H·W pixels, then $\mathrm{Dice} = 2TP / (2TP + FP + FN)$. [ZX18 §4]

See: lessons/06_evaluation.py, tests/test_metrics.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

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


# ---------------------------------------------------------------- trimap accuracy [ZX18 Fig. 4]
def trimap_band(target: np.ndarray, width: int, metric: str = "euclidean") -> np.ndarray:
    r"""Pixels within `width` of the true contour, on each side [ZX18 Fig. 2b, Fig. 4].

    Euclidean (default): $\{G \wedge d_{in} \le w\} \cup \{\neg G \wedge d_{out} \le w\}$
    with $d_{in} = \mathrm{EDT}(G)$, $d_{out} = \mathrm{EDT}(\neg G)$; at $w = 1$ these are
    the inner and outer 4-neighbour boundary pixels. Chessboard: dilate(G) − erode(G) with a
    $(2w+1)^2$ square. The ROI frame is not a contour; an image with an empty mask, or with no
    background, has an empty band.

    Args:
        target: one mask (H, W) or masks (n, H, W) in {0, 1}.
        width: the band's half-width $w \ge 1$, in pixels.
        metric: `"euclidean"` or `"chessboard"`.

    Returns:
        Boolean band of the same shape.
    """
    from scipy import ndimage

    g = np.asarray(target).astype(bool)
    if g.ndim == 3:
        return np.stack([trimap_band(t, width, metric) for t in g])
    if g.ndim != 2:
        raise ValueError(f"trimap_band expects (H, W) or (n, H, W) masks, got shape {g.shape}.")
    if width < 1:
        raise ValueError(f"trimap width must be >= 1, got {width}.")
    if not g.any() or g.all():
        return np.zeros_like(g)
    # --8<-- [start:trimap_band]
    if metric == "euclidean":
        d_in = ndimage.distance_transform_edt(g)
        d_out = ndimage.distance_transform_edt(~g)
        return (g & (d_in <= width)) | (~g & (d_out <= width))
    if metric == "chessboard":
        square = np.ones((2 * width + 1, 2 * width + 1), bool)
        eroded = ndimage.binary_erosion(g, square, border_value=1)
        return ndimage.binary_dilation(g, square) & ~eroded
    raise ValueError(
        f"unknown trimap metric {metric!r}: use 'euclidean' or 'chessboard'.")
    # --8<-- [end:trimap_band]


def trimap_accuracy(pred: np.ndarray, target: np.ndarray, widths: Sequence[int] = (1, 2, 3, 4, 5),
                    metric: str = "euclidean", per_image: bool = False) -> np.ndarray:
    """Accuracy inside the trimap band of each width, pooled over images [ZX18 Fig. 4].

    Pooled: Σ correct band pixels / Σ band pixels. With ``per_image=True``: an (n, len(widths))
    array of per-image accuracies (NaN where an image's band is empty).
    """
    pred, target = check_binary_pair(pred, target)
    out = []
    for w in widths:
        band = trimap_band(target, w, metric)
        hit = (pred == target) & band
        if per_image:
            counts = band.sum(axis=(1, 2))
            with np.errstate(invalid="ignore", divide="ignore"):
                out.append(np.where(counts > 0, hit.sum(axis=(1, 2)) / np.maximum(counts, 1), np.nan))
        else:
            total = band.sum()
            out.append(hit.sum() / total if total else np.nan)
    return np.stack(out, axis=-1) if per_image else np.asarray(out, float)


# ---------------------------------------------------------------- significance
@dataclass
class McNemarResult:
    """McNemar's test of two classifiers on paired decisions [ZX18 §4]."""

    n01: int        # A wrong, B right
    n10: int        # A right, B wrong
    p_exact: float  # exact two-sided binomial p = 2 P(Bin(n, ½) ≤ min(n01, n10)), capped at 1
    chi2: float     # continuity-corrected (|n01 − n10| − 1)² / (n01 + n10)
    p_chi2: float   # erfc(√(χ²/2))
    table: tuple[tuple[int, int], tuple[int, int]] | None = None  # ((n00 both right, n01), (n10, n11 both wrong))


def mcnemar(n01: int, n10: int) -> McNemarResult:
    r"""McNemar's test from the discordant counts, exact and χ² [ZX18 §4].

    The exact p is computed in log space, $\log P(X\le k) = \mathrm{logsumexp}_j
    [\log\binom{n}{j}] - n\log 2$, so counts of 10⁴ and more neither overflow nor underflow.
    """
    from scipy.special import gammaln, logsumexp  # here, not at import: it costs ~0.6 s

    n01, n10 = int(n01), int(n10)
    if n01 < 0 or n10 < 0:
        raise ValueError(f"McNemar counts must be non-negative, got ({n01}, {n10}).")
    # --8<-- [start:mcnemar]
    n, k = n01 + n10, min(n01, n10)
    if n == 0:
        return McNemarResult(n01, n10, 1.0, 0.0, 1.0)
    j = np.arange(k + 1)
    log_terms = gammaln(n + 1) - gammaln(j + 1) - gammaln(n - j + 1) - n * math.log(2.0)
    log_p = math.log(2.0) + float(logsumexp(log_terms))
    chi2 = (abs(n01 - n10) - 1) ** 2 / n if abs(n01 - n10) > 1 else 0.0
    p_chi2 = math.erfc(math.sqrt(chi2 / 2))
    return McNemarResult(n01, n10, min(1.0, math.exp(log_p)), chi2, p_chi2)
    # --8<-- [end:mcnemar]


def mcnemar_pixels(pred_a: np.ndarray, pred_b: np.ndarray, target: np.ndarray) -> McNemarResult:
    """Pixel-level McNemar test of predictions A and B against the truth (as the authors' CalPvalue.m).

    Pixels within an image are strongly correlated, so this p-value is anti-conservative: prefer
    `paired_image_test` for claims.
    """
    pred_a, target = check_binary_pair(pred_a, target)
    pred_b, _ = check_binary_pair(pred_b, target)
    ra, rb = pred_a == target, pred_b == target
    n00, n01 = int((ra & rb).sum()), int((~ra & rb).sum())
    n10, n11 = int((ra & ~rb).sum()), int((~ra & ~rb).sum())
    res = mcnemar(n01, n10)
    res.table = ((n00, n01), (n10, n11))
    return res


@dataclass
class PairedTestResult:
    """Image-level paired comparison of per-image Dice of two methods."""

    n: int                 # images with a non-zero difference (sign test) / all images (Wilcoxon)
    mean_difference: float  # mean of dice_b − dice_a
    p_sign: float          # exact two-sided sign test
    p_wilcoxon: float      # Wilcoxon signed-rank (two-sided); NaN when every difference is 0


def paired_image_test(dice_a: np.ndarray, dice_b: np.ndarray) -> PairedTestResult:
    """Sign test and Wilcoxon signed-rank test on paired per-image Dice (B − A)."""
    from scipy import stats

    a, b = np.asarray(dice_a, float), np.asarray(dice_b, float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired_image_test needs two 1-D arrays of equal length, got {a.shape} and {b.shape}.")
    # --8<-- [start:paired_test]
    d = b - a
    pos, neg = int((d > 0).sum()), int((d < 0).sum())
    # the sign test is the exact binomial on the non-zero differences
    p_sign = mcnemar(pos, neg).p_exact
    p_w = float(stats.wilcoxon(d).pvalue) if np.any(d != 0) else float("nan")
    return PairedTestResult(pos + neg, float(d.mean()) if len(d) else 0.0, p_sign, p_w)
    # --8<-- [end:paired_test]


def bootstrap_dice_ci(preds: Sequence[np.ndarray] | np.ndarray, target: np.ndarray, n_boot: int = 1000,
                      level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI (over test images) of pooled Dice, averaged over seeds.

    Args:
        preds: one prediction set (n, H, W) or a list of them (one per seed, same images).
        target: (n, H, W). The same image resample is applied to every seed's predictions.
        n_boot: number of bootstrap resamples.
        level: confidence level of the interval.
        seed: seed of the resampling.

    Returns:
        (low, high) percentile bounds of the pooled Dice.
    """
    preds = [np.asarray(preds)] if np.asarray(preds[0]).ndim == 2 else [np.asarray(p) for p in preds]
    target = np.asarray(target).astype(bool)
    rng = np.random.default_rng(seed)
    # --8<-- [start:bootstrap]
    # Per-image counts make each resample O(n) instead of O(n·H·W).
    counts = []
    for p in preds:
        p = p.astype(bool)
        counts.append(np.stack([(p & target).sum((1, 2)), (p & ~target).sum((1, 2)),
                                (~p & target).sum((1, 2))], 1))
    counts = np.stack(counts)                    # (seeds, n, 3): TP, FP, FN
    n = target.shape[0]
    idx = rng.integers(0, n, (n_boot, n))
    sums = counts[:, idx].sum(axis=2)            # (seeds, n_boot, 3)
    tp, fp, fn = sums[..., 0], sums[..., 1], sums[..., 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 1.0)
    dice = dice.mean(axis=0)
    lo, hi = np.percentile(dice, [50 * (1 - level), 50 * (1 + level)])
    # --8<-- [end:bootstrap]
    return float(lo), float(hi)
