"""Atomic writes: files land whole, with the permissions of a normally created file."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from tinyseg.utils import atomic_path, atomic_write_text, savefig


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_write_has_the_mode_of_a_plain_open(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        with open(tmp_path / "plain.txt", "w") as f:
            f.write("x")
        atomic_write_text(tmp_path / "atomic.txt", "x")
        with atomic_path(tmp_path / "array.npy") as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.zeros(3))
    finally:
        os.umask(old)
    assert _mode(tmp_path / "atomic.txt") == _mode(tmp_path / "plain.txt")
    assert _mode(tmp_path / "array.npy") == _mode(tmp_path / "plain.txt")


def test_savefig_output_is_readable_by_others_under_the_usual_umask(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    old = os.umask(0o022)
    try:
        fig = plt.figure()
        savefig(fig, tmp_path / "fig.png")
        plt.close(fig)
    finally:
        os.umask(old)
    assert _mode(tmp_path / "fig.png") == 0o644


def test_failed_atomic_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
