"""Minor page faults and system time per training step (tinyseg, CPU).

A step that allocates fresh large arrays and frees them again makes the C allocator hand the
memory back to the kernel and map it anew next step: every page is then faulted in again, which
shows as minor page faults and system time (`getrusage`). This script runs 3 warm-up steps and
10 timed steps of each variant in a fresh process (the same step as `train_step.py`: batch 29,
float32, `loss_and_backward` + Adam) and prints ms, minor faults and system ms per step.

    python benchmarks/page_faults.py                                  # fcn, multi_fcn, fcn_crf dense
    python benchmarks/page_faults.py --variants multi_fcn_crf:grid4 --threads 2
    PYTHONPATH=/path/to/other/checkout python benchmarks/page_faults.py   # another tree, same script

See: benchmarks/RESULTS.md ("Training step on the CPU at 1 and 2 threads").
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import child_env, has_crf, make_batch  # noqa: E402


def child(variant: str, graph: str, steps: int) -> dict[str, float]:
    import numpy as np

    import tinyseg
    from tinyseg.adversarial import loss_and_backward
    from tinyseg.models import build_model
    from tinyseg.optim import Adam

    kw = {"crf_graph": graph} if has_crf(variant) else {}
    model = build_model(variant, dtype=np.float32, **kw)
    x64, y = make_batch(29)
    x = x64.astype(np.float32)
    opt = Adam(model.parameters(), lr=3e-3)

    def step() -> None:
        model.zero_grad()
        loss_and_backward(model, x, y, adversarial=model.adversarial, eps=0.1, lam=0.5, sync=False)
        opt.step()

    for _ in range(3):
        step()
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(steps):
        step()
    r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    return {"ms_per_step": 1e3 * (t1 - t0) / steps, "minor_faults_per_step": (r1.ru_minflt - r0.ru_minflt) / steps,
            "system_ms_per_step": 1e3 * (r1.ru_stime - r0.ru_stime) / steps, "tinyseg": tinyseg.__file__}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", nargs="+", default=["fcn", "multi_fcn", "fcn_crf:dense"],
                    help="variant or variant:graph")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        variant, graph = (a.child.split(":") + ["dense"])[:2]
        print(json.dumps(child(variant, graph, a.steps)))
        return
    print("| variant | ms/step | minor faults/step | system ms/step |\n|---|---|---|---|")
    for spec in a.variants:
        out = subprocess.run([sys.executable, __file__, "--child", spec, "--steps", str(a.steps)],
                             env=child_env(a.threads, False), capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {spec} | {r['ms_per_step']:.1f} | {r['minor_faults_per_step']:.0f} | {r['system_ms_per_step']:.1f} |",
              flush=True)
    print(f"(threads {a.threads}, {a.steps} steps after 3 warm-up, tinyseg from {os.path.dirname(r['tinyseg'])})")


if __name__ == "__main__":
    main()
