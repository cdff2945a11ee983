"""Lesson 02 — the FCN with a position prior, by hand [ZX18 Eq. 1, Eq. 6, Table 1].

Rebuilds: the data pipeline step by step (ROI extraction, 40×40 bicubic resize, the authors'
enhancement, per-pixel normalisation, the empirical prior of Fig. 2a); convolution as naive
loops and then as im2col + one matrix product; 2×2 max-pooling; the transpose convolution as the
adjoint of convolution (a dot-product test); the position prior as a bias on the logits; then
trains FCN 1 of Table 1 on the default synthetic data and compares its test Dice with the
prior-only baseline.

Prints: numbered findings with expected values on stdout; each training run's progress on stderr.
Saves: ``02_pipeline.png`` (raw ROI, enhanced, normalised, label, empirical prior),
``02_prior.png`` (learned prior next to the empirical one), ``02_predictions.png`` (test ROIs).
Time: 6 s on an idle 2-core CPU (40 epochs; measured by tools/make_figures.py), 20 s on an
H100 with ``--device gpu`` (cold); ``--fast``: under 20 s (3 steps).

Run: ``python lessons/02_fcn.py [--fast] [--device cpu|gpu] [--out DIR]``
"""
from __future__ import annotations

import json
import shutil

import numpy as np
from scipy import signal

import tinyseg as ts
from tinyseg import F, data, viz
from tinyseg.train import TrainConfig, fit
from tinyseg.utils import finding, lesson_args, savefig


# --8<-- [start:naive_conv]
def conv2d_naive(x: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Valid cross-correlation, stride 1, by four nested loops: y[n,o,i,j] = Σ_c,u,v W[o,c,u,v] x[n,c,i+u,j+v]."""
    N, C, H, Wd = x.shape
    O, _, KH, KW = W.shape
    y = np.zeros((N, O, H - KH + 1, Wd - KW + 1))
    for n in range(N):
        for o in range(O):
            for i in range(H - KH + 1):
                for j in range(Wd - KW + 1):
                    y[n, o, i, j] = np.sum(W[o] * x[n, :, i:i + KH, j:j + KW])
    return y


def conv2d_im2col(x: np.ndarray, W: np.ndarray) -> np.ndarray:
    """The same with every K×K patch copied into a column: one matrix product does all the sums."""
    N, C, H, Wd = x.shape
    O, _, KH, KW = W.shape
    OH, OW = H - KH + 1, Wd - KW + 1
    patches = np.lib.stride_tricks.sliding_window_view(x, (KH, KW), axis=(2, 3))  # (N, C, OH, OW, KH, KW)
    cols = patches.transpose(0, 2, 3, 1, 4, 5).reshape(N * OH * OW, C * KH * KW)   # one patch per row
    y = cols @ W.reshape(O, -1).T                                                  # (N*OH*OW, O)
    return y.reshape(N, OH, OW, O).transpose(0, 3, 1, 2)                           # (N, O, OH, OW)
# --8<-- [end:naive_conv]


# --8<-- [start:naive_pool]
def max_pool_naive(x: np.ndarray) -> np.ndarray:
    """2×2 max-pooling with stride 2, odd sizes floored."""
    N, C, H, W = x.shape
    y = np.empty((N, C, H // 2, W // 2))
    for i in range(H // 2):
        for j in range(W // 2):
            y[:, :, i, j] = x[:, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2].max(axis=(2, 3))
    return y
# --8<-- [end:naive_pool]


def pipeline_figure(out, fast: bool):  # noqa: ANN001, ANN201
    """Follow one synthetic mass through the pipeline [ZX18 §4, Fig. 2a]."""
    roi = data.generate_rois("inbreast", data_seed=0, indices=[0])[0]
    crop, crop_mask, box = data.extract_roi(roi.image, roi.mask)           # bounding box of the mass
    img40, lab40 = data.resize_roi(crop, crop_mask)                         # 40×40 bicubic, label at 0.5
    enhanced = data.enhance(img40)                                          # CLAHE → … → min–max
    ds = data.load_dataset("phantom")
    mu, sigma = data.fit_normalization(data.flip4(ds.train.images, ds.train.labels)[0])
    normalised = data.normalize(enhanced[None, None], mu, sigma)[0, 0]
    prior = data.empirical_prior(ds.train.labels)

    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 5, figsize=(14, 3.1))
    panels = [(crop, "raw ROI (bounding box)"), (enhanced, "resized + enhanced"), (normalised, "normalised (μ, σ)"),
              (lab40, "label (40×40)"), (prior, "empirical prior (Fig. 2a)")]
    for ax, (img, title) in zip(axes, panels):
        ax.imshow(img, cmap="magma" if "prior" in title else "gray")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    savefig(fig, out / "02_pipeline.png")
    plt.close(fig)
    levels = len(np.unique(enhanced))
    return levels, ds, prior


def main() -> None:
    args = lesson_args("02_fcn", __doc__)
    rng = np.random.default_rng(0)

    levels, ds, prior = pipeline_figure(args.out, args.fast)
    finding(1, f"the enhancement leaves {levels} grey levels (expected ≤ 64: a 64-level equalisation); "
               f"{len(ds.train)} training, {len(ds.val)} validation, {len(ds.test)} test ROIs (expected 46 / 12 / 58)")

    # Convolution three ways: naive loops, im2col, the library op; and scipy as an outside reference.
    x = rng.standard_normal((2, 3, 9, 8))
    W = rng.standard_normal((4, 3, 3, 2))
    y_naive, y_cols = conv2d_naive(x, W), conv2d_im2col(x, W)
    y_lib = F.conv2d(x, W).data
    y_scipy = np.stack([[sum(signal.correlate(x[n, c], W[o, c], mode="valid") for c in range(3)) for o in range(4)]
                        for n in range(2)])
    finding(2, f"conv2d: max |naive − im2col| = {np.abs(y_naive - y_cols).max():.1e}, "
               f"|naive − F.conv2d| = {np.abs(y_naive - y_lib).max():.1e}, |naive − scipy| = "
               f"{np.abs(y_naive - y_scipy).max():.1e} (expected < 1e-12)")

    xp_ = rng.standard_normal((2, 3, 7, 9))
    finding(3, f"max-pool 2×2 (odd sizes floored to {F.max_pool2d(xp_).shape[2:]}): max |naive − F.max_pool2d| = "
               f"{np.abs(max_pool_naive(xp_) - F.max_pool2d(xp_).data).max():.1e} (expected 0)")

    # --8<-- [start:adjoint]
    # The transpose convolution is the adjoint of the convolution: <conv(x), y> = <x, conv_T(y)>.
    x = rng.standard_normal((2, 3, 9, 9))
    W = rng.standard_normal((4, 3, 3, 3))
    y = rng.standard_normal((2, 4, 4, 4))                        # conv2d(x, W, stride=2) is (2, 4, 4, 4)
    lhs = np.sum(F.conv2d(x, W, stride=2).data * y)
    rhs = np.sum(x * F.conv_transpose2d(y, W, stride=2).data)   # conv_T maps (2, 4, 4, 4) back to (2, 3, 9, 9)
    # --8<-- [end:adjoint]
    finding(4, f"dot-product test, stride 2: <conv(x), y> = {lhs:.6f}, <x, conv_T(y)> = {rhs:.6f} "
               f"(expected equal to 1e-10: |Δ| = {abs(lhs - rhs):.1e})")
    ts.check_backward(lambda a, b: F.conv2d(a, b, stride=2, pad=1), [x[:1, :, :6, :6], W[:2]], name="conv2d")
    finding(5, "conv2d passes the float64 gradient check for the image and the kernel (expected: passes)")

    # --8<-- [start:prior]
    # Eq. 6: P(y_i | I) ∝ w_i P_fcn(y_i | I) is a bias log w_i on the logits. With the class-0 row at 0
    # and the class-1 row at logit(prior), softmax of the bias alone IS the (clipped) empirical prior.
    layer = ts.nn.PositionPrior((40, 40), prior)
    p_bias = F.softmax(layer(ts.Tensor(np.zeros((1, 2, 40, 40), np.float32))), axis=1).data[0, 1]
    # --8<-- [end:prior]
    finding(6, f"softmax(prior bias) vs clip(prior, .01, .99): max |Δ| = "
               f"{np.abs(p_bias - np.clip(prior, .01, .99)).max():.1e} (expected < 1e-6)")

    epochs = 1 if args.fast else 40
    subset = None
    if args.fast:  # same code path, 16 training masses, 3 steps
        from tinyseg.experiments import fast_subset

        subset = fast_subset(ds, 16, 4)
    # --8<-- [start:train]
    config = TrainConfig(variant="fcn", epochs=epochs, seed=0, device=args.device)
    shutil.rmtree(args.out / "run_fcn", ignore_errors=True)  # a lesson always trains afresh
    run = fit(config, args.out / "run_fcn", dataset=subset if subset is not None else ds)
    metrics = json.loads((run.path / "metrics.json").read_text())
    # --8<-- [end:train]
    fcn_dice, base = metrics["test"]["dice_pooled"], metrics["prior_baseline"]["dice_pooled"]
    finding(7, f"FCN 1 ({run.model.num_parameters():,} parameters, expected 2,233,100), {epochs} epochs, epoch "
               f"{metrics['selected_epoch']} selected on validation: test pooled Dice {fcn_dice:.4f} vs prior-only "
               f"baseline {base:.4f} (expected: the FCN above the baseline in a full run)")

    bias = run.model.fcn.prior.bias.numpy()
    learned = np.exp(bias[1]) / (np.exp(bias[0]) + np.exp(bias[1]))
    fig = viz.prior_map(prior, learned)
    savefig(fig, args.out / "02_prior.png")
    pred = run.predict(ds.test.images[:6])
    fig = viz.contours(ds.test.images[:6], ds.test.labels[:6], {"FCN": pred,
                                                               "prior only": data.prior_baseline_predict(prior, 6)})
    savefig(fig, args.out / "02_predictions.png")
    import matplotlib.pyplot as plt

    plt.close("all")
    finding(8, f"the learned prior stays close to the empirical one: max |Δ| = {np.abs(learned - prior).max():.2f} "
               "(expected: small — the bias is learned jointly but starts at the prior)")


if __name__ == "__main__":
    main()
