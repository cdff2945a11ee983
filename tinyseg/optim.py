"""Optimizers: Adam (PyTorch semantics, bias-corrected) and SGD with momentum.

The paper trains with Adam at lr 0.003 [ZX18 §4]. Updates run in place on the parameters' raw
arrays with preallocated scratch buffers, so a step allocates nothing: on a 2.2-million-parameter
FCN the optimizer is a noticeable part of a CPU training step.

See: lessons/02_fcn.py, tests/test_optim.py.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from .autodiff import Parameter
from .backend import as_numpy, cupy_module, get_array_module, is_cupy_array
from .cuda import get_kernel


_FUSED_ADAM: Any = None


def _fused_adam() -> Any:
    """The Adam update as one CuPy elementwise kernel (built on first use); the NumPy path of
    `Adam.step` is its reference (tests/test_gpu_parity.py)."""
    global _FUSED_ADAM
    if _FUSED_ADAM is None:
        _FUSED_ADAM = cupy_module().ElementwiseKernel(
            "T g, T b1, T one_minus_b1, T b2, T one_minus_b2, T step_size, T inv_sqrt_bc2, T eps",
            "T p, T m, T v",
            # 1 − β is computed in double by the caller: in float32, 1 − 0.999f is off by 1.3e-5.
            """
            m = b1 * m + one_minus_b1 * g;
            v = b2 * v + one_minus_b2 * g * g;
            p -= step_size * m / (sqrt(v) * inv_sqrt_bc2 + eps);
            """,
            "tinyseg_fused_adam")
    return _FUSED_ADAM


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
    m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\quad
    \theta_t = \theta_{t-1} - \eta\,\frac{m_t/(1-\beta_1^t)}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon}
    $$

    Args:
        params: the parameters to update.
        lr: learning rate η.
        betas: (β₁, β₂).
        eps: ε added to the bias-corrected √v.
    See: tests/test_optim.py (against a reference implementation of the formula).
    """

    def __init__(self, params: Iterable[Parameter], lr: float = 3e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        super().__init__(params)
        if lr <= 0:
            raise ValueError(f"Adam: lr must be positive, got {lr}.")
        self.lr, self.betas, self.eps = float(lr), (float(betas[0]), float(betas[1])), float(eps)
        self.t = 0
        self.m = [get_array_module(p.data).zeros_like(p.data) for p in self.params]
        self.v = [get_array_module(p.data).zeros_like(p.data) for p in self.params]
        # One scratch buffer per device, as large as the largest parameter, viewed per parameter.
        self._scratch: dict[str, Any] = {}
        self._offsets: tuple[tuple, Any] | None = None  # the fast path's ((module, *sizes), device offsets)
        for p in self.params:
            key = get_array_module(p.data).__name__ + str(p.dtype)
            big = self._scratch.get(key)
            if big is None or big.size < p.size:
                self._scratch[key] = get_array_module(p.data).empty(p.size, p.dtype)

    def _tmp_for(self, p: Parameter) -> Any:
        big = self._scratch[get_array_module(p.data).__name__ + str(p.dtype)]
        return big[:p.size].reshape(p.shape)

    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        b1, b2 = self.betas
        self.t += 1
        bc1, bc2 = 1.0 - b1 ** self.t, 1.0 - b2 ** self.t
        step_size, inv_sqrt_bc2 = self.lr / bc1, 1.0 / math.sqrt(bc2)
        if self._step_all_at_once(b1, b2, step_size, inv_sqrt_bc2):
            return
        for p, m, v in zip(self.params, self.m, self.v):
            g = p.grad
            if g is None:
                continue
            if is_cupy_array(p.data):  # one fused kernel instead of ten launches per parameter
                _fused_adam()(g, b1, 1.0 - b1, b2, 1.0 - b2, step_size, inv_sqrt_bc2, self.eps, p.data, m, v)
                continue
            tmp = self._tmp_for(p)
            xp = get_array_module(p.data)
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
            p.data -= tmp

    def _step_all_at_once(self, b1: float, b2: float, step_size: float, inv_sqrt_bc2: float) -> bool:
        """The GPU fast path: every parameter in one kernel launch (tinyseg/cuda/optim.cu).

        Returns False, having done nothing, where it does not apply (fast paths off, NumPy arrays
        outside `tinyseg.cuda.emulated`, mixed dtypes); the per-parameter loop then runs.
        """
        work = [(p.data, p.grad, m, v) for p, m, v in zip(self.params, self.m, self.v) if p.grad is not None]
        if not work:
            return True
        p0 = work[0][0]
        if any(a.dtype != p0.dtype for w in work for a in w) or p0.dtype.kind != "f" \
                or not all(a.flags.c_contiguous for w in work for a in (w[0], w[2], w[3])):
            return False
        kernel = get_kernel("optim.cu", "adam_multi", p0)
        if kernel is None:
            return False
        xp = get_array_module(p0)
        grads = [xp.ascontiguousarray(g) for _, g, _, _ in work]  # kept alive until the launch is queued
        addr = (lambda a: a.data.ptr) if is_cupy_array(p0) else (lambda a: a.ctypes.data)
        ptrs = np.array([addr(w[0]) for w in work] + [addr(g) for g in grads]
                        + [addr(w[2]) for w in work] + [addr(w[3]) for w in work], dtype=np.uint64)  # (4 K,)
        sizes = (xp.__name__,) + tuple(w[0].size for w in work)
        if self._offsets is None or self._offsets[0] != sizes:  # uploaded once, not every step
            self._offsets = (sizes, xp.asarray(np.concatenate([[0], np.cumsum(sizes[1:])]).astype(np.int64)))  # (K + 1,)
        real = p0.dtype.type
        total = sum(sizes[1:])
        kernel((max(1, min(65535, -(-total // 256))),), (256,),
               (xp.asarray(ptrs), self._offsets[1], np.int32(len(work)), real(b1), real(1.0 - b1), real(b2),
                real(1.0 - b2), real(step_size), real(inv_sqrt_bc2), real(self.eps)))
        return True

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
