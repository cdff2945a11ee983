"""What tinyseg's thread control costs: threadpoolctl calls and the worker pool, per call and per step.

`tinyseg.threads.own_threads()` limits every BLAS pool to one thread for a region and restores it
afterwards; the dense CRF enters one region per pass over its kernels (forward, backward). This
times, in one process, median of ``--repeats`` rounds of ``--calls`` calls each:

* making a `threadpoolctl.ThreadpoolController` (what tinyseg does once per process),
* ``controller.limit(limits=1, user_api="blas")`` and its restore, with the controller made once,
* ``own_threads()`` entered and left (the limit, plus looking up the cached worker pool),
* a no-op submitted to the pool and waited for,

and counts the regions a training step enters per variant, to give the cost per step.

    python benchmarks/thread_overhead.py
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import make_batch  # noqa: E402


def per_call_us(fn: Callable[[], object], calls: int, repeats: int) -> float:
    rounds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        rounds.append((time.perf_counter() - t0) / calls * 1e6)
    return statistics.median(rounds)


def regions_per_step(variant: str) -> int:
    """How many own_threads() regions one training step of `variant` (dense CRF) enters."""
    import numpy as np

    from tinyseg import threads
    from tinyseg.adversarial import loss_and_backward
    from tinyseg.functions import crf_chunks
    from tinyseg.models import build_model

    count = [0]
    original = threads.own_threads

    def counting():  # noqa: ANN202
        count[0] += 1
        return original()

    crf_chunks.own_threads = counting
    try:
        model = build_model(variant, dtype=np.float32, **({"crf_graph": "dense"} if variant.endswith("crf") else {}))
        x, y = make_batch(29)
        loss_and_backward(model, x.astype(np.float32), y, adversarial=model.adversarial, sync=False)
    finally:
        crf_chunks.own_threads = original
    return count[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    import scipy.linalg.blas  # noqa: F401  (both BLAS libraries loaded, as in a CRF step)
    from threadpoolctl import ThreadpoolController

    from tinyseg import threads

    controller = threads.blas_controller()
    workers_cm = threads.own_threads()
    with workers_cm as workers:
        pass

    def region() -> None:
        with threads.own_threads():
            pass

    rows = [
        ("ThreadpoolController() (made once per process)", per_call_us(ThreadpoolController, 20, a.repeats)),
        ("limit to 1 thread + restore, controller reused",
         per_call_us(lambda: controller.limit(limits=1, user_api="blas").restore_original_limits(), a.calls, a.repeats)),
        ("own_threads() entered and left", per_call_us(region, a.calls, a.repeats)),
        ("a no-op through the worker pool", per_call_us(lambda: workers.submit(int).result(), a.calls, a.repeats)),
    ]
    print(f"BLAS libraries seen: {len(controller.lib_controllers)}")
    print("| what | µs per call |\n|---|---|")
    for name, us in rows:
        print(f"| {name} | {us:.1f} |")
    region_us = rows[2][1]
    print("\n| variant (dense CRF) | regions per training step | cost per step (µs) |\n|---|---|---|")
    for v in ("fcn_crf", "adv_fcn_crf", "multi_fcn_crf", "adv_multi_fcn_crf"):
        n = regions_per_step(v)
        print(f"| {v} | {n} | {n * region_us:.0f} |")


if __name__ == "__main__":
    main()
