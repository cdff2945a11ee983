"""Small helpers shared by the lessons, the CLI and the figures: lesson flags, deterministic
figure files, atomic writes."""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence


def lesson_args(name: str, description: str | None = None, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the flags every lesson takes: ``--fast``, ``--device cpu|gpu|auto``, ``--out DIR``.

    Args:
        name: the lesson's file stem, e.g. ``"01_autodiff"``; the default output folder is
            ``runs/lessons/<name>/``.
        description: the ``--help`` text (a lesson passes its module docstring).
        argv: the arguments to parse (default: the command line).

    Returns:
        The namespace, with ``out`` a created `Path` and ``device`` resolved to 'cpu' or 'gpu'.
    """
    from .backend import normalize_device

    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fast", action="store_true", help="same code paths and figures, tiny budget (<= 20 s on 2 CPU cores)")
    p.add_argument("--device", default="cpu", help="cpu, gpu or auto (default cpu)")
    p.add_argument("--out", type=Path, default=Path("runs") / "lessons" / name, help="folder for figures and runs")
    args = p.parse_args(argv)
    args.device = normalize_device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    return args


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

