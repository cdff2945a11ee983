"""Every exercise solution in lessons/solutions/ runs and confirms its claim (exit status 0),
fits the page it is shown on (at most 84 columns), has its generated output in
docs/outputs/solutions/ (written by tools/make_solutions.py), and is shown, source and output, on
a lesson page; every solution a lesson page points to exists."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "lessons" / "solutions").glob("[0-9][0-9]_*.py"))
OUTPUTS = ROOT / "docs" / "outputs" / "solutions"


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


def test_every_solution_has_a_generated_output_and_every_output_a_solution() -> None:
    # Only that the files pair up: their content needs a run (tools/make_solutions.py).
    solutions = {p.stem for p in SOLUTIONS}
    outputs = {p.stem for p in OUTPUTS.glob("*.txt")}
    assert solutions, "no solutions found"
    assert not solutions - outputs, (f"solutions without docs/outputs/solutions/NAME.txt (run "
                                     f"tools/make_solutions.py): {sorted(solutions - outputs)}")
    assert not outputs - solutions, f"outputs without a solution: {sorted(outputs - solutions)}"
    machine_paths = [p.name for p in OUTPUTS.glob("*.txt") if "/tmp" in p.read_text() or str(ROOT) in p.read_text()]
    assert not machine_paths, f"outputs holding a machine-specific path: {machine_paths}"


def test_every_solution_is_shown_with_its_output_on_a_lesson_page() -> None:
    pages = "\n".join(p.read_text() for p in (ROOT / "docs" / "lessons").glob("*.md"))
    missing = [p.stem for p in SOLUTIONS
               if f'--8<-- "lessons/solutions/{p.name}"' not in pages
               or f'--8<-- "docs/outputs/solutions/{p.stem}.txt"' not in pages]
    assert SOLUTIONS, "no solutions found"
    assert not missing, f"solutions not included, source and output, by a lesson page: {missing}"
