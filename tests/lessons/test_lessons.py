"""Every lesson runs end to end with --fast, prints its numbered findings, writes its figures,
and writes them byte-identically when run twice."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py"))


def _run(lesson: Path, out: Path, cache: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, MPLBACKEND="Agg", TINYSEG_CACHE=str(cache))
    return subprocess.run([sys.executable, str(lesson), "--fast", "--out", str(out)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=600)


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_fast_and_writes_reproducible_figures(lesson: Path, tmp_path: Path) -> None:
    first = _run(lesson, tmp_path / "a", tmp_path / "cache")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "[1]" in first.stdout, "a lesson prints numbered findings"
    figures = sorted((tmp_path / "a").glob(f"{lesson.stem[:2]}_*.png"))
    assert figures, f"{lesson.name} wrote no {lesson.stem[:2]}_*.png figure"
    second = _run(lesson, tmp_path / "b", tmp_path / "cache")
    assert second.returncode == 0, second.stderr[-3000:]
    for fig in figures:
        digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (fig, tmp_path / "b" / fig.name)]
        assert digest[0] == digest[1], f"{fig.name} differs between two runs"
