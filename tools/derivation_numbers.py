"""The worked example of the CRF backward: three pixels, two mean-field iterations, by hand.

Writes ``docs/derivations/_crf_example.md``, the tables that ``docs/derivations/crf_backward.md``
includes, so that no number on that page is typed by hand. Everything here is plain NumPy on
3-vectors and 3×3 matrices, written the way the page derives it (full $Q$, both labels, no
two-label shortcut); ``tests/docs/test_derivations.py`` checks that the fragment is current and that
these hand-derived gradients equal tinyseg's hand-written backward (`F.mean_field_crf`).

Usage:
    python tools/derivation_numbers.py            # rewrite the fragment
    python tools/derivation_numbers.py --check    # exit 1 if the committed fragment is stale
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FRAGMENT = ROOT / "docs" / "derivations" / "_crf_example.md"

# The example: a 1×3 image (pixels at x = 0, 1, 2), two labels, per-kernel and per-label weights.
IMAGE = np.array([0.2, 0.5, 1.6])                # I_i, the normalised intensities
UNARY = np.array([[0.6, -0.2],                   # U[i, l], the FCN's logits
                  [0.1, 0.3],
                  [-0.5, 0.4]])
WEIGHTS = np.array([[0.8, 1.2],                  # w[m, l]: m = 0 intensity, m = 1 position
                    [0.5, 0.7]])
LABELS = np.array([0, 1, 1])                     # y_i
N_ITER = 2                                       # T


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def kernels(image: np.ndarray) -> list[np.ndarray]:
    """The two dense kernels of the paper on a 1-row image, self pairs removed."""
    P = image.size
    x = np.arange(P, dtype=float)
    off = 1.0 - np.eye(P)
    k_int = np.exp(-(image[:, None] - image[None, :]) ** 2 / 2) / (P - 1) * off
    k_pos = 0.5 * np.exp(-(x[:, None] - x[None, :]) ** 2) * off
    return [k_int, k_pos]


@dataclass
class Example:
    """Every intermediate of the forward and backward pass (lists are indexed by t)."""

    K: list[np.ndarray]
    Q: list[np.ndarray] = field(default_factory=list)        # Q_0 .. Q_T, (3, 2)
    A: list[list[np.ndarray]] = field(default_factory=list)  # A[t-1][m] = K_m Q_{t-1}, t = 1..T
    Z: list[np.ndarray] = field(default_factory=list)        # Z_1 .. Z_T
    loss: float = 0.0
    gZ: dict[int, np.ndarray] = field(default_factory=dict)  # dL/dZ_t, t = T..0 (Z_0 = U)
    gQ: dict[int, np.ndarray] = field(default_factory=dict)  # dL/dQ_t, t = T-1..0
    gU: np.ndarray | None = None
    gw: np.ndarray | None = None
    gI: np.ndarray | None = None
    D: np.ndarray | None = None                              # Σ_t Σ_l gA_0[:, l] Q_{t-1}[:, l]ᵀ


def run(image: np.ndarray = IMAGE, unary: np.ndarray = UNARY, weights: np.ndarray = WEIGHTS,
        labels: np.ndarray = LABELS, n_iter: int = N_ITER) -> Example:
    """Forward, loss (mean cross-entropy over the pixels) and the backward derived on the page."""
    P = image.size
    ex = Example(K=kernels(image))
    # forward
    ex.Q.append(softmax(unary))
    for _ in range(n_iter):
        A = [K @ ex.Q[-1] for K in ex.K]                                # messages, (3, 2) each
        Z = unary + sum(weights[m] * A[m] for m in range(2))            # w[m, l] scales column l
        ex.A.append(A)
        ex.Z.append(Z)
        ex.Q.append(softmax(Z))
    Y = np.eye(2)[labels]
    ex.loss = float(-np.log(ex.Q[-1][np.arange(P), labels]).mean())
    # backward
    g = (ex.Q[-1] - Y) / P                                              # dL/dZ_T
    gU, gw = np.zeros_like(unary), np.zeros_like(weights)
    D = np.zeros((P, P))
    for t in range(n_iter, 0, -1):
        ex.gZ[t] = g
        gU += g                                                         # Z_t = U + ...
        A = ex.A[t - 1]
        gQ = np.zeros_like(g)
        for m in range(2):
            gw[m] += (g * A[m]).sum(axis=0)                             # Σ_i g[i, l] A_m[i, l]
            gA = g * weights[m]                                         # dL/dA_m
            gQ += ex.K[m].T @ gA                                        # A_m = K_m Q_{t-1}
            if m == 0:
                D += gA @ ex.Q[t - 1].T                                 # dL/dK_0 (before the 1/(P-1) and exp)
        ex.gQ[t - 1] = gQ
        q = ex.Q[t - 1]
        g = q * (gQ - (gQ * q).sum(axis=1, keepdims=True))              # softmax backward
    ex.gZ[0] = g
    gU += g                                                             # Q_0 = softmax(U)
    ex.gU, ex.gw, ex.D = gU, gw, D
    # image gradient through the intensity kernel: dK_ij/dI_i = -(I_i - I_j) K_ij
    S = (D + D.T) * ex.K[0]
    ex.gI = -(image * S.sum(axis=1) - S @ image)
    return ex


def _f(v: float) -> str:
    s = f"{v:.4f}"
    return "0.0000" if s == "-0.0000" else s


def _vec(v: np.ndarray) -> str:
    return "(" + ", ".join(_f(x) for x in v) + ")"


def _mat(M: np.ndarray) -> str:
    rows = r" \\ ".join(" & ".join(_f(x) for x in row) for row in M)
    return r"\begin{pmatrix}" + rows + r"\end{pmatrix}"


def render(ex: Example | None = None) -> str:
    """The markdown fragment: inputs, forward tables, backward tables, results."""
    ex = run() if ex is None else ex
    T = len(ex.Z)
    out = ["<!-- Written by tools/derivation_numbers.py; do not edit by hand. -->", ""]
    out += ["**Inputs.** Three pixels in a row, $I = " + _vec(IMAGE) + "$, labels $y = "
            + _vec(LABELS).replace(".0000", "") + "$, $T = " + str(T) + "$,", "",
            "$$", r"U = " + _mat(UNARY) + r",\qquad w = " + _mat(WEIGHTS)
            + r"\quad(\text{rows } m,\ \text{columns } l),", "$$", "",
            "and the two kernels without their diagonal "
            r"($K_0 = e^{-(I_i-I_j)^2/2}/(P-1)$, $K_1 = \tfrac12 e^{-(v_i-v_j)^2}$, with $v_i$ the column of pixel $i$):", "",
            "$$", "K_0 = " + _mat(ex.K[0]) + r",\qquad K_1 = " + _mat(ex.K[1]) + ".", "$$", ""]
    out += ["**Forward.** Each block of three rows is one iteration; $q_t = Q_t(\\cdot, 1)$, the probability of "
            "*mass* at each pixel.", "",
            "| $t$ | pixel $i$ | $(K_0 Q_{t-1})_{i,1}$ | $(K_1 Q_{t-1})_{i,1}$ | $Z_t(i,1) - Z_t(i,0)$ | $q_t(i)$ |",
            "|---|---|---|---|---|---|"]
    P = len(IMAGE)
    for i in range(P):
        out.append(f"| {0 if i == 0 else ''} | {i} | – | – | {_f(UNARY[i, 1] - UNARY[i, 0])} | {_f(ex.Q[0][i, 1])} |")
    for t in range(1, T + 1):
        A, Z = ex.A[t - 1], ex.Z[t - 1]
        for i in range(P):
            out.append(f"| {t if i == 0 else ''} | {i} | {_f(A[0][i, 1])} | {_f(A[1][i, 1])} | "
                       f"{_f(Z[i, 1] - Z[i, 0])} | {_f(ex.Q[t][i, 1])} |")
    out += ["", f"The loss, the mean of $-\\log Q_T(y_i)$ over the three pixels, is "
            f"$\\mathcal L = {_f(ex.loss)}$.", ""]
    out += ["**Backward.** $\\bar G_t = \\partial\\mathcal L/\\partial Z_t$ (its rows sum to zero) "
            "and $G_{t-1} = \\partial\\mathcal L/\\partial Q_{t-1}$, from $t = T$ down to 0:", "",
            "| $t$ | pixel $i$ | $\\bar G_t(i, 0)$ | $\\bar G_t(i, 1)$ | $G_{t-1}(i, 0)$ | $G_{t-1}(i, 1)$ |",
            "|---|---|---|---|---|---|"]
    for t in range(T, -1, -1):
        gq = ex.gQ.get(t - 1)
        for i in range(P):
            gq_cells = ("–", "–") if gq is None else (_f(gq[i, 0]), _f(gq[i, 1]))
            out.append(f"| {t if i == 0 else ''} | {i} | {_f(ex.gZ[t][i, 0])} | {_f(ex.gZ[t][i, 1])} | "
                       f"{gq_cells[0]} | {gq_cells[1]} |")
    out += ["", "**Results.** Summing $\\bar G_t$ over $t = 0, \\dots, T$ ($\\partial\\mathcal L/\\partial U = "
            "\\sum_{t=0}^{T}\\bar G_t$), the weight gradients and the image gradient through $K_0$:", "",
            "$$", r"\frac{\partial\mathcal L}{\partial U} = " + _mat(ex.gU)
            + r",\qquad \frac{\partial\mathcal L}{\partial w} = " + _mat(ex.gw) + ",", "$$", "",
            "$$", r"\frac{\partial\mathcal L}{\partial I} = " + _vec(ex.gI) + ".", "$$", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the fragment is current")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = FRAGMENT.read_text(encoding="utf-8") if FRAGMENT.is_file() else ""
        if current != text:
            print(f"{FRAGMENT.relative_to(ROOT)} is stale: run python tools/derivation_numbers.py", file=sys.stderr)
            return 1
        return 0
    FRAGMENT.parent.mkdir(parents=True, exist_ok=True)
    FRAGMENT.write_text(text, encoding="utf-8")
    print(f"wrote {FRAGMENT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
