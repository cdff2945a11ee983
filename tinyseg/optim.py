"""Optimizers: Adam (PyTorch semantics, bias-corrected) and SGD with momentum.

The paper trains with Adam at lr 0.003 [ZX18 §4]. Updates run in place on the parameters' raw
arrays, a cache-sized block at a time, with a preallocated scratch block per thread, so a step
allocates nothing: on a 2.2-million-parameter FCN the optimizer is a noticeable part of a CPU
training step, and on the CPU the blocks are shared out among tinyseg's threads. `Adam.update` is the update itself, on raw arrays; on a GPU a hand-written kernel may run
it instead (docs: Performance).

See: lessons/02_fcn.py, tests/test_optim.py.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from ._hooks import dispatch
from .autodiff import Parameter
from .backend import as_numpy, get_array_module, is_cupy_array
from .threads import in_shares


class Optimizer:
    """Base class: holds the parameter list; `zero_grad()` clears their gradients."""

    def __init__(self, params: Iterable[Parameter]) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("the optimizer got an empty parameter list: pass model.parameters().")

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError


class Adam(Optimizer):
    r"""Adam [Kingma & Ba 2015] as in PyTorch; the paper's optimizer, lr 0.003 [ZX18 §4].

    $$
    \begin{aligned}
    m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t,\qquad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \\
    \theta_t &= \theta_{t-1} - \eta\,\frac{m_t/(1-\beta_1^t)}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon}
    \end{aligned}
    $$

    Args:
        params: the parameters to update.
        lr: learning rate η.
        betas: (β₁, β₂).
        eps: ε added to the bias-corrected √v.
    See: tests/test_optim.py (against a reference implementation of the formula).
    """

    # Elements updated at a time: the blocks of p, g, m, v and the scratch (1.25 MB in float32)
    # stay in cache across the update's 13 passes, instead of 13 trips through memory for each
    # parameter (about 2× faster for the 7.6 M parameters of the multi-scale FCN on one core).
    BLOCK = 1 << 16

    def __init__(self, params: Iterable[Parameter], lr: float = 3e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        super().__init__(params)
        if lr <= 0:
            raise ValueError(f"Adam: lr must be positive, got {lr}.")
        self.lr, self.betas, self.eps = float(lr), (float(betas[0]), float(betas[1])), float(eps)
        self.t = 0
        self.m = [get_array_module(p.data).zeros_like(p.data) for p in self.params]
        self.v = [get_array_module(p.data).zeros_like(p.data) for p in self.params]
        # One scratch block per device and dtype, viewed per block of a parameter (see `update`).
        self._scratch: dict[str, Any] = {}
        for p in self.params:
            key = get_array_module(p.data).__name__ + str(p.dtype)
            big = self._scratch.get(key)
            if big is None or big.size < min(p.size, self.BLOCK):
                self._scratch[key] = get_array_module(p.data).empty(min(p.size, self.BLOCK), p.dtype)

    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        b1, b2 = self.betas
        self.t += 1
        bc1, bc2 = 1.0 - b1 ** self.t, 1.0 - b2 ** self.t
        step_size, inv_sqrt_bc2 = self.lr / bc1, 1.0 / math.sqrt(bc2)
        work = [(p.data, p.grad, m, v) for p, m, v in zip(self.params, self.m, self.v) if p.grad is not None]
        if work:
            dispatch(self, "update", self.update, work, b1, b2, step_size, inv_sqrt_bc2)

    def update(self, work: list[tuple[Any, Any, Any, Any]], b1: float, b2: float, step_size: float,
               inv_sqrt_bc2: float) -> None:
        """Update in place each (parameter, gradient, m, v) of `work` (raw arrays), allocating nothing.

        The blocks are independent, so on the CPU they are shared out among tinyseg's threads
        (`tinyseg.threads.in_shares`); the result does not depend on how.

        Args:
            work: one (p, g, m, v) per parameter that has a gradient.
            b1: β₁.
            b2: β₂.
            step_size: η / (1 − β₁ᵗ).
            inv_sqrt_bc2: 1 / √(1 − β₂ᵗ).
        """
        on_cpu = not is_cupy_array(work[0][0])
        in_shares(self._update_blocks, list(_blocks(work, self.BLOCK)), b1, b2, step_size, inv_sqrt_bc2,
                  threads=on_cpu)

    def _update_blocks(self, blocks: list[tuple[Any, Any, Any, Any]], share: int, b1: float, b2: float,
                       step_size: float, inv_sqrt_bc2: float) -> None:
        """The update of `blocks`, with the scratch of `share` (one per thread)."""
        for p, g, m, v in blocks:
            tmp = self._tmp(p, share)
            xp = get_array_module(p)
            xp.multiply(g, 1.0 - b1, out=tmp)
            m *= b1
            m += tmp                                  # m = β₁m + (1−β₁)g
            xp.multiply(g, g, out=tmp)
            tmp *= 1.0 - b2
            v *= b2
            v += tmp                                  # v = β₂v + (1−β₂)g²
            xp.sqrt(v, out=tmp)
            tmp *= inv_sqrt_bc2
            tmp += self.eps                           # √(v/bc₂) + ε
            xp.divide(m, tmp, out=tmp)
            tmp *= step_size                          # η (m/bc₁) / (√(v/bc₂) + ε)
            p -= tmp

    def _tmp(self, p: Any, share: int = 0) -> Any:
        """Scratch shaped like `p`: a view of the preallocated block of `share` (fresh only for a
        large parameter that is not C-contiguous, which `_blocks` passes whole)."""
        key = get_array_module(p).__name__ + str(p.dtype)
        buf = self._scratch[key]
        if share:  # another thread's blocks: a block of its own, made at its first step
            if f"{key}/{share}" not in self._scratch:
                self._scratch.setdefault(f"{key}/{share}", get_array_module(p).empty_like(buf))
            buf = self._scratch[f"{key}/{share}"]
        return buf[:p.size].reshape(p.shape) if p.size <= buf.size else get_array_module(p).empty_like(p)

    def state_dict(self) -> dict[str, Any]:
        """Step count and moments as NumPy arrays (for checkpoints)."""
        return {"t": self.t, "m": [as_numpy(m).copy() for m in self.m], "v": [as_numpy(v).copy() for v in self.v],
                "lr": self.lr, "betas": self.betas, "eps": self.eps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned; moments are moved to the parameters' device."""
        if len(state["m"]) != len(self.params):
            raise ValueError(f"optimizer state has {len(state['m'])} moments for {len(self.params)} parameters: "
                             "it belongs to another model.")
        self.t = int(state["t"])
        for i, p in enumerate(self.params):
            xp = get_array_module(p.data)
            for name in ("m", "v"):
                a = np.asarray(state[name][i])
                if a.shape != p.shape:
                    raise ValueError(f"optimizer state {name}[{i}] has shape {a.shape}, parameter has {p.shape}.")
                getattr(self, name)[i] = xp.asarray(a, dtype=p.dtype)


def _blocks(work: list[tuple[Any, Any, Any, Any]], size: int) -> Iterable[tuple[Any, Any, Any, Any]]:
    """Matching 1-D blocks of at most `size` elements of each (p, g, m, v): views, so in-place
    updates of the blocks of p, m, v update the arrays. A p, m or v that is not C-contiguous
    (it could not be flattened without a copy) comes whole."""
    for p, g, m, v in work:
        if p.size <= size or not all(a.flags.c_contiguous for a in (p, m, v)):
            yield p, g, m, v
            continue
        p, g, m, v = (a.reshape(-1) for a in (p, g, m, v))  # (P,) views; g may be a copy, it is only read
        for i in range(0, p.size, size):
            yield p[i:i + size], g[i:i + size], m[i:i + size], v[i:i + size]


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum (PyTorch semantics).

    $$
    b_t = \mu b_{t-1} + g_t,\quad \theta_t = \theta_{t-1} - \eta\, b_t
    $$

    Args:
        params: the parameters to update.
        lr: learning rate η.
        momentum: μ (0 disables the buffer).
    """

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-2, momentum: float = 0.0) -> None:
        super().__init__(params)
        if lr <= 0:
            raise ValueError(f"SGD: lr must be positive, got {lr}.")
        self.lr, self.momentum = float(lr), float(momentum)
        self.buf: list[Any] = [None] * len(self.params)

    def step(self) -> None:
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad
            if self.momentum:
                self.buf[i] = g.copy() if self.buf[i] is None else self.buf[i] * self.momentum + g
                g = self.buf[i]
            p.data -= self.lr * g

    def state_dict(self) -> dict[str, Any]:
        return {"buf": [None if b is None else as_numpy(b).copy() for b in self.buf], "lr": self.lr,
                "momentum": self.momentum}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.buf = [None if b is None else get_array_module(p.data).asarray(b)
                    for b, p in zip(state["buf"], self.params)]
