r"""Adversarial training [ZX18 Eq. 7-8].

The loss of a training step is

$$
\mathcal L = \mathcal L(I) + \mathcal L(I + R) + \tfrac{\lambda}{2}\|w_{crf}\|^2,
\qquad R_n = \varepsilon\,\frac{g_n}{\|g_n\|_2},\quad g = \nabla_I \mathcal L(I)
$$

with R computed per image from the clean loss' gradient and then held constant (a first-order,
FGM-style step; no double backprop). One clean forward/backward yields both the parameter
gradient and g; one adversarial forward/backward on I + R adds its parameter gradient.

For CRF models the CRF's image features are the tensor the FCN receives, so with
``adv_kernel="full"`` (default, the paper) g also flows through the intensity kernel and the
kernels are rebuilt on I + R; ``adv_kernel="frozen"`` reproduces the authors' code, which keeps
the clean image's kernels.

See: lessons/04_adversarial.py, tests/test_adversarial.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import functions as F
from ._hooks import dispatch
from .autodiff import Tensor
from .backend import get_array_module
from .config import check_choice
from .models import SegmentationModel
from .threads import blas_on_one_thread


def adversarial_perturbation(g: Any, eps: float) -> Any:
    r"""Per-image perturbation $R_n = \varepsilon\,g_n/\|g_n\|_2$ [ZX18 Eq. 7].

    Computed robustly: $g_n$ is first divided by $\max|g_n|$ (the same direction, immune to
    underflow), then scaled to norm $\varepsilon$; $R_n = 0$ where $g_n$ vanishes.

    Args:
        g: image gradients (N, C, H, W) (raw array).
        eps: the L2 norm of each image's perturbation, ε > 0.
    Returns:
        R (N, C, H, W), the same dtype and device as g.
    """
    if not eps > 0:
        raise ValueError(f"adversarial eps must be > 0, got {eps}.")
    # --8<-- [start:perturbation]
    xp = get_array_module(g)
    n = g.shape[0]
    flat = g.reshape(n, -1)                                  # (N, C*H*W)
    scale = xp.abs(flat).max(axis=1, keepdims=True)
    safe = xp.where(scale > 0, scale, 1)
    g_hat = flat / safe
    norm = xp.sqrt((g_hat * g_hat).sum(axis=1, keepdims=True))
    r = xp.where(norm > 0, eps * g_hat / xp.where(norm > 0, norm, 1), 0)
    return r.reshape(g.shape).astype(g.dtype, copy=False)
    # --8<-- [end:perturbation]


def adversarial_input(g: Any, images: Any, eps: float) -> tuple[Any, Any]:
    r"""The adversarial image $I + R$ and the mean over images of $\|R_n\|_2/\|I_n\|_2$ [ZX18 Eq. 7].

    Args:
        g: image gradients (N, C, H, W) (raw array).
        images: the clean images I, same shape (raw array).
        eps: ε > 0, as for `adversarial_perturbation`.
    Returns:
        (I + R, a 0-d array): the perturbed images and the mean ratio of the norms.
    """
    return dispatch(None, "adversarial_input", _adversarial_input, g, images, eps)  # a GPU may use one kernel


def _adversarial_input(g: Any, images: Any, eps: float) -> tuple[Any, Any]:
    xp = get_array_module(g)
    r = adversarial_perturbation(g, eps)
    norms_i = xp.sqrt((images.reshape(len(images), -1) ** 2).sum(axis=1))  # (N,)
    norms_r = xp.sqrt((r.reshape(len(r), -1) ** 2).sum(axis=1))  # (N,)
    return images + r, (norms_r / xp.maximum(norms_i, 1e-12)).mean()


@dataclass
class StepResult:
    """What one training step measured: Python floats, or 0-d device arrays with ``sync=False``."""

    loss: Any          # total loss: clean + adversarial + l2
    clean_loss: Any
    adv_loss: Any      # 0 without adversarial training
    r_ratio: Any       # mean over images of ||R_n|| / ||I_n|| (0 without adversarial training)


def l2_term(model: SegmentationModel, lam: float, scope: str = "crf") -> Tensor | None:
    """λ/2 ‖w‖² over the CRF weights (``scope="crf"``, the code) or all parameters (``"all"``) [ZX18 Eq. 8]."""
    if lam == 0:
        return None
    check_choice("l2_scope", scope)
    params = model.parameters() if scope == "all" else model.crf_parameters()
    return F.l2_penalty(params, lam) if params else None


@blas_on_one_thread()  # tinyseg shares out the cores itself (tinyseg.threads)
def loss_and_backward(model: SegmentationModel, images: Any, labels: Any, adversarial: bool = False,
                      eps: float = 0.1, lam: float = 0.5, l2_scope: str = "crf",
                      adv_kernel: str = "full", sync: bool = True) -> StepResult:
    """Forward and backward of one batch; parameter gradients are accumulated into `.grad`.

    Args:
        model: the network (its parameters' gradients should be zeroed by the caller).
        images: normalised ROIs (N, 1, H, W), raw array.
        labels: targets (N, H, W), int.
        adversarial: add the loss at I + R (Eq. 8) with R from `adversarial_perturbation`.
        eps: ε, the norm of each image's perturbation.
        lam: λ of the l2 term.
        l2_scope: "crf" or "all".
        adv_kernel: "full" (CRF kernels rebuilt on I + R) or "frozen" (clean kernels).
        sync: return Python floats (and check every label). ``sync=False`` returns 0-d device
            arrays and skips the label-value check, so a GPU step never waits for the device;
            the caller must have validated the labels.
    """
    check_choice("adv_kernel", adv_kernel)
    xp = get_array_module(images)
    x = Tensor(images, requires_grad=adversarial)  # the image gradient is needed only to build R
    # "frozen" (the authors' code): the CRF's kernels are constants built from the clean image, so
    # g has no path through them, and the adversarial pass reuses them.
    frozen = Tensor(images) if adv_kernel == "frozen" else None
    # --8<-- [start:step]
    clean = F.cross_entropy(model(x, crf_image=frozen), labels,
                            check_labels=sync)
    clean.backward()
    total = clean.data
    adv_value, ratio = xp.zeros((), clean.dtype), xp.zeros((), clean.dtype)
    if adversarial:
        x_adv, ratio = adversarial_input(x.grad, images, eps)  # I + R, R held constant
        adv = F.cross_entropy(model(Tensor(x_adv), crf_image=frozen), labels,
                              check_labels=sync)
        adv.backward()
        adv_value = adv.data
        total = total + adv_value
    # --8<-- [end:step]
    reg = l2_term(model, lam, l2_scope)
    if reg is not None:
        reg.backward()
        total = total + reg.data
    if not sync:
        return StepResult(total, clean.data, adv_value, ratio)
    return StepResult(float(total), float(clean.data), float(adv_value), float(ratio))
