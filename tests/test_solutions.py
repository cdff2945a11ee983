"""Every exercise solution in lessons/solutions/ runs and confirms its claim (exit status 0),
fits the page it is shown on (at most 84 columns), and every solution a lesson page points to
exists."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "lessons" / "solutions").glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("script", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_solution_runs_and_confirms_its_claim(script: Path, tmp_path: Path) -> None:
    env = dict(os.environ, MPLBACKEND="Agg", TINYSEG_CACHE=str(tmp_path / "cache"))
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, f"{script.name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"


def test_every_solution_named_on_a_lesson_page_exists() -> None:
    named = set()
    for page in (ROOT / "docs" / "lessons").glob("*.md"):
        named |= set(re.findall(r"lessons/solutions/([0-9][0-9]_\w+\.py)", page.read_text()))
    assert named, "no lesson page points to a solution"
    missing = sorted(n for n in named if not (ROOT / "lessons" / "solutions" / n).exists())
    assert not missing, f"lesson pages point to solutions that do not exist: {missing}"


# A solution is shown whole on its lesson page, in an admonition nested in a list item: about 84
# columns fit there at 1280 px without horizontal scrolling.
SOLUTION_WIDTH = 84


def test_solution_lines_are_at_most_84_columns() -> None:
    long = [f"{path.relative_to(ROOT)}:{number} ({len(line)} columns)"
            for path in SOLUTIONS
            for number, line in enumerate(path.read_text().splitlines(), 1)
            if len(line) > SOLUTION_WIDTH]
    assert SOLUTIONS, "no solutions found"
    assert not long, f"solution lines wider than {SOLUTION_WIDTH} columns:\n" + "\n".join(long)
