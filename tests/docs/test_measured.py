"""Numbers that the docs' prose quotes from committed results are filled in at build time by the
MkDocs hook docs/hooks/measured.py (``<!-- measured:KEY -->``), never typed: every key reads its
file, every marker in the docs names a known key, and the values are the committed ones."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import load_script  # tests/ is on sys.path (rootdir conftest)

ROOT = Path(__file__).resolve().parents[2]


def _hook():  # noqa: ANN202
    return load_script("docs/hooks/measured.py")


def test_measured_hook_is_configured() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert re.search(r"^hooks:\s*\n(?:\s+- \S+.*\n)*?\s+- docs/hooks/measured\.py", config, re.MULTILINE)


def test_every_measured_key_reads_a_committed_value() -> None:
    md = _hook()
    for key, read in md.MEASURED.items():
        value = read()
        assert re.search(r"\d", value), f"{key}: {value!r} holds no number"


def test_every_measured_marker_in_the_docs_names_a_known_key() -> None:
    md = _hook()
    pages = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]
    unknown = [f"{p.relative_to(ROOT)}: {key}" for p in pages
               for key in md.MARKER.findall(p.read_text(encoding="utf-8")) if key not in md.MEASURED]
    assert not unknown, "unknown <!-- measured:KEY --> markers:\n" + "\n".join(unknown)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert not md.MARKER.search(readme), "README is not built by MkDocs: a marker there stays a comment"


def test_measured_values_are_the_committed_results() -> None:
    md = _hook()
    table = json.loads((ROOT / "docs" / "results" / "phantom" / "table2.json").read_text())
    assert md.fill("Dice <!-- measured:prior_dice.phantom -->.") == \
        f"Dice {table['baselines']['prior_only']['dice_pooled']:.3f}."
    run = json.loads((ROOT / "benchmarks" / "results" / "epochs_gpu_run2.json").read_text())
    assert md.fill("<!--measured:gpu_100_epochs-->") == f"{run['seconds_total']:.0f} s"
    from tinyseg.cuda import VERIFIED
    from tinyseg.models import build_model

    n = sum(p.data.size for p in build_model("fcn").parameters())
    assert md.fill("<!-- measured:fcn_parameters_millions -->") == f"{n / 1e6:.1f}"
    assert all(f"`{name}`" in md.fill("<!-- measured:verified_fast_paths -->") for name in VERIFIED)
    with pytest.raises(KeyError, match="unknown key"):
        md.fill("<!-- measured:no_such_number -->")
