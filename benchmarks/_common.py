"""Shared helpers of the benchmark scripts: thread settings, the synthetic batch, machine facts.

Thread counts reach a timing child through its environment (`child_env`), set before the child
starts, because the BLAS and OpenMP runtimes read them once. The variant names and the thread
variables are tinyseg's own lists (`tinyseg.config.CHOICES`, `tinyseg.backend.THREAD_SETTINGS`).
"""
from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
from typing import Any

from tinyseg.backend import THREAD_SETTINGS
from tinyseg.config import CHOICES

BLAS_CORE_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # set on some hosts for old OpenBLAS builds

VARIANTS = CHOICES["variant"]  # the eight models of Table 2


def has_crf(variant: str) -> bool:
    return variant.endswith("_crf")


def cases(variants: list[str], graphs: list[str]) -> list[tuple[str, str]]:
    """(variant, graph) pairs: CRF variants once per graph, the others once (graph "-")."""
    out = []
    for v in variants:
        out += [(v, g) for g in graphs] if has_crf(v) else [(v, "-")]
    return out


def thread_label(threads: int) -> str:
    """How a thread setting of the benchmarks reads: 0 is "nothing set"."""
    return "nothing set" if threads == 0 else f"{threads} thread" + ("s" if threads > 1 else "")


def child_env(threads: int, native_blas: bool) -> dict[str, str]:
    """The environment of a timing child: every thread variable set to `threads`, or with
    ``threads=0`` none of them ("nothing set": each library and tinyseg choose, as for a user
    who sets nothing). TINYSEG_NUM_THREADS is never passed on.

    `native_blas` drops OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE so OpenBLAS picks the kernel for
    this CPU (benchmarks only: tests and CI keep the host's setting).
    """
    env = dict(os.environ)
    env.pop("TINYSEG_NUM_THREADS", None)
    for k in THREAD_SETTINGS:
        if threads == 0:
            env.pop(k, None)
        else:
            env[k] = str(threads)
    if native_blas:
        for k in BLAS_CORE_VARS:
            env.pop(k, None)
    return env


def make_batch(n: int = 29, size: int = 40, seed: int = 0) -> tuple[Any, Any]:
    """A deterministic batch like the normalised ROIs: a bright blob on noise, standardised.

    Returns images (n, 1, size, size) float64 and labels (n, size, size) int64 (the blob's disk).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.uniform(0.35 * size, 0.65 * size, (2, n, 1, 1))
    r = rng.uniform(0.15 * size, 0.3 * size, (n, 1, 1))
    d2 = (yy - cy) ** 2 + (xx - cx) ** 2
    img = np.exp(-d2 / (2 * r ** 2)) + 0.3 * rng.standard_normal((n, size, size))
    img = (img - img.mean()) / img.std()
    labels = (d2 <= r ** 2).astype(np.int64)
    return img[:, None], labels


def peak_rss_mb() -> float:
    """ru_maxrss of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def blas_summary() -> list[dict[str, Any]]:
    """The BLAS / OpenMP libraries loaded in this process (threadpoolctl when installed)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"note": "threadpoolctl not installed"}]
    keep = ("internal_api", "version", "num_threads", "architecture", "threading_layer", "filepath")
    return [{k: d.get(k) for k in keep} for d in threadpool_info()]


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_facts() -> dict[str, Any]:
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "python": sys.version.split()[0],
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
            "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE")}


def median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    if n == 0:
        return float("nan")
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])
