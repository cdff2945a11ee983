"""The fast-path registry: teaching code never imports or calls the fast paths, lesson excerpts
show no device branch, overrides decline to the plain code, their state lives on one record."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tinyseg as ts
import tinyseg.cuda as tc
from tinyseg.autodiff import Op
from tinyseg.cuda.testing import emulated

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "tinyseg"
TEACHING = sorted((PKG / "functions").glob("*.py")) + [PKG / "nn.py", PKG / "optim.py", PKG / "adversarial.py"]


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of every module `path` imports (relative imports resolved)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            names |= {module} | {f"{module}.{a.name}" for a in node.names}
    return names


@pytest.mark.parametrize("path", TEACHING, ids=lambda p: p.relative_to(PKG).as_posix())
def test_teaching_modules_never_import_or_name_the_fast_paths(path: Path) -> None:
    imported = _imported_modules(path)
    assert not {m for m in imported if m == "tinyseg.cuda" or m.startswith("tinyseg.cuda.")}, imported
    assert not {m for m in imported if m.startswith("cupy")}, "only tinyseg.backend imports CuPy"
    code = path.read_text()
    assert not re.search(r"\btinyseg\.cuda\b|\bfast_paths\.\w+\(|\bfused\.\w+\(|get_kernel|fast_path_record", code)


def _excerpts() -> list[tuple[str, str]]:
    """(file:section, text) of every snippet region the docs include from a Python file."""
    out = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        for path, section in re.findall(r'--8<-- "([^":]+\.py):(\w+)"', page.read_text()):
            text = (ROOT / path).read_text()
            region = re.search(rf"# --8<-- \[start:{section}\]\n(.*?)# --8<-- \[end:{section}\]", text, re.S)
            if region:  # (a missing region fails `mkdocs build --strict`, not this test)
                out.append((f"{path}:{section}", region.group(1)))
    return out


@pytest.mark.parametrize("where,text", _excerpts(), ids=[w for w, _ in _excerpts()])
def test_every_lesson_excerpt_is_free_of_device_branches(where: str, text: str) -> None:
    # The one visible dispatch line of the forward and of the backward walk is not a device branch.
    text = re.sub(r"dispatch\(self, \"forward\", self\.forward, \*arrays\)|"
                  r"dispatch\(op, \"backward\", op\.backward, \*gys\)", "", text)
    found = re.findall(r"\b(is_cupy_array|cupy_module|import cupy|cuda|fast_paths\.\w+|fused\.\w+|dispatch|get_kernel|fast_path_record|"
                       r"gpu_available|xp is np|xp is not np)\b", text)
    assert not found, f"{where} shows {found}"


def test_import_tinyseg_loads_no_fast_path_and_no_cupy() -> None:
    code = "import sys, tinyseg, tinyseg.functions; print(sorted(m for m in sys.modules if 'cuda' in m or m == 'cupy'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


class _Twice(Op):
    def forward(self, x: Any) -> Any:
        self.saved_by_plain = True
        return 2 * x

    def backward(self, gy: Any) -> Any:
        return 2 * gy


def _twice_forward(op: _Twice, record: Any, x: Any) -> Any:
    if x.shape[0] == 1:
        return NotImplemented  # declined: the plain forward runs
    record.marker = "forward ran"
    return 2 * x + 0.0


def _twice_backward(op: _Twice, record: Any, gy: Any) -> Any:
    return NotImplemented if getattr(record, "marker", None) is None else 2 * gy


tc.register(_Twice, name="test_twice", forward=_twice_forward, backward=_twice_backward)


def test_an_override_that_declines_lets_the_plain_code_run_and_keeps_its_state_on_the_record() -> None:
    with emulated(), tc.fast_paths(True):
        taken = _Twice()
        x = ts.Tensor(np.ones((2, 3)), requires_grad=True)
        taken(x).sum().backward()
        declined = _Twice()
        declined(ts.Tensor(np.ones((1, 3)), requires_grad=True))
    assert taken.fast_path_record.marker == "forward ran" and not hasattr(taken, "saved_by_plain")
    np.testing.assert_array_equal(x.grad, 2.0)
    assert declined.saved_by_plain and not hasattr(declined.fast_path_record, "marker")


def test_overrides_run_only_where_kernels_run_and_only_when_switched_on() -> None:
    for context in (tc.fast_paths(True), emulated()):  # NumPy without the emulator; the emulator with it off
        with context:
            op = _Twice()
            op(ts.Tensor(np.ones((2, 3))))
            assert op.saved_by_plain and "fast_path_record" not in vars(op)
