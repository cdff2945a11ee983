r"""**What the CRF buys** (`run_crf_study`, lesson 03). A CRF acts on the unaries it is given, so the
study holds the unaries fixed and varies only their quality: for each box protocol and seed it
trains one FCN for each epoch budget of a grid (1, 3, 10, 30 by default; a fixed budget on the
training and validation masses together, the last epoch kept, so that a budget means the same
thing for every seed) and an FCN-CRF for the largest budget. Each FCN's test unaries then go
through the mean-field CRF at inference (`n_iter_eval` iterations, the dense graph) twice, with
the default weights and with the weights the FCN-CRF learned, and the three predictions are
scored: pooled Dice, and trimap accuracy at w = 1 and 3 (the band along the true boundary, where
a CRF can move labels). Per condition it reports the mean ± sd over seeds, the difference
CRF − FCN in pooled-Dice points with a 95 % bootstrap CI over test images (the same resample
for every seed), and an image-level Wilcoxon test on per-image Dice averaged over seeds.

Runs are written to ``OUT/runs/<protocol>/<name>_s<seed>/`` and skipped when finished, as
`tinyseg.experiments.run_table2` does (same workers, same bit-identity at one thread per job).

See: lessons/03_crf.py, docs/results.md ("What each component buys"), tests/studies/test_studies.py.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..autodiff import Tensor, no_grad
from ..config import TrainConfig, check_choice
from ..errors import OptionError
from ..experiments import fast_subset, merge_validation
from ..functions import crf_default_weights, mean_field_crf
from ..runs import load_run
from ..utils import atomic_write_text
from ._common import delta_ci, fmt_p, mean_sd, paired_comparison, score_condition, train_runs

CRF_EPOCHS = (1, 3, 10, 30)
CRF_CONDITIONS = ("fcn", "crf_default", "crf_learned")


def _crf_runs(base: TrainConfig, epochs_grid: Sequence[int], seeds: int, root: Path,
              learned: bool) -> list[tuple[TrainConfig, Path]]:
    """(config, run dir) of every FCN budget and, when `learned`, the FCN-CRF, per seed."""
    runs = []
    for s in range(seeds):
        for e in epochs_grid:
            runs.append((replace(base, variant="fcn", epochs=e, seed=s), root / f"fcn_e{e}_s{s}"))
        if learned:
            runs.append((replace(base, variant="fcn_crf", epochs=max(epochs_grid), seed=s), root / f"fcn_crf_s{s}"))
    return runs


def _with_crf(run: Any, images: np.ndarray, weights: np.ndarray | None, n_iter: int, graph: str,
              batch: int = 29) -> np.ndarray:
    """Test labels of `run`'s FCN, with the mean-field CRF applied to its unaries when `weights`."""
    model = run.model
    model.eval()
    x = run.normalize(images)
    out = []
    with no_grad():
        for i in range(0, len(x), batch):
            xb = Tensor(x[i:i + batch])
            z = model.fcn(xb)  # the FCN's logits (with its position prior): the unaries
            if weights is not None:
                z = mean_field_crf(z, xb, weights.astype(z.dtype), n_iter=n_iter, graph=graph)
            out.append(np.argmax(z.data, axis=1))
    return np.concatenate(out).astype(np.int64)


def run_crf_study(data: str = "phantom", protocols: Sequence[str] = ("tight", "drawn"), seeds: int = 3,
                  epochs_grid: Sequence[int] = CRF_EPOCHS, out: str | Path = "results/crf_study", fast: bool = False,
                  data_seed: int = 0, jobs: int = 1, threads_per_job: int | None = None, quiet: bool = False,
                  n_iter_eval: int = 10, crf_graph: str = "dense", learned: bool = True) -> dict[str, Any]:
    """What the CRF buys as the FCN's quality varies; writes ``crf_study.json`` and ``crf_study.md``.

    Args:
        data: data spec (synthetic presets, or real data with mass outlines for drawn boxes).
        protocols: box protocols to run, ``"tight"`` and/or ``"drawn"``.
        seeds: seeds 0..K−1 per protocol.
        epochs_grid: the FCN budgets; the FCN-CRF trains for the largest.
        out: output folder (``runs/`` inside; an interrupted study resumes).
        fast: 16 training masses, budgets capped at 2 epochs, 3 CRF iterations (a smoke test).
        data_seed: data (and drawn boxes) seed.
        jobs: runs trained at once, each in its own process.
        threads_per_job: BLAS threads per worker (default cores // jobs).
        quiet: no progress output.
        n_iter_eval: mean-field iterations at inference.
        crf_graph: ``"dense"`` (the paper) or ``"grid4"``.
        learned: also train an FCN-CRF per seed (the largest budget) and apply its learned CRF
            weights to every FCN's unaries (the ``crf_learned`` condition); ``False`` keeps only the
            default weights and skips that training (lesson 03's reduced study).
    Returns:
        The study as written to ``crf_study.json``.
    """
    from ..data import load_dataset

    if seeds < 1 or not epochs_grid or min(epochs_grid) < 1:
        raise OptionError(f"--seeds and every budget must be at least 1, got {seeds} and {list(epochs_grid)}.")
    for p in protocols:
        check_choice("boxes", p)
    check_choice("crf_graph", crf_graph)
    if fast:
        epochs_grid, n_iter_eval = sorted({min(e, 2) for e in epochs_grid}), 3
    epochs_grid = sorted(set(int(e) for e in epochs_grid))
    out = Path(out)
    study: dict[str, Any] = {"data": data, "protocols": {}, "command": {
        "data": data, "protocols": list(protocols), "seeds": seeds, "epochs_grid": epochs_grid, "fast": fast,
        "data_seed": data_seed, "n_iter_eval": n_iter_eval, "crf_graph": crf_graph,
        "learned": learned}}
    for protocol in protocols:
        dataset = load_dataset(data, data_seed=data_seed, boxes=protocol)
        dataset = merge_validation(fast_subset(dataset) if fast else dataset)  # fixed budgets, no selection
        base = replace(TrainConfig(), data=data, data_seed=data_seed, boxes=protocol, val_frac=0.0,
                       crf_graph=crf_graph, n_iter=2 if fast else TrainConfig.n_iter, n_iter_eval=n_iter_eval)
        root = out / "runs" / protocol
        train_runs(_crf_runs(base, epochs_grid, seeds, root, learned), dataset, jobs, threads_per_job, quiet,
                   protocol)
        study["protocols"][protocol] = _crf_scores(root, dataset, epochs_grid, seeds, n_iter_eval, crf_graph,
                                                   learned)
    atomic_write_text(out / "crf_study.json", json.dumps(study, indent=2))
    atomic_write_text(out / "crf_study.md", render_crf_study(study))
    return study


def _crf_scores(root: Path, dataset: Any, epochs_grid: Sequence[int], seeds: int, n_iter: int,
                graph: str, learned: bool = True) -> dict[str, Any]:
    """Every FCN budget × condition, scored on the test split."""
    images, target = dataset.test.images, np.asarray(dataset.test.labels)
    weights = [load_run(root / f"fcn_crf_s{s}").model.crf.weights.data.astype(np.float64)
               for s in range(seeds)] if learned else []
    rows: dict[str, Any] = {}
    for e in epochs_grid:
        runs = [load_run(root / f"fcn_e{e}_s{s}") for s in range(seeds)]
        preds = {"fcn": [_with_crf(r, images, None, n_iter, graph) for r in runs],
                 "crf_default": [_with_crf(r, images, crf_default_weights(graph), n_iter, graph) for r in runs]}
        if learned:
            preds["crf_learned"] = [_with_crf(r, images, w, n_iter, graph) for r, w in zip(runs, weights)]
        row = {c: score_condition(p, target) for c, p in preds.items()}
        for c in list(preds)[1:]:
            row[c]["vs_fcn"] = paired_comparison(preds["fcn"], preds[c], target)
        rows[str(e)] = row
    result = {"n_test": int(len(target)), "budgets": rows}
    if learned:
        result["learned_weights"] = [w.tolist() for w in weights]
        result["fcn_crf_joint_dice_pooled_seeds"] = [  # the FCN-CRF trained end to end, for comparison
            json.loads((root / f"fcn_crf_s{s}" / "metrics.json").read_text())["test"]["dice_pooled"]
            for s in range(seeds)]
    return result


def summarize_crf(study: dict[str, Any], protocol: str) -> str:
    """One line per protocol: the FCN's Dice and the default-weight CRF's Δ at each budget."""
    res = study["protocols"][protocol]
    parts = []
    for e, row in res["budgets"].items():
        v = row["crf_default"]["vs_fcn"]
        parts.append(f"{e} ep.: FCN {100 * row['fcn']['dice_pooled_mean']:.2f} %, CRF "
                     f"{100 * v['dice_pooled_difference']:+.2f} (trimap w=1 {100 * v['trimap_w1_difference']:+.2f}, "
                     f"p {fmt_p(v['paired_p_wilcoxon'])})")
    return f"{protocol} boxes, {study['command']['seeds']} seed(s): " + "; ".join(parts)


def render_crf_study(study: dict[str, Any]) -> str:
    """The study as Markdown: one table per box protocol, one row per FCN budget."""
    c = study["command"]
    lines = [f"# What the CRF buys, on `{study['data']}`", "",
             f"{c['seeds']} seed(s); FCNs trained for a fixed budget of {', '.join(map(str, c['epochs_grid']))} "
             f"epoch(s); the mean-field CRF ({c['crf_graph']}, {c['n_iter_eval']} iterations) applied to each FCN's "
             "test unaries with its default weights and with the weights an FCN-CRF learned. Δ is CRF − FCN in "
             "points of pooled Dice (mean over seeds; 95 % bootstrap CI over test images); p is the Wilcoxon "
             "test on per-image Dice averaged over seeds. Trimap accuracy in the band of width w around the "
             "true boundary.", ""]
    for protocol, res in study["protocols"].items():
        lines += [f"**{protocol.capitalize()} boxes** ({res['n_test']} test ROIs):", "",
                  "| FCN epochs | FCN Dice (%) | CRF, default w: Δ [95 % CI], p | trimap Δ w=1 / 3 "
                  "| CRF, learned w: Δ [95 % CI], p | trimap Δ w=1 / 3 |", "|---|---|---|---|---|---|"]
        for e, row in res["budgets"].items():
            cells = [e, mean_sd(row["fcn"])]
            for cond in CRF_CONDITIONS[1:]:
                if cond not in row:  # a study run without the FCN-CRF (learned=False)
                    cells += ["not run", "not run"]
                    continue
                v = row[cond]["vs_fcn"]
                cells.append(f"{delta_ci(v)}, {fmt_p(v['paired_p_wilcoxon'])}")
                cells.append(f"{100 * v['trimap_w1_difference']:+.2f} / {100 * v['trimap_w3_difference']:+.2f}")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
