"""The backend: device selection, clear errors without a GPU, numpy/cupy mixing refused."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import tinyseg as ts
from tinyseg import backend


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
    assert ts.to_device(x, "cpu") is not None
    np.testing.assert_array_equal(ts.as_numpy(ts.Tensor(x)), x)
    assert ts.get_array_module(x, 1.0, None) is np


def test_mixed_numpy_and_cupy_inputs_raise(xp) -> None:  # noqa: ANN001
    if xp is np:
        pytest.skip("needs CuPy to build a mixed pair")
    with pytest.raises(ValueError, match="Mixed devices"):
        ts.F.add(ts.Tensor(np.ones(2)), ts.Tensor(xp.ones(2)))


def test_mixed_device_detection_without_gpu_uses_fake_cupy_type() -> None:
    fake = type("ndarray", (), {"__module__": "cupy._core.core"})()
    with pytest.raises(ValueError, match="Mixed devices"):
        backend.get_array_module(np.ones(2), fake)
