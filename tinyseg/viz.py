"""Figures of the paper, drawn from tinyseg's own data and runs [ZX18 Fig. 2-4].

Every function returns a matplotlib Figure; save it with `tinyseg.utils.savefig`, which writes
byte-reproducible PNGs. Matplotlib is imported inside the functions (Agg backend), so importing
tinyseg never needs a display.

See: lessons/02_fcn.py, lessons/06_evaluation.py.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def prior_map(prior: np.ndarray, learned: np.ndarray | None = None) -> Any:
    """The empirical position prior [ZX18 Fig. 2a], optionally next to a learned prior bias."""
    plt = _plt()
    n = 1 if learned is None else 2
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.4), squeeze=False)
    im = axes[0, 0].imshow(prior, cmap="magma", vmin=0, vmax=1)
    axes[0, 0].set_title("empirical prior P(mass | position)")
    fig.colorbar(im, ax=axes[0, 0], fraction=0.046)
    if learned is not None:
        im = axes[0, 1].imshow(learned, cmap="magma", vmin=0, vmax=1)
        axes[0, 1].set_title("learned prior: softmax(bias)₁")
        fig.colorbar(im, ax=axes[0, 1], fraction=0.046)
    for ax in axes.ravel():
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return fig


def trimap_bands(image: np.ndarray, target: np.ndarray, widths: Sequence[int] = (1, 3, 5)) -> Any:
    """The trimap bands around a true contour at several widths [ZX18 Fig. 2b]."""
    from .metrics import trimap_band

    plt = _plt()
    fig, axes = plt.subplots(1, len(widths) + 1, figsize=(2.6 * (len(widths) + 1), 2.8))
    axes[0].imshow(image, cmap="gray")
    axes[0].contour(target, levels=[0.5], colors="r", linewidths=1)
    axes[0].set_title("ROI and true contour")
    for ax, w in zip(axes[1:], widths):
        ax.imshow(image, cmap="gray")
        ax.imshow(np.ma.masked_where(~trimap_band(target, w), np.ones_like(target)), cmap="autumn", alpha=0.6,
                  vmin=0, vmax=1)
        ax.set_title(f"band, w = {w}")
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return fig


def contours(images: np.ndarray, target: np.ndarray, predictions: Mapping[str, np.ndarray],
             max_images: int = 6) -> Any:
    """Rows of test ROIs with the true contour (red) and each method's contour (green) [ZX18 Fig. 3]."""
    plt = _plt()
    names = list(predictions)
    k = min(max_images, len(images))
    fig, axes = plt.subplots(len(names), k, figsize=(1.9 * k, 2.0 * len(names)), squeeze=False)
    for r, name in enumerate(names):
        for c in range(k):
            ax = axes[r, c]
            ax.imshow(np.asarray(images[c]).reshape(target.shape[1:]), cmap="gray")
            ax.contour(target[c], levels=[0.5], colors="r", linewidths=1.0)
            if predictions[name][c].any():
                ax.contour(predictions[name][c], levels=[0.5], colors="lime", linewidths=1.0)
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=9)
    fig.suptitle("red: ground truth, green: prediction", fontsize=9)
    fig.tight_layout()
    return fig


def trimap_curves(curves: Mapping[str, Sequence[float]], widths: Sequence[int] = (1, 2, 3, 4, 5),
                  errors: Mapping[str, Sequence[float]] | None = None) -> Any:
    """Trimap accuracy against band width, one line per method [ZX18 Fig. 4]."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for name, acc in curves.items():
        err = None if errors is None else 100 * np.asarray(errors[name])
        ax.errorbar(widths, 100 * np.asarray(acc), yerr=err, marker="o", ms=3, capsize=2, label=name)
    ax.set(xlabel="trimap width w (pixels, each side of the contour)", ylabel="accuracy in the band (%)",
           xticks=list(widths))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def training_curves(histories: Mapping[str, Sequence[Mapping[str, float]]]) -> Any:
    """Training loss and validation pooled Dice per epoch, one line per run."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for name, rows in histories.items():
        ep = [r["epoch"] for r in rows]
        axes[0].plot(ep, [r["train_loss"] for r in rows], label=name)
        axes[1].plot(ep, [r["val_dice"] for r in rows], label=name)
    axes[0].set(xlabel="epoch", ylabel="training loss", yscale="log")
    axes[1].set(xlabel="epoch", ylabel="validation pooled Dice")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def _graph_nodes(tensor: Any) -> list[Any]:
    """Tensors of the recorded graph of `tensor`, each after the tensors its creator reads."""
    order: list[Any] = []
    seen: set[int] = set()
    stack: list[tuple[Any, bool]] = [(tensor, False)]
    while stack:
        t, done = stack.pop()
        if done:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        if t.creator is not None:
            stack.extend((x, False) for x in reversed(t.creator.inputs) if id(x) not in seen)
    return order


def _short(a: Any) -> str:
    """A few numbers of an array: all of them when there are at most three, else the mean."""
    from .backend import as_numpy

    a = as_numpy(a)
    if a.size <= 3:
        return ", ".join(f"{v:.4g}" for v in a.reshape(-1))
    return f"mean {a.mean():.3g}"


def draw_graph(tensor: Any, values: bool = False, grads: bool = False) -> Any:
    """Draw the recorded computation graph that ends in `tensor`.

    Each box is a tensor: a leaf (blue when it requires a gradient, grey for a constant) or the
    result of an op (named after the op, e.g. ``Mul``), with its shape and, optionally, its
    value and gradient. Arrows point from an op's inputs to its result, so the forward pass reads
    left to right (top to bottom for deep graphs) and `backward` walks the arrows in reverse.

    The graph must still be recorded: draw before ``backward()``, or after
    ``backward(retain_graph=True)``. Leaves keep their gradient; an intermediate tensor shows
    one only if ``retain_grad()`` was called on it before ``backward``.

    Args:
        tensor: the output tensor whose graph to draw.
        values: print each tensor's value (up to three numbers, else the mean).
        grads: print each tensor's gradient where it has one.

    Returns:
        A matplotlib Figure.

    See: lessons/01_autodiff.py, tests/test_viz_graph.py.
    """
    if tensor.creator is None and getattr(tensor, "_graph_freed", False):
        raise ValueError("draw_graph: the graph of this tensor was freed by backward(); draw it before "
                         "calling backward(), or call backward(retain_graph=True).")
    plt = _plt()
    nodes = _graph_nodes(tensor)
    # Column of each tensor: one more than its deepest input; a leaf sits just before its first use.
    depth: dict[int, int] = {}
    for t in nodes:
        if t.creator is not None:
            depth[id(t)] = 1 + max((depth.get(id(x), 0) for x in t.creator.inputs), default=0)
    for t in reversed(nodes):
        if t.creator is None:
            users = [depth[id(u)] for u in nodes if u.creator is not None
                     and any(x is t for x in u.creator.inputs)]
            depth[id(t)] = min(users) - 1 if users else 0
    columns: dict[int, list[Any]] = {}
    for t in nodes:  # op results first in each column, so the main path runs straight
        columns.setdefault(depth[id(t)], [])
    for t in sorted(nodes, key=lambda t: t.creator is None):
        columns[depth[id(t)]].append(t)
    n_cols, n_rows = max(columns) + 1, max(len(c) for c in columns.values())
    vertical = n_cols > 7 and n_cols > n_rows

    def label(t: Any) -> str:
        from .autodiff import Parameter

        kind = "param" if isinstance(t, Parameter) else "input" if t.requires_grad else "const"
        head = t.name or (type(t.creator).__name__.removesuffix("Op") if t.creator else kind)
        lines = [head, "×".join(map(str, t.shape)) or "scalar"]
        if values:
            lines.append(f"= {_short(t.data)}")
        if grads and t.grad is not None:
            lines.append(f"grad {_short(t.grad)}")
        return "\n".join(lines)

    step_x, step_y = (2.3, 1.1) if not vertical else (2.6, 1.05)
    size = (n_cols * step_x + 0.4, n_rows * step_y + 0.4) if not vertical else (n_rows * step_x + 0.4,
                                                                                n_cols * step_y + 0.4)
    fig, ax = plt.subplots(figsize=size)
    ax.set_axis_off()
    boxes: dict[int, Any] = {}
    for c, column in columns.items():
        for r, t in enumerate(column):
            offset = 0.0
            x, y = (c * step_x, -(r + offset) * step_y) if not vertical else ((r + offset) * step_x, -c * step_y)
            leaf = t.creator is None
            face = ("#cfe2f3" if t.requires_grad else "#e6e6e6") if leaf else "#fff2cc"
            edge = "#38761d" if t is tensor else "#555555"
            boxes[id(t)] = ax.text(x, y, label(t), ha="center", va="center", fontsize=9, family="monospace",
                                   bbox=dict(boxstyle="round,pad=0.35", fc=face, ec=edge,
                                             lw=2.0 if t is tensor else 1.0))
    for t in nodes:
        if t.creator is None:
            continue
        for x in t.creator.inputs:
            if id(x) in boxes:
                skips = depth[id(t)] - depth[id(x)] > 1  # bend an edge that would cross the boxes between
                ax.annotate("", xy=boxes[id(t)].get_position(), xytext=boxes[id(x)].get_position(),
                            arrowprops=dict(arrowstyle="-|>", color="#444444", lw=1.0, shrinkA=0, shrinkB=0,
                                            connectionstyle=f"arc3,rad={-0.25 if skips else 0.0}",
                                            patchA=boxes[id(x)].get_bbox_patch(),
                                            patchB=boxes[id(t)].get_bbox_patch()))
    xs = [b.get_position()[0] for b in boxes.values()]
    ys = [b.get_position()[1] for b in boxes.values()]
    ax.set_xlim(min(xs) - step_x / 2, max(xs) + step_x / 2)
    ax.set_ylim(min(ys) - step_y / 2, max(ys) + step_y * 0.8)  # room above for bent edges
    fig.subplots_adjust(0, 0, 1, 1)
    return fig
