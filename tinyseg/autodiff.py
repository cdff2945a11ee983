"""A minimal reverse-mode automatic differentiation engine.

A `Tensor` wraps a raw array (NumPy or CuPy). Calling an `Op` on tensors computes its `forward`
on the raw arrays and, when gradients are enabled and some input requires one, records the op
as the `creator` of its outputs. `Tensor.backward()` then walks the recorded graph in reverse
topological order (iteratively, so a chain of 10,000 ops needs no recursion) and calls each
op's hand-written `backward`, summing the gradients of tensors that are used more than once.

Only leaves (tensors without a creator that require a gradient, e.g. `Parameter`s or an input
image with `requires_grad=True`) keep `.grad`; intermediate gradients are dropped as soon as
they have been used, and the graph is freed after `backward` unless `retain_graph=True`.

The rule, on every op and operator:

* forward values, dtypes, axes and broadcasting follow NumPy 2, including its promotion of
  Python scalars (NEP 50: ``float32 tensor * 0.5`` stays float32, ``int tensor + 0.5`` is
  float64, ``float32 tensor * np.float64(0.5)`` is float64);
* gradients follow PyTorch: only floating-point tensors can require a gradient, a tensor's
  gradient has that tensor's dtype and shape (a float32 leaf used in float64 arithmetic gets a
  float32 gradient), at a kink the subgradient PyTorch uses (d(x**0)/dx = 0), and a max sends
  its gradient to the element its forward picked (the first maximum, or the first NaN);
* an argument NumPy refuses (an axis out of range, a shape that does not fit) or an impossible
  geometry raises `tinyseg.errors.UserError` naming the argument, its value and what is allowed.

An op object is single-use: one call, one node of the graph (the functions in
`tinyseg.functions` create a new op per call).

Longer than the usual ~300 lines because it is the whole engine in one file, as lesson 01 shows
it: `Tensor`, `Op`, the backward walk and the argument rules every op shares.

See: lessons/01_autodiff.py, tests/test_autodiff.py, tests/functions/test_op_properties.py.
"""
from __future__ import annotations

import contextlib
import weakref
from typing import Any, Iterator

import numpy as np

from ._hooks import dispatch
from .backend import as_numpy, get_array_module, is_cupy_array
from .errors import UserError
from .operators import TensorOperators

_grad_enabled = True


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Context manager in which ops record no graph (inference, optimizer updates)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled() -> bool:
    """True unless inside a `no_grad()` block."""
    return _grad_enabled


def _as_array(x: Any) -> Any:
    """Raw array of a Tensor, an array, or a Python scalar (as a NumPy array)."""
    if isinstance(x, Tensor):
        return x.data
    if is_cupy_array(x) or isinstance(x, np.ndarray):
        return x
    return np.asarray(x)


def _is_python_scalar(x: Any) -> bool:
    """A Python bool, int, float or complex, which NumPy 2 promotes "weakly" (NEP 50); NumPy
    scalars such as ``np.float64(0.5)`` (a subclass of float) keep their own dtype."""
    return isinstance(x, (bool, int, float, complex)) and not isinstance(x, np.generic)


def _check_requires_grad(data: Any, requires_grad: bool) -> None:
    if requires_grad and data.dtype.kind != "f":
        raise UserError(f"requires_grad=True needs a floating-point tensor, got dtype {data.dtype}; "
                        "convert it first, e.g. Tensor(x.astype(np.float32), requires_grad=True).")


# --8<-- [start:tensor]
class Tensor(TensorOperators):
    """An array plus the bookkeeping reverse mode needs.

    Args:
        data: a NumPy or CuPy array (kept as is, no copy), or anything
            `numpy.asarray` accepts.
        requires_grad: whether `backward` should compute a gradient for this tensor.
        name: optional label, shown in `repr` and in gradient-check failures.
    """

    # Above ndarray's priority: `ndarray + Tensor` calls Tensor.__radd__ instead of
    # NumPy applying `+` to every element of the Tensor.
    __array_priority__ = 1000

    def __init__(self, data: Any, requires_grad: bool = False,
                 name: str | None = None) -> None:
        self.data = _as_array(data)          # the raw NumPy or CuPy array
        self.grad: Any = None                # d(output)/d(self) after backward (leaves)
        _check_requires_grad(self.data, requires_grad)
        self._requires_grad = bool(requires_grad)
        self.creator: Op | None = None       # the op that computed it (None: a leaf)
        self._index = 0                      # which output of its creator it is
        self._graph_freed = False            # creator released by a backward()
        self._retains_grad = False           # keep .grad although not a leaf
        self.name = name
    # --8<-- [end:tensor]

    @property
    def requires_grad(self) -> bool:
        """Whether `backward` computes a gradient for this tensor (floating-point tensors only)."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        _check_requires_grad(self.data, value)
        self._requires_grad = bool(value)

    # -- array-like properties -------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def dtype(self) -> Any:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        label = f", name={self.name!r}" if self.name else ""
        return f"{type(self).__name__}({self.data!r}{label}, requires_grad={self.requires_grad})"

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """``np.asarray(tensor)``: the NumPy data of a CPU tensor (a GPU tensor is refused)."""
        if is_cupy_array(self.data):
            raise TypeError("can't convert a GPU (CuPy) tensor to a NumPy array implicitly; "
                            "call tensor.numpy() to copy it to the host first.")
        if copy is False and dtype is not None and np.dtype(dtype) != self.data.dtype:
            raise ValueError(f"np.asarray(tensor, dtype={dtype}, copy=False) would need a copy.")
        a = self.data if dtype is None else self.data.astype(dtype, copy=False)
        return a.copy() if copy else a

    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (copied from the GPU when it lives there)."""
        return as_numpy(self.data)

    def item(self) -> float:
        """The value of a one-element tensor as a Python float."""
        if self.size != 1:
            raise ValueError(f"item() needs a one-element tensor, got shape {self.shape}.")
        return float(as_numpy(self.data).reshape(-1)[0])

    def detach(self) -> Tensor:
        """A new leaf tensor sharing this tensor's data, cut from the graph."""
        return Tensor(self.data)

    def zero_grad(self) -> None:
        self.grad = None

    def accumulate_grad(self, g: Any) -> None:
        """Add the gradient `g` of one use of this tensor into `.grad` (the sum over uses)."""
        self.grad = g if self.grad is None else self.grad + g

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in `.grad` after `backward` (leaves always keep theirs)."""
        self._retains_grad = True

    # -- reverse mode ------------------------------------------------------------------------
    # --8<-- [start:backward_def]
    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) · grad into `.grad` of every leaf that
        requires a gradient.

        Args:
            grad: the upstream gradient, same shape as `self`; may be omitted for
                one-element tensors (it is then 1).
            retain_graph: keep the graph so that `backward` can be called on it again.
        """
        # The upstream gradient: 1 for a one-element tensor, else as given, with
        # self's shape and device (refused otherwise), cast to self's dtype.
        # --8<-- [end:backward_def]
        if not self.requires_grad:
            raise RuntimeError("backward() called on a tensor that does not require a gradient "
                               "(no input of its graph had requires_grad=True, or it was built under no_grad()).")
        xp = get_array_module(self.data)
        if grad is None:
            if self.size != 1:
                raise RuntimeError(f"backward() on a non-scalar tensor of shape {self.shape} needs an explicit "
                                   "gradient: call y.backward(grad) with grad of the same shape, or reduce y first "
                                   "(e.g. y.sum()).")
            grad = xp.ones_like(self.data)
        grad = _as_array(grad)
        get_array_module(self.data, grad)  # refuses a NumPy gradient for a CuPy tensor and vice versa
        if tuple(grad.shape) != self.shape:
            raise UserError(f"backward(): gradient of shape {tuple(grad.shape)} for a tensor of shape "
                            f"{self.shape}; pass a gradient of the tensor's shape.")
        grad = grad.astype(self.dtype, copy=False)  # a gradient has its tensor's dtype
        if self._graph_freed:
            raise RuntimeError(_FREED_GRAPH)
        if self.creator is None:
            self.accumulate_grad(grad)
            return

        # --8<-- [start:backward]
        # Gradients of non-leaf tensors, keyed by (producing op, output index): a
        # tensor may be freed before its producer is reached; its gradient may not.
        grads: dict[tuple[int, int], Any] = {(id(self.creator), self._index): grad}
        for op in reversed(_topological_order(self.creator)):
            gys = [grads.pop((id(op), k), None) for k in range(len(op.outputs))]
            if all(gy is None for gy in gys):
                continue  # no path from this op to the output
            gys = [xp.zeros(shape, dtype) if gy is None else gy
                   for gy, (shape, dtype) in zip(gys, op.output_meta)]
            for ref, gy in zip(op.outputs, gys):
                _keep_grad_if_asked(ref(), gy)
            # The op's hand-written backward: with no fast path registered for
            # it, exactly `op.backward(*gys)` (the fast path of its forward, if any).
            gxs = dispatch(op, "backward", op.backward, *gys)
            if not isinstance(gxs, tuple):
                gxs = (gxs,)
            for x, gx in zip(op.inputs, gxs):
                if gx is None or not x.requires_grad:
                    continue
                gx = _checked_gradient(op, x, gx)
                if x.creator is None:       # a leaf: keep its gradient, summed
                    x.accumulate_grad(gx)
                else:                       # an intermediate: sum its gradient
                    key = (id(x.creator), x._index)
                    grads[key] = gx if key not in grads else grads[key] + gx
            if not retain_graph:
                op.release()                # unlinks the graph (saved arrays go later)
        # --8<-- [end:backward]


def _checked_gradient(op: Op, x: Tensor, gx: Any) -> Any:
    """`gx` in x's dtype (PyTorch's rule: a float32 input used in float64 arithmetic gets a
    float32 gradient); refuses a gradient of the wrong shape or one flowing into a freed graph."""
    if tuple(gx.shape) != x.shape:
        raise RuntimeError(f"{type(op).__name__}.backward returned a gradient of shape "
                           f"{tuple(gx.shape)} for an input of shape {x.shape}.")
    if x._graph_freed:
        raise RuntimeError(_FREED_GRAPH)
    return gx.astype(x.dtype, copy=False)


def _keep_grad_if_asked(t: Tensor | None, gy: Any) -> None:
    """Store gy on an intermediate tensor whose gradient the user asked to keep (`retain_grad`)."""
    if t is not None and t._retains_grad:
        t.grad = gy if t.grad is None else t.grad + gy


_FREED_GRAPH = ("backward() through a graph that an earlier backward() has already freed. Pass "
                "retain_graph=True to the earlier backward() to call backward() on the same graph again.")


class Parameter(Tensor):
    """A leaf tensor that an optimizer updates; `requires_grad=True` by default.

    Its gradient is written into one array that the parameter keeps from step to step:
    `zero_grad` sets `.grad` to None, and the next backward copies into the same array instead
    of keeping a fresh one, so that a training step does not map and fault in new memory pages.
    The next backward writes into that array: copy `.grad` to keep one step's gradient.
    Why and how it was measured: docs/performance.md#gradient-arrays-that-live-across-steps.
    """

    def __init__(self, data: Any, requires_grad: bool = True, name: str | None = None) -> None:
        super().__init__(data, requires_grad=requires_grad, name=name)
        self._grad_buffer: Any = None

    def accumulate_grad(self, g: Any) -> None:
        buf = self._grad_buffer
        if self.grad is not None:
            if self.grad is buf:
                buf += g                        # a later use in the same backward
            else:                               # a gradient the user assigned: leave it untouched
                super().accumulate_grad(g)
            return
        if buf is None or type(buf) is not type(g) or buf.shape != g.shape or buf.dtype != g.dtype:
            buf = self._grad_buffer = get_array_module(g).empty_like(g)
        buf[...] = g                            # a copy: `g` may be shared with another input
        self.grad = buf


# --8<-- [start:op]
class Op:
    """A differentiable function on raw arrays: one call, one node of the graph.

    The contract a subclass fulfils:

    * `forward(*xs)`: raw arrays in, an array or a tuple of arrays out. It saves on
      `self` what `backward` will need, and only that: inputs (`MulOp` keeps both
      factors) or, where the derivative is a function of it, the output (`TanhOp`).
    * `backward(*gys)`: one upstream gradient per output, of that output's shape;
      returns the gradient of each input, of that input's shape, or None for an
      input that needs none (integer labels; an input with requires_grad=False).

    Hyperparameters go to `__init__`, tensors to `__call__`, which runs `forward`
    and records the graph.
    """

    inputs: tuple[Tensor, ...] = ()      # the input tensors, once recorded
    outputs: tuple[Any, ...] = ()        # weak references to the output tensors
    output_meta: tuple[tuple[tuple[int, ...], Any], ...] = ()  # their shapes, dtypes
    _called = False
    # --8<-- [end:op]

    # --8<-- [start:op_call]
    def __call__(self, *inputs: Any) -> Any:
        if self._called:
            name = type(self).__name__
            raise UserError(f"this {name} was already called: an op is one node of the "
                            "graph; create a new op for each call (the functions in "
                            "tinyseg.functions do).")
        self._called = True
        tensors = [x if isinstance(x, Tensor) else None for x in inputs]
        arrays = _raw_arrays(inputs)         # Tensors unwrapped, scalars made arrays
        # With no fast path registered for this op: exactly `self.forward(*arrays)`.
        ys = dispatch(self, "forward", self.forward, *arrays)
        single = not isinstance(ys, tuple)
        outputs = [Tensor(y) for y in ((ys,) if single else ys)]
        if _grad_enabled and any(t is not None and t.requires_grad for t in tensors):
            # Record this op as the creator of its outputs: this is the graph.
            self.inputs = tuple(t if t is not None else Tensor(a)
                                for t, a in zip(tensors, arrays))
            self.outputs = tuple(weakref.ref(o) for o in outputs)  # weak: no cycle
            self.output_meta = tuple((o.shape, o.dtype) for o in outputs)
            for k, o in enumerate(outputs):
                # Only floating-point outputs carry a gradient (PyTorch's rule).
                o.creator, o._index = self, k
                o._requires_grad = o.dtype.kind == "f"
        return outputs[0] if single else tuple(outputs)
    # --8<-- [end:op_call]

    def forward(self, *xs: Any) -> Any:
        raise NotImplementedError

    def backward(self, *gys: Any) -> Any:
        raise NotImplementedError

    def release(self) -> None:
        """Drop the references that keep the graph (and saved arrays) alive."""
        for ref in self.outputs:
            o = ref()
            if o is not None:
                o.creator, o._graph_freed = None, True
        self.inputs, self.outputs = (), ()


def _raw_arrays(inputs: tuple[Any, ...]) -> list[Any]:
    """The raw arrays of an op's inputs, all on one device. NumPy scalars and lists become
    arrays of their own dtype; a Python scalar becomes a 0-d array of the dtype NumPy 2 gives
    it beside the other inputs (NEP 50: ``float32`` beside 0.5, ``float64`` for an int array
    beside 0.5). Refuses NumPy and CuPy arrays mixed."""
    arrays = [x.data if isinstance(x, Tensor) else x if is_cupy_array(x) or isinstance(x, np.ndarray)
              else None for x in inputs]
    xp = get_array_module(*[a for a in arrays if a is not None])
    arrays = [xp.asarray(x) if a is None and not _is_python_scalar(x) else a for a, x in zip(arrays, inputs)]
    dtypes = [a.dtype for a in arrays if a is not None]
    return [xp.asarray(x, dtype=np.result_type(*dtypes, x)) if a is None else a
            for a, x in zip(arrays, inputs)]


# --8<-- [start:topological_order]
def _topological_order(root: Op) -> list[Op]:
    """Ops reachable from `root`, each after the ops that produce its inputs."""
    order: list[Op] = []
    visited: set[int] = set()
    stack: list[tuple[Op, bool]] = [(root, False)]
    while stack:
        op, done = stack.pop()
        if done:
            order.append(op)
            continue
        if id(op) in visited:
            continue
        visited.add(id(op))
        stack.append((op, True))
        for x in op.inputs:
            if x.creator is not None and id(x.creator) not in visited:
                stack.append((x.creator, False))
    return order
# --8<-- [end:topological_order]


def as_tensor(x: Any) -> Tensor:
    """Wrap `x` in a Tensor unless it already is one."""
    return x if isinstance(x, Tensor) else Tensor(x)
