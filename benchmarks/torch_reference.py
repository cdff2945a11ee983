r"""A PyTorch twin of tinyseg's model and training step: the SAME algorithm, for benchmarking.

Every variant of Table 2 [ZX18]: the Table-1 FCNs (conv → tanh → max-pool ×2, conv → tanh,
40×40 transpose conv without bias, + a (2, 40, 40) position-prior bias), the multi-scale fusion
$U = \sum_k \alpha_{k,l}\log\mathrm{softmax}(z_k)_l$, the mean-field CRF with tinyseg's kernels and
its two-label "q trick" (one kernel product per kernel and iteration, docs/derivations/mean_field.md), the loss
cross-entropy on $Z_T$ + λ/2‖w_crf‖², Adam, and the adversarial step of Eq. 7-8 (clean
forward/backward with the image gradient, $R = \varepsilon g/\|g\|$ per image, adversarial
forward/backward with the kernels rebuilt on I + R, gradients summed).

Kernels, as in `tinyseg.functions.crf_kernels`:

* dense: intensity $e^{-(I_i-I_j)^2/2}/(P-1)$ built with torch ops and applied with `bmm`, the
  self pair subtracted; position $\tfrac12 e^{-\|p_i-p_j\|^2}$ as the separable product
  $\tfrac12(G_y Q G_x^\top - Q)$.
* grid4: 4-neighbour stencils with contrast $e^{-(I_i-I_j)^2}$ and constant 1.

The backward is PyTorch autograd (this is the reference, not the lesson). Initial weights are
drawn exactly as tinyseg draws them (Glorot-uniform from the same seeded NumPy generator), so
both start from the same point without tinyseg being imported.

    python benchmarks/torch_reference.py --check     # parity with tinyseg in float64

See: benchmarks/train_step.py, benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import sys
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as TF

# (c1, k1, c2, k2, c3, k3) of Table 1; equal to tinyseg.models.FCN_CONFIGS (checked by --check).
FCN_CONFIGS: dict[str, tuple[int, int, int, int, int, int]] = {
    "fcn1": (6, 5, 12, 5, 588, 7),
    "fcn2": (9, 4, 12, 4, 588, 7),
    "fcn3": (16, 3, 13, 3, 415, 8),
    "fcn4": (37, 2, 12, 2, 355, 9),
}
from _common import VARIANTS  # noqa: E402  (benchmarks/ is on sys.path: run as a script or from train_step)


def _glorot(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, fan_out: int) -> np.ndarray:
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, shape)


class Prior(nn.Module):
    """The (2, H, W) position-prior bias [ZX18 Eq. 6] (zeros: tinyseg's ``prior=None``)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(2, size, size))


class TorchFCN(nn.Module):
    """One Table-1 FCN; parameters drawn as tinyseg's `FCN` draws them."""

    def __init__(self, config: str = "fcn1", size: int = 40, seed: int = 0) -> None:
        super().__init__()
        c1, k1, c2, k2, c3, k3 = FCN_CONFIGS[config]
        self.conv1, self.conv2, self.conv3 = nn.Conv2d(1, c1, k1), nn.Conv2d(c1, c2, k2), nn.Conv2d(c2, c3, k3)
        self.deconv = nn.ConvTranspose2d(c3, 2, size, bias=False)
        self.prior = Prior(size)
        rng = np.random.default_rng(seed)
        with torch.no_grad():
            for conv, (ci, co, k) in ((self.conv1, (1, c1, k1)), (self.conv2, (c1, c2, k2)), (self.conv3, (c2, c3, k3))):
                conv.weight.copy_(torch.from_numpy(_glorot(rng, (co, ci, k, k), ci * k * k, co * k * k)))
                conv.bias.zero_()
            self.deconv.weight.copy_(torch.from_numpy(_glorot(rng, (c3, 2, size, size), c3, 2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = TF.max_pool2d(torch.tanh(self.conv1(x)), 2, 2)
        h = TF.max_pool2d(torch.tanh(self.conv2(h)), 2, 2)
        h = torch.tanh(self.conv3(h))               # (N, c3, 1, 1)
        return self.deconv(h) + self.prior.bias     # (N, 2, 40, 40)


class TorchMultiScaleFCN(nn.Module):
    """The four FCNs fused in the log domain, α (4, 2) initialised to ¼."""

    def __init__(self, size: int = 40, seed: int = 0) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.full((len(FCN_CONFIGS), 2), 0.25))
        self.fcns = nn.ModuleList([TorchFCN(name, size, seed + k) for k, name in enumerate(FCN_CONFIGS)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fused = 0
        for k, fcn in enumerate(self.fcns):
            fused = fused + TF.log_softmax(fcn(x), dim=1) * self.alpha[k].view(1, 2, 1, 1)
        return fused


# ---------------------------------------------------------------- CRF kernels
def gaussian_factor(n: int, like: torch.Tensor) -> torch.Tensor:
    r = torch.arange(n, dtype=like.dtype, device=like.device)
    return torch.exp(-(r[:, None] - r[None, :]) ** 2)


class DenseIntensity:
    """$e^{-(I_i-I_j)^2/2}/(P-1)$, self pair excluded, applied with a batched matmul.

    Built in place where autograd allows it (one (N, P, P) allocation without an image
    gradient, two with). Applied as the row-vector product $q^\top K$ (= $(Kq)^\top$, K is
    symmetric): PyTorch 2.13's CPU `bmm` runs (N, P, P)@(N, P, 1) about 5× slower than
    (N, 1, P)@(N, P, P) (57 vs 11 ms at N = 29, P = 1600, float32, 1 thread).
    """

    def __init__(self, img: torch.Tensor) -> None:  # img (N, P)
        d = img[:, :, None] - img[:, None, :]               # (N, P, P)
        sq = (d * d) if img.requires_grad and torch.is_grad_enabled() else d.square_()
        self.K = sq.mul_(-0.5).exp_()                       # unscaled, diagonal 1
        self.scale = 1.0 / (img.shape[1] - 1)

    def apply(self, q: torch.Tensor) -> torch.Tensor:
        return self.scale * (torch.bmm(q.unsqueeze(1), self.K).squeeze(1) - q)

    def ones(self, like: torch.Tensor) -> torch.Tensor:  # K·1 with the self pair removed
        return self.scale * (self.K.sum(-1) - 1.0)


class SeparablePosition:
    r"""$\tfrac12(G_y Q G_x^\top - Q)$: the position kernel without its diagonal."""

    def __init__(self, H: int, W: int, like: torch.Tensor) -> None:
        self.H, self.W = H, W
        self.Gy, self.GxT = gaussian_factor(H, like), gaussian_factor(W, like).T

    def apply(self, q: torch.Tensor) -> torch.Tensor:
        X = q.view(-1, self.H, self.W)
        return 0.5 * ((self.Gy @ X @ self.GxT).reshape(q.shape) - q)

    def ones(self, like: torch.Tensor) -> torch.Tensor:
        return self.apply(torch.ones_like(like))


class Grid4:
    """4-neighbour stencil, contrast $e^{-(I_i-I_j)^2}$ (``img`` given) or constant 1 (``img=None``)."""

    def __init__(self, img: torch.Tensor | None, H: int, W: int) -> None:  # img (N, H, W)
        self.H, self.W = H, W
        self.eh = self.ev = None
        if img is not None:
            self.eh = torch.exp(-(img[:, :, 1:] - img[:, :, :-1]) ** 2)  # (N, H, W-1)
            self.ev = torch.exp(-(img[:, 1:, :] - img[:, :-1, :]) ** 2)  # (N, H-1, W)

    def apply(self, q: torch.Tensor) -> torch.Tensor:
        X = q.view(-1, self.H, self.W)
        e, w, s, n = X[:, :, 1:], X[:, :, :-1], X[:, 1:, :], X[:, :-1, :]
        if self.eh is not None:
            e, w, s, n = self.eh * e, self.eh * w, self.ev * s, self.ev * n
        out = TF.pad(e, (0, 1)) + TF.pad(w, (1, 0)) + TF.pad(s, (0, 0, 0, 1)) + TF.pad(n, (0, 0, 1, 0))
        return out.reshape(q.shape)

    def ones(self, like: torch.Tensor) -> torch.Tensor:
        return self.apply(torch.ones_like(like))


def mean_field_crf(unary: torch.Tensor, image: torch.Tensor, weights: torch.Tensor, n_iter: int,
                   graph: str = "dense") -> torch.Tensor:
    r"""$Z_T$ of T mean-field iterations $Z = U + \sum_m w_m K_m Q$ (two labels, q trick)."""
    N, _, H, W = unary.shape
    P = H * W
    U = unary.reshape(N, 2, P)
    img = image.reshape(N, P)
    Wm = weights if weights.ndim == 2 else weights[:, None].expand(2, 2)  # (kernel, label)
    if graph == "dense":
        ks = [DenseIntensity(img), SeparablePosition(H, W, unary)]
    elif graph == "grid4":
        ks = [Grid4(img.view(N, H, W), H, W), Grid4(None, H, W)]
    else:
        raise ValueError(f"unknown graph {graph!r}")
    k1 = [k.ones(U[:, 0]) for k in ks]  # K_m·1, (N, P)
    z0, z1 = U[:, 0], U[:, 1]
    for _ in range(n_iter):
        q = torch.sigmoid(z1 - z0)              # Q(·, 1) = softmax(Z)[1]
        s = [k.apply(q) for k in ks]            # K_m q
        z0 = U[:, 0] + Wm[0, 0] * (k1[0] - s[0]) + Wm[1, 0] * (k1[1] - s[1])  # K_m Q(·,0) = K_m 1 − K_m q
        z1 = U[:, 1] + Wm[0, 1] * s[0] + Wm[1, 1] * s[1]
    return torch.stack([z0, z1], dim=1).view(N, 2, H, W)


class TorchCRF(nn.Module):
    def __init__(self, graph: str = "dense", n_iter: int = 5, n_iter_eval: int = 10) -> None:
        super().__init__()
        self.graph, self.n_iter, self.n_iter_eval = graph, n_iter, n_iter_eval
        self.weights = nn.Parameter(torch.tensor([1.0, 1.0] if graph == "dense" else [0.25, 0.25]))

    def forward(self, unary: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return mean_field_crf(unary, image, self.weights, self.n_iter if self.training else self.n_iter_eval,
                              self.graph)


class TorchSegmentationModel(nn.Module):
    def __init__(self, variant: str, crf_graph: str = "dense", n_iter: int = 5, n_iter_eval: int = 10,
                 seed: int = 0) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}")
        self.variant, self.adversarial = variant, variant.startswith("adv_")
        self.fcn = TorchMultiScaleFCN(seed=seed) if "multi" in variant else TorchFCN("fcn1", seed=seed)
        self.crf = TorchCRF(crf_graph, n_iter, n_iter_eval) if variant.endswith("_crf") else None

    def forward(self, x: torch.Tensor, crf_image: torch.Tensor | None = None) -> torch.Tensor:
        u = self.fcn(x)
        return u if self.crf is None else self.crf(u, x if crf_image is None else crf_image)


def build_torch_model(variant: str, crf_graph: str = "dense", dtype: torch.dtype = torch.float32,
                      device: str = "cpu", seed: int = 0) -> TorchSegmentationModel:
    return TorchSegmentationModel(variant, crf_graph, seed=seed).to(device=device, dtype=dtype)


# ---------------------------------------------------------------- the training step
def adversarial_perturbation(g: torch.Tensor, eps: float) -> torch.Tensor:
    """R_n = ε g_n/‖g_n‖ per image, via ĝ = g/max|g| (tinyseg's robust form); R_n = 0 where g_n = 0."""
    n = g.shape[0]
    flat = g.reshape(n, -1)
    scale = flat.abs().amax(dim=1, keepdim=True)
    g_hat = flat / torch.where(scale > 0, scale, torch.ones_like(scale))
    norm = g_hat.square().sum(dim=1, keepdim=True).sqrt()
    r = torch.where(norm > 0, eps * g_hat / torch.where(norm > 0, norm, torch.ones_like(norm)), torch.zeros_like(g_hat))
    return r.view_as(g)


def loss_and_backward(model: TorchSegmentationModel, images: torch.Tensor, labels: torch.Tensor,
                      adversarial: bool = False, eps: float = 0.1, lam: float = 0.5) -> torch.Tensor:
    """One step's forward + backward (gradients accumulate into .grad); returns the total loss (no sync)."""
    x = images.detach().clone().requires_grad_(adversarial)
    clean = TF.cross_entropy(model(x), labels)
    clean.backward()
    total = clean.detach()
    if adversarial:
        r = adversarial_perturbation(x.grad, eps)
        adv = TF.cross_entropy(model(images + r), labels)  # kernels rebuilt on I + R ("full")
        adv.backward()
        total = total + adv.detach()
    if model.crf is not None and lam:
        reg = 0.5 * lam * model.crf.weights.square().sum()
        reg.backward()
        total = total + reg.detach()
    return total


# ---------------------------------------------------------------- parity with tinyseg
def tinyseg_to_torch_name(name: str) -> str:
    """'fcn.fcns.0.conv1.W' -> 'fcn.fcns.0.conv1.weight' (b -> bias; other names are shared)."""
    head, _, last = name.rpartition(".")
    return f"{head}.{ {'W': 'weight', 'b': 'bias'}.get(last, last) }".replace(" ", "")


def load_tinyseg_state(model: TorchSegmentationModel, state: dict[str, np.ndarray]) -> None:
    params = dict(model.named_parameters())
    names = {tinyseg_to_torch_name(k): k for k in state}
    if set(names) != set(params):
        raise ValueError(f"parameter names differ: {sorted(set(names) ^ set(params))}")
    with torch.no_grad():
        for tname, p in params.items():
            p.copy_(torch.from_numpy(np.asarray(state[names[tname]])))


def check(variants: list[str], graphs: list[str]) -> int:
    """Float64 parity: same weights and batch → same loss (≤ 1e-8), gradients and eval output."""
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
    from _common import cases, make_batch

    import tinyseg
    from tinyseg.adversarial import loss_and_backward as ts_step
    from tinyseg.models import FCN_CONFIGS as TS_CONFIGS, build_model

    assert TS_CONFIGS == FCN_CONFIGS, "FCN_CONFIGS differ from tinyseg's"
    torch.set_default_dtype(torch.float64)
    x_np, y_np = make_batch(8)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    failures = 0
    print(f"{'variant':<19} {'graph':<6} {'init':>5} {'tinyseg loss':>19} {'torch loss':>19} {'|Δloss|':>9} "
          f"{'grad rel':>9} {'eval rel':>9}")
    for variant, graph in cases(variants, graphs):
        kw = {} if graph == "-" else {"crf_graph": graph}
        ts_model = build_model(variant, dtype=np.float64, **kw)
        tm = build_torch_model(variant, graph if graph != "-" else "dense", dtype=torch.float64)
        state = ts_model.state_dict()
        init_same = all(np.array_equal(state[k], dict(tm.named_parameters())[tinyseg_to_torch_name(k)].detach().numpy())
                        for k in state)
        load_tinyseg_state(tm, state)
        ts_model.zero_grad()
        res = ts_step(ts_model, x_np, y_np, adversarial=ts_model.adversarial, eps=0.1, lam=0.5)
        tm.zero_grad()
        t_loss = float(loss_and_backward(tm, x, y, adversarial=tm.adversarial, eps=0.1, lam=0.5))
        tgrads = dict(tm.named_parameters())
        num = den = 0.0
        for name, p in ts_model.named_parameters():
            g_ts, g_t = np.asarray(p.grad), tgrads[tinyseg_to_torch_name(name)].grad.numpy()
            num, den = max(num, float(np.abs(g_ts - g_t).max())), max(den, float(np.abs(g_t).max()))
        grad_rel = num / max(den, 1e-300)
        ts_model.eval()
        tm.eval()
        with tinyseg.no_grad():
            z_ts = np.asarray(ts_model(tinyseg.Tensor(x_np)).data)
        with torch.no_grad():
            z_t = tm(x).numpy()
        eval_rel = float(np.abs(z_ts - z_t).max() / max(np.abs(z_t).max(), 1e-300))
        dloss = abs(res.loss - t_loss)
        ok = dloss <= 1e-8 * max(1.0, abs(t_loss)) and grad_rel <= 1e-6 and eval_rel <= 1e-8
        failures += not ok
        print(f"{variant:<19} {graph:<6} {'same' if init_same else 'diff':>5} {res.loss:19.15f} {t_loss:19.15f} "
              f"{dloss:9.1e} {grad_rel:9.1e} {eval_rel:9.1e} {'ok' if ok else 'FAIL'}")
    print("parity: all ok" if not failures else f"parity: {failures} FAILED")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="float64 parity against tinyseg (weights copied)")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--graphs", nargs="+", default=["dense", "grid4"], choices=["dense", "grid4"])
    args = ap.parse_args(argv)
    if args.check:
        return check(args.variants, args.graphs)
    ap.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
