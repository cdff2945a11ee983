"""What the docs show of the lessons is generated, never typed: each lesson page's printed output is
an included file that tools/make_figures.py writes, and the lesson times on the home page and in
README come from one measured table."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import load_script  # tests/ is on sys.path (rootdir conftest)

ROOT = Path(__file__).resolve().parents[2]
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py"))
OUTPUTS = ROOT / "docs" / "outputs"


def _make_figures():  # noqa: ANN202
    return load_script("tools/make_figures.py")


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_page_shows_the_generated_default_and_fast_outputs(lesson: Path) -> None:
    page = (ROOT / "docs" / "lessons" / f"{lesson.stem}.md").read_text()
    for suffix in (".txt", ".fast.txt"):
        name = f"docs/outputs/{lesson.stem}{suffix}"
        assert f'--8<-- "{name}"' in page, f"{lesson.stem}.md does not include {name}"
        text = (ROOT / name).read_text()
        assert re.search(r"^\[1\] ", text, re.M), f"{name} holds no numbered finding"
        assert "/tmp" not in text and str(ROOT) not in text, f"{name} holds a machine-specific path"


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_page_has_no_output_block_that_is_not_an_included_file(lesson: Path) -> None:
    page = (ROOT / "docs" / "lessons" / f"{lesson.stem}.md").read_text()
    for block in re.findall(r"^ *```text\n(.*?)^ *```", page, re.M | re.S):
        lines = [line.strip() for line in block.strip().splitlines()]
        assert len(lines) == 1 and re.fullmatch(r'--8<-- "docs/outputs/(solutions/)?[\w.]+\.txt"', lines[0]), (
            f"{lesson.stem}.md shows an output block typed by hand: {block[:200]!r}")
    typed = re.findall(r"^\[\d+\] ", page, re.M)
    assert not typed, f"{lesson.stem}.md shows numbered findings typed into the page"


def test_times_table_and_readme_agree_with_the_measured_times() -> None:
    mf = _make_figures()
    saved = json.loads((OUTPUTS / "times.json").read_text())
    times, where = saved["lessons"], saved["machine"]
    assert set(times) == {p.stem for p in LESSONS}, "times.json must hold every lesson (make_figures.py --times)"
    assert (OUTPUTS / "times.md").read_text() == mf.times_table(times, where)
    readme = (ROOT / "README.md").read_text()
    block = readme.split(mf.README_START, 1)[1].split(mf.README_END, 1)[0]
    assert mf.readme_table(times) in block, "README's lesson table differs from docs/outputs/times.json"
    home = (ROOT / "docs" / "index.md").read_text()
    assert '--8<-- "docs/outputs/times.md"' in home


def test_normalise_rewrites_the_run_folder_to_the_lessons_default() -> None:
    mf = _make_figures()
    out = Path("/tmp/xyz123")
    text = mf.normalise(f"    saved {out}/01_mlp.png\n    saved {mf.ROOT}/docs/x.png\n", out, "01_autodiff")
    assert text == "    saved runs/lessons/01_autodiff/01_mlp.png\n    saved docs/x.png\n"


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_every_finding_is_shown_beside_its_discussion_and_cut_from_the_current_output(lesson: Path) -> None:
    """The per-finding file is the committed output cut by `findings_sections`, and the page
    includes every finding of it (the full output stays below, collapsed)."""
    tool = _make_figures()
    output = (OUTPUTS / f"{lesson.stem}.txt").read_text()
    cut = OUTPUTS / f"{lesson.stem}.findings.txt"
    assert cut.read_text() == tool.findings_sections(output), "rerun: python tools/make_figures.py findings"
    numbers = re.findall(r"^\[(\d+)\] ", output, re.M)
    page = (ROOT / "docs" / "lessons" / f"{lesson.stem}.md").read_text()
    shown = set(re.findall(rf'--8<-- "docs/outputs/{lesson.stem}\.findings\.txt:f(\d+)"', page))
    missing = [n for n in numbers if n not in shown]
    assert not missing, f"{lesson.stem}.md shows no include of finding(s) {missing} beside their discussion"
    assert re.search(rf'^\?\?\? note .*\n\n +```text\n +--8<-- "docs/outputs/{lesson.stem}\.txt"', page, re.M), \
        "the whole default output should stay on the page, collapsed (??? note)"


def test_findings_sections_keep_continuation_lines_and_drop_other_output() -> None:
    tool = _make_figures()
    text = ("progress line\n[1] first finding\n    continued\n    saved runs/x.png\n[2] second\n"
            "    node   value\nsummary line\n    indented but after\n")
    assert tool.findings_sections(text) == ("--8<-- [start:f1]\n[1] first finding\n    continued\n--8<-- [end:f1]\n"
                                            "--8<-- [start:f2]\n[2] second\n--8<-- [end:f2]\n")
