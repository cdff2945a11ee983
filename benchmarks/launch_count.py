"""Array operations per training step and per inference batch: a CPU PROXY for GPU kernel launches.

On a GPU a tinyseg step is bound by host time: every CuPy array operation is (at least) one
kernel launch, 5-10 µs of host time each. This script counts the array operations that the same
code performs on NumPy, for every variant (CRF variants once per graph), batch 29, float32: one
training step after a warm-up step (forward, backward, the adversarial branch, Adam) and one
eval-mode inference batch, in two modes:

* plain: ``tinyseg.cuda.fused(False)``, the code every op runs without its fast paths;
* fused: ``tinyseg.cuda.emulated()``, the hand-written kernels are taken where they apply, each
  launch one operation. By default a launch is counted and not executed: the step reads nothing
  back from the device (syncs = 0, checked), so no value can change which operations run.
  ``--emulate-kernels`` runs them through the g++ emulator (slow; same counts).

ONE operation (see `Counted`): a ufunc call (``add``, ``exp``, ``add.reduce``, ``matmul``,
``add.at``); a NumPy function (``np.where``, ``np.stack``; what it calls inside is not counted
again); ``copy``, ``astype`` (unless it returns the array itself), ``fill``, ``a[...] = b``, a
gather ``a[index_array]``, and the array methods that compute (``sum``, ``argmax``, ...);
``np.zeros/ones/full/arange`` and ``np.*_like`` but ``empty_like`` (``np.eye`` counts 2, as in
CuPy); a reshape, ravel or ascontiguousarray that must copy; ``xp.asarray`` of a host (plain
NumPy) array, a host→device copy; a fused launch. Free: views (reshape, transpose, basic
slicing, broadcast_to, as_strided) and ``np.empty*``. Device→host reads (``float(a)``,
``a.item()``, ``bool(a)``) are counted apart, as syncs.

Arrays are "on the device" when they are `Counted`: the inputs, the parameters, and what NumPy's
creation functions return while `counting` patches them (tinyseg calls ``xp.zeros`` with
``xp = numpy``). Python numbers and lists count nothing, nor does arithmetic on plain NumPy
arrays (Adam's pointer table is built on the host). Where tinyseg picks a layout by device (the
CRF's per-image loop on the CPU; Adam's one ElementwiseKernel per parameter with fast paths
off), the count follows the GPU's branch (see `counting`).

What the proxy misses: CuPy calls that launch more than one kernel (``var``/``std``; boolean
masks and ``nonzero`` scan and sync; ``take_along_axis``, ``repeat``, ``pad``, ``concatenate``
of unlike arrays may launch several; CUB-backed reductions two), cuBLAS (a batched ``matmul``
may be several kernels), memory-pool calls, and CuPy's own host work; it cannot tell a device
``xp.asarray(3.0)`` from a host one. Confirm real launch counts on a GPU (``cupyx.profiler``,
``nsys profile --trace=cuda``); use these numbers to rank what to fuse next.

    python benchmarks/launch_count.py                             # all variants, both graphs
    python benchmarks/launch_count.py --variants fcn --batch 2 --emulate-kernels
    python benchmarks/launch_count.py --json benchmarks/results/launch_count.json \
        --markdown benchmarks/results/launch_count.md

See: benchmarks/train_step.py (the same step, timed), tests/test_launch_count.py.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import warnings
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import cases, has_crf, make_batch  # noqa: E402

import tinyseg  # noqa: E402
import tinyseg.cuda  # noqa: E402
from tinyseg.models import VARIANTS  # noqa: E402

PKG, CUDA_PKG = Path(tinyseg.__file__).parent, Path(tinyseg.cuda.__file__).parent
TOP = 15
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
    """Stand-in for `tinyseg.optim._fused_adam`'s CuPy ElementwiseKernel: its formula, one launch."""
    with _op("elementwise:tinyseg_fused_adam"):
        g, p, m, v = _plain((g, p, m, v))
        m *= b1
        m += omb1 * g
        v *= b2
        v += omb2 * g * g
        p -= step_size * m / (np.sqrt(v) * inv_sqrt_bc2 + eps)


@contextmanager
def counting(run_kernels: bool = True) -> Iterator[Tally]:
    """Patch NumPy's creation functions and the fused-kernel launcher so both count; reset the tally.

    tinyseg picks a layout by device where it asks `is_cupy_array`: the CRF loops over images on
    the CPU and does the batch at once on the GPU; Adam's plain path runs one CuPy ElementwiseKernel
    per parameter on the GPU. Here those modules see Counted arrays as CuPy arrays, so the count
    follows the GPU's branch (optim only while fast paths are off: its fast path needs device
    pointers, and the emulator takes host ones). ``run_kernels=False`` counts each fused launch
    without running it (the command line's default; ``--emulate-kernels`` runs them).
    """
    optim, crf, crf_kernels = (importlib.import_module(f"tinyseg.{m}")  # `tinyseg.functions.crf` is also a function
                               for m in ("optim", "functions.crf", "functions.crf_kernels"))
    launch, is_cupy = tinyseg.cuda.Kernel.__call__, crf.is_cupy_array

    def counted_launch(self: Any, *args: Any, **kwargs: Any) -> None:
        with _op(f"cuda:{self.name}"):
            if run_kernels:
                launch(self, *args, **kwargs)

    patches = [(np, n, _creator(n)) for n in CREATE] + [(np, n, _converter(n)) for n in CONVERT] + [
        (tinyseg.cuda.Kernel, "__call__", counted_launch), (optim, "_fused_adam", lambda: _adam_elementwise),
        (crf, "is_cupy_array", lambda x: isinstance(x, Counted) or is_cupy(x)),
        (crf_kernels, "is_cupy_array", lambda x: isinstance(x, Counted) or is_cupy(x)),
        (optim, "is_cupy_array", lambda x: (isinstance(x, Counted) and not tinyseg.cuda.fused_enabled()) or is_cupy(x))]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    try:
        for owner, name, fn in patches:
            setattr(owner, name, fn)
        TALLY.reset()
        yield TALLY
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)


def count_case(variant: str, graph: str, batch: int, mode: str, run_kernels: bool = False) -> dict[str, Any]:
    """Operations of one training step (after a warm-up step) and one inference batch, in `mode`.

    ``run_kernels=False``: fused kernels are counted, not run; their outputs stay uninitialised
    (NumPy's warnings about them are silenced). No count changes while syncs are 0: without a
    device→host read, no value can steer the host code. `_measure` warns otherwise.
    """
    from tinyseg import Tensor, no_grad
    from tinyseg.adversarial import loss_and_backward
    from tinyseg.models import build_model
    from tinyseg.optim import Adam

    model = build_model(variant, dtype=np.float32, **({"crf_graph": graph} if has_crf(variant) else {}))
    x64, y64 = make_batch(batch)
    x, y = x64.astype(np.float32).view(Counted), y64.view(Counted)
    switch = tinyseg.cuda.fused(False) if mode == "plain" else tinyseg.cuda.emulated()
    quiet = np.errstate(all="ignore") if not run_kernels else np.errstate()
    with switch, quiet, counting(run_kernels) as tally:
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
    """The tally of one call of `fn`; `check`: its kernel launches agree with `tinyseg.cuda.launches`."""
    tally.reset()
    before = sum(tinyseg.cuda.launches.values())
    fn()
    launched = sum(tinyseg.cuda.launches.values()) - before
    counted = sum(n for name, n in tally.names.items() if name.startswith("cuda:"))
    assert counted == launched or not check, f"{counted} launches counted, tinyseg.cuda.launches says {launched}"
    if not check and tally.syncs:
        warnings.warn(f"device→host reads {dict(tally.syncs)}: counts may depend on the values the skipped kernels "
                      "did not compute; rerun with --emulate-kernels", stacklevel=2)
    return tally.summary()


def _top(counts: dict[str, int], n: int = TOP) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:n])


def table(rows: list[dict[str, Any]]) -> str:
    head = ["variant", "graph", "plain ops/step", "fused ops/step", "plain ops/infer", "fused ops/infer",
            "syncs/step (plain, fused)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        p, f = r.get("plain", {}), r.get("fused", {})
        cell = lambda m, w: str(m[w]["ops"]) if m else "—"  # noqa: E731
        syncs = ", ".join(str(m["step"]["syncs"]) if m else "—" for m in (p, f))
        lines.append(f"| {r['variant']} | {r['graph']} | {cell(p, 'step')} | {cell(f, 'step')} | "
                     f"{cell(p, 'infer')} | {cell(f, 'infer')} | {syncs} |")
    return "\n".join(lines)


def details(rows: list[dict[str, Any]], mode: str = "fused") -> str:
    """Top operations by name, module and module:function, per case and phase, in `mode`."""
    out = [f"## Top operations left in {mode} mode (top {TOP})"]
    for r in rows:
        for what in ("step", "infer"):
            s = r[mode][what]
            out += [f"\n### {r['variant']} ({r['graph']}), {what}: {s['ops']} ops, {s['syncs']} syncs",
                    f"- by name: {_top(s['by_name'])}", f"- by module: {_top(s['by_module'])}",
                    f"- by function and operation: {_top(s['by_site_op'])}"]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--graphs", nargs="+", default=["dense", "grid4"], choices=["dense", "grid4"])
    ap.add_argument("--modes", nargs="+", default=["plain", "fused"], choices=["plain", "fused"])
    ap.add_argument("--batch", type=int, default=29)
    ap.add_argument("--emulate-kernels", action="store_true",
                    help="run the fused kernels through the g++ emulator instead of only counting their launches "
                         "(same counts while syncs are 0; slow: one thread per CUDA thread, a minute per Adam launch)")
    ap.add_argument("--json", type=Path, help="write every count and breakdown here")
    ap.add_argument("--markdown", type=Path, help="write the table and the fused-mode top operations here")
    a = ap.parse_args(argv)
    rows = []
    for variant, graph in cases(a.variants, a.graphs):
        row: dict[str, Any] = {"variant": variant, "graph": graph, "batch": a.batch, "kernels_run": a.emulate_kernels}
        for mode in a.modes:
            t0 = time.perf_counter()
            row[mode] = count_case(variant, graph, a.batch, mode, a.emulate_kernels)
            print(f"  {variant:<18} {graph:<6} {mode:<6} step {row[mode]['step']['ops']:6d} ops   "
                  f"infer {row[mode]['infer']['ops']:6d} ops   ({time.perf_counter() - t0:.0f} s)", flush=True)
        rows.append(row)
    kernels = "run through the g++ emulator" if a.emulate_kernels else "counted, not run"
    md = (f"Array operations per training step / inference batch (batch {a.batch}, float32, 40×40; fused "
          f"kernels {kernels}): a CPU proxy for GPU kernel launches, see benchmarks/launch_count.py.\n\n" + table(rows))
    print(md)
    if a.json:
        a.json.write_text(json.dumps({"batch": a.batch, "numpy": np.__version__, "rows": rows}, indent=1))
    if a.markdown:
        a.markdown.write_text(md + "\n\n" + (details(rows) if "fused" in a.modes else "") + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
