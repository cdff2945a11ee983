"""Every lesson opens and runs as a notebook, and importing a lesson runs none of its steps.

The notebook test converts each ``lessons/NN_topic.py`` as ``tools/make_notebooks.py`` does
(Jupytext), sets its ``parameters`` cell to ``fast = True`` and a temporary ``out`` (as papermill
would, in a cell injected after it), executes it with nbclient, and checks that no cell fails,
that every figure the lesson writes is shown inline (the same PNG bytes) under the cell that
names it, and that every numbered finding prints under the cell that computes it. It needs the
``notebooks`` extra (``pip install -e ".[notebooks]"``) and skips without it; ``.ci/run``
installs it, so it runs there under ``pytest --gradcheck`` (about a minute for the six lessons).
"""
from __future__ import annotations

import base64
import importlib.util
import io
import os
import re
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from helpers import load_script  # tests/ is on sys.path (rootdir conftest)

from tinyseg.utils import lesson_definitions

ROOT = Path(__file__).resolve().parents[2]
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py"))
FINDING = re.compile(r"^\[(\d+)\] ", re.M)


def _make_notebooks():  # noqa: ANN202
    return load_script("tools/make_notebooks.py")


def _notebook(lesson: Path, out: Path):  # noqa: ANN202
    """The lesson's notebook as tools/make_notebooks.py writes it (and the docs offer it), its
    parameters overridden in a cell injected after the parameters cell, as papermill does."""
    import nbformat

    nb = nbformat.reads(_make_notebooks().lesson_notebook(lesson), as_version=4)
    tagged = [k for k, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{lesson.name} needs exactly one cell tagged 'parameters', found {len(tagged)}"
    injected = nbformat.v4.new_code_cell(f"fast = True\nout = {str(out)!r}",
                                         metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(tagged[0] + 1, injected)
    return nb


@pytest.fixture(scope="module")
def data_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data cache for the six notebooks: each builds the same datasets."""
    return tmp_path_factory.mktemp("cache")


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_as_a_notebook_with_figures_and_findings_inline(lesson: Path, tmp_path: Path, data_cache: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("jupytext", "nbclient", "ipykernel"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed: the notebook tests need the notebooks extra "
                        '(pip install -e ".[notebooks]")')
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    out = tmp_path / "out"
    nb = _notebook(lesson, out)
    # The kernel inherits this environment: a private data cache, and this checkout's tinyseg.
    monkeypatch.setenv("TINYSEG_CACHE", str(data_cache))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "lessons")}})
    try:
        client.execute()
    except CellExecutionError as e:
        pytest.fail(f"{lesson.name}: a cell failed in the notebook:\n{str(e)[-3000:]}")

    figures = sorted(out.glob(f"{lesson.stem[:2]}_*.png"))
    assert figures, f"{lesson.name} wrote no {lesson.stem[:2]}_*.png figure as a notebook"
    shown = {}  # PNG bytes -> the source of the cell that showed them
    findings = {}  # finding number -> the source of the cell that printed it
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if "image/png" in output.get("data", {}):
                shown[base64.b64decode(output["data"]["image/png"])] = cell.source
            if output.get("output_type") == "stream" and output.get("name") == "stdout":
                for k in FINDING.findall(output["text"]):
                    findings[int(k)] = cell.source
    for fig in figures:
        source = shown.get(fig.read_bytes())
        assert source is not None, f"{lesson.name}: {fig.name} was written but not shown inline"
        assert fig.name in source, f"{lesson.name}: {fig.name} is shown under a cell that does not make it"
    assert findings, f"{lesson.name} printed no numbered finding in the notebook"
    assert sorted(findings) == list(range(1, max(findings) + 1)), f"{lesson.name}: findings {sorted(findings)}"
    for k, source in findings.items():
        assert re.search(rf"finding\({k},", source), f"{lesson.name}: finding [{k}] prints under another cell"


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_loading_a_lesson_runs_no_step(lesson: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a step would write runs/lessons/... here
    printed = io.StringIO()
    with redirect_stdout(printed):
        module = lesson_definitions(lesson)
        spec = importlib.util.spec_from_file_location(f"imported_{lesson.stem}", lesson)
        with pytest.raises(ImportError, match="lesson_definitions"):
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
    assert printed.getvalue() == "", f"loading {lesson.name} printed:\n{printed.getvalue()[:500]}"
    assert list(tmp_path.iterdir()) == [], f"loading {lesson.name} wrote {list(tmp_path.iterdir())}"
    assert not hasattr(module, "args"), "lesson_definitions ran the lesson's setup cell"
    defined = [name for name, value in vars(module).items()
               if callable(value) and getattr(value, "__module__", None) == module.__name__]
    assert defined, f"lesson_definitions found no function or class in {lesson.name}"


def test_lesson_args_refuses_to_run_in_an_imported_module() -> None:
    namespace = {"__name__": "lesson_being_imported"}
    with pytest.raises(ImportError, match="lesson_definitions"):
        exec("from tinyseg.utils import lesson_args\nlesson_args('01_autodiff', argv=[])", namespace)  # noqa: S102


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_saving_a_lesson_from_jupyter_keeps_it_as_it_is(lesson: Path) -> None:
    """Jupytext writes the lesson back line for line (a save from JupyterLab does not churn it),
    except the marker of the first cell, which the file leaves out: its first line stays the
    docstring, whose title tools/make_figures.py reads."""
    jupytext = pytest.importorskip("jupytext", reason="needs Jupytext (the notebooks or docs extra)")
    nb = jupytext.read(lesson)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    written = jupytext.writes(nb, fmt="py:percent")
    assert written == "# %%\n" + lesson.read_text(encoding="utf-8"), (
        f"{lesson.name} is not in Jupytext's own percent layout: saving it from a notebook would rewrite it")


def test_lesson_args_takes_the_parameters_cell_unless_the_command_line_runs_the_lesson(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    namespace = {"__name__": "__main__"}  # a notebook's namespace, or a script's
    monkeypatch.setattr(sys, "argv", ["ipykernel_launcher.py", "-f", "kernel.json"])  # a kernel's argv
    exec(f"from tinyseg.utils import lesson_args\n"  # noqa: S102
         f"args = lesson_args('01_autodiff', fast=True, out={str(tmp_path / 'cell')!r})", namespace)
    assert namespace["args"].fast and namespace["args"].out == tmp_path / "cell"
    monkeypatch.setattr(sys, "argv", ["lessons/01_autodiff.py", "--out", str(tmp_path / "flag")])
    exec("args = lesson_args('01_autodiff', fast=False, out='ignored')", namespace)  # noqa: S102
    assert not namespace["args"].fast and namespace["args"].out == tmp_path / "flag"
