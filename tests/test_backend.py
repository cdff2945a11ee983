"""The backend: device selection, clear errors without a GPU, numpy/cupy mixing refused."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import tinyseg as ts
from tinyseg import backend
from tinyseg.errors import OptionError


def test_import_tinyseg_needs_neither_cupy_nor_pydicom() -> None:
    code = ("import sys; sys.modules['cupy'] = None; sys.modules['pydicom'] = None; "
            "import tinyseg, tinyseg.functions; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "ok" in out.stdout


def test_unknown_device_raises_naming_valid_devices() -> None:
    with pytest.raises(ValueError, match="'cpu', 'gpu' or 'auto'"):
        ts.to_device(np.ones(2), "tpu")


@pytest.mark.skipif(backend.gpu_available(), reason="a GPU is present")
def test_gpu_request_without_gpu_says_how_to_install() -> None:
    with pytest.raises(RuntimeError, match="pip install"):
        ts.to_device(np.ones(2), "gpu")


def test_to_device_cpu_and_as_numpy_round_trip() -> None:
    x = np.arange(3.0)
    assert ts.to_device(x, "cpu") is x  # already on the CPU: no copy
    listed = ts.to_device([1.0, 2.0], "cpu")
    assert type(listed) is np.ndarray and listed.tolist() == [1.0, 2.0]
    np.testing.assert_array_equal(ts.as_numpy(ts.Tensor(x)), x)
    assert ts.get_array_module(x, 1.0, None) is np


class _FakeCupyArray(np.ndarray):
    """A NumPy array whose type claims to be CuPy's: lets a CPU machine build a mixed pair."""


_FakeCupyArray.__module__ = "cupy._core.core"


def test_mixed_numpy_and_cupy_inputs_raise_in_an_op(xp) -> None:  # noqa: ANN001
    # Without a GPU the "CuPy" operand is a NumPy array whose type is named like CuPy's, so the
    # op's own device check (not only backend.get_array_module) runs on every machine.
    other = np.ones(2).view(_FakeCupyArray) if xp is np else xp.ones(2)
    assert backend.is_cupy_array(other)
    for a, b in ((np.ones(2), other), (other, np.ones(2))):
        with pytest.raises(ValueError, match="Mixed devices"):
            ts.F.add(ts.Tensor(a), ts.Tensor(b))


def test_mixed_device_detection_without_gpu_uses_fake_cupy_type() -> None:
    fake = type("ndarray", (), {"__module__": "cupy._core.core"})()
    with pytest.raises(ValueError, match="Mixed devices"):
        backend.get_array_module(np.ones(2), fake)


def test_cpu_threads_follows_the_blas_setting_and_never_sets_it(monkeypatch) -> None:
    for name in ("TINYSEG_NUM_THREADS", *backend.THREAD_SETTINGS):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert backend.cpu_threads() == 3
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")  # read before OMP_NUM_THREADS, as OpenBLAS does
    assert backend.cpu_threads() == 2
    monkeypatch.setenv("TINYSEG_NUM_THREADS", "")  # empty: unset
    assert backend.cpu_threads() == 2
    monkeypatch.setenv("TINYSEG_NUM_THREADS", "5")
    assert backend.cpu_threads() == 5
    assert os.environ["OPENBLAS_NUM_THREADS"] == "2" and os.environ["OMP_NUM_THREADS"] == "3"
    for name in ("TINYSEG_NUM_THREADS", *backend.THREAD_SETTINGS):
        monkeypatch.delenv(name, raising=False)
    assert backend.cpu_threads() >= 1  # the CPUs this process may use


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_cpu_threads_refuses_a_bad_tinyseg_setting_naming_the_fix(monkeypatch, value) -> None:
    monkeypatch.setenv("TINYSEG_NUM_THREADS", value)
    with pytest.raises(OptionError, match="TINYSEG_NUM_THREADS.*positive integer"):
        backend.cpu_threads()
