"""Scoring a trained run on a test split: metrics.json and the test predictions.

Pooled Dice is the paper's number (TP, FP, FN summed over the test set) [ZX18 Table 2]; per-image
Dice, pixel accuracy and, where available, trimap accuracy [ZX18 Fig. 4] come with it, next to
the prior-only baseline (threshold the empirical training prior), so every number has a
reference point.

See: lessons/06_evaluation.py, tests/test_train.py.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .utils import atomic_path, atomic_write_text


def score(pred: np.ndarray, target: np.ndarray) -> dict[str, Any]:
    """Every metric of `pred` against `target` (both (n, H, W) in {0, 1}) as plain floats."""
    from . import metrics

    per_image = metrics.dice_per_image(pred, target)
    out: dict[str, Any] = {"dice_pooled": float(metrics.dice_pooled(pred, target)),
                           "dice_per_image_mean": float(np.mean(per_image)),
                           "dice_per_image_std": float(np.std(per_image)),
                           "pixel_accuracy": float(metrics.pixel_accuracy(pred, target)), "n_images": int(len(pred))}
    out["trimap_accuracy"] = {str(w): float(a) for w, a in zip(range(1, 6), metrics.trimap_accuracy(pred, target))}
    return out


def evaluate_run(run: Any, dataset: Any, out: str | Path | None = None, best_epoch: int | None = None,
                 metrics_name: str = "metrics.json", pred: Any = None) -> dict[str, Any]:
    """Score `run` on `dataset.test` (and the prior-only baseline); write metrics.json and test_pred.npz.

    Normalisation statistics and the prior always come from the run (its training split),
    never from the test data.

    Args:
        run: a loaded `Run`.
        dataset: the dataset whose test split is scored.
        out: folder to write into (None: write nothing).
        best_epoch: the selected epoch, recorded in the file.
        metrics_name: file name of the metrics (predictions go beside it).
        pred: the run's test predictions when the caller already has them (else computed here).
    """
    from .data import prior_baseline_predict

    test = dataset.test
    if len(test) == 0:
        raise ValueError("the dataset's test split is empty: nothing to evaluate.")
    pred = run.predict(test.images) if pred is None else pred
    baseline = prior_baseline_predict(run.stats["prior"], len(test))
    if best_epoch is None and (Path(run.path) / "metrics.json").exists():  # keep what training recorded
        best_epoch = json.loads((Path(run.path) / "metrics.json").read_text()).get("selected_epoch")
    result = {"variant": run.variant, "data": getattr(dataset, "spec", run.config["train"]["data"]),
              "selected_epoch": best_epoch,
              "test": score(pred, test.labels), "prior_baseline": score(baseline, test.labels)}
    if out is not None:
        out = Path(out)
        atomic_write_text(out / metrics_name, json.dumps(result, indent=2))
        pred_name = "test_pred.npz" if metrics_name == "metrics.json" else metrics_name.replace(".json", "_pred.npz")
        with atomic_path(out / pred_name) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, pred=pred.astype(np.uint8), target=np.asarray(test.labels, np.uint8))
    return result
