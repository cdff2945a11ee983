"""Small helpers shared by the lessons, the CLI and the figures: lesson flags, deterministic
figure files, atomic writes, and what lets one lesson file be a script and a notebook.

A lesson (``lessons/NN_topic.py``) is a Jupytext percent-format file: ``# %%`` cells, run top to
bottom. After its title, a first code cell holds the docstring, imports and constants; the next,
tagged ``parameters`` (papermill's convention), sets ``fast``, ``device`` and ``out``; the next
calls `lesson_args`, which takes them from the command line when the file runs as a script and
from the parameters cell in a notebook. The cells after it alternate definitions (functions,
classes) and steps, in the order of the lesson's page.

Importing a lesson runs none of its steps: `lesson_args` refuses to run in a module that is not
``__main__`` (a script or a notebook), so a plain ``import`` or ``importlib`` stops there with an
`ImportError` that names the way out, `lesson_definitions`, which executes only the lesson's
first cell (docstring, imports, constants) and its functions and classes (the exercise
solutions reuse them so).
"""
from __future__ import annotations

import argparse
import ast
import os
import re
import sys
import tempfile
import types
from pathlib import Path
from typing import Any, Sequence


def lesson_args(name: str, description: str | None = None, argv: Sequence[str] | None = None, *,
                fast: bool = False, device: str = "cpu", out: str | Path | None = None) -> argparse.Namespace:
    """The flags every lesson takes: ``--fast``, ``--device cpu|gpu|auto``, ``--out DIR``.

    Run as a script (``python lessons/NN_topic.py --fast``, or ``%run`` in IPython) they come
    from the command line, whose defaults are the keyword arguments; otherwise (a notebook) no
    command line is read: they are the keyword arguments, the values of the lesson's
    ``parameters`` cell. Outside a notebook matplotlib draws with Agg (files only, no window);
    in a notebook figures show inline (`show_figure`).

    Args:
        name: the lesson's file stem, e.g. ``"01_autodiff"``; the default output folder is
            ``runs/lessons/<name>/``.
        description: the ``--help`` text (a lesson passes its module docstring).
        argv: the arguments to parse (default: the command line when it runs this lesson).
        fast: default of ``--fast``: the same code paths on a tiny budget.
        device: default of ``--device``.
        out: default of ``--out``; None is ``runs/lessons/<name>/``.

    Returns:
        The namespace, with ``out`` a created `Path` and ``device`` resolved to 'cpu' or 'gpu'.

    Raises:
        ImportError: when called from a module being imported rather than run: importing a
            lesson must not run it (load its functions with `lesson_definitions`).
    """
    from .backend import normalize_device

    caller = sys._getframe(1).f_globals.get("__name__")
    if caller != "__main__":
        raise ImportError(f"lesson {name} is being imported as {caller!r}: importing a lesson would run it. "
                          "Load its functions and classes with tinyseg.utils.lesson_definitions(path), "
                          f"or run it: python lessons/{name}.py")
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fast", action="store_true", default=fast,
                   help="same code paths and figures, tiny budget (<= 20 s on 2 CPU cores)")
    p.add_argument("--device", default=device, help="cpu, gpu or auto (default cpu)")
    p.add_argument("--out", type=Path, default=Path("runs") / "lessons" / name if out is None else Path(out),
                   help="folder for figures and runs")
    if argv is None and Path(sys.argv[0]).name != f"{name}.py":
        argv = []  # not `python lessons/<name>.py ...` (or `%run`): a notebook kernel's argv is its own
    args = p.parse_args(argv)
    if not in_notebook():
        import matplotlib

        matplotlib.use("Agg")
    args.device = normalize_device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def in_notebook() -> bool:
    """Whether this code runs in a Jupyter kernel (JupyterLab, VS Code, nbclient), not a script."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def show_figure(path: str | Path) -> Path:
    """Show a saved figure file under the running notebook cell; as a script, do nothing.

    The notebook shows the very PNG the lesson wrote (at half its pixel size: lessons save at
    200 dpi), so what a reader sees inline and what the docs show are the same file.

    Args:
        path: a PNG written by `savefig`.

    Returns:
        `path`, so that ``show_figure(savefig(fig, path))`` reads as one step.
    """
    path = Path(path)
    if in_notebook():
        from IPython.display import Image, display

        display(Image(filename=str(path), retina=True))
    return path


_PARAMETERS_CELL = re.compile(r"^# %%.*\btags=\[.*[\"']parameters[\"']", re.M)


def _is_definition(node: ast.stmt, first_cell_ends: int) -> bool:
    """A top-level statement `lesson_definitions` keeps: all of the first cell (the docstring,
    imports and constants, above the parameters cell), then only imports, defs and classes."""
    if node.end_lineno < first_cell_ends:
        return True
    return isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))


def lesson_definitions(path: str | Path) -> types.ModuleType:
    """Load a lesson's definitions without running the lesson.

    Executes, in file order, what stands above the lesson's ``parameters`` cell (its
    docstring, imports and constants) and, below it, only the top-level imports, ``def`` and
    ``class`` statements; every other statement (the parameters, the call to `lesson_args`,
    the steps) is skipped, so nothing is trained, printed or saved. Line
    numbers are kept: tracebacks and `inspect.getsource` point into the lesson file. The
    exercise solutions in ``lessons/solutions/`` reuse the lessons' functions this way.

    Args:
        path: a lesson file, e.g. ``lessons/01_autodiff.py``.

    Returns:
        A module whose attributes are the lesson's functions, classes, constants and imports.

    Raises:
        ValueError: `path` has no cell tagged ``parameters`` (it is not a lesson).

    See: tests/lessons/test_notebooks.py (loading runs no step), tests/test_solutions.py.
    """
    path = Path(path).resolve()
    source = path.read_text(encoding="utf-8")
    marker = _PARAMETERS_CELL.search(source)
    if marker is None:
        raise ValueError(f"{path} has no '# %% tags=[\"parameters\"]' cell: it is not a lesson")
    first_cell_ends = source.count("\n", 0, marker.start()) + 1  # the marker's line number
    tree = ast.parse(source, filename=str(path))
    tree.body = [node for node in tree.body if _is_definition(node, first_cell_ends)]
    module = types.ModuleType(f"lesson_{path.stem}")
    module.__file__ = str(path)
    exec(compile(tree, str(path), "exec"), module.__dict__)  # noqa: S102 - the lesson's own code
    return module


def savefig(fig: Any, path: str | Path, dpi: int = 100) -> Path:
    """Save a matplotlib figure as a byte-reproducible PNG (no timestamp/version metadata), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", metadata={"Software": None})
    return path


def _umask() -> int:
    """The process's umask (reading it means setting it, so it is set back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class atomic_path:
    """Context manager yielding a temporary path next to `path`; renamed onto `path` on success.

    A failure or interruption leaves any previous `path` untouched.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        # mkstemp creates the file private (0600); give it the mode a plain open(path, "w") would
        # have, so the outputs a user receives are readable as usual under their umask.
        os.close(fd)
        os.chmod(name, 0o666 & ~_umask())
        self.tmp = Path(name)
        return self.tmp

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` to `path` atomically (temporary file + rename)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def finding(k: int, text: str) -> None:
    """Print a lesson's numbered finding, ``[k] text``, at once (flushed, even into a pipe or file)."""
    print(f"[{k}] {text}", flush=True)

