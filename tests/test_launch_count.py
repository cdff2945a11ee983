"""The operation counter (benchmarks/op_count.py, tabulated by benchmarks/launch_count.py):
what counts as one launch, and what is free.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

from tinyseg.models import build_model

from helpers import load_benchmark, needs_gxx  # tests/ is on sys.path (rootdir conftest)

lc = load_benchmark("op_count")  # benchmarks/op_count.py: not part of the installed package


def _batch(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 1, 40, 40)), rng.integers(0, 2, (n, 40, 40))


def ops(fn: Callable[[], Any]) -> lc.Tally:
    with lc.counting() as tally:
        fn()
    return tally


@pytest.fixture
def a() -> lc.Counted:
    return np.arange(12.0).reshape(3, 4).view(lc.Counted)


@pytest.fixture
def b() -> lc.Counted:
    return np.full((3, 4), 2.0).view(lc.Counted)


def test_a_ufunc_call_counts_one(a: lc.Counted, b: lc.Counted) -> None:
    t = ops(lambda: a + b)
    assert dict(t.names) == {"add": 1}


def test_np_sum_counts_one_not_two(a: lc.Counted) -> None:
    assert sum(ops(lambda: np.sum(a)).names.values()) == 1  # np.sum -> a.sum -> add.reduce
    assert sum(ops(lambda: a.sum(axis=0)).names.values()) == 1


def test_views_count_zero(a: lc.Counted) -> None:
    t = ops(lambda: (a.reshape(4, 3), a.T, a[1:3, ::2], a[None], np.transpose(a), np.reshape(a, (12,))))
    assert sum(t.names.values()) == 0, dict(t.names)


def test_reshape_that_copies_counts_one(a: lc.Counted) -> None:
    assert dict(ops(lambda: a.T.reshape(12)).names) == {"reshape(copy)": 1}


def test_index_array_gather_counts_one(a: lc.Counted) -> None:
    idx = np.array([2, 0]).view(lc.Counted)
    assert dict(ops(lambda: a[idx]).names) == {"getitem[gather]": 1}


def test_slice_assignment_counts_one(a: lc.Counted, b: lc.Counted) -> None:
    def assign() -> None:
        a[1:3] = b[:2]

    assert dict(ops(assign).names) == {"setitem": 1}
    assert (a[1:3] == 2.0).all()


def test_zeros_counts_one_empty_zero_and_numpy_is_restored() -> None:
    t = ops(lambda: (np.zeros((3, 3)), np.empty((3, 3))))
    assert dict(t.names) == {"zeros": 1}
    assert np.zeros is lc._ORIG["zeros"] and type(np.zeros(2)) is np.ndarray


def test_device_to_host_read_counts_as_sync(a: lc.Counted) -> None:
    t = ops(lambda: float(a.sum()))
    assert sum(t.names.values()) == 1 and sum(t.syncs.values()) == 1


@needs_gxx
def test_fused_fcn_step_counts_fewer_ops_than_default_and_default_fewer_than_plain() -> None:
    # Kernels are counted, not emulated (a minute per Adam launch); the step reads nothing back.
    plain, default, fused = (lc.count_case("fcn", "-", *_batch(2), mode) for mode in ("plain", "default", "fused"))
    assert plain["step"]["syncs"] == default["step"]["syncs"] == fused["step"]["syncs"] == 0
    assert fused["step"]["by_name"].get("cuda:adam_multi") == 1
    # By default only the verified Adam runs: one ElementwiseKernel per parameter, no other kernel.
    n_params = len(build_model("fcn").parameters())
    assert default["step"]["by_name"].get("elementwise:tinyseg_fused_adam") == n_params
    assert not any(name.startswith("cuda:") for name in default["step"]["by_name"])
    # Fast paths off: the NumPy Adam on CuPy arrays, no kernel of tinyseg's own.
    assert not any(name.startswith(("cuda:", "elementwise:")) for name in plain["step"]["by_name"])
    assert fused["step"]["ops"] < default["step"]["ops"] < plain["step"]["ops"]


def test_plain_crf_count_follows_the_gpu_layout_not_the_cpu_loop_over_images() -> None:
    # On the CPU the dense CRF builds its kernel image by image; on the GPU the batch at once.
    two, three = (lc.count_case("fcn_crf", "dense", *_batch(n), "plain")["step"]["ops"] for n in (2, 3))
    assert two == three
