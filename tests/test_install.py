"""The README's install, ``pip install -e ".[dev]"``, stays lean: no NVIDIA or CuPy package.

Read from pyproject.toml without network: the base dependencies plus the ``dev`` extra, following
extras that name tinyseg itself (``tinyseg[docs]``). The NVRTC wheel that lets the tests compile
every CUDA kernel without a GPU lives in the ``cuda-check`` extra, which .ci/run installs.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
GPU_PACKAGE = re.compile(r"^(nvidia|cupy)", re.IGNORECASE)


def requirements(*extras: str) -> list[Requirement]:
    """What ``pip install -e ".[extras]"`` asks for directly: base dependencies and the extras, recursively."""
    reqs, todo, seen = [Requirement(r) for r in PROJECT["dependencies"]], list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for spec in PROJECT["optional-dependencies"][extra]:
            req = Requirement(spec)
            if canonicalize_name(req.name) == canonicalize_name(PROJECT["name"]):
                todo.extend(req.extras)  # a self-reference: tinyseg[other-extra]
            else:
                reqs.append(req)
    return reqs


def test_dev_install_has_no_nvidia_or_cupy_package() -> None:
    names = [r.name for r in requirements("dev")]
    assert "pytest" in names
    gpu = [n for n in names if GPU_PACKAGE.match(n)]
    assert not gpu, f'pip install -e ".[dev]" would install {gpu}; put them in their own extra'


def test_self_references_are_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    extras = dict(PROJECT["optional-dependencies"], dev=["pytest", "tinyseg[cuda-check]"])
    monkeypatch.setitem(PROJECT, "optional-dependencies", extras)
    assert any(GPU_PACKAGE.match(r.name) for r in requirements("dev"))


def test_cuda_check_extra_brings_nvrtc_and_ci_installs_it() -> None:
    assert "nvidia-cuda-nvrtc-cu12" in [r.name for r in requirements("cuda-check")]
    assert '".[cuda-check]"' in (ROOT / ".ci" / "run").read_text()


def test_the_version_is_written_once_and_the_installed_metadata_reads_it() -> None:
    from importlib.metadata import version

    import tinyseg

    assert "version" not in PROJECT and "version" in PROJECT["dynamic"]  # no second copy to forget
    assert version("tinyseg") == tinyseg.__version__
