"""Lesson 03 — the CRF as a recurrent network, by hand [ZX18 Eq. 2-5].

Rebuilds: the exact marginals of a tiny 3×3 CRF by enumerating all 512 labelings; mean-field
inference as a naive loop over the paper's kernels (intensity exp(−ΔI²/2)/(P−1) and position
½exp(−|Δp|²), self pairs excluded, Potts, per-label weights w[m, l]); the same as tinyseg's
`F.mean_field_crf` (an RNN whose backward runs through every iteration); the free energy and the
convergence of Q over iterations, on the unaries of a trained FCN; then compares the joint
FCN-CRF with the FCN trained on the same seed.

Prints: numbered findings with expected values on stdout; each training run's progress on stderr.
Saves: ``03_kernels.png`` (kernel rows around one pixel), ``03_iterations.png`` (Q over
mean-field iterations on the trained FCN's unaries for one test ROI, and the convergence),
``03_predictions.png`` (FCN vs FCN-CRF on the test ROIs where they differ most), ``03_study.png``
(pooled Dice of FCN and FCN + CRF as the FCN's training grows: this run's reduced study, drawn
boxes, one seed, beside the committed 3-seed study of ``tinyseg study crf``).
Time: see the lesson table on the docs' home page, measured by
``python tools/make_figures.py --times``; ``--fast`` runs the same code paths on 16 training
masses for one epoch.

Run: ``python lessons/03_crf.py [--fast] [--device cpu|gpu] [--out DIR]``.
The file is also a notebook (Jupytext's percent format: each ``# %%`` starts a cell, one per
step of the lesson's page; the flags are set in the ``parameters`` cell): see the README.
"""
from __future__ import annotations

import itertools
import json
import shutil

import matplotlib.pyplot as plt
import numpy as np

import tinyseg as ts
from tinyseg import F, data, studies
from tinyseg.experiments import fast_subset
from tinyseg.train import TrainConfig, fit
from tinyseg.utils import finding, lesson_args, savefig, show_figure


# %% tags=["parameters"]
# The lesson's flags: as a script, the command line sets them (--fast, --device, --out); in a
# notebook, set them here.
fast = False    # True: the same code paths and figures on a tiny budget, in seconds
device = "cpu"  # "cpu", "gpu" or "auto"
out = None      # folder for figures and runs; None: runs/lessons/03_crf/

# %%
# Importing this file stops here (lesson_args refuses): an import never runs the steps.
args = lesson_args("03_crf", __doc__, fast=fast, device=device, out=out)
rng = np.random.default_rng(0)


# %% [markdown]
# ## The kernels, by hand
#
# The paper's two kernels as P×P matrices [ZX18 Eq. 4]; they are drawn below, on a
# test ROI, once an FCN is trained.

# %%
# --8<-- [start:kernels]
def dense_kernels(image: np.ndarray) -> list[np.ndarray]:
    """The paper's two kernels as P×P matrices, self pairs excluded [ZX18 Eq. 4]."""
    H, W = image.shape
    P = H * W
    I = image.reshape(P)
    yy, xx = np.divmod(np.arange(P), W)  # pixel coordinates, in pixels
    dI2 = (I[:, None] - I[None, :]) ** 2
    dp2 = (yy[:, None] - yy[None, :]) ** 2 + (xx[:, None] - xx[None, :]) ** 2
    k_int = np.exp(-dI2 / 2) / (P - 1)  # m = 0: intensity, scaled by 1/(P−1)
    k_pos = 0.5 * np.exp(-dp2)  # m = 1: position
    for k in (k_int, k_pos):
        np.fill_diagonal(k, 0.0)  # j ≠ i
    return [k_int, k_pos]
# --8<-- [end:kernels]


# %% [markdown]
# ## Mean field as a loop
#
# The naive loop [ZX18 Eq. 5] against the exact marginals of a 3×3 CRF, as the coupling
# weakens.

# %%
# --8<-- [start:naive_mean_field]
def mean_field_naive(unary: np.ndarray, kernels: list[np.ndarray], w: np.ndarray,
                     n_iter: int) -> list[np.ndarray]:
    """Mean field for 2 labels as a plain loop [ZX18 Eq. 5]:

    Q ← softmax(U + Σ_m (K_m Q) diag(w[m, 0], w[m, 1])).

    unary: (P, 2) logits; w: (M, 2) weights, one per kernel m and label l
    ((M,): one per kernel). Returns Q after every iteration, Q_0 = softmax(U) first.
    """
    w = np.broadcast_to(np.reshape(w, (len(kernels), -1)), (len(kernels), 2))  # (M, 2)

    def softmax(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max(axis=1, keepdims=True))  # log-sum-exp: no overflow
        return e / e.sum(axis=1, keepdims=True)

    qs = [softmax(unary)]
    for _ in range(n_iter):
        # w[m] (2,) scales the columns of K_m Q (P, 2): label l's message by w[m, l]
        message = sum(w[m] * (K @ qs[-1]) for m, K in enumerate(kernels))
        qs.append(softmax(unary + message))
    return qs
# --8<-- [end:naive_mean_field]


# --8<-- [start:exact]
def exact_marginals(unary: np.ndarray, kernels: list[np.ndarray],
                    w: np.ndarray) -> np.ndarray:
    """P(y_i = 1) by summing exp(−E(y)) over all 2^P labelings (P ≤ 16)."""
    P = unary.shape[0]
    w = np.broadcast_to(np.reshape(w, (len(kernels), -1)), (len(kernels), 2))  # (M, 2)
    # C[l] = Σ_m w[m, l] K_m: what a pair agreeing on label l lowers the energy by
    C = [sum(w[m, l] * K for m, K in enumerate(kernels)) for l in (0, 1)]
    y = np.array(list(itertools.product([0, 1], repeat=P)))  # (2^P, P): every labeling
    score = unary[np.arange(P), y].sum(axis=1)  # Σ_i U_i(y_i)
    agree = [(y[:, :, None] == l) & (y[:, None, :] == l) for l in (0, 1)]
    pairs = sum((a * c).sum(axis=(1, 2)) for a, c in zip(agree, C))  # over i ≠ j
    energy = -score - 0.5 * pairs  # ½ Σ_{i≠j} = Σ_{i<j}
    p = np.exp(-(energy - energy.min()))
    return (p[:, None] * y).sum(axis=0) / p.sum()
# --8<-- [end:exact]


# %%
# A 3×3 CRF: exact marginals against mean field, as the coupling weakens.
image = rng.standard_normal((3, 3))
unary = rng.standard_normal((9, 2))
kernels = dense_kernels(image)
errors = []
for c in (0.4, 0.2, 0.1):
    # w[m, l]; the intensity kernel (m = 0) carries 1/(P−1), so its weight is 8× larger
    weights = np.array([[8 * c, 8 * c], [c, c]])
    q = mean_field_naive(unary, kernels, weights, 50)[-1]
    errors.append(np.abs(q[:, 1] - exact_marginals(unary, kernels, weights)).max())
finding(1, f"3×3 grid, mean field vs exact marginals (512 labelings): max error {errors[0]:.4f}, "
           f"{errors[1]:.4f}, {errors[2]:.4f} as the coupling halves (expected: small, shrinking "
           f"about 4× per halving: ratios {errors[0] / errors[1]:.1f}, {errors[1] / errors[2]:.1f})")


# %% [markdown]
# ### Two models to work on
#
# The FCN and the FCN-CRF, trained first: the CRF below runs on the trained FCN's
# unaries; the two are compared in "Training the FCN-CRF".

# %%
def train_pair(ds, args, epochs: int):  # noqa: ANN001, ANN201
    runs = {}
    for variant in ("fcn", "fcn_crf"):
        shutil.rmtree(args.out / f"run_{variant}", ignore_errors=True)
        cfg = TrainConfig(variant=variant, epochs=epochs, seed=0, device=args.device,
                          n_iter=2 if args.fast else 5, n_iter_eval=3 if args.fast else 10)
        runs[variant] = fit(cfg, args.out / f"run_{variant}", dataset=ds)
    return runs



# %%
# Train the FCN and the FCN-CRF first: the CRF below runs on the trained FCN's unaries.
ds = data.load_dataset("phantom")
train_ds = fast_subset(ds, 16, 4) if args.fast else ds
epochs = 1 if args.fast else 30
runs = train_pair(train_ds, args, epochs)


# %% [markdown]
# ## The library op and its backward
#
# `F.mean_field_crf` against the naive loop, on the test ROI where mean field relabels
# the most pixels; its convergence, its free energy, its gradient check.

# %%
def fcn_unaries(run, images: np.ndarray, device: str) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """A trained FCN's logits (prior included) and the normalised ROIs, in float64 on the CPU."""
    x = run.normalize(images).astype(np.float32)
    with ts.no_grad():
        u = run.model(ts.Tensor(ts.to_device(x, device))).data  # (n, 2, 40, 40)
    return ts.as_numpy(u).astype(np.float64), x.astype(np.float64)



# %%
# The test ROI on which mean field with the initial weights relabels the most pixels.
t_iter = 3 if args.fast else 10
w = np.array([[1.0, 1.0], [1.0, 1.0]])  # w[m, l], the weights a CRF starts from
u_all, x_all = fcn_unaries(runs["fcn"], ds.test.images, args.device)
z_all = F.mean_field_crf(u_all, x_all, w, n_iter=t_iter, graph="dense").data
flips = ((z_all.argmax(axis=1) != u_all.argmax(axis=1))).sum(axis=(1, 2))
k = int(np.argmax(flips))
u, x = u_all[k:k + 1], x_all[k:k + 1]  # (1, 2, 40, 40) logits, (1, 1, 40, 40) ROI
K = dense_kernels(x[0, 0])
qs = mean_field_naive(u[0].reshape(2, -1).T, K, w, t_iter)
# --8<-- [start:library]
z = F.mean_field_crf(ts.Tensor(u), ts.Tensor(x), ts.Tensor(w),
                     n_iter=t_iter, graph="dense")
q_lib = F.softmax(z, axis=1).data[0, 1].reshape(-1)  # Q(mass), (P,)
# --8<-- [end:library]
finding(2, f"test ROI {k} (where mean field relabels the most pixels, {flips[k]}), unaries from the "
           f"trained FCN, {t_iter} iterations: max |naive loop − F.mean_field_crf| = "
           f"{np.abs(qs[-1][:, 1] - q_lib).max():.1e} (expected < 1e-12)")


# %%
def free_energy(q: np.ndarray, unary: np.ndarray, coupling: np.ndarray) -> float:
    """F(Q) = Σ Q log Q − Σ U Q − ½ Σ_{i≠j} Σ_l C[l]_ij Q_il Q_jl  (≥ −log Z).

    coupling: C[l] = Σ_m w[m, l] K_m, (2, P, P); a (P, P) matrix serves both labels.
    """
    C = np.broadcast_to(coupling, (2, *coupling.shape[-2:]))
    pairs = sum(float(q[:, lab] @ C[lab] @ q[:, lab]) for lab in (0, 1))
    return float((q * np.log(q)).sum() - (unary * q).sum() - 0.5 * pairs)



# %%
coupling = np.stack([sum(w[m, lab] * Km for m, Km in enumerate(K)) for lab in (0, 1)])
f_vals = [free_energy(q, u[0].reshape(2, -1).T, coupling) for q in qs]
steps = [np.abs(qs[t + 1] - qs[t]).max() for t in range(len(qs) - 1)]
bound = ts.F.crf_contraction_bound(w, x, graph="dense")
finding(3, f"contraction bound ¼Σ_m |w[m,0] + w[m,1]| λ_max = {float(np.max(bound)):.2f} (expected < 1: "
           f"mean field converges); max |Q_t − Q_(t−1)|: {' '.join(f'{s:.1e}' for s in steps[:6])} "
           "(expected: shrinking geometrically)")
finding(4, f"free energy F(Q) over iterations: {' '.join(f'{f:.1f}' for f in f_vals[:6])} "
           "(expected: settles; parallel updates without the self pair need not decrease it monotonically)")


# %%
ts.check_backward(lambda a, b, c: F.mean_field_crf(a, b, c, n_iter=3), [u[:, :, :6, :6], x[:, :, :6, :6], w],
                  name="mean_field_crf")
finding(5, "the hand-written backward through 3 iterations passes the float64 gradient check for the "
           "unaries, the image and the weights w[m, l] (expected: passes)")


# %%
# The kernels of "The kernels, by hand", drawn around one pixel of that test ROI.
fig, axes = plt.subplots(1, 3, figsize=(6.9, 2.7))
centre = 20 * 40 + 20
axes[0].imshow(x[0, 0], cmap="gray"), axes[0].plot(20, 20, "r+", ms=8)
axes[0].set_title(f"test ROI {k}, normalised;\npixel i = red cross", fontsize=8)
axes[1].imshow(K[0][centre].reshape(40, 40) * 1599, cmap="viridis")
axes[1].set_title("intensity kernel, row i\n(× (P − 1))", fontsize=8)
axes[2].imshow(K[1][centre].reshape(40, 40)[14:27, 14:27], cmap="viridis")
axes[2].set_title("position kernel, row i\n(13×13 crop)", fontsize=8)
for ax in axes:
    ax.set_xticks([]), ax.set_yticks([])
fig.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.84, wspace=0.06)
show_figure(savefig(fig, args.out / "03_kernels.png", dpi=200))
plt.close(fig)


# %%
# Q over the mean-field iterations, and the size of each update.
fig = plt.figure(figsize=(6.9, 2.25))
grid = fig.add_gridspec(1, 5, width_ratios=[1, 1, 1, 1, 1.25], wspace=0.08,
                        left=0.01, right=0.985, top=0.8, bottom=0.17)
axes = [fig.add_subplot(grid[0, i]) for i in range(5)]
for ax, t in zip(axes[:4], [0, 1, 2, len(qs) - 1]):
    ax.imshow(qs[t][:, 1].reshape(40, 40), cmap="magma", vmin=0, vmax=1)
    ax.contour(ds.test.labels[k], levels=[0.5], colors="c", linewidths=0.8)
    ax.set_title(f"t = {t}", fontsize=8), ax.set_xticks([]), ax.set_yticks([])
box = axes[4].get_position()  # room for the tick labels of the last panel
axes[4].set_position([box.x0 + 0.07, box.y0, box.width - 0.07, box.height])
axes[4].semilogy(range(1, len(steps) + 1), steps, "o-", ms=3)
axes[4].set_title("largest change of Q", fontsize=8)
axes[4].set_xlabel("iteration t", fontsize=8)
axes[4].tick_params(which="both", labelsize=7)
fig.suptitle(f"Q(mass) on test ROI {k}: unaries from the trained FCN, w = 1 "
             "(cyan: true contour)", fontsize=8)
show_figure(savefig(fig, args.out / "03_iterations.png", dpi=200))
plt.close(fig)


# %% [markdown]
# ## Training the FCN-CRF
#
# The joint FCN-CRF against the FCN trained on the same seed, and the test ROIs where
# they differ most.

# %%
m = {v: json.loads((r.path / "metrics.json").read_text()) for v, r in runs.items()}
wts = np.ravel(runs["fcn_crf"].model.crf.weights.numpy())
dice_fcn, dice_crf = m["fcn"]["test"]["dice_pooled"], m["fcn_crf"]["test"]["dice_pooled"]
finding(6, f"{epochs} epochs, seed 0: test pooled Dice FCN {dice_fcn:.4f}, FCN-CRF {dice_crf:.4f} "
           f"({100 * (dice_crf - dice_fcn):+.2f} points), prior-only "
           f"{m['fcn']['prior_baseline']['dice_pooled']:.4f}; learned CRF weights (intensity, position) = "
           f"{', '.join(f'{v:.3f}' for v in wts)} (expected: a small difference either way; one seed's "
           "difference is within the spread between seeds, so the 3-seed Table 2 of the results page "
           "(docs/results.md), not this line, says whether the CRF helps)")



# %%
def contour_grid(split: data.Split, picks: np.ndarray, preds: dict, dice: dict, path) -> None:  # noqa: ANN001
    """One row per method, one column per test ROI: the enhanced ROI, true and predicted contours."""
    fig, axes = plt.subplots(len(preds), len(picks), figsize=(6.9, 1.65 * len(preds) + 0.35), squeeze=False)
    for c, k in enumerate(picks):
        for r, name in enumerate(preds):
            ax = axes[r, c]
            ax.imshow(split.images[k, 0], cmap="gray")
            ax.contour(split.labels[k], levels=[0.5], colors="r", linewidths=1.0)
            if preds[name][k].any():
                ax.contour(preds[name][k], levels=[0.5], colors="lime", linewidths=1.0)
            ax.set_xlabel(f"Dice {dice[name][k]:.3f}", fontsize=8, labelpad=2)
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
        axes[0, c].set_title(f"test ROI {k}", fontsize=8)
    fig.suptitle("red: true contour, green: predicted contour (enhanced ROIs)", fontsize=8)
    fig.tight_layout(pad=0.4, h_pad=0.3, w_pad=0.3)
    show_figure(savefig(fig, path, dpi=200))
    plt.close(fig)



# %%
test = ds.test
preds = {name: runs[v].predict(test.images) for name, v in (("FCN", "fcn"), ("FCN-CRF", "fcn_crf"))}
dice = {name: ts.metrics.dice_per_image(p, test.labels) for name, p in preds.items()}
differ = (preds["FCN"] != preds["FCN-CRF"]).sum(axis=(1, 2))
picks = np.argsort(-differ, kind="stable")[:5]
contour_grid(test, picks, preds, dice, args.out / "03_predictions.png")
finding(7, f"03_predictions.png shows test ROIs {', '.join(map(str, picks))}, where the FCN and the "
           f"FCN-CRF disagree on {differ[picks].min()}-{differ[picks].max()} of 1600 pixels "
           "(expected: the CRF's contour is smoother, on these ROIs not always closer to the truth)")


# %% [markdown]
# ## Where the CRF acts
#
# The same CRF on the unaries of FCNs of growing quality, drawn boxes: this run's reduced
# study beside the committed one.

# %%
def plot_crf_study(mine: dict, committed: dict | None, path) -> None:  # noqa: ANN001
    """Pooled Dice of the FCN and FCN + CRF against the FCN's epochs: this run, and the study."""
    fig, ax = plt.subplots(figsize=(5.2, 3.0))
    for study, style, who in ((committed, "-", "committed, 3 seeds"), (mine, "--", "this run")):
        if study is None:
            continue
        for protocol, res in study["protocols"].items():
            e = [int(k) for k in res["budgets"]]
            for cond, colour in (("fcn", "C0"), ("crf_default", "C1")):
                y = [100 * res["budgets"][str(k)][cond]["dice_pooled_mean"] for k in e]
                label = f"{'FCN' if cond == 'fcn' else '+ CRF'}, {protocol}, {who}"
                ax.plot(e, y, style, color=colour, marker="o" if protocol == "drawn" else "s", ms=3,
                        label=label)
    ax.set_xscale("log")
    budgets = sorted({int(k) for st in (committed, mine) if st
                      for res in st["protocols"].values() for k in res["budgets"]})
    ax.set_xticks(budgets, [str(k) for k in budgets])  # plain epoch counts, not 10⁰, 10¹
    ax.minorticks_off()
    ax.set(xlabel="FCN training epochs", ylabel="test pooled Dice (%)")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    show_figure(savefig(fig, path, dpi=200))
    plt.close(fig)



# %%
# Where the CRF acts: the same CRF on the unaries of FCNs of growing quality, drawn boxes.
# --8<-- [start:study]
shutil.rmtree(args.out / "run_crf_study", ignore_errors=True)
budgets = (1,) if args.fast else (1, 3, 10)
mine = studies.run_crf_study(protocols=("drawn",), seeds=1, epochs_grid=budgets,
                             out=args.out / "run_crf_study", fast=args.fast,
                             learned=False)  # no FCN-CRF: the default weights only
# --8<-- [end:study]
committed = studies.load_committed("crf")
finding(8, "the CRF at inference (default weights) on FCNs trained for "
           f"{', '.join(map(str, budgets))} epoch(s), this run: {studies.summarize_crf(mine, 'drawn')}. "
           "The committed study: " + (studies.summarize_crf(committed, "drawn") + "; " +
                                    studies.summarize_crf(committed, "tight") if committed else
                                    "not found (run `tinyseg study crf`)") +
        " (expected: the CRF moves pixels in the boundary band; whether that raises Dice depends on the "
        "unaries it is given; one seed can differ from the committed study in sign)")
plot_crf_study(mine, committed, args.out / "03_study.png")
