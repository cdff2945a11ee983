"""The paper's networks: the Table-1 FCNs, the multi-scale FCN, and the eight Table-2 variants.

Each FCN maps a 40×40 ROI to a 1×1×c3 code with three valid convolutions (tanh, 2×2 max-pool
after the first two), then back to 40×40 logits with a transpose convolution whose 40×40
kernel has no bias, and adds its own learned position prior [ZX18 Table 1, Eq. 6].

See: lessons/02_fcn.py, lessons/05_multiscale.py, tests/test_models.py.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import functions as F
from .autodiff import Parameter, Tensor, no_grad
from .backend import get_array_module
from .config import check_choice
from .nn import Conv2d, ConvTranspose2d, MaxPool2d, MeanFieldCRF, Module, ModuleList, PositionPrior
from .threads import blas_on_one_thread

FCN_CONFIGS: dict[str, tuple[int, int, int, int, int, int]] = {
    "fcn1": (6, 5, 12, 5, 588, 7),
    "fcn2": (9, 4, 12, 4, 588, 7),
    "fcn3": (16, 3, 13, 3, 415, 8),
    "fcn4": (37, 2, 12, 2, 355, 9),
}
"""The four FCNs of Table 1 [ZX18 Table 1]: name -> (c1, k1, c2, k2, c3, k3), the number of output
channels and the kernel side of each of the three convolutions."""

# --8<-- [start:variants]
VARIANTS: dict[str, tuple[bool, bool, bool]] = {
    "fcn": (False, False, False),
    "adv_fcn": (False, False, True),
    "fcn_crf": (False, True, False),
    "adv_fcn_crf": (False, True, True),
    "multi_fcn": (True, False, False),
    "adv_multi_fcn": (True, False, True),
    "multi_fcn_crf": (True, True, False),
    "adv_multi_fcn_crf": (True, True, True),
}
# --8<-- [end:variants]
"""The eight models of Table 2 [ZX18 Table 2]: variant name -> (multi-scale, CRF, adversarial)."""


class FCN(Module):
    """One FCN of Table 1 with its position prior [ZX18 Table 1, Eq. 6].

    Args:
        config: a key of `FCN_CONFIGS` or a (c1, k1, c2, k2, c3, k3) tuple.
        prior: the empirical prior (40, 40) for the prior bias' initialisation, or None (zeros).
        size: input side (40); the layers must reduce it to 1×1 (checked).
        seed: initialisation seed.
        dtype: parameter dtype.

    Returns (forward): logits (N, 2, 40, 40) for images (N, 1, 40, 40).
    """

    def __init__(self, config: str | tuple[int, ...] = "fcn1", prior: np.ndarray | None = None, size: int = 40,
                 seed: int = 0, dtype: Any = np.float32) -> None:
        c1, k1, c2, k2, c3, k3 = FCN_CONFIGS[config] if isinstance(config, str) else tuple(config)
        side = ((size - k1 + 1) // 2 - k2 + 1) // 2 - k3 + 1
        if side != 1:
            raise ValueError(f"FCN config {config} maps {size}×{size} to {side}×{side}, not 1×1.")
        rng = np.random.default_rng(seed)
        self.config = (c1, k1, c2, k2, c3, k3)
        self.conv1 = Conv2d(1, c1, k1, rng=rng, dtype=dtype)
        self.conv2 = Conv2d(c1, c2, k2, rng=rng, dtype=dtype)
        self.conv3 = Conv2d(c2, c3, k3, rng=rng, dtype=dtype)
        self.deconv = ConvTranspose2d(c3, 2, size, bias=False, rng=rng, dtype=dtype)
        self.pool = MaxPool2d(2, 2)
        self.prior = PositionPrior((size, size), prior, dtype=dtype)

    # --8<-- [start:fcn_forward]
    def forward(self, x: Tensor) -> Tensor:
        h = self.pool(F.tanh(self.conv1(x)))     # (N, c1, (40-k1+1)//2, ...)
        h = self.pool(F.tanh(self.conv2(h)))     # (N, c2, ...)
        h = F.tanh(self.conv3(h))                # (N, c3, 1, 1)
        return self.prior(self.deconv(h))        # (N, 2, 40, 40)
    # --8<-- [end:fcn_forward]


class MultiScaleFCN(Module):
    r"""The four Table-1 FCNs fused with learned weights [ZX18 §3, Table 1].

    Default (``fusion="logits"``): $U_l = \sum_k \alpha_{k,l}\,\log\mathrm{softmax}(z_k)_l$,
    α initialised to ¼ (a geometric mean of the four predictions). ``fusion="prob"`` reproduces
    the authors' code: $U_l = \sum_k \alpha_{k,l}\,\mathrm{softmax}(z_k)_l$, used directly
    as the unary score.

    Gradient (by autodiff): $\partial\mathcal L/\partial z_{k,c} = \alpha_{k,c}G_c -
    \pi_{k,c}\sum_l \alpha_{k,l}G_l$ with $G = \partial\mathcal L/\partial U$ and
    $\pi_k = \mathrm{softmax}(z_k)$ (docs: lesson 05, "The fusion's backward";
    tests/test_multiscale_fusion.py).

    Args:
        prior: the empirical prior (40, 40) initialising each FCN's prior bias, or None (zeros).
        fusion: ``"logits"`` (default) or ``"prob"`` (the authors' code).
        size: input side (40).
        seed: initialisation seed; FCN k is initialised with ``seed + k``.
        dtype: parameter dtype.
        configs: the FCN configurations (default: the four of `FCN_CONFIGS`).
    """

    def __init__(self, prior: np.ndarray | None = None, fusion: str = "logits", size: int = 40, seed: int = 0,
                 dtype: Any = np.float32, configs: list[Any] | None = None) -> None:
        check_choice("fusion", fusion)
        configs = list(FCN_CONFIGS) if configs is None else list(configs)
        self.fusion = fusion
        self.fcns = ModuleList([FCN(c, prior, size, seed + k, dtype) for k, c in enumerate(configs)])
        self.alpha = Parameter(np.full((len(configs), 2), 1.0 / len(configs), dtype))

    # --8<-- [start:multiscale_forward]
    def forward(self, x: Tensor) -> Tensor:
        fused = None
        for k, fcn in enumerate(self.fcns):
            z = fcn(x)
            if self.fusion == "logits":
                s = F.log_softmax(z, axis=1)
            else:
                s = F.softmax(z, axis=1)
            term = s * F.reshape(self.alpha[k], (1, 2, 1, 1))  # α_k,l per label
            fused = term if fused is None else fused + term
        return fused
    # --8<-- [end:multiscale_forward]


class SegmentationModel(Module):
    """A Table-2 variant: an FCN or multi-scale FCN, optionally followed by the mean-field CRF.

    Adversarial training is a property of the training step (`tinyseg.adversarial`), recorded
    here as `adversarial` so that a saved run knows how it was trained.

    Args:
        variant: one of `VARIANTS`.
        prior: empirical prior for the position-prior initialisation (None: zeros).
        crf_graph: "dense" (paper) or "grid4" (authors' code).
        n_iter: mean-field iterations in training.
        n_iter_eval: mean-field iterations in eval mode.
        fusion: multi-scale fusion, "logits" or "prob".
        seed: initialisation seed.
        dtype: parameter dtype.
        size: input side (default 40).
        fcn_configs: FCN configurations (default Table 1; small ones serve the gradient checks).
        crf_options: further `MeanFieldCRF` options.
    Returns (forward): logits (N, 2, H, W) — the CRF's last logits Z_T for CRF variants.
    """

    def __init__(self, variant: str = "fcn", prior: np.ndarray | None = None, crf_graph: str = "dense",
                 n_iter: int = 5, n_iter_eval: int = 10, fusion: str = "logits", seed: int = 0,
                 dtype: Any = np.float32, size: int = 40, fcn_configs: list[Any] | None = None,
                 **crf_options: Any) -> None:
        multi, crf, adv = _check_variant(variant)
        self.variant, self.adversarial = variant, adv
        if multi:
            self.fcn: Module = MultiScaleFCN(prior, fusion, size, seed, dtype, fcn_configs)
        else:
            self.fcn = FCN(fcn_configs[0] if fcn_configs else "fcn1", prior, size, seed, dtype)
        self.crf = MeanFieldCRF(crf_graph, n_iter, n_iter_eval, dtype=dtype, **crf_options) if crf else None

    @blas_on_one_thread()  # tinyseg shares out the cores itself (tinyseg.threads)
    # --8<-- [start:segmentation_forward]
    def forward(self, x: Tensor, crf_image: Tensor | None = None) -> Tensor:
        """Logits for images x (N, 1, H, W).

        `crf_image` replaces the CRF's image features (the kernels the authors' code
        keeps frozen during the adversarial pass).
        """
        u = self.fcn(x)
        if self.crf is None:
            return u
        return self.crf(u, x if crf_image is None else crf_image)
    # --8<-- [end:segmentation_forward]

    def crf_parameters(self) -> list[Parameter]:
        return [] if self.crf is None else self.crf.parameters()

    def predict(self, x: Any, batch_size: int = 256) -> Any:
        """Hard labels (N, H, W) int64 for normalised images (N, 1, H, W), in eval mode, without a graph."""
        xp = get_array_module(x)
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                out = [xp.argmax(self(Tensor(x[i:i + batch_size])).data, axis=1) for i in range(0, len(x), batch_size)]
        finally:
            self.train(was_training)
        return xp.concatenate(out).astype(xp.int64) if out else xp.zeros((0, *x.shape[2:]), xp.int64)


def _check_variant(variant: str) -> tuple[bool, bool, bool]:
    check_choice("variant", variant)
    return VARIANTS[variant]


def build_model(variant: str, prior: np.ndarray | None = None, seed: int = 0, dtype: Any = np.float32,
                **options: Any) -> SegmentationModel:
    """Build a Table-2 variant by name [ZX18 Table 2]; unknown names list the valid ones.

    Args:
        variant: ``fcn, adv_fcn, fcn_crf, adv_fcn_crf, multi_fcn, adv_multi_fcn, multi_fcn_crf,
            adv_multi_fcn_crf``.
        prior: empirical prior (40, 40) initialising each FCN's position-prior bias.
        seed: seed of the weight initialisation.
        dtype: dtype of the parameters.
        **options: crf_graph, n_iter, n_iter_eval, fusion, and CRF keyword options.

    Returns:
        The model, in training mode.
    """
    _check_variant(variant)
    return SegmentationModel(variant, prior, seed=seed, dtype=dtype, **options)
