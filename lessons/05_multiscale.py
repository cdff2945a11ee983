"""Lesson 05 — the multi-scale FCN and its learned fusion [ZX18 §3, Table 1].

Rebuilds: the four FCNs of Table 1, whose first kernels are 5, 4, 3 and 2 pixels wide; their
receptive fields, computed by hand from the layer sizes and measured as the support of the
image gradient of one output logit; the fusion U_l = Σ_k α_{k,l} log softmax(z_k)_l with learned
weights α (initialised to ¼), written by hand and checked against `MultiScaleFCN`; then trains
the multi-scale FCN and the multi-scale FCN-CRF and compares them with the single-scale models.

Prints: numbered findings with expected values on stdout; each training run's progress on stderr.
Saves: ``05_receptive_fields.png`` (|∂ logit / ∂ I| of the centre pixel for each FCN),
``05_predictions.png`` (each FCN, the fused model and the multi-scale FCN-CRF on test ROIs),
``05_study.png`` (multi_fcn − fcn per mass-size third under drawn boxes: this run's reduced
study, one seed, beside the committed 3-seed study of ``tinyseg study multiscale``).
Budget (default run): fcn and multi_fcn 15 epochs, multi_fcn_crf 10 epochs, seed 0, the epoch
with the best validation Dice kept. The lesson's wall time, default and ``--fast``, is in the
lesson table of the docs' home page (measured by ``python tools/make_figures.py --times``).

Run: ``python lessons/05_multiscale.py [--fast] [--device cpu|gpu] [--out DIR]``.
The file is also a notebook (Jupytext's percent format: each ``# %%`` starts a cell, one per
step of the lesson's page; the flags are set in the ``parameters`` cell): see the README.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import tinyseg as ts
from tinyseg import F, data, studies, viz
from tinyseg.experiments import fast_subset, seed_difference
from tinyseg.models import FCN_CONFIGS
from tinyseg.train import TrainConfig, fit
from tinyseg.utils import finding, lesson_args, savefig, show_figure

# The committed Table 2 of this clone (found from the package: a notebook has no __file__).
TABLE2 = Path(ts.__file__).resolve().parents[1] / "docs" / "results" / "phantom" / "table2.json"


# %% tags=["parameters"]
# The lesson's flags: as a script, the command line sets them (--fast, --device, --out); in a
# notebook, set them here.
fast = False    # True: the same code paths and figures on a tiny budget, in seconds
device = "cpu"  # "cpu", "gpu" or "auto"
out = None      # folder for figures and runs; None: runs/lessons/05_multiscale/

# %%
# Importing this file stops here (lesson_args refuses): an import never runs the steps.
args = lesson_args("05_multiscale", __doc__, fast=fast, device=device, out=out)
ds = data.load_dataset("phantom")
train_ds = fast_subset(ds, 16, 4) if args.fast else ds


# %% [markdown]
# ## Receptive fields, by hand and measured
#
# The side of the input window that one 1×1 code unit of each FCN sees, computed here and
# measured below.

# %%
# --8<-- [start:receptive_field]
def receptive_field(c1: int, k1: int, c2: int, k2: int, c3: int, k3: int,
                    size: int = 40) -> tuple[int, int]:
    """Side of the input window one 1×1 code unit sees, and the rows the floors drop.

    conv k grows the field by k − 1 (times the current stride); a 2×2 pool by 1 (times
    the stride) and doubles the stride.
    """
    rf, stride = 1, 1
    for k, pool in ((k1, True), (k2, True), (k3, False)):
        rf += (k - 1) * stride
        if pool:
            rf += stride
            stride *= 2
    return rf, size - rf
# --8<-- [end:receptive_field]


# %%
fields = {name: receptive_field(*cfg) for name, cfg in FCN_CONFIGS.items()}
finding(1, "receptive field of the 1×1 code (side, input rows the floored pools never see): " +
           ", ".join(f"{n}: {rf} ({lost})" for n, (rf, lost) in fields.items()) +
           " (expected: 40 (0), 37 (3), 38 (2), 39 (1) — FCN 2 is blind to its last 3 rows and columns)")


# %% [markdown]
# ## Fusion, by hand
#
# The four FCNs' outputs fused as a weighted geometric mean, against `MultiScaleFCN`.

# %%
# --8<-- [start:fusion]
def fuse_by_hand(logits: list[np.ndarray], alpha: np.ndarray) -> np.ndarray:
    """U_l = Σ_k α_{k,l} log softmax(z_k)_l: a weighted geometric mean of the p_k."""
    out = 0.0
    for z, a in zip(logits, alpha):
        m = z.max(axis=1, keepdims=True)
        log_p = z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))
        out = out + a[None, :, None, None] * log_p
    return out
# --8<-- [end:fusion]


# %%
model = ts.models.MultiScaleFCN(prior=data.empirical_prior(ds.train.labels), seed=0, dtype=np.float64)
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 1, 40, 40))
zs = [fcn(ts.Tensor(x)).data for fcn in model.fcns]
alpha = rng.uniform(0.1, 0.5, (4, 2))
model.alpha.data = alpha
finding(2, f"fusion by hand vs MultiScaleFCN: max |Δ| = {np.abs(fuse_by_hand(zs, alpha) - model(ts.Tensor(x)).data).max():.1e} "
           "(expected < 1e-12)")


# %% [markdown]
# ### The receptive fields, measured
#
# Which input pixels move the centre logit of each FCN at all.

# %%
fig, axes = plt.subplots(1, 4, figsize=(7.6, 2.3), layout="constrained")
measured, logs = [], []
for name, fcn in zip(FCN_CONFIGS, model.fcns):
    img = ts.Tensor(x[:1], requires_grad=True)
    z = fcn(img)
    z[:, 1, 20, 20].sum().backward()
    support = np.abs(img.grad[0, 0]) > 0
    rows = np.flatnonzero(support.any(axis=1))
    measured.append(int(rows.max() - rows.min() + 1))
    logs.append(np.log10(np.abs(img.grad[0, 0]) + 1e-12))  # -12: no dependence at all
lo, hi = min(g.min() for g in logs), max(g.max() for g in logs)  # one scale
for ax, name, g, field in zip(axes, FCN_CONFIGS, logs, measured):
    im = ax.imshow(g, cmap="viridis", vmin=lo, vmax=hi)
    ax.set_title(f"{name}: k1 = {FCN_CONFIGS[name][1]}, field {field} px", fontsize=8)
    ax.set_xticks([]), ax.set_yticks([])
bar = fig.colorbar(im, ax=axes, shrink=0.85)
bar.set_label("log10 |∂ logit / ∂ I|", fontsize=8)
bar.ax.tick_params(labelsize=7)
fig.suptitle("log10 |∂ logit(20, 20) / ∂ I|, untrained FCNs, random input", fontsize=9)
show_figure(savefig(fig, args.out / "05_receptive_fields.png", dpi=200))
plt.close(fig)
finding(3, f"measured support of the image gradient (rows): {measured} (expected: the computed fields "
           f"{[f[0] for f in fields.values()]})")


# %% [markdown]
# ## Training the multi-scale models
#
# FCN 1, the multi-scale FCN and the multi-scale FCN-CRF on the same seed; the learned
# fusion weights; each FCN inside the multi-scale model on test ROIs.

# %%
epochs = {"fcn": 15, "multi_fcn": 15, "multi_fcn_crf": 10} if not args.fast else {"fcn": 1, "multi_fcn": 1,
                                                                                 "multi_fcn_crf": 1}
runs = {}
for variant, ep in epochs.items():
    shutil.rmtree(args.out / f"run_{variant}", ignore_errors=True)
    cfg = TrainConfig(variant=variant, epochs=ep, seed=0, device=args.device,
                      n_iter=2 if args.fast else 5, n_iter_eval=3 if args.fast else 10)
    runs[variant] = fit(cfg, args.out / f"run_{variant}", dataset=train_ds)
m = {v: json.loads((r.path / "metrics.json").read_text()) for v, r in runs.items()}
one_seed = 100 * (m["multi_fcn"]["test"]["dice_pooled"] - m["fcn"]["test"]["dice_pooled"])
finding(4, "test pooled Dice: " + ", ".join(f"{v} {m[v]['test']['dice_pooled']:.4f}" for v in m) +
           f"; prior-only {m['fcn']['prior_baseline']['dice_pooled']:.4f}. multi_fcn minus fcn: "
           f"{one_seed:+.2f} points on this one seed; {seed_difference(TABLE2, 'multi_fcn', 'fcn')} "
           "(expected: multi-scale and single-scale within about a point of each other; one seed's "
           "difference is within the spread over seeds, so the multi-seed table is the evidence — the "
           "paper reports +1.0 % on INbreast)")
a = runs["multi_fcn"].model.fcn.alpha.numpy()
finding(5, "learned fusion weights α (rows FCN 1-4, columns background / mass): " +
           "; ".join(f"[{r[0]:.3f}, {r[1]:.3f}]" for r in a) + " (expected: near ¼ after a short run, "
           "drifting towards the more useful scales)")


# %%
msf = runs["multi_fcn"].model.fcn
xt = runs["multi_fcn"].normalize(ds.test.images[:6]).astype(np.float32)
xp = ts.get_array_module(msf.alpha.data)
with ts.no_grad():
    msf.eval()
    preds = {f"FCN {k + 1}": ts.as_numpy(xp.argmax(fcn(ts.Tensor(xp.asarray(xt))).data, axis=1))
             for k, fcn in enumerate(msf.fcns)}
preds["multi-FCN"] = runs["multi_fcn"].predict(ds.test.images[:6])
preds["multi-FCN-CRF"] = runs["multi_fcn_crf"].predict(ds.test.images[:6])
fig = viz.contours(ds.test.images[:6], ds.test.labels[:6], preds)
fig.set_size_inches(7.0, 7.2)  # the docs' column: text ≥ 10 px at 688 px wide
fig.tight_layout()
show_figure(savefig(fig, args.out / "05_predictions.png", dpi=200))
plt.close("all")


# %% [markdown]
# ## Where multi-scale should act
#
# Drawn boxes, the mass anywhere in its ROI, by mass size: this run's reduced study beside
# the committed one.

# %%
# Where multi-scale should act: drawn boxes, the mass anywhere in the ROI, by mass size.
# --8<-- [start:study]
shutil.rmtree(args.out / "run_multiscale_study", ignore_errors=True)
mine = studies.run_multiscale_study(
    boxes="drawn", seeds=1, epochs=1 if args.fast else 10,
    out=args.out / "run_multiscale_study", fast=args.fast)
# --8<-- [end:study]
committed = studies.load_committed("multiscale")
finding(6, f"per third of mass size, this run ({mine['command']['epochs']} epochs): "
           f"{studies.summarize_multiscale(mine)}. The committed study: "
           + (studies.summarize_multiscale(committed) if committed else "not found (run `tinyseg study "
              "multiscale`)") + " (expected: if the larger receptive fields help find the mass, the gain "
           "is largest where the mass is small in its box; one seed can differ from the committed study)")
fig, ax = plt.subplots(figsize=(5.2, 2.8))
names = [*studies.multiscale.THIRDS, "all"]
for k, (study, who) in enumerate(((mine, "this run"), (committed, "committed, 3 seeds"))):
    if study is not None:
        ax.bar([i + 0.38 * (k - 0.5) for i in range(len(names))],
               [100 * study["groups"][n]["multi_vs_fcn"]["dice_pooled_difference"] for n in names],
               0.38, label=who)
ax.axhline(0, color="k", lw=0.6)
ax.set_xticks(range(len(names)), [f"{n} masses" if n != "all" else "all" for n in names])
ax.set(ylabel="multi_fcn − fcn, Dice points", title="drawn boxes, by mass size relative to the ROI")
ax.legend(fontsize=7)
fig.tight_layout()
show_figure(savefig(fig, args.out / "05_study.png", dpi=200))
plt.close(fig)
