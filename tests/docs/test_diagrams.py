"""The docs diagrams: drawn by tools/make_diagrams.py, byte-identical on re-run, each shown on a page."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import load_script  # tests/ is on sys.path (rootdir conftest)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "make_diagrams.py"
DOCS = ROOT / "docs"

pytest.importorskip("matplotlib")


def _load():  # noqa: ANN202
    return load_script(str(SCRIPT.relative_to(ROOT)))


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.png"))}


def test_diagrams_are_byte_identical_on_rerun(tmp_path: Path) -> None:
    """Two runs in fresh processes write the same bytes (no date or version metadata)."""
    runs = []
    for k in range(2):
        out = tmp_path / f"run{k}"
        subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], cwd=ROOT, check=True,
                       capture_output=True, text=True, timeout=300)
        runs.append(_digests(out))
    assert runs[0] == runs[1], "make_diagrams.py wrote different bytes on a re-run"
    assert set(runs[0]) == set(_load().DIAGRAMS), "make_diagrams.py wrote other files than its DIAGRAMS"
    committed = _digests(DOCS / "figures")
    stale = [name for name, digest in runs[0].items() if committed.get(name) != digest]
    assert not stale, f"docs/figures/{stale} differ from a fresh run: python tools/make_diagrams.py"


def test_every_diagram_is_shown_on_a_docs_page() -> None:
    pages = "\n".join(p.read_text(encoding="utf-8") for p in DOCS.rglob("*.md"))
    missing = [name for name in _load().DIAGRAMS if f"figures/{name}" not in pages]
    assert not missing, f"diagrams that no docs page shows: {missing}"


def test_diagram_text_is_readable_at_the_docs_column_width() -> None:
    """At 200 dpi and 7.2 in, shown 700 px wide (a window narrower than 1280 px; about 940 px at 1280),
    MIN_FONT (8.5 pt) is at least 11 px on screen."""
    md = _load()
    import matplotlib.pyplot as plt

    assert md.WIDTH * md.DPI <= 1600 and md.MIN_FONT * md.DPI / 72 * 700 / (md.WIDTH * md.DPI) >= 10
    with plt.rc_context(md.RC):
        for name, draw in md.DIAGRAMS.items():
            fig = draw()
            try:
                assert md.smallest_font(fig) >= md.MIN_FONT, name
                assert abs(fig.get_figwidth() - md.WIDTH) < 1e-9, name
            finally:
                plt.close(fig)


def test_fcn_diagram_shapes_come_from_the_model() -> None:
    shapes = _load().fcn_shapes("fcn1")
    assert shapes == [(1, 40, 40), (6, 36, 36), (6, 18, 18), (12, 14, 14), (12, 7, 7), (588, 1, 1),
                      (2, 40, 40), (2, 40, 40)]
