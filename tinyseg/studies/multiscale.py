r"""**What multi-scale buys** (`run_multiscale_study`, lesson 05).

Under drawn boxes the mass can sit anywhere in the ROI and fill a small or a large part of it:
the context that the larger receptive fields of FCNs 2-4 see has to find it. The study trains
`fcn` and `multi_fcn` exactly as Table 2 does (validation selection within the epoch budget)
and compares them on the test ROIs split into thirds by mass size relative to the ROI (the
fraction of the 40×40 ROI the true mask covers): for each third, pooled Dice of each model
(mean ± sd over seeds), the difference with a bootstrap CI, and the Wilcoxon test on per-image
Dice averaged over seeds.

See: lessons/05_multiscale.py, docs/results.md ("What each component buys"), tests/studies/test_studies.py.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..config import TrainConfig, check_choice
from ..errors import OptionError
from ..experiments import fast_subset
from ..utils import atomic_write_text
from ._common import delta_ci, fmt_p, mean_sd, paired_comparison, score_condition, train_runs

THIRDS = ("small", "middle", "large")


def size_thirds(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each ROI's mass fraction (mask pixels / ROI pixels) and its third (0 small .. 2 large),
    by rank, so the thirds hold ⌊n/3⌋ or ⌈n/3⌉ ROIs each."""
    frac = labels.reshape(len(labels), -1).mean(axis=1)
    third = np.empty(len(frac), np.int64)
    third[np.argsort(frac, kind="stable")] = np.arange(len(frac)) * 3 // len(frac)
    return frac, third


def run_multiscale_study(data: str = "phantom", boxes: str = "drawn", seeds: int = 3, epochs: int = 30,
                         out: str | Path = "results/multiscale_study", fast: bool = False, data_seed: int = 0,
                         jobs: int = 1, threads_per_job: int | None = None, quiet: bool = False) -> dict[str, Any]:
    """`fcn` against `multi_fcn` per mass-size third; writes ``multiscale_study.json`` / ``.md``.

    Args:
        data: data spec.
        boxes: box protocol (``"drawn"``: the mass anywhere in a larger box).
        seeds: seeds 0..K−1 per model.
        epochs: epoch budget (validation selection within it, as Table 2).
        out: output folder (``runs/`` inside; an interrupted study resumes).
        fast: 16 training masses and 2 epochs (a smoke test).
        data_seed: data (and drawn boxes) seed.
        jobs: runs trained at once, each in its own process.
        threads_per_job: BLAS threads per worker (default cores // jobs).
        quiet: no progress output.
    """
    from ..data import load_dataset
    from ..experiments import _load_preds

    check_choice("boxes", boxes)
    if seeds < 1 or epochs < 1:
        raise OptionError(f"--seeds and --epochs must be at least 1, got {seeds} and {epochs}.")
    epochs = min(epochs, 2) if fast else epochs
    out = Path(out)
    dataset = load_dataset(data, data_seed=data_seed, boxes=boxes)
    dataset = fast_subset(dataset) if fast else dataset
    base = replace(TrainConfig(), data=data, data_seed=data_seed, boxes=boxes, epochs=epochs)
    runs = [(replace(base, variant=v, seed=s), out / "runs" / f"{v}_s{s}") for v in ("fcn", "multi_fcn")
            for s in range(seeds)]
    train_runs(runs, dataset, jobs, threads_per_job, quiet, boxes)
    target = np.asarray(dataset.test.labels)
    preds = {v: [_load_preds(out / "runs" / f"{v}_s{s}")[0] for s in range(seeds)] for v in ("fcn", "multi_fcn")}
    frac, third = size_thirds(target)
    groups: dict[str, Any] = {}
    for name, keep in [("all", np.ones(len(target), bool))] + [(t, third == k) for k, t in enumerate(THIRDS)]:
        a, b = [p[keep] for p in preds["fcn"]], [p[keep] for p in preds["multi_fcn"]]
        groups[name] = {"n": int(keep.sum()), "mass_fraction_range": [float(frac[keep].min()), float(frac[keep].max())],
                        "fcn": score_condition(a, target[keep]), "multi_fcn": score_condition(b, target[keep]),
                        "multi_vs_fcn": paired_comparison(a, b, target[keep])}
    study = {"data": data, "boxes": boxes, "n_test": int(len(target)), "groups": groups,
             "command": {"data": data, "boxes": boxes, "seeds": seeds, "epochs": epochs, "fast": fast,
                         "data_seed": data_seed}}
    atomic_write_text(out / "multiscale_study.json", json.dumps(study, indent=2))
    atomic_write_text(out / "multiscale_study.md", render_multiscale_study(study))
    return study


def summarize_multiscale(study: dict[str, Any]) -> str:
    """One line: multi_fcn − fcn in pooled-Dice points per mass-size third and overall."""
    g = study["groups"]
    parts = [f"{name} {100 * g[name]['multi_vs_fcn']['dice_pooled_difference']:+.2f} "
             f"(p {fmt_p(g[name]['multi_vs_fcn']['paired_p_wilcoxon'])})" for name in (*THIRDS, "all")]
    return f"{study['boxes']} boxes, {study['command']['seeds']} seed(s), multi_fcn − fcn: " + ", ".join(parts)


def render_multiscale_study(study: dict[str, Any]) -> str:
    """The study as Markdown: one row per mass-size third, and all test ROIs."""
    c = study["command"]
    lines = [f"# What multi-scale buys, on `{study['data']}` with {study['boxes']} boxes", "",
             f"{c['seeds']} seed(s) per model, {c['epochs']} epochs (validation selection, as Table 2), "
             f"{study['n_test']} test ROIs split into thirds by the fraction of the ROI the mass covers. Δ is "
             "multi_fcn − fcn in points of pooled Dice (mean over seeds; 95 % bootstrap CI over the third's "
             "images); p is the Wilcoxon test on per-image Dice averaged over seeds.", "",
             "| ROIs | mass fraction | fcn Dice (%) | multi_fcn Dice (%) | Δ Dice [95 % CI] | p (Wilcoxon) |",
             "|---|---|---|---|---|---|"]
    for name, g in study["groups"].items():
        f0, f1 = g["mass_fraction_range"]
        lines.append(f"| {name} ({g['n']}) | {f0:.2f}–{f1:.2f} | {mean_sd(g['fcn'])} | {mean_sd(g['multi_fcn'])} | "
                     f"{delta_ci(g['multi_vs_fcn'])} | {fmt_p(g['multi_vs_fcn']['paired_p_wilcoxon'])} |")
    return "\n".join(lines + [""])

