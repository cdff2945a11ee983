"""Two facts behind how tinyseg shares a CPU's cores, measured on this machine (docs/performance.md).

1. The interpreter lock and ``symv``: two Python threads, each multiplying its own 1600×1600
   float32 kernel (a 40×40 image's) by a vector many times. Through SciPy's Python wrapper
   (``scipy.linalg.blas.ssymv``, which holds the GIL) and through tinyseg's
   `symmetric_matvec` (the same BLAS routine through ``scipy.linalg.cython_blas`` and ctypes,
   which releases it): time of the two threads' work one after the other ÷ at the same time.
2. Spinning BLAS workers: two tinyseg worker threads run NumPy loops (exp over 2 M floats),
   right after a threaded BLAS product (400×400 sgemm), with and without a threadpoolctl limit
   to one thread around them, and with no product before.

Run with nothing set (the BLAS pools at their default size): ``python benchmarks/cpu_threads_micro.py``.
Prints medians in milliseconds; results in benchmarks/RESULTS.md ("Threads on the CPU: two micro-benchmarks").
"""
from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np


def _median_ms(fn: Callable[[], object], repeats: int, before: Callable[[], object] | None = None) -> float:
    fn()
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def symv_gil(repeats: int) -> dict[str, float]:
    from scipy.linalg.blas import get_blas_funcs
    from threadpoolctl import threadpool_limits

    from tinyseg.functions.crf_dense import symmetric_matvec

    rng = np.random.default_rng(0)
    P, calls = 1600, 100
    images = rng.standard_normal((2, P)).astype(np.float32)
    Ks = [np.exp(-0.5 * np.subtract.outer(v, v) ** 2)[None] for v in images]  # (1, P, P) each
    x = rng.standard_normal((1, P)).astype(np.float32)
    wrapper = get_blas_funcs("symv", (Ks[0],))
    ways = {"SciPy's wrapper": lambda K: [wrapper(1.0, K[0].T, x[0], lower=1) for _ in range(calls)],
            "tinyseg's symmetric_matvec": lambda K: [symmetric_matvec(K, x) for _ in range(calls)]}
    pool = ThreadPoolExecutor(2)
    out = {}
    with threadpool_limits(1, user_api="blas"):
        for name, work in ways.items():
            one_after_other = _median_ms(lambda w=work: (w(Ks[0]), w(Ks[1])), repeats)
            together = _median_ms(lambda w=work: [f.result() for f in (pool.submit(w, Ks[0]), pool.submit(w, Ks[1]))],
                                  repeats)
            out[name] = one_after_other / together
    pool.shutdown()
    return out


def spinning(repeats: int) -> dict[str, float]:
    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController()
    rng = np.random.default_rng(0)
    A = rng.random((400, 400), dtype=np.float32)
    arrays = [rng.random(2_000_000, dtype=np.float32) for _ in range(2)]
    pool = ThreadPoolExecutor(2)

    def loops(a: np.ndarray) -> None:
        for _ in range(5):
            np.exp(a, out=a)
            a *= 0.0

    def ours() -> None:
        for f in [pool.submit(loops, a) for a in arrays]:
            f.result()

    def limited() -> None:
        with controller.limit(limits=1, user_api="blas"):
            ours()

    out = {"no BLAS product before": _median_ms(ours, repeats),
           "right after a threaded BLAS product": _median_ms(ours, repeats, before=lambda: A @ A),
           "right after it, inside a limit to 1 thread": _median_ms(limited, repeats, before=lambda: A @ A)}
    pool.shutdown()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=21)
    a = ap.parse_args()
    print("1. two threads, each multiplying its own kernel 100 times: speed-up over one after the other")
    for name, gain in symv_gil(a.repeats).items():
        print(f"   {name:28s} {gain:.2f}x")
    print("2. two tinyseg worker threads running NumPy loops (median ms)")
    for name, ms in spinning(a.repeats).items():
        print(f"   {name:44s} {ms:6.2f} ms")


if __name__ == "__main__":
    main()
