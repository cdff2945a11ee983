"""Lesson 06 — evaluation: Dice, trimaps, McNemar, and how to read Table 2 [ZX18 Table 2, Fig. 4].

Rebuilds: every metric naively — pooled and per-image Dice, pixel accuracy, the trimap band by
brute-force distances, McNemar's exact p by summing binomial terms with exact integers — and
checks each against `tinyseg.metrics`; reads the committed Table-2 reproduction
(``docs/results/<data>/table2.json``, written by ``tinyseg table2``) and shows how to read it: the
prior-only baseline, the spread over seeds, and why pixel-level p-values are anti-conservative;
then trains two variants live and tests them against each other.

Prints: numbered findings with expected values on stdout; each training run's progress on stderr.
Saves: ``06_trimap_bands.png`` (the bands of Fig. 2b on a test ROI), ``06_trimap_curves.png``
(trimap accuracy of the committed results, as Fig. 4), ``06_live_demo.png`` (the live pair).
Budget (default run): two grid4 models, 15 epochs each, seed 0. The lesson's wall time, default
and ``--fast``, is in the lesson table of the docs' home page (measured by
``python tools/make_figures.py --times``).

Run: ``python lessons/06_evaluation.py [--fast] [--device cpu|gpu] [--out DIR]``.
The file is also a notebook (Jupytext's percent format: each ``# %%`` starts a cell, one per
step of the lesson's page; the flags are set in the ``parameters`` cell): see the README.
"""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import tinyseg as ts
from tinyseg import data, metrics, viz
from tinyseg.experiments import fast_subset
from tinyseg.train import TrainConfig, fit
from tinyseg.utils import finding, lesson_args, savefig, show_figure

# The committed results of this clone (found from the package: a notebook has no __file__).
RESULTS = Path(ts.__file__).resolve().parents[1] / "docs" / "results"


# %% tags=["parameters"]
# The lesson's flags: as a script, the command line sets them (--fast, --device, --out); in a
# notebook, set them here.
fast = False    # True: the same code paths and figures on a tiny budget, in seconds
device = "cpu"  # "cpu", "gpu" or "auto"
out = None      # folder for figures and runs; None: runs/lessons/06_evaluation/

# %%
# Importing this file stops here (lesson_args refuses): an import never runs the steps.
args = lesson_args("06_evaluation", __doc__, fast=fast, device=device, out=out)
ds = data.load_dataset("phantom")
prior = data.empirical_prior(ds.train.labels)
target = ds.test.labels[:8]
pred = data.prior_baseline_predict(prior, 8)


# %% [markdown]
# ## Every metric by hand
#
# Pooled and per-image Dice, pixel accuracy, the trimap band by brute force, McNemar's
# exact p in exact integers: each against `tinyseg.metrics`.

# %%
# --8<-- [start:naive_metrics]
def dice_naive(pred: np.ndarray, target: np.ndarray) -> float:
    """Pooled Dice: TP, FP, FN summed over all pixels of all images, then the ratio."""
    tp = fp = fn = 0
    for p, t in zip(pred.ravel(), target.ravel()):
        tp += int(p == 1 and t == 1)
        fp += int(p == 1 and t == 0)
        fn += int(p == 0 and t == 1)
    return 2 * tp / (2 * tp + fp + fn)


def band_naive(target: np.ndarray, w: int) -> np.ndarray:
    """Trimap band: pixels within Euclidean distance w of a pixel of the other class."""
    H, W = target.shape
    band = np.zeros((H, W), bool)
    for i in range(H):
        for j in range(W):
            for u in range(max(0, i - w), min(H, i + w + 1)):
                for v in range(max(0, j - w), min(W, j + w + 1)):
                    other = target[u, v] != target[i, j]
                    if other and (u - i) ** 2 + (v - j) ** 2 <= w * w:
                        band[i, j] = True
    return band


def mcnemar_exact_naive(n01: int, n10: int) -> float:
    """Exact two-sided McNemar: 2 P(Bin(n, ½) ≤ min(n01, n10)), in exact integers."""
    n, k = n01 + n10, min(n01, n10)
    return min(1.0, 2 * sum(math.comb(n, j) for j in range(k + 1)) / 2 ** n)
# --8<-- [end:naive_metrics]


# %%
finding(1, f"pooled Dice of the prior-only baseline on 8 test ROIs: naive {dice_naive(pred, target):.6f}, "
           f"metrics.dice_pooled {metrics.dice_pooled(pred, target):.6f} (expected: identical)")
per = metrics.dice_per_image(pred, target)
per_naive = [dice_naive(p, t) for p, t in zip(pred, target)]
acc = float((pred == target).mean())
finding(2, f"per-image Dice: max |naive − library| = {np.abs(per - per_naive).max():.1e}; pixel accuracy "
           f"{acc:.4f} = {metrics.pixel_accuracy(pred, target):.4f} (expected: equal); the pooled Dice "
           f"({metrics.dice_pooled(pred, target):.4f}) weights large masses more than the per-image mean "
           f"({per.mean():.4f})")
bands = [band_naive(target[0], w) for w in (1, 2, 3)]
same = all(np.array_equal(b, metrics.trimap_band(target[0], w)) for b, w in zip(bands, (1, 2, 3)))
finding(3, f"trimap bands w = 1, 2, 3 by brute force equal metrics.trimap_band: {same} (expected True); "
           f"sizes {[int(b.sum()) for b in bands]} pixels of 1600")
p1, p2 = mcnemar_exact_naive(2, 10), metrics.mcnemar(2, 10).p_exact
p3 = metrics.mcnemar(9969, 8956)
finding(4, f"McNemar exact p (2, 10): naive {p1:.11f}, library {p2:.11f} (expected 0.03857421875); "
           f"(9969, 8956): p = {p3.p_exact:.3e}, χ²_cc = {p3.chi2:.3f} (expected 1.866e-13 and 54.116 — the "
           "library works in log space, where 2^18925 would overflow a float)")


# %%
fig = viz.trimap_bands(ds.test.images[0, 0], ds.test.labels[0])
fig.set_size_inches(7.0, 2.1)  # the docs' column: text ≥ 10 px at 688 px wide
for ax in fig.axes:
    ax.title.set_fontsize(9)
fig.tight_layout()
show_figure(savefig(fig, args.out / "06_trimap_bands.png", dpi=200))
plt.close(fig)


# %% [markdown]
# ## Reading Table 2
#
# The committed Table-2 reproduction: the prior-only baseline, the spread over seeds, and
# why pixel-level p-values are anti-conservative.

# %%
# Reading the committed Table 2 (see docs/results.md for the command that produced it).
table_path = RESULTS / "phantom" / "table2.json"
if table_path.exists():
    table = json.loads(table_path.read_text())
    rows, base = table["rows"], table["baselines"]
    best = max(rows, key=lambda v: rows[v]["dice_pooled_mean"])
    spread = max(r["dice_pooled_std"] for r in rows.values())
    finding(5, f"committed Table 2 ({table['command']['seeds']} seeds × {table['command']['epochs']} epochs): "
               f"best variant {best} {100 * rows[best]['dice_pooled_mean']:.2f} %, fcn "
               f"{100 * rows['fcn']['dice_pooled_mean']:.2f} %, prior-only {100 * base['prior_only']['dice_pooled']:.2f} %, "
               f"Otsu {100 * base['otsu']['dice_pooled']:.2f} %; largest seed std {100 * spread:.2f} points "
               "(expected: differences between variants of the order of the seed spread — compare before claiming)")
    vs = {v: r["vs_fcn"] for v, r in rows.items() if "vs_fcn" in r}
    v = min(vs, key=lambda k: vs[k]["mcnemar_p_exact"])  # the most "significant" pixel-level result
    finding(6, f"against fcn, {v} has the smallest pixel-level McNemar p = {vs[v]['mcnemar_p_exact']:.1e}, for a "
               f"per-image Dice difference of {100 * vs[v]['paired_mean_dice_difference']:+.2f} points whose "
               f"image-level Wilcoxon p is {vs[v]['paired_p_wilcoxon']:.2f} (expected: the pixel test far smaller "
               "— it treats 92,800 correlated pixels as independent trials, so it is anti-conservative)")
    curves = {v: rows[v]["trimap_mean"] for v in ("fcn", "adv_fcn_crf", "adv_multi_fcn_crf") if v in rows}
    curves["prior-only"] = base["prior_only"]["trimap"]
    errors = {v: rows[v]["trimap_std"] for v in curves if v in rows}
    errors["prior-only"] = [0.0] * 5
    fig = viz.trimap_curves(curves, errors=errors)
    show_figure(savefig(fig, args.out / "06_trimap_curves.png", dpi=200))
    plt.close(fig)
    crf = [100 * (u - v) for u, v in zip(rows["fcn_crf"]["dice_pooled_seeds"], rows["fcn"]["dice_pooled_seeds"])]
    table_crf = (f"the committed Table 2's dense fcn_crf minus fcn: {np.mean(crf):+.2f} points over {len(crf)} "
                 "seeds (per seed " + ", ".join(f"{round(d, 2) + 0.0:+.2f}" for d in crf) +
                 f"; image-level Wilcoxon p = {rows['fcn_crf']['vs_fcn']['paired_p_wilcoxon']:.1e})")
else:
    finding(5, f"no committed results at {table_path} (run `tinyseg table2` first); skipping findings 5-6")
    table_crf = "no committed Table 2 to compare with"


# %% [markdown]
# ## A live pair
#
# Two variants trained here and tested against each other, pixel-level and image-level.

# %%
# A live pair, trained here and compared with both tests.
train_ds = fast_subset(ds, 16, 4) if args.fast else ds
runs = {}
for variant in ("fcn", "fcn_crf"):
    shutil.rmtree(args.out / f"run_{variant}", ignore_errors=True)
    cfg = TrainConfig(variant=variant, epochs=1 if args.fast else 15, seed=0, device=args.device,
                      crf_graph="grid4", n_iter=2 if args.fast else 5, n_iter_eval=3 if args.fast else 10)
    runs[variant] = fit(cfg, args.out / f"run_{variant}", dataset=train_ds)
# --8<-- [start:live_tests]
preds = {v: r.predict(ds.test.images) for v, r in runs.items()}
mc = metrics.mcnemar_pixels(preds["fcn"], preds["fcn_crf"], ds.test.labels)
dice = {v: metrics.dice_per_image(p, ds.test.labels) for v, p in preds.items()}
pt = metrics.paired_image_test(dice["fcn"], dice["fcn_crf"])
lo, hi = metrics.bootstrap_dice_ci(preds["fcn_crf"], ds.test.labels)
# --8<-- [end:live_tests]
pooled = {v: metrics.dice_pooled(p, ds.test.labels) for v, p in preds.items()}
finding(7, f"live: fcn {pooled['fcn']:.4f} vs fcn_crf (grid4) {pooled['fcn_crf']:.4f} (95 % CI "
           f"{lo:.4f}–{hi:.4f}); pixel McNemar p = {mc.p_exact:.2e} on {mc.n01 + mc.n10} discordant pixels, "
           f"image-level sign test p = {pt.p_sign:.3f}, Wilcoxon p = {pt.p_wilcoxon:.3f}. fcn_crf minus fcn: "
           f"{100 * (pooled['fcn_crf'] - pooled['fcn']):+.2f} points on this one seed; {table_crf} (expected: "
           "the pixel test far more 'significant' than the image-level tests; one seed's difference is "
           "within the spread over seeds, so the multi-seed table is the evidence)")
fig = viz.contours(ds.test.images[:6], ds.test.labels[:6], {v: p[:6] for v, p in preds.items()})
fig.set_size_inches(7.0, 2.6)  # the docs' column: text ≥ 10 px at 688 px wide
fig.tight_layout()
show_figure(savefig(fig, args.out / "06_live_demo.png", dpi=200))
plt.close("all")
