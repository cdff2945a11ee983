"""Test options and fixtures.

* ``--gradcheck`` runs the float64 finite-difference checks (tests marked ``gradcheck``);
  without it they are skipped.
* ``xp`` runs a test on NumPy and, where CuPy sees a GPU, on CuPy (else skipped with a reason).
* Hypothesis (the property-based tests) runs the profile ``ci`` by default: derandomised, a
  fixed number of examples, so that every run draws the same arguments;
  ``--hypothesis-profile=deep`` draws ten times as many, seeded at random.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

PROPERTY_EXAMPLES = 100
settings.register_profile("ci", max_examples=PROPERTY_EXAMPLES, derandomize=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.register_profile("deep", max_examples=10 * PROPERTY_EXAMPLES, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.load_profile("ci")  # `--hypothesis-profile NAME` loads another one after this

from tinyseg.backend import cupy_module, gpu_available


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--gradcheck", action="store_true", default=False,
                     help="run the float64 finite-difference gradient checks of every registered op")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gradcheck: float64 finite-difference check (needs --gradcheck)")
    config.addinivalue_line("markers", "gpu: needs CuPy and a CUDA GPU")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--gradcheck"):
        return
    skip = pytest.mark.skip(reason="numerical gradient check: run with `pytest --gradcheck`")
    for item in items:
        if "gradcheck" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=["numpy", "cupy"])
def xp(request: pytest.FixtureRequest):  # noqa: ANN201
    """The array module under test: numpy, or cupy when a GPU is usable."""
    if request.param == "numpy":
        return np
    if not gpu_available():
        pytest.skip("CuPy with a CUDA GPU is not available")
    return cupy_module()


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    """A private $TINYSEG_CACHE for tests that build datasets."""
    monkeypatch.setenv("TINYSEG_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"
