"""What every study shares: training its runs (resumable, in workers) and scoring paired predictions."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import metrics
from ..config import TrainConfig
from ..experiments import _train_in_workers, _train_one


def train_runs(runs: Sequence[tuple[TrainConfig, Path]], dataset: Any, jobs: int, threads_per_job: int | None,
               quiet: bool, label: str) -> None:
    """Train every run of `runs` that has no metrics.json yet (a checkpoint resumes), as table2 does."""
    todo = [(c, d) for c, d in runs if not (d / "metrics.json").exists()]
    if jobs == 1 and threads_per_job is None:
        for k, (config, run_dir) in enumerate(todo, start=1):
            _train_one(config, run_dir, dataset, quiet, f"{label}/{run_dir.name} [{k}/{len(todo)}]")
    else:
        _train_in_workers(todo, dataset, jobs, threads_per_job, quiet, f"study {label}")


def fmt_p(p: float) -> str:
    return "n/a" if p != p else (f"{p:.1e}" if p < 1e-3 else f"{p:.3f}")


def mean_sd(score: dict[str, Any]) -> str:
    """Pooled Dice of a `score_condition` result as "mean ± sd" over seeds, in %."""
    return f"{100 * score['dice_pooled_mean']:.2f} ± {100 * score['dice_pooled_std']:.2f}"


def delta_ci(v: dict[str, Any]) -> str:
    """A `paired_comparison`'s Δ pooled Dice with its 95 % CI, in points: "+0.12 [+0.03, +0.21]"."""
    lo, hi = v["dice_pooled_difference_ci95"]
    return f"{100 * v['dice_pooled_difference']:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}]"


def bootstrap_difference(a: list[np.ndarray], b: list[np.ndarray], target: np.ndarray, n_boot: int = 1000,
                          seed: int = 0) -> tuple[float, float]:
    """95 % percentile CI over test images of the seed-mean pooled Dice of b minus that of a."""
    rng = np.random.default_rng(seed)

    def counts(preds: list[np.ndarray]) -> np.ndarray:  # (seeds, 3, n): TP, FP, FN per image
        return np.array([[c.tp, c.fp, c.fn] for c in (metrics.confusion(p, target, per_image=True) for p in preds)])

    ca, cb = counts(a), counts(b)
    n = target.shape[0]
    diffs = np.empty(n_boot)
    for k in range(n_boot):
        idx = rng.integers(0, n, n)
        da, db = ca[:, :, idx].sum(-1), cb[:, :, idx].sum(-1)  # (seeds, 3)
        dice = [2 * d[:, 0] / np.maximum(2 * d[:, 0] + d[:, 1] + d[:, 2], 1) for d in (da, db)]
        diffs[k] = np.mean(dice[1] - dice[0])
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return float(lo), float(hi)


def score_condition(preds: list[np.ndarray], target: np.ndarray) -> dict[str, Any]:
    pooled = [metrics.dice_pooled(p, target) for p in preds]
    tri = np.array([metrics.trimap_accuracy(p, target, widths=(1, 3)) for p in preds])  # (seeds, 2)
    return {"dice_pooled_seeds": pooled, "dice_pooled_mean": float(np.mean(pooled)),
            "dice_pooled_std": float(np.std(pooled)), "trimap_w1_mean": float(tri[:, 0].mean()),
            "trimap_w3_mean": float(tri[:, 1].mean()), "trimap_w1_seeds": tri[:, 0].tolist(),
            "trimap_w3_seeds": tri[:, 1].tolist()}



def paired_comparison(a: list[np.ndarray], b: list[np.ndarray], target: np.ndarray) -> dict[str, Any]:
    """B against A on the same images: Δ pooled Dice (seed mean) with its bootstrap CI, the
    trimap deltas, and the Wilcoxon and sign tests on per-image Dice averaged over seeds."""
    sa, sb = score_condition(a, target), score_condition(b, target)
    test = metrics.paired_image_test(np.mean([metrics.dice_per_image(p, target) for p in a], axis=0),
                                     np.mean([metrics.dice_per_image(p, target) for p in b], axis=0))
    return {"dice_pooled_difference": sb["dice_pooled_mean"] - sa["dice_pooled_mean"],
            "dice_pooled_difference_ci95": bootstrap_difference(a, b, target),
            "trimap_w1_difference": sb["trimap_w1_mean"] - sa["trimap_w1_mean"],
            "trimap_w3_difference": sb["trimap_w3_mean"] - sa["trimap_w3_mean"],
            "paired_mean_dice_difference": test.mean_difference, "paired_p_wilcoxon": test.p_wilcoxon,
            "paired_p_sign": test.p_sign}
