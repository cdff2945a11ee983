"""Numerical gradient checking and the registry of gradient-check cases.

`check_backward(fn, inputs)` compares the gradients that reverse mode computes with central
finite differences, in float64, for a RANDOM upstream gradient G (an all-ones G hides wrong
softmax backwards). The scalar being differentiated is ``L(x) = sum(G * fn(x))``:

* up to `max_elementwise` elements per input, every element is perturbed by ±h;
* above that, `n_directions` random directions v are checked: (L(x+hv) − L(x−hv)) / 2h ≈ ⟨∇L, v⟩.

Before comparing values it asserts the engine's contract: each gradient has its input's dtype
and shape.

The comparison is norm-wise relative: ``max|num − ana| ≤ rtol · max(max|ana|, max|num|) + atol``.

Every op registers at least one case next to its definition with `register_gradcheck`;
`tests/test_gradcheck.py` runs them all under `pytest --gradcheck`, and a meta-test fails when
an `Op` subclass has no case.

See: lessons/01_autodiff.py, tests/test_gradcheck.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .autodiff import Op, Tensor
from .backend import as_numpy, get_array_module


class GradcheckError(AssertionError):
    """Raised when an analytic gradient disagrees with finite differences."""


@dataclass
class GradcheckCase:
    """One registered gradient check.

    Attributes:
        name: unique case name, e.g. ``"conv2d/stride2_pad1"``.
        fn: function of the inputs (differentiable ones as Tensors, others as raw arrays)
            returning one Tensor.
        make_inputs: ``rng -> list of float64 / int arrays``; inputs are built fresh per run.
        ops: the `Op` classes this case exercises (the meta-test reads this).
        wrt: indices of the inputs to differentiate; default: every floating-point input.
        rtol: relative tolerance of the norm-wise comparison.
        atol: absolute tolerance.
    """

    name: str
    fn: Callable[..., Tensor]
    make_inputs: Callable[[np.random.Generator], Sequence[np.ndarray]]
    ops: tuple[type, ...]
    wrt: tuple[int, ...] | None = None
    rtol: float = 1e-6
    atol: float = 1e-9


GRADCHECK_CASES: dict[str, GradcheckCase] = {}


def register_gradcheck(name: str, fn: Callable[..., Tensor],
                       make_inputs: Callable[[np.random.Generator], Sequence[np.ndarray]],
                       ops: Sequence[type], wrt: Sequence[int] | None = None,
                       rtol: float = 1e-6, atol: float = 1e-9) -> GradcheckCase:
    """Add a case to `GRADCHECK_CASES` (names must be unique) and return it."""
    if name in GRADCHECK_CASES:
        raise ValueError(f"gradcheck case {name!r} registered twice")
    for op in ops:
        if not (isinstance(op, type) and issubclass(op, Op)):
            raise TypeError(f"gradcheck case {name!r}: {op!r} is not an Op subclass")
    case = GradcheckCase(name, fn, make_inputs, tuple(ops), None if wrt is None else tuple(wrt), rtol, atol)
    GRADCHECK_CASES[name] = case
    return case


def _is_float(a: Any) -> bool:
    return getattr(a, "dtype", None) is not None and a.dtype.kind == "f"


def check_backward(fn: Callable[..., Tensor], inputs: Sequence[Any], wrt: Sequence[int] | None = None,
                   rtol: float = 1e-6, atol: float = 1e-9, h: float = 1e-6, seed: int = 0,
                   max_elementwise: int = 2000, n_directions: int = 3, name: str = "fn") -> None:
    """Check reverse-mode gradients of `fn` at `inputs` against central finite differences.

    Args:
        fn: function of the inputs returning a Tensor; differentiable inputs arrive as Tensors
            with ``requires_grad=True``, the others as raw arrays.
        inputs: arrays (NumPy or CuPy); floating-point ones are cast to float64.
        wrt: indices of inputs to check (default: every floating-point input).
        rtol: relative tolerance of the norm-wise comparison.
        atol: absolute tolerance.
        h: finite-difference step.
        seed: seed of the random upstream gradient and the random directions.
        max_elementwise: inputs with more elements are checked along random directions.
        n_directions: how many random directions such a large input is checked along.
        name: the case's name in the failure message.

    Raises:
        GradcheckError: naming the case, the input, the index and both values.
    """
    xp = get_array_module(*inputs)
    # Private contiguous float64 copies: the element-wise loop perturbs them in place.
    xs = [xp.array(a, dtype=xp.float64, order="C") if _is_float(xp.asarray(a)) else xp.asarray(a) for a in inputs]
    wrt = tuple(i for i, a in enumerate(xs) if _is_float(a)) if wrt is None else tuple(wrt)
    rng = np.random.default_rng(seed)

    def call(arrays: Sequence[Any], track: bool) -> Tensor:
        args = [Tensor(a, requires_grad=track and i in wrt) if i in wrt else a for i, a in enumerate(arrays)]
        return fn(*args), args

    y, args = call(xs, True)
    if not isinstance(y, Tensor):
        raise TypeError(f"{name}: fn must return a Tensor, got {type(y).__name__}")
    G = xp.asarray(rng.standard_normal(y.shape))  # random upstream gradient
    y.backward(G)
    analytic = [args[i].grad if args[i].grad is not None else xp.zeros_like(xs[i]) for i in wrt]
    for i, gx in zip(wrt, analytic):  # the engine's contract: a gradient has its input's dtype and shape
        if gx.dtype != xs[i].dtype or tuple(gx.shape) != tuple(xs[i].shape):
            raise GradcheckError(f"gradient check failed for {name}, input {i}: gradient of dtype {gx.dtype} and "
                                 f"shape {tuple(gx.shape)} for an input of dtype {xs[i].dtype} and shape "
                                 f"{tuple(xs[i].shape)}")

    def loss(arrays: Sequence[Any]) -> float:
        out, _ = call(arrays, False)
        return float(xp.sum(out.data * G))

    for i, gx in zip(wrt, analytic):
        x = xs[i]
        if x.size <= max_elementwise:
            num = np.zeros(x.shape)
            flat = x.reshape(-1)
            for k in range(x.size):
                old = flat[k].item()
                flat[k] = old + h
                lp = loss(xs)
                flat[k] = old - h
                lm = loss(xs)
                flat[k] = old
                num.reshape(-1)[k] = (lp - lm) / (2 * h)
            ana = as_numpy(gx)
            _compare(name, i, num, ana, rtol, atol)
        else:
            for d in range(n_directions):
                v = xp.asarray(rng.standard_normal(x.shape))
                plus = list(xs); plus[i] = x + h * v
                minus = list(xs); minus[i] = x - h * v
                num = np.array([(loss(plus) - loss(minus)) / (2 * h)])
                ana = np.array([float(xp.sum(gx * v))])
                _compare(f"{name} (random direction {d})", i, num, ana, rtol, atol)


def _compare(name: str, i: int, num: np.ndarray, ana: np.ndarray, rtol: float, atol: float) -> None:
    err = np.abs(num - ana)
    scale = max(float(np.max(np.abs(ana), initial=0.0)), float(np.max(np.abs(num), initial=0.0)))
    if not np.all(np.isfinite(ana)) or float(err.max(initial=0.0)) > rtol * scale + atol:
        k = int(np.argmax(np.where(np.isfinite(err), err, np.inf)))
        idx = np.unravel_index(k, num.shape) if num.ndim else ()
        raise GradcheckError(
            f"gradient check failed for {name}, input {i}, index {tuple(int(j) for j in idx)}: "
            f"analytic {ana.reshape(-1)[k]:.10g} vs numerical {num.reshape(-1)[k]:.10g} "
            f"(max error {err.max():.3g}, allowed {rtol * scale + atol:.3g})")


def run_case(case: GradcheckCase, xp: Any = np, seed: int = 0) -> None:
    """Build the case's inputs on `xp` (numpy or cupy) and run `check_backward` on them."""
    rng = np.random.default_rng(seed)
    inputs = [xp.asarray(a) for a in case.make_inputs(rng)]
    check_backward(case.fn, inputs, wrt=case.wrt, rtol=case.rtol, atol=case.atol, name=case.name)


def all_op_classes() -> list[type]:
    """Every concrete `Op` subclass defined so far (import tinyseg first)."""
    found, stack = [], list(Op.__subclasses__())
    while stack:
        cls = stack.pop()
        found.append(cls)
        stack.extend(cls.__subclasses__())
    return sorted(set(found), key=lambda c: c.__qualname__)
