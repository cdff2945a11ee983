r"""The position prior: a learned image-sized bias on the FCN's logits.  [ZX18 Eq. 6]

The paper writes the prior as a re-weighting of the FCN's probabilities,

$$
P(y_i \mid I; \theta) \propto w_i \, P_{fcn}(y_i \mid I; \theta)
$$

(Eq. 6), and implements it as "an image sized bias in the softmax layer". The two are the same
thing: with $P_{fcn} = \mathrm{softmax}(z)$,

$$
w_{i,k} \, \frac{e^{z_{i,k}}}{\sum_j e^{z_{i,j}}} \;\propto\; e^{z_{i,k} + \log w_{i,k}}
\quad\Rightarrow\quad P = \mathrm{softmax}(z + b), \quad b_{i,k} = \log w_{i,k},
$$

since the normaliser over classes absorbs every factor that does not depend on k. A
multiplicative prior on probabilities is an additive bias on logits; learning b (one value per
class and pixel, shared over the batch) learns the prior. `PositionPrior` (in `nn`) owns the
``(C, H, W)`` parameter and initialises it from the empirical mass frequency.

See: lessons/02_fcn.py, tests/functions/test_prior.py.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autodiff import Op, Tensor
from ..gradcheck import register_gradcheck


# --8<-- [start:add_prior]
class AddPriorOp(Op):
    def forward(self, logits: Any, bias: Any) -> Any:
        if (logits.ndim != 4 or bias.ndim != 3
                or tuple(logits.shape[1:]) != tuple(bias.shape)):
            raise ValueError(
                "add_prior: logits must be (N, C, H, W) and bias (C, H, W) with the "
                f"same C, H, W; got logits {tuple(logits.shape)} and bias "
                f"{tuple(bias.shape)}.")
        if bias.dtype != logits.dtype:
            raise TypeError(f"add_prior: logits are {logits.dtype} but bias is "
                            f"{bias.dtype}; cast one of them.")
        return logits + bias[None]  # (1, C, H, W) broadcast over the batch

    def backward(self, gy: Any) -> tuple[Any, Any]:
        # the bias is shared by every image: its gradient sums over the batch
        return gy, gy.sum(axis=0)
# --8<-- [end:add_prior]


def add_prior(logits: Any, bias: Any) -> Tensor:
    r"""Add the position-prior bias to every image's logits.  [ZX18 Eq. 6]

    $$
    z'_{n,k,i} = z_{n,k,i} + b_{k,i}, \qquad \mathrm{softmax}(z') \propto e^{b} \odot \mathrm{softmax}(z)
    $$

    i.e. the multiplicative prior $P \propto w_i P_{fcn}$ of Eq. 6 with $w = e^{b}$.

    Args:
        logits: ``(N, C, H, W)``, the FCN's output (C = 2 in the paper).
        bias: ``(C, H, W)``, the learned prior (log-weights), same dtype.
    Returns:
        ``(N, C, H, W)``.

    Gradient: ``g logits = gy``, ``g bias = Σ_n gy[n]``.

    Derivation: docs/derivations/conv.md#the-position-prior-eq-6.
    See: lessons/02_fcn.py, tests/functions/test_prior.py::test_add_prior_equals_multiplicative_prior_on_probabilities.
    """
    return AddPriorOp()(logits, bias)


_n = np.random.Generator.standard_normal
register_gradcheck("add_prior/batch3", lambda z, b: add_prior(z, b),
                   lambda r: [_n(r, (3, 2, 4, 5)), _n(r, (2, 4, 5))], [AddPriorOp])
