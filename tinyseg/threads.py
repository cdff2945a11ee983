"""How tinyseg shares the CPU's cores between its own threads and the BLAS thread pools.

NumPy's and SciPy's wheels each load their own OpenBLAS, and each OpenBLAS keeps a pool of
worker threads, one per core unless ``OPENBLAS_NUM_THREADS`` (or ``OMP_NUM_THREADS``,
``MKL_NUM_THREADS``) says otherwise. After a threaded product those workers keep spinning for a
while (about 0.1 s) in case more work comes, on the cores other threads want. tinyseg's
products are small (the FCN's take 0.1–0.5 ms each at batch 29, too short to share out), so a
threaded BLAS buys them nothing and its spinning workers slow everything after them. So:

* A training step (`tinyseg.adversarial.loss_and_backward`) and a model's forward pass run in
  `blas_on_one_thread()`: every BLAS pool on the calling thread, nothing left spinning.
* Where the work splits into independent pieces, tinyseg runs its own worker threads, which
  wait without spinning: the dense CRF's images (`tinyseg.functions.crf_chunks`), Adam's
  blocks of parameters (`in_shares`):

      with own_threads() as workers:   # BLAS: 1 thread per caller inside
          futures = [workers.submit(work, i) for i in chunks]

* tinyseg's own threads: `tinyseg.backend.cpu_threads()` (``TINYSEG_NUM_THREADS``, else the BLAS
  variables, else every core this process may use).
* The BLAS pools: limited with `threadpoolctl`, which sees every BLAS library loaded in the
  process (NumPy's and SciPy's), and restored when the region ends: your own NumPy code
  outside tinyseg's calls keeps every core. A user who set one of the BLAS variables keeps
  exactly that count everywhere: tinyseg then leaves the pools alone.
* tinyseg never sets an environment variable.

The controller and the worker pools are made once per process and reused, so entering a region
costs two calls into each BLAS library (about 20 µs in all; `benchmarks/thread_overhead.py`).

See: docs/performance.md, tests/test_threads.py.
"""
from __future__ import annotations

import os
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from typing import Any, Callable, Iterator, Sequence

from .backend import THREAD_SETTINGS, cpu_threads

_controller: Any = None  # threadpoolctl.ThreadpoolController, made at first use
_pools: dict[int, ThreadPoolExecutor] = {}  # worker pools by size, made at first use


def blas_threads_set_by_user() -> bool:
    """True when one of `tinyseg.backend.THREAD_SETTINGS` is set (an empty value counts as unset)."""
    return any(os.environ.get(name, "").strip() for name in THREAD_SETTINGS)


def blas_controller() -> Any:
    """The process's `threadpoolctl.ThreadpoolController` (made once: making one takes about 1 ms).

    SciPy's BLAS is loaded first, so that the controller sees both pools, NumPy's and SciPy's.
    """
    global _controller
    if _controller is None:
        import scipy.linalg.blas  # noqa: F401, PLC0415  (loads SciPy's OpenBLAS, which symv uses)

        had_kmp = "KMP_DUPLICATE_LIB_OK" in os.environ
        from threadpoolctl import ThreadpoolController  # noqa: PLC0415

        if not had_kmp:  # threadpoolctl's import sets it (for Intel's OpenMP); tinyseg sets no variable
            os.environ.pop("KMP_DUPLICATE_LIB_OK", None)
        _controller = ThreadpoolController()
    return _controller


class _Inline(Executor):
    """An executor without threads: `submit` runs the call at once (one thread, no pool)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001  (re-raised by future.result(), as a pool would)
            future.set_exception(e)
        return future


def _pool(threads: int) -> Executor:
    """A worker pool of `threads` threads, made once per size and process; inline for one."""
    if threads <= 1:
        return _Inline()
    if threads not in _pools:
        _pools[threads] = ThreadPoolExecutor(threads, thread_name_prefix="tinyseg")
    return _pools[threads]


def _forget_pools() -> None:
    """After a fork the child has none of the parent's threads: make new pools when needed."""
    _pools.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools)


@contextmanager
def blas_on_one_thread() -> Iterator[None]:
    """A region where every BLAS pool runs on the calling thread (unless the user set a BLAS
    variable): no BLAS worker is left spinning when the region's own threads need the cores."""
    with nullcontext() if blas_threads_set_by_user() else blas_controller().limit(limits=1, user_api="blas"):
        yield


@contextmanager
def own_threads() -> Iterator[Executor]:
    """A region where tinyseg's own threads do the work: yields an executor of `cpu_threads()`
    workers (one: calls run inline) and limits every BLAS pool to 1 thread until it ends.

    When the user set a BLAS thread variable, the pools keep the user's count.
    """
    with blas_on_one_thread():
        yield _pool(cpu_threads())


def in_shares(fn: Callable[..., Any], items: Sequence[Any], *args: Any, threads: bool = True) -> None:
    """``fn(items[k::n], k, *args)`` for each share k < n, in `own_threads()` (n = `cpu_threads()`,
    at most ``len(items)``); with ``threads=False`` (work that is not NumPy's) one share, inline.

    For independent work only: a share must not touch another's items, and ``k`` selects
    per-thread scratch.
    """
    if not threads:
        fn(items, 0, *args)
        return
    with own_threads() as workers:
        n = max(1, min(cpu_threads(), len(items)))
        others = [workers.submit(fn, items[k::n], k, *args) for k in range(1, n)]
        fn(items[0::n], 0, *args)  # share 0 on the calling thread
        for future in others:
            future.result()

