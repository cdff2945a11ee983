"""The Table-2 reproduction: every variant × every seed, baselines, significance [ZX18 Table 2].

`run_table2` trains each (variant, seed) into ``OUT/runs/<variant>_s<seed>/`` with
validation-based selection (a run with metrics.json is finished and skipped; a run with only a
checkpoint is resumed), one after another or ``jobs`` at a time in worker processes, then aggregates: mean ± std over seeds of test pooled and per-image
Dice and trimap accuracy, a bootstrap CI of the seed-mean pooled Dice, the prior-only and Otsu
baselines, and each variant's pixel-level McNemar test and image-level paired test against
`fcn`. The paper's own Table-2 numbers are printed in a separate column, labelled as the
paper's, on its datasets — they are not comparable to a synthetic-data run.

See: lessons/06_evaluation.py, tests/test_experiments.py.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import metrics
from .backend import THREAD_SETTINGS
from .config import CHOICES, TrainConfig
from .data import Dataset, Split, load_dataset, otsu_baseline, prior_baseline_predict
from .data.boxes import DRAWN_FACTOR
from .errors import OptionError, UserError
from .train import fit
from .utils import atomic_write_text


# Dice (%) of Table 2 [ZX18 Table 2]: (INbreast, DDSM-BCRP).
PAPER_TABLE2: dict[str, tuple[float, float]] = {
    "fcn": (89.48, 90.21), "adv_fcn": (89.71, 90.78), "fcn_crf": (89.78, 90.97), "adv_fcn_crf": (90.07, 91.03),
    "multi_fcn": (90.47, 91.17), "adv_multi_fcn": (90.71, 91.20), "multi_fcn_crf": (90.76, 91.26),
    "adv_multi_fcn_crf": (90.97, 91.30),
}


def fast_subset(dataset: Dataset, n_train: int = 16, n_val: int = 4) -> Dataset:
    """The first `n_train` training and `n_val` validation masses (test untouched), for ``--fast``."""
    def cut(s: Split, n: int) -> Split:
        return Split(s.images[:n], s.labels[:n], list(s.meta)[:n])

    return replace(dataset, train=cut(dataset.train, n_train), val=cut(dataset.val, n_val))


def merge_validation(dataset: Dataset) -> Dataset:
    """The dataset with its validation masses moved into training (for a fixed epoch budget).

    Use it once model selection is over, or where a comparison should not depend on which epoch
    a validation split happens to pick; the test split is untouched.
    """
    tr, va = dataset.train, dataset.val
    train = Split(np.concatenate([tr.images, va.images]), np.concatenate([tr.labels, va.labels]),
                  list(tr.meta) + list(va.meta))
    return replace(dataset, train=train, val=Split(va.images[:0], va.labels[:0], []))


def run_table2(data: str = "phantom", seeds: int = 3, epochs: int = 100, variants: Sequence[str] | None = None,
               out: str | Path = "results", fast: bool = False, device: str = "auto", data_seed: int = 0,
               boxes: str = "tight", quiet: bool = False, jobs: int = 1, threads_per_job: int | None = None,
               **overrides: Any) -> dict[str, Any]:
    """Train every variant for every seed (resumable) and write ``table2.md`` and ``table2.json``.

    Args:
        data: data spec.
        seeds: seeds 0..K−1 are trained per variant.
        epochs: fixed epoch budget per run (the selected epoch is the best on validation within it).
        variants: subset of the eight variants of `models.VARIANTS` (default all eight).
        out: output folder.
        fast: 16 training masses, 2 mean-field iterations in training and 3 at test (for CI).
        device: "cpu", "gpu" or "auto".
        data_seed: synthetic data seed (and the seed of drawn boxes).
        boxes: ROI boxes, "tight" (the paper's protocol) or "drawn" (see `tinyseg.data.boxes`).
        quiet: no progress output.
        jobs: runs trained at once, each in its own (spawned) worker process. With 1 and no
            `threads_per_job` the runs are trained in this process, one after another.
        threads_per_job: BLAS/OpenMP threads of each worker (default: cores // jobs, at least 1);
            set in the worker's environment before it imports NumPy. This process's own thread
            settings are left as they are.
        overrides: further `TrainConfig` fields (e.g. crf_graph="grid4").
    """
    variants = list(CHOICES["variant"]) if not variants else list(variants)
    if seeds < 1:
        raise OptionError(f"--seeds must be at least 1, got {seeds}.")
    if jobs < 1 or (threads_per_job is not None and threads_per_job < 1):
        raise OptionError(f"--jobs and --threads-per-job must be at least 1, got {jobs} and {threads_per_job}.")
    if fast:
        overrides = {"n_iter": 2, "n_iter_eval": 3, **overrides}
    base = replace(TrainConfig(), data=data, epochs=epochs, device=device, data_seed=data_seed, boxes=boxes,
                   **overrides)
    for v in variants:  # every run's options are checked before any data is read or any run written
        replace(base, variant=v).validate()
    out = Path(out)
    dataset = load_dataset(data, data_seed=data_seed, boxes=boxes)
    if fast:
        dataset = fast_subset(dataset)
    # A run with metrics.json is finished; one with a checkpoint resumes where it stopped.
    todo = [(replace(base, variant=v, seed=s), out / "runs" / f"{v}_s{s}") for v in variants for s in range(seeds)
            if not (out / "runs" / f"{v}_s{s}" / "metrics.json").exists()]
    if jobs == 1 and threads_per_job is None:
        timings = {}
        for k, (config, run_dir) in enumerate(todo, start=1):
            timings[run_dir.name] = _train_one(config, run_dir, dataset, quiet, f"{run_dir.name} [{k}/{len(todo)}]")
    else:
        timings = _train_in_workers(todo, dataset, jobs, threads_per_job, quiet)
    table = aggregate(out, variants, seeds, dataset, data)
    table["command"] = {"data": data, "seeds": seeds, "epochs": epochs, "variants": variants, "fast": fast,
                        "data_seed": data_seed, "boxes": boxes, **{k: v for k, v in overrides.items()}}
    table["train_seconds_this_invocation"] = timings
    atomic_write_text(out / "table2.json", json.dumps(table, indent=2))
    atomic_write_text(out / "table2.md", render_markdown(table))
    return table


def _train_one(config: TrainConfig, run_dir: Path, dataset: Dataset, quiet: bool, desc: str | None = None) -> float:
    """Train (or resume) one run; its wall time in seconds. fit reports its own progress."""
    t0 = time.perf_counter()
    fit(config, run_dir, resume=(run_dir / "checkpoint.npz").exists(), quiet=quiet, dataset=dataset, desc=desc)
    return time.perf_counter() - t0


def _worker_task(task: tuple[TrainConfig, Path, Dataset]) -> tuple[str, float]:
    config, run_dir, dataset = task
    return run_dir.name, _train_one(config, run_dir, dataset, quiet=True)


def _train_in_workers(todo: list[tuple[TrainConfig, Path]], dataset: Dataset, jobs: int,
                      threads_per_job: int | None, quiet: bool, label: str = "table2") -> dict[str, float]:
    """Train the runs of `todo` in `jobs` spawned processes, with one progress bar over runs."""
    import multiprocessing

    from tqdm.auto import tqdm

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = threads_per_job or max(1, cores // jobs)
    timings: dict[str, float] = {}
    if not todo:
        return timings
    # The BLAS and OpenMP runtimes read their thread counts once, when NumPy loads: a spawned
    # worker starts with this process's environment, so set it for the workers' start only.
    saved = {k: os.environ.get(k) for k in THREAD_SETTINGS}
    os.environ.update({k: str(threads) for k in THREAD_SETTINGS})
    try:
        pool = multiprocessing.get_context("spawn").Pool(min(jobs, len(todo)))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    bar = tqdm(total=len(todo), desc=f"{label} ({jobs} jobs x {threads} threads)", unit="run", file=sys.stderr,
               disable=quiet or not sys.stderr.isatty())
    try:
        for name, seconds in pool.imap_unordered(_worker_task, [(c, d, dataset) for c, d in todo]):
            timings[name] = seconds
            bar.update(1)
            bar.set_postfix_str(f"{name} {seconds:.0f} s")
            if bar.disable and not quiet:
                print(f"{label}: {name} trained in {seconds:.1f} s ({len(timings)}/{len(todo)})",
                      file=sys.stderr, flush=True)
        pool.close()
    finally:
        pool.terminate()  # an error or Ctrl-C stops the other workers; finished runs stay on disk
        pool.join()
        bar.close()
    return timings


def _load_preds(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(run_dir / "test_pred.npz") as z:
        return z["pred"].astype(np.int64), z["target"].astype(np.int64)


def aggregate(out: Path, variants: Sequence[str], seeds: int, dataset: Any, data: str) -> dict[str, Any]:
    """Collect the finished runs of `out/runs` into the table's rows, baselines and tests."""
    target = np.asarray(dataset.test.labels)
    rows: dict[str, Any] = {}
    preds: dict[str, list[np.ndarray]] = {}
    for v in variants:
        per_seed, ps = [], []
        for s in range(seeds):
            run_dir = out / "runs" / f"{v}_s{s}"
            m = json.loads((run_dir / "metrics.json").read_text())
            p, t = _load_preds(run_dir)
            if not np.array_equal(t, target):
                raise UserError(f"{run_dir} was evaluated on other test labels than {data}: remove it and rerun.")
            per_seed.append(m)
            ps.append(p)
        preds[v] = ps
        pooled = [m["test"]["dice_pooled"] for m in per_seed]
        per_img = [m["test"]["dice_per_image_mean"] for m in per_seed]
        # Trimap accuracy was computed by evaluate_run for every run; read it, do not recompute.
        tri = np.array([[m["test"]["trimap_accuracy"][str(w)] for w in range(1, 6)] for m in per_seed])  # (seeds, 5)
        rows[v] = {"dice_pooled_mean": float(np.mean(pooled)), "dice_pooled_std": float(np.std(pooled)),
                   "dice_pooled_seeds": pooled, "dice_per_image_mean": float(np.mean(per_img)),
                   "dice_per_image_std": float(np.std(per_img)),
                   "dice_pooled_ci95": metrics.bootstrap_dice_ci(ps, target),
                   "trimap_mean": tri.mean(0).tolist(), "trimap_std": tri.std(0).tolist(),
                   "selected_epochs": [m.get("selected_epoch") for m in per_seed],
                   "paper_dice": PAPER_TABLE2[v]}
    # Significance against fcn on the same seeds: pixel-level McNemar (seed 0) and an image-level
    # paired test on per-image Dice averaged over seeds.
    if "fcn" in preds:
        dice_fcn = np.mean([metrics.dice_per_image(p, target) for p in preds["fcn"]], axis=0)
        for v in variants:
            if v == "fcn":
                continue
            mc = metrics.mcnemar_pixels(preds["fcn"][0], preds[v][0], target)
            dice_v = np.mean([metrics.dice_per_image(p, target) for p in preds[v]], axis=0)
            pt = metrics.paired_image_test(dice_fcn, dice_v)
            rows[v]["vs_fcn"] = {"mcnemar_n01": mc.n01, "mcnemar_n10": mc.n10, "mcnemar_p_exact": mc.p_exact,
                                 "mcnemar_chi2": mc.chi2, "paired_mean_dice_difference": pt.mean_difference,
                                 "paired_p_sign": pt.p_sign, "paired_p_wilcoxon": pt.p_wilcoxon}
    with np.load(out / "runs" / f"{variants[0]}_s0" / "stats.npz") as z:
        prior = z["prior"]
    prior_pred = prior_baseline_predict(prior, len(target))
    otsu_pred = otsu_baseline(dataset.test.images)
    baselines = {name: {"dice_pooled": float(metrics.dice_pooled(p, target)),
                        "dice_per_image_mean": float(np.mean(metrics.dice_per_image(p, target))),
                        "trimap": metrics.trimap_accuracy(p, target).tolist()}
                 for name, p in (("prior_only", prior_pred), ("otsu", otsu_pred))}
    return {"data": data, "n_test": int(len(target)), "rows": rows, "baselines": baselines}


def seed_difference(table_json: str | Path, variant: str, reference: str) -> str:
    """One sentence: what a finished Table 2 says of variant − reference, in pooled-Dice points.

    Reads ``table2.json`` as `run_table2` writes it and gives the mean over seeds of the
    per-seed difference, each seed's difference and the larger of the two seed standard
    deviations: the yardstick a single-seed comparison in a lesson is read against.
    """
    path = Path(table_json)
    if not path.exists():
        return f"no finished Table 2 at {path} to compare with (run `tinyseg table2`)"
    table = json.loads(path.read_text())
    a, b = table["rows"][variant], table["rows"][reference]
    diff = [100 * (u - v) for u, v in zip(a["dice_pooled_seeds"], b["dice_pooled_seeds"])]
    sd = 100 * max(a["dice_pooled_std"], b["dice_pooled_std"])
    per_seed = ", ".join(f"{round(d, 2) + 0.0:+.2f}" for d in diff)
    return (f"the committed {len(diff)}-seed Table 2 ({table['command']['epochs']} epochs, validation "
            f"selection) gives {np.mean(diff):+.2f} (per seed {per_seed}; seed sd up to {sd:.2f} points)")


def _fmt_p(p: float) -> str:
    return "n/a" if p != p else (f"{p:.1e}" if p < 1e-3 else f"{p:.3f}")


def render_markdown(table: dict[str, Any]) -> str:
    """The table as Markdown: our numbers, baselines, tests, and the paper's column, labelled."""
    c = table["command"]
    paper_col = 1 if ("ddsm" in table["data"] or table["data"].startswith("cbis")) else 0
    paper_name = "DDSM-BCRP" if paper_col else "INbreast"
    boxes = c.get("boxes", "tight")  # tables written before the option existed used tight boxes
    lines = [f"# Table 2 on `{table['data']}`" + (", drawn boxes" if boxes == "drawn" else ""), "",
             *(["ROI boxes drawn around each mass as a person or a detector draws them (`--boxes drawn`): "
                f"each side {DRAWN_FACTOR[0]}–{DRAWN_FACTOR[1]} × the mass's, the mass anywhere inside; the paper's "
                "protocol crops the mass's "
                "own bounding box.", ""] if boxes == "drawn" else []),
             f"{c['seeds']} seed(s) per variant, {c['epochs']} epochs each (selection by validation pooled Dice), "
             f"{table['n_test']} test ROIs{', --fast' if c.get('fast') else ''}. Test pooled Dice is the paper's "
             "metric; ± is the standard deviation over seeds; the CI is a 95 % bootstrap over test images of the "
             "seed-mean pooled Dice.", "",
             f"| variant | pooled Dice (%) | 95 % CI | per-image Dice (%) | trimap acc. w=1 / w=3 / w=5 (%) "
             f"| vs fcn: Δ per-image Dice, p (sign) / p (Wilcoxon) | pixel McNemar p | paper's Dice on {paper_name} (%) |",
             "|---|---|---|---|---|---|---|---|"]
    for v, r in table["rows"].items():
        tri = r["trimap_mean"]
        vs = r.get("vs_fcn")
        vs_txt = (f"{100 * vs['paired_mean_dice_difference']:+.2f}, {_fmt_p(vs['paired_p_sign'])} / "
                  f"{_fmt_p(vs['paired_p_wilcoxon'])}") if vs else "—"
        mc = _fmt_p(vs["mcnemar_p_exact"]) if vs else "—"
        lo, hi = r["dice_pooled_ci95"]
        lines.append(f"| {v} | {100 * r['dice_pooled_mean']:.2f} ± {100 * r['dice_pooled_std']:.2f} | "
                     f"{100 * lo:.2f}–{100 * hi:.2f} | {100 * r['dice_per_image_mean']:.2f} ± "
                     f"{100 * r['dice_per_image_std']:.2f} | {100 * tri[0]:.1f} / {100 * tri[2]:.1f} / "
                     f"{100 * tri[4]:.1f} | {vs_txt} | {mc} | {r['paper_dice'][paper_col]:.2f} |")
    for name, b in table["baselines"].items():
        lines.append(f"| *baseline: {name.replace('_', '-')}* | {100 * b['dice_pooled']:.2f} | — | "
                     f"{100 * b['dice_per_image_mean']:.2f} | {100 * b['trimap'][0]:.1f} / {100 * b['trimap'][2]:.1f} "
                     f"/ {100 * b['trimap'][4]:.1f} | — | — | — |")
    lines += ["", f"The last column is the paper's Table 2 on the real {paper_name} data, for orientation only: "
              "it is a different dataset. Pixel-level McNemar p-values treat the strongly correlated pixels of an "
              "image as independent and are therefore anti-conservative; the image-level paired tests are the "
              "ones to read.", ""]
    return "\n".join(lines)
