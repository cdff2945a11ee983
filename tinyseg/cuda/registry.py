"""The registry of GPU fast paths: which override runs instead of which plain code, and when.

A fast path is registered for a target — an `Op` subclass, an optimizer class, or the name of a
helper (``"col2im"``, ``"adversarial_input"``) — with the methods it overrides:

    register(MaxPool2dOp, name="maxpool2x2", forward=pool_forward, backward=pool_backward)
    register("col2im", name="col2im", call=col2im_gather)

An override of a method of an object is called as ``fn(obj, record, *args)``; an override of a
helper as ``fn(*args)``. It returns the result, or ``NotImplemented`` to decline: then the next
override registered for the same method is asked, and finally the plain code runs.

``record`` is the one place where a fast path keeps what it needs between calls (the argmax of a
pooling forward for its backward, Adam's pointer table across steps): a `Record` the registry
attaches to the object as ``obj.fast_path_record``. The op's own attributes stay those of the plain
code.

The fast path that took an op's forward also takes its backward: the registry notes the path in
the record (``record.forward_path``) and sends the backward there, whatever the switches say by
then and on the compiler the forward ran on, because the plain backward would not find what the
plain forward saves. After a plain forward only the fast paths that override a backward alone
(their forward is the plain one) may take the backward.

An override runs only when all of these hold:

* its fast path is switched on: ``TINYSEG_FAST_PATHS=1`` turns on every one,
  ``TINYSEG_FAST_PATHS=0`` none, and unset (or empty) only those in `VERIFIED` (`fast_paths`
  switches in code); any other value is refused when this package is imported. The old name
  ``TINYSEG_FUSED`` is still read, with a `DeprecationWarning`, when the new one is unset;
* the first array argument lives where kernels run (a CuPy array, or a NumPy array while a host
  compiler is installed, see `tinyseg.cuda.testing.emulated`);
* its dtype is one of ``dtypes``.

`install` plugs `overrides` into `tinyseg._hooks`, the one dispatch point of the teaching code.

See: tinyseg/_hooks.py, tests/cuda/test_cuda_registry.py.
"""
from __future__ import annotations

import os
import warnings
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import numpy as np

from .. import _hooks
from ..errors import OptionError
from . import kernels
from .kernels import compiler_for

VERIFIED: dict[str, dict[str, str]] = {
    "adam": {
        "what": "tests/cuda/test_gpu_parity.py::test_fused_adam_on_cupy_matches_the_numpy_update, after the fix "
                "that passes 1 - beta in double (the first run on this GPU had caught the float32 error)",
        "command": "pytest tests/cuda/test_gpu_parity.py tests/test_optim.py  (79 passed)",
        "gpu": "NVIDIA H100 80GB HBM3, driver 580.159.04, CUDA runtime 13.2, CuPy 14.2.0",
        "date": "2026-11-26",
        "record": "benchmarks/RESULTS.md, Training step (GPU), second run",
    },
}
"""Fast paths that passed their tests on real hardware: name -> the record of that run."""
_MODES = {"": "verified", "0": "none", "1": "all"}


def _mode_from_environment() -> str:
    name, value = "TINYSEG_FAST_PATHS", os.environ.get("TINYSEG_FAST_PATHS", "")
    if not value.strip() and os.environ.get("TINYSEG_FUSED", "").strip():
        name, value = "TINYSEG_FUSED", os.environ["TINYSEG_FUSED"]
        warnings.warn("TINYSEG_FUSED is deprecated and will be removed in the next release: set "
                      f"TINYSEG_FAST_PATHS={value.strip()} instead.", DeprecationWarning, stacklevel=2)
    if value.strip() not in _MODES:
        raise OptionError(f"{name}={value!r} is not understood: use 1 (every fast path), 0 (none), "
                          "or leave it unset (the fast paths verified on a GPU).")
    return _MODES[value.strip()]


_state = {"mode": _mode_from_environment()}


class Record(SimpleNamespace):
    """What the fast paths of one object keep between calls (``obj.fast_path_record``)."""


@dataclass(frozen=True)
class FastPath:
    """One registered fast path: its name (the key of `VERIFIED`), where it applies, its overrides."""

    name: str
    target: Any
    dtypes: tuple[np.dtype, ...]
    methods: dict[str, Callable[..., Any]]


_table: dict[tuple[Any, str], list[FastPath]] = {}  # (class or None, method) -> fast paths, in order
FAST_PATHS: dict[str, FastPath] = {}
"""Every registered fast path by name."""

taken: Counter[str] = Counter()
"""How many calls each fast path has taken (did not decline), by name: which paths a test exercised."""


def register(target: type | str, dtypes: tuple = (np.float32, np.float64), *,
             name: str, **methods: Callable[..., Any]) -> FastPath:
    """Install overrides of `target`'s methods (or of the helper named `target`).

    Args:
        target: an `Op` subclass or optimizer class (methods ``forward``, ``backward``, ``update``),
            or a helper's name (method ``call``).
        dtypes: the dtypes of the first array argument it takes.
        name: the fast path's name, as `VERIFIED` and `enabled` know it.
        **methods: the overrides, by method name.
    Returns:
        The registered `FastPath`.
    """
    if name in FAST_PATHS:
        raise ValueError(f"a fast path named {name!r} is already registered")
    owner, renamed = (None, {target: methods["call"]}) if isinstance(target, str) else (target, methods)
    if "forward" in renamed and "backward" not in renamed:
        raise ValueError(f"fast path {name!r} overrides a forward without its backward: the plain "
                         "backward cannot use the state of a fast forward")
    path = FastPath(name, target, tuple(np.dtype(d) for d in dtypes), renamed)
    for method in renamed:
        _table.setdefault((owner, method), []).append(path)
    FAST_PATHS[name] = path
    return path


def enabled(name: str) -> bool:
    """True when fast path `name` may run (``TINYSEG_FAST_PATHS``, `fast_paths`, `VERIFIED`)."""
    mode = _state["mode"]
    return mode == "all" or (mode == "verified" and name in VERIFIED)


@contextmanager
def fast_paths(on: bool | None) -> Iterator[None]:
    """Inside the block: every fast path on (True), none (False), or only the verified ones (None)."""
    old = _state["mode"]
    _state["mode"] = "verified" if on is None else "all" if on else "none"
    try:
        yield
    finally:
        _state["mode"] = old


def fused(on: bool | None) -> Any:
    """The old name of `fast_paths` (deprecated; removed in the next release)."""
    warnings.warn("tinyseg.cuda.fused is deprecated: use tinyseg.cuda.fast_paths.", DeprecationWarning,
                  stacklevel=2)
    return fast_paths(on)


def _first_array(args: tuple) -> Any:
    for a in args:
        while isinstance(a, (list, tuple)) and a:
            a = a[0]
        if hasattr(a, "dtype") and hasattr(a, "shape"):
            return a
    return None


def overrides(target: Any, method: str, args: tuple) -> Any:
    """The `tinyseg._hooks` overrider: run the first applicable override, or return NotImplemented."""
    helper = isinstance(target, type(None))
    if method == "backward":
        record = target.__dict__.get("fast_path_record")
        forward_path = None if record is None else record.__dict__.get("forward_path")
        if forward_path is not None:
            return _backward_of(forward_path, target, record, args)
    paths = _table.get((None, method) if helper else (type(target), method))
    if not paths or _state["mode"] == "none":
        return NotImplemented
    like = _first_array(args)
    if like is None or compiler_for(like) is None:
        return NotImplemented
    for path in paths:
        if not enabled(path.name) or like.dtype not in path.dtypes:
            continue
        if method == "backward" and "forward" in path.methods:
            continue  # its backward needs its own forward's state; the plain forward ran
        fn = path.methods[method]
        if helper:
            out = fn(*args)
        else:
            record = target.__dict__.get("fast_path_record")
            if record is None:
                record = target.fast_path_record = Record()
            out = fn(target, record, *args)
        if out is not NotImplemented:
            taken[path.name] += 1
            if method == "forward":
                record.forward_path, record.host = path, kernels._host
            return out
    return NotImplemented


def _backward_of(path: FastPath, op: Any, record: Record, gys: tuple) -> Any:
    """The backward of `path`, whose forward ran for `op`, on the compiler that forward used."""
    old = kernels.use_host_compiler(record.host)
    try:
        out = path.methods["backward"](op, record, *gys)
    finally:
        kernels.use_host_compiler(old)
    if out is NotImplemented:
        raise RuntimeError(f"fast path {path.name!r} ran the forward of {type(op).__name__} but declined "
                           "its backward; the plain backward cannot run without the plain forward's state.")
    taken[path.name] += 1
    return out


def install() -> None:
    """Make `overrides` the overrider of `tinyseg._hooks.dispatch`."""
    _hooks.install(overrides)
