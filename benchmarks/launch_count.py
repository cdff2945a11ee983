"""Array operations per training step and per inference batch: a CPU PROXY for GPU kernel launches.

On a GPU a tinyseg step is bound by host time: every CuPy array operation is (at least) one
kernel launch, 5-10 µs of host time each. This script counts the array operations that the same
code performs on NumPy, for every variant (CRF variants once per graph), batch 29, float32: one
training step after a warm-up step (forward, backward, the adversarial branch, Adam) and one
eval-mode inference batch, in three modes:

* plain: ``tinyseg.cuda.fused(False)``, the code every op runs without its fast paths;
* default: only the fast paths in ``tinyseg.cuda.VERIFIED`` (what a GPU runs without
  ``TINYSEG_FUSED``);
* fused: ``tinyseg.cuda.fused(True)``, the hand-written kernels are taken where they apply, each
  launch one operation. By default a launch is counted and not executed: the step reads nothing
  back from the device (syncs = 0, checked), so no value can change which operations run.
  ``--emulate-kernels`` runs them through the g++ emulator (slow; same counts).

The counter itself is `benchmarks/op_count.py`, which says what counts as one operation.

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
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import cases, make_batch  # noqa: E402

from op_count import MODES, count_case  # noqa: E402
from tinyseg.models import VARIANTS  # noqa: E402

TOP = 15


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
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
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
            row[mode] = count_case(variant, graph, *make_batch(a.batch), mode, a.emulate_kernels)
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
