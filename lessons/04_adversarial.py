"""Lesson 04 — adversarial examples and adversarial training of the FCN-CRF [ZX18 Eq. 7-8].

Rebuilds: an adversarial example by hand for a trained FCN — the image gradient g = ∇_I L from
one backward pass, the perturbation R = ε g/‖g‖₂ per image — and checks that the loss rises as
the first-order prediction L(I) + ε Σ‖g_n‖ says, and where R lies relative to the mass boundary;
then adversarial training (Eq. 8): the loss at I and at I + R, summed. It trains `fcn_crf` and
`adv_fcn_crf` on the same seed from ONE shared pretrained FCN (so the comparison isolates the
adversarial term) for the same fixed budget (no early selection, which would otherwise keep
the first fine-tuning epoch of both and hide the difference), and compares their test Dice and
trimap accuracy. Finally it measures what adversarial training is classically for: robustness.
Each trained model is attacked with its own image gradient, R = ε g/‖g‖, at several ε, and its
test Dice on I + R is compared with a random perturbation of the same norm.

Budget (default run): FCN pre-training 20 epochs (best validation epoch kept), then each CRF
variant fine-tuned for 8 epochs on all 58 training masses (dense CRF, 5 mean-field iterations in
training, 10 at test). A dense `adv_fcn_crf` step costs two forward and two backward passes
through FCN and CRF. The lesson's wall time, default and ``--fast``, is in the lesson table of
the docs' home page (measured by ``python tools/make_figures.py --times``).

Prints: numbered findings with expected values on stdout; each training run's progress on stderr.
Saves: ``04_adversarial_example.png`` (image, g, R, prediction at I and at I + R),
``04_predictions.png`` (FCN-CRF vs adversarial FCN-CRF on test ROIs, as the paper's Fig. 3),
``04_robustness.png`` (test Dice under attack against ε: the plain model, the adversarial ones
trained at the paper's ε = 0.1 and at ε = 2, and a random control).

Run: ``python lessons/04_adversarial.py [--fast] [--device cpu|gpu] [--out DIR]``.
The file is also a notebook (Jupytext's percent format: each ``# %%`` starts a cell, one per
step of the lesson's page; the flags are set in the ``parameters`` cell): see the README.
"""
from __future__ import annotations

import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import tinyseg as ts
from tinyseg import F, data, metrics, studies, viz
from tinyseg.experiments import PAPER_TABLE2, fast_subset, merge_validation, seed_difference
from tinyseg.train import TrainConfig, fit
from tinyseg.utils import finding, lesson_args, savefig, show_figure

# The committed Table 2 of this clone (found from the package: a notebook has no __file__).
TABLE2 = Path(ts.__file__).resolve().parents[1] / "docs" / "results" / "phantom" / "table2.json"


# %% tags=["parameters"]
# The lesson's flags: as a script, the command line sets them (--fast, --device, --out); in a
# notebook, set them here.
fast = False    # True: the same code paths and figures on a tiny budget, in seconds
device = "cpu"  # "cpu", "gpu" or "auto"
out = None      # folder for figures and runs; None: runs/lessons/04_adversarial/

# %%
# Importing this file stops here (lesson_args refuses): an import never runs the steps.
args = lesson_args("04_adversarial", __doc__, fast=fast, device=device, out=out)
ds = data.load_dataset("phantom")
train_ds = fast_subset(ds, 16, 4) if args.fast else ds
n_iter, n_eval = (2, 3) if args.fast else (5, 10)
pre_epochs, ft_epochs = (1, 1) if args.fast else (20, 8)


# %% [markdown]
# ## An adversarial example by hand
#
# The image gradient g = ∇_I L of a trained FCN from one backward pass, the perturbation
# R = ε g/‖g‖₂ per image [ZX18 Eq. 7], the loss rise it causes, and where R lies.

# %%
# 1. A trained FCN (the shared starting point of both CRF variants).
shutil.rmtree(args.out / "run_fcn", ignore_errors=True)
fcn_run = fit(TrainConfig(variant="fcn", epochs=pre_epochs, seed=0, device=args.device), args.out / "run_fcn",
              dataset=train_ds, desc="fcn pre-training")
model = fcn_run.model
x = fcn_run.normalize(ds.test.images[:8]).astype(np.float32)
y = ds.test.labels[:8]
xp = ts.get_array_module(model.parameters()[0].data)


# %%
# --8<-- [start:gradient]
image = ts.Tensor(xp.asarray(x), requires_grad=True)  # a leaf that wants a gradient
loss = F.cross_entropy(model(image), xp.asarray(y))
loss.backward()                      # one pass: ∇θ L (unused here) and g = ∇_I L
g = ts.as_numpy(image.grad)
# --8<-- [end:gradient]


# %%
# --8<-- [start:perturbation]
def perturbation_by_hand(g: np.ndarray, eps: float) -> np.ndarray:
    """R_n = ε g_n / ‖g_n‖₂ for each image n [ZX18 Eq. 7].

    g_n is divided by max|g_n| first, so that squaring tiny gradients cannot underflow.
    """
    r = np.zeros_like(g)
    for n in range(len(g)):
        big = np.abs(g[n]).max()
        if big > 0:                     # a vanishing gradient gives no direction: R = 0
            unit = g[n] / big
            r[n] = eps * unit / np.sqrt((unit * unit).sum())
    return r
# --8<-- [end:perturbation]


# %%
eps = 0.1  # the paper's ε on INbreast, in the units the FCN sees (normalised intensities)
r = perturbation_by_hand(g, eps)
r_lib = ts.as_numpy(ts.adversarial.adversarial_perturbation(xp.asarray(g), eps))
finding(1, f"R by hand vs tinyseg.adversarial: max |Δ| = {np.abs(r - r_lib).max():.1e}; ‖R_n‖₂ = "
           f"{np.sqrt((r.reshape(8, -1) ** 2).sum(1)).min():.4f}…{np.sqrt((r.reshape(8, -1) ** 2).sum(1)).max():.4f} "
           f"(expected < 1e-6 and exactly ε = {eps}); ‖R‖/‖I‖ = {np.linalg.norm(r) / np.linalg.norm(x):.4f}")


# %%
# 2. The loss rises as the first-order Taylor expansion predicts: L(I + R) ≈ L(I) + <g, R> = L(I) + ε Σ_n ‖g_n‖.
def loss_at(img: np.ndarray) -> float:
    with ts.no_grad():
        return F.cross_entropy(model(ts.Tensor(xp.asarray(img))), xp.asarray(y)).item()


norms = np.sqrt((g.astype(np.float64).reshape(len(g), -1) ** 2).sum(1))
rows = [(e, loss_at(x + perturbation_by_hand(g, e)) - loss.item(), e * norms.sum()) for e in (0.8, 0.4, 0.2)]
finding(2, "loss rise at I + R vs first-order prediction ε Σ‖g_n‖: " +
           ", ".join(f"ε={e}: {a:.3e} vs {p:.3e}" for e, a, p in rows) +
           " (expected: positive, the relative gap shrinking with ε — the error is O(ε²))")


# %%
band = metrics.trimap_band(y, 2)
energy = r[:, 0] ** 2
share = float(energy[band].sum() / energy.sum())
finding(3, f"{100 * share:.0f} % of ‖R‖² lies within 2 pixels of the true contour, a band covering "
           f"{100 * band.mean():.0f} % of the pixels (expected: no strong concentration, a ratio near or below 1 "
           "— every logit of this FCN depends on every pixel through its 1×1 code, so g spreads over the ROI; "
           "compare the paper's intuition of boundary-focused perturbations)")


# %%
with ts.no_grad():
    pred_clean = ts.as_numpy(model.predict(xp.asarray(x)))
    pred_adv = ts.as_numpy(model.predict(xp.asarray(x + r)))

fig, axes = plt.subplots(1, 5, figsize=(7.0, 1.7))
k = 0
panels = [(x[k, 0], "image I (normalised)", "gray"), (g[k, 0], "g = ∇_I L", "RdBu_r"),
          (r[k, 0], f"R = ε g/‖g‖, ε = {eps}", "RdBu_r"), (pred_clean[k], "FCN on I", "gray"),
          (pred_adv[k], "FCN on I + R", "gray")]
for ax, (img, title, cmap) in zip(axes, panels):
    lim = np.abs(img).max() if cmap == "RdBu_r" else None
    ax.imshow(img, cmap=cmap, vmin=-lim if lim else None, vmax=lim)
    ax.contour(y[k], levels=[0.5], colors="lime" if cmap == "RdBu_r" else "r", linewidths=0.8)
    ax.set_title(title, fontsize=8), ax.set_xticks([]), ax.set_yticks([])
fig.tight_layout()
show_figure(savefig(fig, args.out / "04_adversarial_example.png", dpi=200))
plt.close(fig)


# %% [markdown]
# ## The training step
#
# Adversarial training [ZX18 Eq. 8]: `fcn_crf` and `adv_fcn_crf` from one shared
# pretrained FCN, same seed, same fixed budget; and at a 20× larger ε.

# %%
# 3. Adversarial training: both CRF variants start from the same FCN, same seed, same fixed budget.
# --8<-- [start:train]
fixed_budget = merge_validation(train_ds)  # all training masses, no epoch selection
runs = {}
for variant in ("fcn_crf", "adv_fcn_crf"):
    shutil.rmtree(args.out / f"run_{variant}", ignore_errors=True)
    cfg = TrainConfig(variant=variant, epochs=ft_epochs, seed=0, device=args.device,
                      n_iter=n_iter, n_iter_eval=n_eval, val_frac=0.0,
                      init_from=str(fcn_run.path))  # eps="auto": 0.1 here
    runs[variant] = fit(cfg, args.out / f"run_{variant}", dataset=fixed_budget)
# --8<-- [end:train]
# The same training at a 20× larger ε: where adversarial training has room to act.
shutil.rmtree(args.out / "run_adv_fcn_crf_eps2", ignore_errors=True)
cfg = replace(cfg, eps=2.0)
strong = fit(cfg, args.out / "run_adv_fcn_crf_eps2", dataset=fixed_budget)
m = {v: json.loads((run.path / "metrics.json").read_text())["test"] for v, run in runs.items()}
fcn_m = json.loads((fcn_run.path / "metrics.json").read_text())
hist = (runs["adv_fcn_crf"].path / "history.csv").read_text().splitlines()[1:]
ratio = float(hist[-1].split(",")[3])
one_seed = 100 * (m["adv_fcn_crf"]["dice_pooled"] - m["fcn_crf"]["dice_pooled"])
paper_gain = PAPER_TABLE2["adv_fcn_crf"][0] - PAPER_TABLE2["fcn_crf"][0]  # INbreast, Dice in %
finding(4, f"test pooled Dice: FCN {fcn_m['test']['dice_pooled']:.4f}, FCN-CRF {m['fcn_crf']['dice_pooled']:.4f}, "
           f"adversarial FCN-CRF {m['adv_fcn_crf']['dice_pooled']:.4f}; prior-only "
           f"{fcn_m['prior_baseline']['dice_pooled']:.4f}. Adversarial minus plain FCN-CRF: {one_seed:+.2f} "
           f"points on this one seed; {seed_difference(TABLE2, 'adv_fcn_crf', 'fcn_crf')} (expected: all within "
           "about a point of each other; one seed's difference is within the spread over seeds, so the "
           f"multi-seed table is the evidence — the paper's gain on INbreast is {paper_gain:+.2f} points)")
finding(5, "trimap accuracy w = 1 / 3 / 5: " + "; ".join(
    f"{v}: " + " / ".join(f"{100 * m[v]['trimap_accuracy'][str(w)]:.1f}" for w in (1, 3, 5)) for v in m) +
    f"; ‖R‖/‖I‖ during adversarial training = {ratio:.4f} (expected ≈ 0.0025: ε = 0.1 on a 40×40 image)")


# %% [markdown]
# ## Robustness: what adversarial training is for
#
# Each model attacked with its own image gradient at several ε, against a random
# direction of the same norm.

# %%
# --8<-- [start:robustness]
def dice_under_attack(run: ts.Run, images: np.ndarray, labels: np.ndarray,
                      eps_list: list[float], random: bool = False,
                      batch: int = 29) -> list[float]:
    """Pooled Dice of a trained run on I + R, with R = ε g/‖g‖ and g = ∇_I L per image.

    With ``random=True``, g is Gaussian noise instead: a perturbation of the same
    norm in a direction that does not look at the model, the control for "is it the
    direction or the size?".
    """
    model = run.model.eval()  # attacked as it is evaluated: test-time CRF iterations
    xp = ts.get_array_module(model.parameters()[0].data)
    x = run.normalize(images).astype(np.float32)
    g = np.zeros_like(x)
    for i in range(0, len(x), batch):
        image = ts.Tensor(xp.asarray(x[i:i + batch]), requires_grad=True)
        F.cross_entropy(model(image), xp.asarray(labels[i:i + batch])).backward()
        g[i:i + batch] = ts.as_numpy(image.grad)
    if random:
        g = np.random.default_rng(0).standard_normal(g.shape).astype(g.dtype)
    dice = []
    for eps in eps_list:
        r = ts.as_numpy(ts.adversarial.adversarial_perturbation(xp.asarray(g), eps))
        x_adv = xp.asarray(x + r)
        pred = np.concatenate([ts.as_numpy(model.predict(x_adv[i:i + batch]))
                               for i in range(0, len(x), batch)])
        dice.append(metrics.dice_pooled(pred, labels))
    return dice
# --8<-- [end:robustness]


# %%
# 4. Robustness: each model attacked with its own gradient, against a random direction.
n_att = 8 if args.fast else 29
eps_list = [0.1, 0.5, 1.0, 2.0]
att_x, att_y = ds.test.images[:n_att], ds.test.labels[:n_att]
clean = {v: metrics.dice_pooled(run.predict(att_x), att_y) for v, run in runs.items()}
attacked = {}
for v, run in runs.items():
    print(f"attacking {v} on {n_att} test ROIs", file=sys.stderr, flush=True)  # progress
    attacked[v] = dice_under_attack(run, att_x, att_y, eps_list)
print("perturbing fcn_crf along random directions", file=sys.stderr, flush=True)
control = dice_under_attack(runs["fcn_crf"], att_x, att_y, eps_list, random=True)
finding(6, f"pooled Dice on {n_att} test ROIs under attack, ε = " + " / ".join(map(str, eps_list)) + ": " +
        "; ".join(f"{v}: {clean[v]:.4f} clean → " + " / ".join(f"{d:.4f}" for d in attacked[v])
                  for v in runs) +
        "; fcn_crf under a random direction of the same norm: " + " / ".join(f"{d:.4f}" for d in control) +
        f" (one seed, {n_att} ROIs; expected: the attack lowers Dice more than the random direction, more "
        "as ε grows; whether adversarial training makes the model more robust is what this measures — "
        "read the two attacked rows against each other)")

print("attacking adv_fcn_crf trained at ε = 2", file=sys.stderr, flush=True)
clean["adv_eps2"] = metrics.dice_pooled(strong.predict(att_x), att_y)
attacked["adv_eps2"] = dice_under_attack(strong, att_x, att_y, eps_list)
committed = studies.load_committed("adversarial")
finding(7, "trained at ε = 2 (same start, same budget): " + f"{clean['adv_eps2']:.4f} clean → " +
        " / ".join(f"{d:.4f}" for d in attacked["adv_eps2"]) + "; minus the plain FCN-CRF under each attack: " +
        " / ".join(f"{100 * (a - b):+.2f}" for a, b in zip(attacked["adv_eps2"], attacked["fcn_crf"])) +
        " points (one seed). The committed study: " +
        (studies.summarize_adversarial(committed) if committed else
         "not found (run `tinyseg study adversarial`)") +
        " (expected: at the paper's ε adversarial training changes nothing measurable here; a larger "
        "training ε is where it can buy robustness against larger attacks, or cost clean Dice)")


# %%
fig, ax = plt.subplots(figsize=(5.6, 3.8))
names = {"fcn_crf": "FCN-CRF", "adv_fcn_crf": "adversarial FCN-CRF, ε = 0.1",
         "adv_eps2": "adversarial FCN-CRF, ε = 2"}
for v, marker in (("fcn_crf", "o"), ("adv_fcn_crf", "s"), ("adv_eps2", "D")):
    ax.plot([0.0] + eps_list, [clean[v]] + attacked[v], marker=marker, ms=4, label=f"{names[v]}, attacked")
ax.plot([0.0] + eps_list, [clean["fcn_crf"]] + control, "k--", marker="^", ms=4,
        label="FCN-CRF, random direction")
ax.set(xlabel="ε (‖R‖ per image, normalised intensity units)", ylabel="test pooled Dice",
       title=f"Dice under perturbation ({n_att} test ROIs)")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()
show_figure(savefig(fig, args.out / "04_robustness.png", dpi=200))
plt.close(fig)


# %% [markdown]
# ### The two models on test ROIs
#
# The FCN-CRF and the adversarial FCN-CRF of "The training step", as the paper's Fig. 3.

# %%
preds = {v: run.predict(ds.test.images[:6]) for v, run in runs.items()}
fig = viz.contours(ds.test.images[:6], ds.test.labels[:6],
                   {"FCN-CRF": preds["fcn_crf"], "adversarial\nFCN-CRF": preds["adv_fcn_crf"]})
fig.set_size_inches(7.0, 2.6)  # the docs' column: text ≥ 10 px at 688 px wide
fig.tight_layout()
show_figure(savefig(fig, args.out / "04_predictions.png", dpi=200))
plt.close("all")
