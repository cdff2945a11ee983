"""Write every lesson as a Jupyter notebook, ``NN_topic.ipynb``, for readers without Jupytext.

Each ``lessons/NN_topic.py`` is the single source: a Jupytext percent-format script whose
``# %%`` cells are the notebook's cells (the ``parameters`` cell keeps its tag, so papermill can
fill it). This script converts them with Jupytext's API; the notebooks carry no outputs and are
never committed. The docs build makes the same notebooks for download (``docs/hooks/notebooks.py``
calls `lesson_notebook`).

A tool of the clone, not a ``tinyseg`` command: the lessons live in the clone, beside the
docs and the committed results they read, not in the installed package.

Usage:
    python tools/make_notebooks.py                  # every lesson -> notebooks/
    python tools/make_notebooks.py --out DIR 01 04  # only lessons 01 and 04, into DIR

Needs Jupytext (the ``notebooks`` or the ``docs`` extra).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tinyseg.utils import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ROOT / "lessons"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def lessons(selected: list[str] | None = None) -> list[Path]:
    """The lesson files, all or those whose number or stem is in `selected`."""
    paths = sorted(LESSONS.glob("[0-9][0-9]_*.py"))
    if selected:
        paths = [p for p in paths if p.stem[:2] in selected or p.stem in selected]
    return paths


def lesson_notebook(path: Path) -> str:
    """The lesson at `path` as the text of an .ipynb file (nbformat 4, no outputs, Python 3 kernel)."""
    import jupytext

    nb = jupytext.read(path, fmt="py:percent")
    nb.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    for k, cell in enumerate(nb.cells):
        cell.id = f"cell-{k:02d}"  # not random: the same lesson gives the same file
        # keep the tags (the parameters cell's); drop Jupytext's layout hints
        cell.metadata = {key: v for key, v in cell.metadata.items() if key == "tags"}
    return jupytext.writes(nb, fmt="ipynb")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("lessons", nargs="*", help="lesson numbers or stems (default: all)")
    p.add_argument("--out", type=Path, default=Path("notebooks"), help="folder for the .ipynb files")
    args = p.parse_args(argv)
    try:
        import jupytext  # noqa: F401
    except ImportError:
        print('make_notebooks: Jupytext is missing: pip install -e ".[notebooks]"', file=sys.stderr)
        return 1
    chosen = lessons(args.lessons)
    if not chosen:
        print(f"make_notebooks: no lesson matches {args.lessons}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for path in chosen:
        dest = args.out / f"{path.stem}.ipynb"
        atomic_write_text(dest, lesson_notebook(path))
        print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
