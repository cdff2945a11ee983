"""Source excerpts shown on the docs pages fit the content column: every line inside a snippet
region (``# --8<-- [start:NAME]`` … ``[end:NAME]``) of the package and the lessons is at most 88
columns, the width the site's code blocks show without scrolling at 1280 px."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARK = re.compile(r"--8<-- \[(start|end):(\w+)\]")


def test_snippet_region_lines_are_at_most_88_columns() -> None:
    long = []
    files = sorted((ROOT / "tinyseg").rglob("*.py")) + sorted((ROOT / "lessons").glob("*.py"))
    for path in files:
        region = None
        for number, line in enumerate(path.read_text().splitlines(), 1):
            mark = MARK.search(line)
            if mark:
                region = mark.group(2) if mark.group(1) == "start" else None
            elif region and len(line) > 88:
                long.append(f"{path.relative_to(ROOT)}:{number} ({region}, {len(line)} columns)")
    assert not long, "lines wider than 88 columns in snippet regions:\n" + "\n".join(long)
