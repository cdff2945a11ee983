"""The adversarial input of a training step in one launch (``adversarial.cu``), registered as an
override of the ``adversarial_input`` helper of `tinyseg.adversarial`.

One block per image computes R = ε ĝ/‖ĝ‖₂ with ĝ = g/max|g| (R = 0 where g vanishes), I + R and
‖R‖/‖I‖ — about 20 array operations on the plain path.

See: tinyseg/cuda/adversarial.cu, tests/cuda/test_fast_path_layers.py.
"""
from __future__ import annotations

from typing import Any

from ..backend import get_array_module
from . import kernels
from .kernels import get_kernel, launch
from .registry import register


def adversarial_input(g: Any, images: Any, eps: float) -> Any:
    """(I + R, mean over images of ‖R_n‖/‖I_n‖) for image gradients g (N, C, H, W)."""
    if g.dtype != images.dtype or not len(g) or not eps > 0:
        return NotImplemented
    kernel = get_kernel("adversarial.cu", "adversarial_input", g)
    xp = get_array_module(g)
    N = g.shape[0]
    x_adv, ratio = xp.empty(images.shape, images.dtype), xp.empty((N,), g.dtype)
    launch(kernel, (N,), (xp.ascontiguousarray(g), xp.ascontiguousarray(images), x_adv, ratio,
                          g.dtype.type(eps), xp.int64(g.size // N)), shared_values=kernels.BLOCK, like=g)  # a block reduction
    return x_adv, ratio.mean()


register("adversarial_input", name="adversarial_input", call=adversarial_input)
