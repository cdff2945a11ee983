"""Array operations per training step: a CPU PROXY for GPU kernel launches.

On a GPU a tinyseg step is bound by host time: every CuPy array operation is (at least) one
kernel launch. This module counts the array operations that the same code performs on NumPy
arrays viewed as `Counted`, with the GPU's layout choices (see `counting`); kernel launches of
the fast paths count one each. `benchmarks/launch_count.py` tabulates it for every variant.

ONE operation (see `Counted`): a ufunc call (``add``, ``exp``, ``add.reduce``, ``matmul``,
``add.at``); a NumPy function (``np.where``, ``np.stack``; what it calls inside is not counted
again); ``copy``, ``astype`` (unless it returns the array itself), ``fill``, ``a[...] = b``, a
gather ``a[index_array]``, and the array methods that compute (``sum``, ``argmax``, ...);
``np.zeros/ones/full/arange`` and ``np.*_like`` but ``empty_like`` (``np.eye`` counts 2, as in
CuPy); a reshape, ravel or ascontiguousarray that must copy; ``xp.asarray`` of a host (plain
NumPy) array, a host→device copy; a kernel launch. Free: views (reshape, transpose, basic
slicing, broadcast_to, as_strided) and ``np.empty*``. Device→host reads (``float(a)``,
``a.item()``, ``bool(a)``) are counted apart, as syncs.

See: benchmarks/launch_count.py (what the proxy misses), tests/test_launch_count.py.
"""
from __future__ import annotations

import importlib
import sys
import warnings
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

import tinyseg
import tinyseg.cuda
from tinyseg.cuda.kernels import Kernel, launches
from tinyseg.cuda.registry import fused
from tinyseg.cuda.testing import emulated

PKG, CUDA_PKG = Path(tinyseg.__file__).parent, Path(tinyseg.cuda.__file__).parent
# NumPy functions that launch nothing on CuPy: views, shape queries, allocations. A view function
# that had to copy (np.reshape of a transposed array) is still counted, as "<name>(copy)".
VIEWS = {"reshape", "ravel", "transpose", "swapaxes", "moveaxis", "squeeze", "expand_dims", "broadcast_to",
         "broadcast_arrays", "as_strided", "atleast_1d", "atleast_2d", "atleast_3d", "split", "array_split",
         "flip", "diagonal", "real", "imag"}
FREE = {"shape", "ndim", "size", "result_type", "may_share_memory", "shares_memory", "empty_like",
        "iscomplexobj", "isrealobj", "can_cast"}
# Array methods that compute (not ufunc dispatches, or several of them where CuPy runs one kernel).
METHODS = ("copy", "fill", "flatten", "argmax", "argmin", "dot", "take", "repeat", "nonzero", "cumsum",
           "cumprod", "sum", "prod", "max", "min", "mean", "var", "std", "any", "all", "clip", "round",
           "sort", "argsort", "put", "trace")
SYNCS = ("__float__", "__int__", "__bool__", "__index__", "__complex__", "item", "tolist")
CREATE = {"zeros": 1, "ones": 1, "full": 1, "arange": 1, "eye": 2, "identity": 2, "empty": 0}
CONVERT = ("asarray", "array", "ascontiguousarray", "asanyarray")
_ORIG = {name: getattr(np, name) for name in (*CREATE, *CONVERT)}


class Tally:
    """Operations recorded since `reset`: by name, tinyseg module, module:function, both; syncs."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.names, self.modules, self.sites, self.site_ops, self.syncs = (Counter() for _ in range(5))

    def record(self, name: str, weight: int = 1, syncs: bool = False) -> None:
        module, site = _caller()
        if syncs:
            self.syncs[f"{name} @ {site}"] += weight
            return
        self.names[name] += weight
        self.modules[module] += weight
        self.sites[site] += weight
        self.site_ops[f"{site} {name}"] += weight

    def summary(self) -> dict[str, Any]:
        return {"ops": sum(self.names.values()), "syncs": sum(self.syncs.values()), "by_name": dict(self.names),
                "by_module": dict(self.modules), "by_site": dict(self.sites),
                "by_site_op": dict(self.site_ops), "sync_sites": dict(self.syncs)}


TALLY = Tally()
_depth = 0  # > 0 inside a counted operation: what it does internally is not counted again


def _caller() -> tuple[str, str]:
    """(module, module:function) of the innermost tinyseg frame outside tinyseg/cuda (the launcher)."""
    f = sys._getframe(1)
    while f is not None:
        path = Path(f.f_code.co_filename)
        if path.is_relative_to(PKG) and not path.is_relative_to(CUDA_PKG):
            module = path.relative_to(PKG).as_posix()
            return module, f"{module}:{f.f_code.co_qualname.split('.<locals>')[0]}"
        f = f.f_back
    return "(outside tinyseg)", "(outside tinyseg)"


@contextmanager
def _op(name: str, weight: int = 1) -> Iterator[None]:
    """Count `name` unless nested in another counted operation; count nothing inside it."""
    global _depth
    if _depth == 0 and weight:
        TALLY.record(name, weight)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1


def _plain(x: Any) -> Any:
    """Counted arrays (also inside lists and tuples) as plain ndarray views, so NumPy stops dispatching."""
    if isinstance(x, Counted):
        return x.view(np.ndarray)
    if isinstance(x, (list, tuple)):
        return type(x)(_plain(v) for v in x)
    return x


def _wrap(x: Any) -> Any:
    """Results back as Counted; a NumPy scalar becomes a 0-d array, as CuPy returns (and keeps counting)."""
    if isinstance(x, np.ndarray):
        return x if isinstance(x, Counted) else x.view(Counted)
    if isinstance(x, np.generic):
        return _ORIG["array"](x).view(Counted)
    if isinstance(x, (list, tuple)):
        return type(x)(_wrap(v) for v in x)
    return x


def _copied(result: Any, inputs: Any) -> bool:
    """True when some array of `result` shares no memory with the input arrays (a copy was made)."""
    arrays = [a for a in (result if isinstance(result, (list, tuple)) else [result]) if isinstance(a, np.ndarray)]
    sources = [a for a in (inputs if isinstance(inputs, (list, tuple)) else [inputs]) if isinstance(a, np.ndarray)]
    return any(a.size and not any(np.may_share_memory(a, s) for s in sources) for a in arrays)


def _fancy(key: Any) -> bool:
    """True for an advanced index (integer or boolean arrays, lists): a gather/scatter kernel."""
    keys = key if isinstance(key, tuple) else (key,)
    return any(isinstance(k, list) or (isinstance(k, np.ndarray) and (k.ndim > 0 or k.dtype == bool)) for k in keys)


class Counted(np.ndarray):
    """An ndarray that counts the operations done with it (module docstring: what counts as one)."""

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = _plain(out)
        with _op(ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"):
            result = getattr(ufunc, method)(*_plain(inputs), **kwargs)
        if out is not None and all(o is not None for o in out):
            return out[0] if len(out) == 1 else out  # in place: hand back the caller's own arrays
        return _wrap(result)

    def __array_function__(self, func: Callable, types: Any, args: tuple, kwargs: dict) -> Any:
        name = func.__name__
        plain_args, plain_kwargs = _plain(args), {k: _plain(v) for k, v in kwargs.items()}
        with _op(name, 0 if name in VIEWS or name in FREE else 1):
            result = func(*plain_args, **plain_kwargs)
        if name in VIEWS and _depth == 0 and _copied(result, plain_args[0] if plain_args else ()):
            TALLY.record(f"{name}(copy)")
        return _wrap(result)

    def __getitem__(self, key: Any) -> Any:
        fancy = _fancy(key)
        with _op("getitem[gather]", int(fancy)):
            return _wrap(self.view(np.ndarray)[_plain(key)])

    def __setitem__(self, key: Any, value: Any) -> None:
        with _op("setitem[scatter]" if _fancy(key) else "setitem"):
            self.view(np.ndarray)[_plain(key)] = _plain(value)

    def astype(self, dtype: Any, order: str = "K", casting: str = "unsafe", subok: bool = True,
               copy: bool = True) -> Any:
        if not copy and np.dtype(dtype) == self.dtype:
            return self
        with _op("astype"):
            return _wrap(self.view(np.ndarray).astype(dtype, order, casting, subok, copy))

    def reshape(self, *shape: Any, **kwargs: Any) -> Any:
        return self._view_or_copy("reshape", shape, kwargs)

    def ravel(self, *args: Any, **kwargs: Any) -> Any:
        return self._view_or_copy("ravel", args, kwargs)

    def _view_or_copy(self, name: str, args: tuple, kwargs: dict) -> Any:
        plain = self.view(np.ndarray)
        result = getattr(plain, name)(*args, **kwargs)
        if _depth == 0 and _copied(result, plain):
            TALLY.record(f"{name}(copy)")
        return _wrap(result)


def _method(name: str) -> Callable:
    base = getattr(np.ndarray, name)

    def method(self: Counted, *args: Any, **kwargs: Any) -> Any:
        with _op(name):
            return _wrap(base(self.view(np.ndarray), *_plain(args), **{k: _plain(v) for k, v in kwargs.items()}))
    return method


def _sync(name: str) -> Callable:
    base = getattr(np.ndarray, name)

    def method(self: Counted, *args: Any) -> Any:
        if _depth == 0:
            TALLY.record(name.strip("_"), syncs=True)
        return base(self.view(np.ndarray), *args)
    return method


for _name in METHODS:
    setattr(Counted, _name, _method(_name))
for _name in SYNCS:
    setattr(Counted, _name, _sync(_name))


def _creator(name: str) -> Callable:
    def create(*args: Any, **kwargs: Any) -> Any:
        if _depth:
            return _ORIG[name](*args, **kwargs)
        with _op(name, CREATE[name]):
            return _ORIG[name](*args, **kwargs).view(Counted)
    return create


def _converter(name: str) -> Callable:
    def convert(a: Any, *args: Any, **kwargs: Any) -> Any:
        if _depth or not isinstance(a, np.ndarray):  # Python numbers and lists: host data
            return _ORIG[name](a, *args, **kwargs)
        plain = a.view(np.ndarray) if isinstance(a, Counted) else a
        result = _ORIG[name](plain, *args, **kwargs)
        if not isinstance(a, Counted):
            TALLY.record(f"{name}(host→device)")
        elif result is plain:
            return a
        elif _copied(result, plain) or result.dtype != plain.dtype:
            TALLY.record(f"{name}(copy)")
        return result.view(Counted)
    return convert


def _adam_elementwise(g: Any, b1: float, omb1: float, b2: float, omb2: float, step_size: float,
                      inv_sqrt_bc2: float, eps: float, p: Any, m: Any, v: Any) -> None:
    """Stand-in for the ``adam`` fast path's CuPy ElementwiseKernel: its formula, one launch."""
    with _op("elementwise:tinyseg_fused_adam"):
        g, p, m, v = _plain((g, p, m, v))
        m *= b1
        m += omb1 * g
        v *= b2
        v += omb2 * g * g
        p -= step_size * m / (np.sqrt(v) * inv_sqrt_bc2 + eps)


@contextmanager
def counting(run_kernels: bool = True) -> Iterator[Tally]:
    """Patch NumPy's creation functions and the kernel launcher so both count; reset the tally.

    tinyseg picks a layout by device where it asks `is_cupy_array`: the CRF builds its dense
    kernels image by image on the CPU and for the batch at once on the GPU; Adam shares its blocks
    out among threads on the CPU only; the ``adam`` fast path runs on CuPy arrays only. Here those modules see Counted arrays as CuPy arrays, so the count
    follows the GPU's branch. ``run_kernels=False`` counts each kernel launch without running it
    (the command line's default; ``--emulate-kernels`` runs them).
    """
    crf_chunks, crf_kernels, optim, cuda_optim = (importlib.import_module(m) for m in (
        "tinyseg.functions.crf_chunks", "tinyseg.functions.crf_kernels", "tinyseg.optim", "tinyseg.cuda.optim"))
    launch, is_cupy = Kernel.__call__, crf_chunks.is_cupy_array

    def counted_launch(self: Any, *args: Any, **kwargs: Any) -> None:
        with _op(f"cuda:{self.name}"):
            if run_kernels:
                launch(self, *args, **kwargs)

    def on_device(x: Any) -> bool:
        return isinstance(x, Counted) or is_cupy(x)

    patches = [(np, n, _creator(n)) for n in CREATE] + [(np, n, _converter(n)) for n in CONVERT] + [
        (Kernel, "__call__", counted_launch), (cuda_optim, "_elementwise_adam", lambda: _adam_elementwise),
        (crf_chunks, "is_cupy_array", on_device), (crf_kernels, "is_cupy_array", on_device),
        (optim, "is_cupy_array", on_device), (cuda_optim, "is_cupy_array", on_device)]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    try:
        for owner, name, fn in patches:
            setattr(owner, name, fn)
        TALLY.reset()
        yield TALLY
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)


MODES = ("plain", "default", "fused")
"""plain: every fast path off; default: the verified ones (as a GPU runs without TINYSEG_FUSED);
fused: every fast path on."""


def count_case(variant: str, graph: str, images: np.ndarray, labels: np.ndarray, mode: str,
               run_kernels: bool = False) -> dict[str, Any]:
    """Operations of one training step (after a warm-up step) and one inference batch, in `mode`.

    Args:
        variant: a model variant.
        graph: the CRF graph ("-" without a CRF).
        images: (N, 1, 40, 40) normalised ROIs.
        labels: (N, 40, 40) int64.
        mode: one of `MODES`.
        run_kernels: run the kernels through the emulator; False counts them only, their outputs
            stay uninitialised (NumPy's warnings about them are silenced). No count changes while
            syncs are 0: without a device→host read, no value can steer the host code.
    Returns:
        ``{"step": summary, "infer": summary}`` (`Tally.summary`).
    """
    from tinyseg import Tensor, no_grad
    from tinyseg.adversarial import loss_and_backward
    from tinyseg.models import build_model
    from tinyseg.optim import Adam

    model = build_model(variant, dtype=np.float32, **({"crf_graph": graph} if variant.endswith("_crf") else {}))
    x, y = images.astype(np.float32).view(Counted), labels.view(Counted)
    switch = {"plain": False, "default": None, "fused": True}[mode]
    quiet = np.errstate(all="ignore") if not run_kernels else np.errstate()
    with emulated(), fused(switch), quiet, counting(run_kernels) as tally:
        for p in model.parameters():
            p.data = p.data.view(Counted)  # the parameters live "on the device"
        opt = Adam(model.parameters(), lr=3e-3)  # its moments and scratch come from patched zeros_like/empty

        def step() -> None:
            model.zero_grad()
            loss_and_backward(model, x, y, adversarial=model.adversarial, eps=0.1, lam=0.5, sync=False)
            opt.step()

        def infer() -> None:
            model.eval()
            with no_grad():
                model(Tensor(x))
            model.train()

        step()  # warm-up: the emulator compiles its kernels, Adam's moments exist
        return {"step": _measure(tally, step, run_kernels), "infer": _measure(tally, infer, run_kernels)}


def _measure(tally: Tally, fn: Callable[[], None], check: bool) -> dict[str, Any]:
    """The tally of one call of `fn`; `check`: its kernel launches agree with `launches`."""
    tally.reset()
    before = sum(launches.values())
    fn()
    launched = sum(launches.values()) - before
    counted = sum(n for name, n in tally.names.items() if name.startswith("cuda:"))
    assert counted == launched or not check, f"{counted} launches counted, launches says {launched}"
    if not check and tally.syncs:
        warnings.warn(f"device→host reads {dict(tally.syncs)}: counts may depend on the values the skipped kernels "
                      "did not compute; rerun with --emulate-kernels", stacklevel=2)
    return tally.summary()
