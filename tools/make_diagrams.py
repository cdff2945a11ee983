"""Draw the docs diagrams: the FCN with its shapes, the multi-scale fusion, the unrolled CRF, the
whole model end to end with its adversarial branch, dense versus grid4 messages, and im2col /
col2im.

Writes ``docs/figures/diagram_*.png`` with matplotlib only (Agg backend, DejaVu Sans, which ships
with matplotlib; no system binary). The PNGs carry no software or date metadata, so a re-run
writes byte-identical files (``tests/docs/test_diagrams.py`` checks this). The FCN's tensor shapes are
not typed in: they are read off a forward pass of ``tinyseg.models.FCN`` on a 40×40 input.

Sizes: 7.2 inches wide at 200 dpi (1440 px), shown at the content width of the site (about 940 px
at a 1280 px window, with the table of contents in the left navigation; 700 px in a narrower
window), so the 9-point text is 12-16 px on screen; no text is smaller than ``MIN_FONT`` points.

Usage:
    python tools/make_diagrams.py                  # into docs/figures/
    python tools/make_diagrams.py --out DIR        # elsewhere (the test writes to a temporary folder)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # run from a checkout without installing (an installed tinyseg wins)

FIGURES = ROOT / "docs" / "figures"
WIDTH = 7.2        # inches; 1440 px at DPI
DPI = 200
FONT = 9.0         # body text, points
MIN_FONT = 8.5     # smallest text: 8.5 pt at 200 dpi is 23.6 px, about 11 px at 700 px display width
RC = {"font.family": "DejaVu Sans", "mathtext.fontset": "dejavusans", "font.size": FONT,
      "savefig.facecolor": "white", "figure.facecolor": "white", "path.simplify": False}

TENSOR = "#dbe6f4"   # tensors (data)
OP = "#fbe3c8"       # operations
PARAM = "#e2f0d9"    # learned parameters
EDGE = "#33415c"


# ---------------------------------------------------------------- drawing helpers
def _canvas(height: float) -> tuple[plt.Figure, plt.Axes]:
    fig = plt.figure(figsize=(WIDTH, height), dpi=DPI)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, WIDTH)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def _box(ax: plt.Axes, x: float, y: float, w: float, h: float, text: str = "", color: str = OP,
         size: float = FONT, weight: str = "normal", round_: float = 0.06) -> tuple[float, float, float, float]:
    """A rounded box centred at (x, y); returns its (left, right, bottom, top)."""
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle=f"round,pad=0,rounding_size={round_}",
                                facecolor=color, edgecolor=EDGE, linewidth=1.0))
    if text:
        ax.text(x, y, text, ha="center", va="center", fontsize=size, weight=weight, linespacing=1.25)
    return x - w / 2, x + w / 2, y - h / 2, y + h / 2


def _arrow(ax: plt.Axes, start: tuple[float, float], end: tuple[float, float], text: str = "",
           side: str = "above", size: float = FONT, color: str = EDGE, style: str = "-|>",
           rad: float = 0.0, lw: float = 1.2) -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=11, color=color, linewidth=lw,
                                 shrinkA=0, shrinkB=0, connectionstyle=f"arc3,rad={rad}"))
    if text:
        mx, my = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
        if side == "above":
            ax.text(mx, my + 0.07, text, ha="center", va="bottom", fontsize=size, linespacing=1.2)
        elif side == "below":
            ax.text(mx, my - 0.07, text, ha="center", va="top", fontsize=size, linespacing=1.2)
        elif side == "right":
            ax.text(mx + 0.08, my, text, ha="left", va="center", fontsize=size, linespacing=1.2)
        else:
            ax.text(mx - 0.08, my, text, ha="right", va="center", fontsize=size, linespacing=1.2)


def _side(s: tuple[int, ...]) -> float:
    """Side of the square that stands for a (C, H, W) tensor: grows with H."""
    return 0.18 + 0.0115 * s[1]


def _depth(s: tuple[int, ...]) -> float:
    """Offset of the two ghost squares behind it: a hint of the channel count."""
    return min(0.035 + 0.008 * np.log2(s[0] + 1), 0.09)


def _shape(s: tuple[int, ...]) -> str:
    return "×".join(str(n) for n in s)


# ---------------------------------------------------------------- shapes from tinyseg itself
def fcn_shapes(config: str = "fcn1") -> list[tuple[int, ...]]:
    """Shapes (C, H, W) after conv1+tanh, pool, conv2+tanh, pool, conv3+tanh, deconv, prior."""
    import tinyseg as ts
    from tinyseg import functions as F
    from tinyseg.models import FCN

    fcn = FCN(config, seed=0, dtype=np.float32)
    x = ts.Tensor(np.zeros((1, 1, 40, 40), np.float32))
    shapes = [tuple(x.shape[1:])]
    with ts.no_grad():
        h = F.tanh(fcn.conv1(x))
        shapes.append(tuple(h.shape[1:]))
        h = fcn.pool(h)
        shapes.append(tuple(h.shape[1:]))
        h = F.tanh(fcn.conv2(h))
        shapes.append(tuple(h.shape[1:]))
        h = fcn.pool(h)
        shapes.append(tuple(h.shape[1:]))
        h = F.tanh(fcn.conv3(h))
        shapes.append(tuple(h.shape[1:]))
        h = fcn.deconv(h)
        shapes.append(tuple(h.shape[1:]))
        h = fcn.prior(h)
        shapes.append(tuple(h.shape[1:]))
        assert tuple(fcn(x).shape[1:]) == shapes[-1]
    return shapes


# ---------------------------------------------------------------- 1. the FCN of Table 1
def diagram_fcn() -> plt.Figure:
    from tinyseg.models import FCN_CONFIGS

    c1, k1, c2, k2, c3, k3 = FCN_CONFIGS["fcn1"]
    shapes = fcn_shapes("fcn1")
    fig, ax = _canvas(3.7)

    def square(x: float, y: float, s: tuple[int, ...], label: str, color: str = TENSOR) -> tuple[float, float]:
        side, depth = _side(s), _depth(s)
        for k in (2, 1):
            ax.add_patch(Rectangle((x - side / 2 + k * depth, y - side / 2 + k * depth), side, side,
                                   facecolor=color, edgecolor=EDGE, linewidth=0.8, alpha=0.55))
        ax.add_patch(Rectangle((x - side / 2, y - side / 2), side, side, facecolor=color, edgecolor=EDGE,
                               linewidth=1.0))
        ax.text(x, y - side / 2 - 0.07, _shape(s), ha="center", va="top", fontsize=FONT, weight="bold")
        if label:
            ax.text(x, y - side / 2 - 0.29, label, ha="center", va="top", fontsize=FONT, color="#444444")
        return x - side / 2, x + side / 2 + 2 * depth

    # top row: the encoder, 40×40 down to 1×1, spread evenly over the width
    y1 = 2.65
    widths = [_side(s) + 2 * _depth(s) for s in shapes[:6]]
    gap = (WIDTH - 0.3 - sum(widths)) / 5
    xs, left = [], 0.15
    for w_ in widths:
        xs.append(left + w_ / 2 - (w_ - _side(shapes[len(xs)])) / 2)
        left += w_ + gap
    labels = ["ROI $I$", "", "", "", "", ""]
    ops = [f"conv {k1}×{k1}\n→ {c1}, tanh", "max-pool\n2×2", f"conv {k2}×{k2}\n→ {c2}, tanh", "max-pool\n2×2",
           f"conv {k3}×{k3}\n→ {c3}, tanh"]
    edges = [square(x, y1, s, lab) for x, s, lab in zip(xs, shapes[:6], labels)]
    for (l0, r0), (l1, r1), op in zip(edges, edges[1:], ops):
        _arrow(ax, (r0 + 0.04, y1), (l1 - 0.04, y1), op)
    # bottom row, right to left: transpose conv, prior, logits
    y2 = 0.95
    x_dec, x_out, x_add = xs[5], 2.95, 4.3
    _arrow(ax, (xs[5], y1 - 0.45), (x_dec, y2 + 0.62), "transpose conv\n40×40 → 2, no bias", side="left")
    l_dec, _ = square(x_dec, y2, shapes[6], "")
    l_out, r_out = square(x_out, y2, shapes[7], "logits $z$")
    _box(ax, x_add, y2, 0.36, 0.36, "+", color=OP, size=13, weight="bold", round_=0.18)
    _arrow(ax, (l_dec - 0.04, y2), (x_add + 0.2, y2))
    _arrow(ax, (x_add - 0.2, y2), (r_out + 0.04, y2))
    # the prior bias, a learned parameter
    _box(ax, x_add, 1.75, 1.35, 0.42, f"prior $b$  {_shape(shapes[7])}\n(Eq. 6)", color=PARAM)
    _arrow(ax, (x_add, 1.75 - 0.22), (x_add, y2 + 0.2))
    _box(ax, 1.0, y2, 1.6, 0.62, "softmax → $\\mathbb{P}_{fcn}$ (Eq. 1)\nor CRF unary $U$", color=OP)
    _arrow(ax, (l_out - 0.04, y2), (1.0 + 0.82, y2))
    ax.text(0.08, 3.58, "FCN 1 of Table 1: the shape (channels×height×width) after every layer",
            ha="left", va="top", fontsize=FONT + 0.5, weight="bold")
    return fig


# ---------------------------------------------------------------- 2. the multi-scale FCN
def diagram_multiscale() -> plt.Figure:
    from tinyseg.models import FCN_CONFIGS

    fig, ax = _canvas(3.6)
    ys = [2.75, 2.05, 1.35, 0.65]
    _box(ax, 0.5, 1.7, 0.8, 0.7, "ROI $I$\n1×40×40", color=TENSOR)
    x_fcn, x_z, x_ls, x_sum, x_u = 2.2, 3.78, 4.83, 6.02, 6.76
    for k, (name, (c1, k1, c2, k2, c3, k3)) in enumerate(FCN_CONFIGS.items()):
        y = ys[k]
        out = fcn_shapes(name)[-1]
        _arrow(ax, (0.92, 1.7), (x_fcn - 1.07, y))
        _box(ax, x_fcn, y, 2.1, 0.52, f"FCN {k + 1}: {c1}×{k1}², {c2}×{k2}², {c3}×{k3}²\n+ prior $b_{k + 1}$",
             color=OP, size=FONT)
        _arrow(ax, (x_fcn + 1.05, y), (x_z - 0.36, y))
        _box(ax, x_z, y, 0.72, 0.5, f"$z_{k + 1}$\n{_shape(out)}", color=TENSOR, size=FONT)
        _arrow(ax, (x_z + 0.36, y), (x_ls - 0.46, y))
        _box(ax, x_ls, y, 0.92, 0.5, f"log_softmax\n× $\\alpha_{{{k + 1},l}}$", color=OP, size=FONT)
        _arrow(ax, (x_ls + 0.46, y), (x_sum - 0.26, 1.7))
    _box(ax, x_sum, 1.7, 0.5, 0.5, "Σ", color=OP, size=13, weight="bold", round_=0.25)
    _arrow(ax, (x_sum + 0.25, 1.7), (x_u - 0.29, 1.7))
    _box(ax, x_u, 1.7, 0.56, 0.62, "$U$\n2×40\n×40", color=TENSOR, size=FONT)
    ax.text(WIDTH / 2, 3.5, "Four FCNs, one per row of Table 1, fused per label: "
            r"$U_l = \Sigma_k\, \alpha_{k,l}\,\log\,\mathrm{softmax}(z_k)_l$",
            ha="center", va="top", fontsize=FONT + 0.5)
    ax.text(WIDTH / 2, 0.18, "log_softmax over the 2 labels of each pixel;  "
            r"$\alpha$ (4×2, learned) starts at ¼;  $U$ feeds the loss or the CRF",
            ha="center", va="center", fontsize=FONT)
    return fig


# ---------------------------------------------------------------- 3. the CRF unrolled as an RNN
def diagram_crf_rnn() -> plt.Figure:
    fig, ax = _canvas(3.5)
    yU, yQ, yK = 2.75, 1.65, 0.55
    _box(ax, 0.5, yU, 0.75, 0.5, "unary $U$\n2×40×40", color=TENSOR, size=FONT)
    _box(ax, 0.5, yK, 0.75, 0.5, "image $I$\n1×40×40", color=TENSOR, size=FONT)
    _box(ax, 1.6, yK, 1.1, 0.62, "kernels $K_0(I)$, $K_1$\nweights $w_{m,l}$", color=PARAM, size=FONT)
    _arrow(ax, (0.88, yK), (1.05, yK))
    _box(ax, 1.6, yQ, 1.0, 0.5, "$Q_0 =$\nsoftmax$(U)$", color=OP, size=FONT)
    _arrow(ax, (0.5, yU - 0.25), (1.25, yQ + 0.25), rad=0.25)
    xs = [2.95, 4.4, 5.95]
    titles = ["iteration 1", "iteration 2", "iteration $T$"]
    prev = 2.05
    for x, title in zip(xs, titles):
        _box(ax, x, yQ, 1.3, 0.8, f"{title}\n$Z = U + \\Sigma_m w_{{m,l}} K_m Q$\n$Q = $ softmax$(Z)$",
             color=OP, size=FONT - 0.5)
        _arrow(ax, (prev, yQ), (x - 0.65, yQ), "$Q$" if x != xs[-1] else "", size=FONT)
        _arrow(ax, (x, yU - 0.0), (x, yQ + 0.4))
        _arrow(ax, (x, yK + 0.0), (x, yQ - 0.4))
        prev = x + 0.65
    ax.plot([0.88, xs[-1]], [yU, yU], color=EDGE, lw=1.2)
    ax.plot([2.15, xs[-1]], [yK, yK], color=EDGE, lw=1.2)
    ax.text((xs[1] + xs[2]) / 2, yQ + 0.12, "· · ·", ha="center", va="bottom", fontsize=14)
    ax.text(1.9, yU + 0.08, "the same $U$ enters every iteration", fontsize=FONT, va="bottom", ha="left")
    ax.text(2.3, yK - 0.08, "the same kernels and weights enter every iteration", fontsize=FONT, va="top",
            ha="left")
    _arrow(ax, (xs[-1] + 0.65, yQ), (6.78, yQ))
    ax.text(6.82, yQ, "$Z_T$", ha="left", va="center", fontsize=FONT + 1)
    ax.text(6.82, yQ - 0.2, "→ loss", ha="left", va="top", fontsize=FONT)
    ax.text(0.08, 3.43, r"Mean field unrolled as a recurrent network: $T = 5$ in training, 10 at test",
            ha="left", va="top", fontsize=FONT + 0.5, weight="bold")
    return fig


# ---------------------------------------------------------------- 4. the whole model, end to end
def diagram_model() -> plt.Figure:
    """One training step of adv_multi_fcn_crf, in the order SegmentationModel and
    adversarial.loss_and_backward run it: top row left to right, middle row right to left,
    bottom row left to right."""
    from tinyseg.models import FCN_CONFIGS

    out = _shape(fcn_shapes("fcn1")[-1])        # every FCN's logits, and U, are 2×40×40
    small = MIN_FONT
    fig, ax = _canvas(5.45)
    ax.text(0.08, 5.37, "One training step of adv_multi_fcn_crf, in the order the code runs it",
            ha="left", va="top", fontsize=FONT + 0.5, weight="bold")

    # top row: the image, four FCNs with their priors, the fusion, the unary
    y1, lanes = 4.3, [0.45, 0.15, -0.15, -0.45]
    _box(ax, 0.45, y1, 0.76, 0.62, "image $I$\n1×40×40", color=TENSOR)
    x_fcn, x_ls, x_sum, x_u = 1.78, 3.22, 4.38, 5.42
    for k, dy in enumerate(lanes):
        y = y1 + dy
        _arrow(ax, (0.83, y1), (x_fcn - 0.66, y))
        _box(ax, x_fcn, y, 1.3, 0.25, f"FCN {k + 1} + prior $b_{k + 1}$", color=OP, size=small)
        _arrow(ax, (x_fcn + 0.65, y), (x_ls - 0.47, y))
        _box(ax, x_ls, y, 0.94, 0.25, "log_softmax", color=OP, size=small)
        _arrow(ax, (x_ls + 0.47, y), (x_sum - 0.42, y))
    ax.text((x_fcn + 0.65 + x_ls - 0.47) / 2, y1 + lanes[0] + 0.15, "$z_k$", ha="center", va="bottom",
            fontsize=small)
    _box(ax, x_sum, y1, 0.84, 1.18, "$\\Sigma_k\\,\\alpha_{k,l}\\,\\cdot$\n\n$\\alpha$: 4×2,\nlearned", color=OP,
         size=small)
    _arrow(ax, (x_sum + 0.42, y1), (x_u - 0.39, y1))
    _box(ax, x_u, y1, 0.78, 0.62, f"unary $U$\n{out}", color=TENSOR)
    ax.text((x_ls - 0.47 + x_sum + 0.42) / 2, y1 + 0.66, "multi-scale fusion", ha="center", va="bottom",
            fontsize=small, style="italic")
    ax.text(x_fcn, y1 + 0.66, f"{len(FCN_CONFIGS)} FCNs of Table 1", ha="center", va="bottom", fontsize=small,
            style="italic")
    ax.text(5.95, y1 + 0.05, "no multi-scale:\nFCN 1 alone,\n$U = z_1$", ha="left", va="center",
            fontsize=small, color="#444444", linespacing=1.25)

    # middle row, right to left: the CRF, its last logits, the loss
    y2 = 2.62
    x_crf, x_zt, x_loss = 5.2, 2.95, 1.2
    _arrow(ax, (x_u, y1 - 0.31), (x_u, y2 + 0.5))
    _box(ax, x_crf, y2, 3.2, 1.0,
         "mean-field CRF: $T$ iterations, starting at $Z = U$\n"
         "$q = \\sigma(Z_1 - Z_0)$,    $s_m = K_m\\, q$\n"
         "$Z_0 = U_0 + \\Sigma_m\\, w_{m,0}\\,(K_m \\mathbf{1} - s_m)$\n"
         "$Z_1 = U_1 + \\Sigma_m\\, w_{m,1}\\, s_m$", color=OP, size=FONT)
    _box(ax, 2.45, 3.42, 2.5, 0.44, "kernels: $K_0(I)$ intensity, $K_1$ position;\nweights $w$",
         color=PARAM, size=small)
    _arrow(ax, (3.7, 3.42), (x_crf - 1.3, y2 + 0.5))
    ax.plot([0.45, 0.45], [y1 - 0.31, 3.42], color=EDGE, lw=1.2)   # the image feeds the intensity kernel
    _arrow(ax, (0.45, 3.42), (1.2, 3.42))
    _arrow(ax, (x_crf - 1.6, y2), (x_zt + 0.45, y2))
    _box(ax, x_zt, y2, 0.9, 0.6, f"$Z_T$\n{out}", color=TENSOR)
    _arrow(ax, (x_zt - 0.45, y2), (x_loss + 0.9, y2))
    _box(ax, x_loss, y2, 1.8, 0.6, "cross-entropy with\nthe labels $y$: $L(I)$", color=OP)

    # bottom row: the adversarial branch
    y3 = 0.95
    x_g, x_r, x_ir, x_fw = 1.2, 2.95, 4.35, 6.05
    _arrow(ax, (x_loss, y2 - 0.3), (x_g, y3 + 0.33), "backward", side="right", size=small)
    _box(ax, x_g, y3, 1.8, 0.66, "$g = \\nabla_I L$ (x.grad)\n1×40×40", color=TENSOR)
    _arrow(ax, (x_g + 0.9, y3), (x_r - 0.72, y3))
    _box(ax, x_r, y3, 1.44, 0.66, "$R = \\varepsilon\\, g / \\Vert g \\Vert_2$\nper image", color=OP)
    _arrow(ax, (x_r + 0.72, y3), (x_ir - 0.55, y3))
    _box(ax, x_ir, y3, 1.1, 0.66, "$I + R$\n(a constant)", color=TENSOR)
    _arrow(ax, (x_ir + 0.55, y3), (x_fw - 1.0, y3))
    _box(ax, x_fw, y3, 2.0, 0.9, "second forward: the same\nFCNs, fusion and CRF\n(kernels rebuilt on $I + R$)"
         "\n→ $L(I + R)$, backward", color=OP, size=small)
    ax.text(WIDTH / 2, 0.2, "loss of the step (Eq. 8): $L(I) + L(I + R) + \\frac{\\lambda}{2}\\Vert w \\Vert^2$;"
            "  both backward passes add into the same .grad", ha="center", va="center", fontsize=FONT)
    return fig


# ---------------------------------------------------------------- 5. dense versus grid4
def _toy_image(n: int = 7) -> np.ndarray:
    y, x = np.mgrid[0:n, 0:n]
    return 3.0 * np.exp(-((x - 3.6) ** 2 + (y - 3.2) ** 2) / 4.0) - 0.8


def diagram_dense_grid4() -> plt.Figure:
    img = _toy_image()
    n = img.shape[0]
    ci, cj = 3, 2  # the pixel i whose messages are drawn (row, column)
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH, 3.7), dpi=DPI)
    fig.subplots_adjust(left=0.02, right=0.98, top=0.86, bottom=0.17, wspace=0.08)
    titles = ["dense (the paper): every pair,\n" + r"$k_{ij} = e^{-(I_i - I_j)^2/2}/(P-1)$ + position kernel",
              "grid4 (the authors' code): 4 neighbours,\n" + r"$k_{ij} = e^{-(I_i - I_j)^2}$ + constant kernel"]
    for panel, ax in enumerate(axes):
        ax.imshow(img, cmap="gray", vmin=-1.2, vmax=2.6, extent=(-0.5, n - 0.5, n - 0.5, -0.5))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(titles[panel], fontsize=FONT, linespacing=1.35)
        for r in range(n):
            for c in range(n):
                if (r, c) == (ci, cj):
                    continue
                if panel == 0:
                    k = np.exp(-(img[ci, cj] - img[r, c]) ** 2 / 2)
                elif abs(r - ci) + abs(c - cj) == 1:
                    k = np.exp(-(img[ci, cj] - img[r, c]) ** 2)
                else:
                    continue
                ax.plot([cj, c], [ci, r], color="#e4572e", lw=0.4 + 2.6 * k, alpha=0.35 + 0.6 * k,
                        solid_capstyle="round")
        ax.plot(cj, ci, "o", ms=9, color="#ffd23f", mec="black", mew=1.0)
        ax.text(cj, ci - 0.42, "$i$", ha="center", va="bottom", fontsize=FONT + 1, color="black",
                bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8))
    fig.text(0.5, 0.06, "Line width: the intensity kernel $k_{ij}$ from pixel $i$ (similar grey level: thicker). "
             "Dense: $P - 1$ messages per pixel;\ngrid4: at most 4, so a message crosses the ROI only over "
             "many iterations.", ha="center", va="center", fontsize=FONT, linespacing=1.35)
    return fig


# ---------------------------------------------------------------- 6. im2col / col2im
def diagram_im2col() -> plt.Figure:
    fig, ax = _canvas(3.5)
    H = Wd = 4
    K = 3
    colors = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1"]  # one per window / output position

    def grid(x0: float, y0: float, values: np.ndarray, title: str, cell: float,
             fill: list[list[str]] | None = None) -> None:
        h, w = values.shape
        for r in range(h):
            for c in range(w):
                fc = "white" if fill is None else fill[r][c]
                ax.add_patch(Rectangle((x0 + c * cell, y0 - (r + 1) * cell), cell, cell, facecolor=fc,
                                       edgecolor="#777777", linewidth=0.8))
                ax.text(x0 + (c + 0.5) * cell, y0 - (r + 0.5) * cell, str(values[r, c]), ha="center",
                        va="center", fontsize=FONT)
        ax.text(x0 + w * cell / 2, y0 + 0.06, title, ha="center", va="bottom", fontsize=FONT, linespacing=1.2)

    x = np.arange(1, 17).reshape(H, Wd)
    # the input, with the first window (solid) and the last (dashed) outlined
    c_in, x_in, y_in = 0.34, 0.2, 3.1
    grid(x_in, y_in, x, "input $x$, 4×4 (3×3 kernel)", c_in)
    ax.add_patch(Rectangle((x_in, y_in - K * c_in), K * c_in, K * c_in, facecolor="none",
                           edgecolor=colors[0], linewidth=2.6))
    ax.add_patch(Rectangle((x_in + c_in, y_in - 4 * c_in), K * c_in, K * c_in, facecolor="none",
                           edgecolor=colors[3], linewidth=2.6, linestyle="--"))
    # the column matrix: column p holds window p, read row-major
    cols = np.stack([x[oh:oh + K, ow:ow + K].ravel() for oh in range(2) for ow in range(2)], axis=1)  # (9, 4)
    fill = [[colors[c] + "55" for c in range(4)] for _ in range(K * K)]
    c_col, x_col, y_col = 0.3, 2.65, 3.1
    grid(x_col, y_col, cols, "im2col$(x)$, 9×4", c_col, fill=fill)
    _arrow(ax, (x_in + 4 * c_in + 0.08, 2.4), (x_col - 0.08, 2.4), "im2col", side="above")
    ax.text((x_in + 4 * c_in + x_col) / 2, 2.32, "copy each\nwindow", ha="center", va="top", fontsize=FONT)
    # the product
    x_txt = 4.45
    _arrow(ax, (x_col + 4 * c_col + 0.08, 2.55), (x_txt - 0.05, 2.55))
    ax.text(x_txt, 2.55, "$W$ (1×9) @ im2col$(x)$\n= the 4 outputs → 2×2", ha="left", va="center",
            fontsize=FONT, linespacing=1.35)
    # col2im of all-ones columns: how many windows cover each pixel
    counts = np.zeros((H, Wd), int)
    for p in range(4):
        oh, ow = divmod(p, 2)
        counts[oh:oh + K, ow:ow + K] += 1
    c_cnt, x_cnt, y_cnt = 0.3, 5.75, 1.55
    _arrow(ax, (x_col + 4 * c_col + 0.08, 0.85), (x_cnt - 0.08, 0.85), "col2im", side="above")
    ax.text((x_col + 4 * c_col + x_cnt) / 2, 0.77, "add each column\nback into its window", ha="center",
            va="top", fontsize=FONT)
    grid(x_cnt, y_cnt, counts, "col2im(all ones)", c_cnt)
    ax.text(0.15, 1.35, "col2im is the adjoint of im2col:\n"
            r"$\langle \mathrm{im2col}(x), c\rangle = \langle x, \mathrm{col2im}(c)\rangle$," "\n"
            "so conv2d's input gradient,\ncol2im$(W^\\top g_y)$, is a transpose\nconvolution.",
            ha="left", va="top", fontsize=FONT, linespacing=1.4)
    return fig


DIAGRAMS: dict[str, Callable[[], plt.Figure]] = {
    "diagram_fcn.png": diagram_fcn,
    "diagram_multiscale.png": diagram_multiscale,
    "diagram_crf_rnn.png": diagram_crf_rnn,
    "diagram_model.png": diagram_model,
    "diagram_dense_grid4.png": diagram_dense_grid4,
    "diagram_im2col.png": diagram_im2col,
}


def smallest_font(fig: plt.Figure) -> float:
    """The smallest font size (points) of any text in the figure."""
    return min(t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_text().strip())


def make(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with plt.rc_context(RC):
        for name, draw in DIAGRAMS.items():
            fig = draw()
            small = smallest_font(fig)
            if small < MIN_FONT:
                raise AssertionError(f"{name}: text at {small} pt is below {MIN_FONT} pt")
            path = out / name
            tmp = path.with_suffix(".tmp.png")
            fig.savefig(tmp, dpi=DPI, format="png", metadata={"Software": None})
            tmp.replace(path)
            plt.close(fig)
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=FIGURES, help="output folder (default docs/figures)")
    args = parser.parse_args(argv)
    for path in make(args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
