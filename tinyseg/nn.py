"""Layers: `Module` and the building blocks of the paper's networks.

A `Module` finds its parameters and sub-modules among its attributes (in the order they were
assigned), so ``named_parameters()`` and ``state_dict()`` need no registration calls.

Initialisation: the authors draw every FCN weight from N(0, 1). With fan-ins up to 588 that
puts pre-activations near ±24, so tanh and softmax saturate and their gradients vanish.
tinyseg uses Glorot-uniform initialisation, the standard choice for tanh networks:
U(−a, a) with a = √(6 / (fan_in + fan_out)), which keeps activations of unit order.

See: lessons/02_fcn.py, tests/test_models.py, tests/test_crf_fused.py.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from . import functions as F
from .autodiff import Parameter, Tensor
from .backend import as_numpy, get_array_module, to_device
from .config import check_choice

__all__ = ["Conv2d", "ConvTranspose2d", "MaxPool2d", "MeanFieldCRF", "Module", "ModuleList", "Parameter",
           "PositionPrior", "Tanh", "glorot_uniform"]


def glorot_uniform(shape: tuple[int, ...], fan_in: int, fan_out: int, rng: np.random.Generator,
                   dtype: Any = np.float32) -> np.ndarray:
    """Draw U(−a, a) with a = √(6 / (fan_in + fan_out)) [Glorot & Bengio 2010]."""
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, shape).astype(dtype)


class Module:
    """Base class of layers and models (PyTorch-like API)."""

    training: bool = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def children(self) -> Iterator[tuple[str, "Module"]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs, this module's own first, then each child's."""
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self.children():
            yield from child.named_parameters(f"{prefix}{name}.")

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True) -> "Module":
        """Set training mode here and in every sub-module (the CRF runs more iterations in eval)."""
        self.training = mode
        for _, child in self.children():
            child.train(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def to(self, device: str) -> "Module":
        """Move every parameter to 'cpu' or 'gpu' (in place); returns self."""
        for p in self.parameters():
            p.data = to_device(p.data, device)
            p.grad = p._grad_buffer = None  # the buffer lived on the old device
        return self

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameter name → a NumPy copy of its value."""
        return {name: as_numpy(p.data).copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy values into the parameters (on their current device); names and shapes must match."""
        params = dict(self.named_parameters())
        missing, unexpected = sorted(set(params) - set(state)), sorted(set(state) - set(params))
        if missing or unexpected:
            raise ValueError(f"state_dict does not fit {type(self).__name__}: missing {missing}, unexpected "
                             f"{unexpected}. Was it saved from another variant or configuration?")
        for name, p in params.items():
            value = np.asarray(as_numpy(state[name]))
            if value.shape != p.shape:
                raise ValueError(f"state_dict entry {name!r} has shape {value.shape}, the model expects {p.shape}.")
            p.data = get_array_module(p.data).asarray(value, dtype=p.dtype)

    def num_parameters(self) -> int:
        return int(sum(p.size for p in self.parameters()))


class ModuleList(Module):
    """A list of modules whose parameters are found by `named_parameters` (names ``0.``, ``1.``, …)."""

    def __init__(self, modules: list[Module]) -> None:
        self._items = list(modules)

    def children(self) -> Iterator[tuple[str, Module]]:
        for i, m in enumerate(self._items):
            yield str(i), m

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for name, child in self.children():
            yield from child.named_parameters(f"{prefix}{name}.")

    def __iter__(self) -> Iterator[Module]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i: int) -> Module:
        return self._items[i]


class Conv2d(Module):
    """Valid (or padded) 2-D convolution ``y = conv2d(x, W) + b``, Glorot-initialised [ZX18 Table 1].

    Args:
        c_in: input channels.
        c_out: output channels.
        kernel_size: k (square kernel).
        stride: as `F.conv2d`.
        pad: as `F.conv2d`.
        rng: random generator for the initialisation.
        dtype: parameter dtype.
    """

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int = 1, pad: int = 0,
                 rng: np.random.Generator | None = None, dtype: Any = np.float32) -> None:
        rng = rng if rng is not None else np.random.default_rng(0)
        k = kernel_size
        self.stride, self.pad = stride, pad
        self.W = Parameter(glorot_uniform((c_out, c_in, k, k), c_in * k * k, c_out * k * k, rng, dtype))
        self.b = Parameter(np.zeros(c_out, dtype))

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.W, self.b, stride=self.stride, pad=self.pad)


class ConvTranspose2d(Module):
    """Transposed convolution (the adjoint of `Conv2d`), optionally without bias [ZX18 Table 1].

    The FCN's last layer maps its 1×1×c3 code to 40×40 logits with a 40×40 kernel: every output
    pixel then receives exactly one contribution per input channel, so Glorot's fan-in is c_in
    (not c_in·k², which would shrink the initial logits 40-fold).
    """

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int = 1, pad: int = 0, bias: bool = True,
                 rng: np.random.Generator | None = None, dtype: Any = np.float32) -> None:
        rng = rng if rng is not None else np.random.default_rng(0)
        k = kernel_size
        self.stride, self.pad = stride, pad
        self.W = Parameter(glorot_uniform((c_in, c_out, k, k), c_in, c_out, rng, dtype))
        self.b = Parameter(np.zeros(c_out, dtype)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.conv_transpose2d(x, self.W, self.b, stride=self.stride, pad=self.pad)


class MaxPool2d(Module):
    """2×2 max-pooling with stride 2 (odd sizes floored)."""

    def __init__(self, kernel_size: int = 2, stride: int = 2) -> None:
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(x, self.kernel_size, self.stride)


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


def prior_logit_init(prior: np.ndarray | None, shape: tuple[int, int], dtype: Any = np.float32) -> np.ndarray:
    """The default position-prior bias: class 0 row zeros, class 1 row logit(clip(prior, .01, .99)).

    With zeros for class 0, softmax of the bias alone gives exactly the (clipped) empirical prior.
    """
    bias = np.zeros((2, *shape), dtype)
    if prior is not None:
        p = np.clip(np.asarray(prior, np.float64), 0.01, 0.99)
        if p.shape != tuple(shape):
            raise ValueError(f"prior of shape {p.shape} does not match the logits' {tuple(shape)}.")
        bias[1] = np.log(p / (1 - p))
    return bias


class PositionPrior(Module):
    r"""The learned position prior of Eq. 6: a (2, H, W) bias added to the FCN's logits [ZX18 Eq. 6].

    $P(y_i \mid I) \propto w_i P_{fcn}(y_i \mid I)$ — a multiplicative prior on
    probabilities is an additive bias on logits, learned with the network.

    Args:
        shape: (H, W) of the logits.
        prior: empirical prior of the training masks (H, W) in [0, 1], or None for zeros
            (``prior_init="zeros"``).
        dtype: parameter dtype.
    """

    def __init__(self, shape: tuple[int, int] = (40, 40), prior: np.ndarray | None = None,
                 dtype: Any = np.float32) -> None:
        self.bias = Parameter(prior_logit_init(prior, shape, dtype))

    def forward(self, logits: Tensor) -> Tensor:
        return F.add_prior(logits, self.bias)


class MeanFieldCRF(Module):
    r"""Mean-field CRF inference unrolled as an RNN [ZX18 Eq. 2-5]; see `F.mean_field_crf`.

    Runs `n_iter` iterations in training mode and `n_iter_eval` in eval mode (5 and 10, as the
    paper). Its weights are unconstrained and start positive inside the contraction bound
    (`crf_contraction_bound`), so mean field converges and backprop through the iterations is bounded.

    Args:
        graph: "dense" (the paper) or "grid4" (the authors' code, with correct messages).
        n_iter: iterations in train().
        n_iter_eval: iterations in eval().
        per_label: one weight per kernel and label, shape (2, 2), instead of (2,).
        include_self: keep the self pair (see `F.mean_field_crf`).
        unary_domain: "logits" or "prob" (see `F.mean_field_crf`).
        authors_self_message: reproduce the authors' missing message passing (grid4).
        dtype: parameter dtype.
    """

    def __init__(self, graph: str = "dense", n_iter: int = 5, n_iter_eval: int = 10, per_label: bool = False,
                 include_self: bool = False, unary_domain: str = "logits", authors_self_message: bool = False,
                 dtype: Any = np.float32) -> None:
        from .functions.crf import crf_default_weights

        check_choice("crf_graph", graph)
        self.graph, self.n_iter, self.n_iter_eval = graph, int(n_iter), int(n_iter_eval)
        self.include_self, self.unary_domain = include_self, unary_domain
        self.authors_self_message = authors_self_message
        self.weights = Parameter(np.asarray(crf_default_weights(graph, per_label=per_label), dtype))

    def forward(self, unary: Tensor, image: Tensor) -> Tensor:
        return F.mean_field_crf(unary, image, self.weights, n_iter=self.n_iter if self.training else self.n_iter_eval,
                                graph=self.graph, include_self=self.include_self, unary_domain=self.unary_domain,
                                authors_self_message=self.authors_self_message)
