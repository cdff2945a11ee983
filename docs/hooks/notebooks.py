"""MkDocs hook: every lesson as a notebook, ``notebooks/NN_topic.ipynb``, made at build time.

Each lesson page links to its notebook under its run commands; the files are converted from
``lessons/NN_topic.py`` by ``tools/make_notebooks.py`` (Jupytext, from the ``docs`` extra) on every
build and never committed. They are added as generated files, so ``mkdocs build --strict``
checks the links to them and ``mkdocs serve`` rebuilds them when a lesson changes.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files


def _make_notebooks(root: Path):  # noqa: ANN202
    spec = importlib.util.spec_from_file_location("make_notebooks", root / "tools" / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def on_files(files: Files, config) -> Files:  # noqa: ANN001
    if importlib.util.find_spec("jupytext") is None:
        raise PluginError('the lesson notebooks need Jupytext: pip install -e ".[docs]"')
    root = Path(config["config_file_path"]).resolve().parent
    tool = _make_notebooks(root)
    for path in tool.lessons():
        files.append(File.generated(config, f"notebooks/{path.stem}.ipynb", content=tool.lesson_notebook(path)))
    return files


def on_serve(server, config, builder):  # noqa: ANN001, ANN201
    """`mkdocs serve` rebuilds the notebooks when a lesson changes."""
    server.watch(str(Path(config["config_file_path"]).resolve().parent / "lessons"))
    return server
