"""The project cites only what a user has: the paper ([ZX18 …]), a test, a docs page.

Design notes and the design file are not shipped, so a reference such as "CRF note §3.5" or
"DESIGN §10" sends a reader to a document they cannot open. This test scans everything a user
reads — the package (code, docstrings, CUDA sources), the lessons, the docs pages (not the
vendored assets), the benchmarks and their results, the tests, the tools, and the README.
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = [ROOT / "tinyseg", ROOT / "lessons", ROOT / "docs", ROOT / "benchmarks", ROOT / "tests", ROOT / "tools",
           ROOT / "README.md"]
SKIPPED = [ROOT / "docs" / "assets" / "vendor", Path(__file__).resolve()]  # this file spells the patterns out
BINARY = {".png", ".jpg", ".jpeg", ".gif", ".ico", ".npz", ".npy", ".dcm", ".so", ".pyc", ".woff", ".woff2", ".ttf"}

OUTSIDE_DOCUMENT = re.compile(
    r"CRF note"                     # "CRF note §3.5", "CRF note 4.4"
    r"|\b[Nn]otes? §"               # "note §6.1", "[notes §3.2 table]"
    r"|\bnotes/[\w.-]+"             # "notes/data-and-evaluation.md §2.4"
    r"|\bDESIGN(?:\.md|'s|\s*§|\s+`)"  # "DESIGN §10", "DESIGN's 30 s", "DESIGN `--l2-scope`"
    r"|\[DESIGN|\bSTYLE\.md|\.\./shared/")


def _files() -> list[Path]:
    out = []
    for top in SCANNED:
        for path in [top] if top.is_file() else sorted(top.rglob("*")):
            if not path.is_file() or path.suffix.lower() in BINARY or "__pycache__" in path.parts:
                continue
            if any(path.is_relative_to(skip) for skip in SKIPPED):
                continue
            out.append(path)
    return out


def test_scan_covers_the_package_lessons_docs_and_readme() -> None:
    files = {p.relative_to(ROOT).as_posix() for p in _files()}
    for expected in ("tinyseg/autodiff.py", "lessons/01_autodiff.py", "docs/index.md", "README.md",
                     "benchmarks/RESULTS.md", "tests/functions/test_crf.py", "benchmarks/train_step.py"):
        assert expected in files, expected
    assert not any(f.startswith("docs/assets/vendor/") for f in files)


def test_no_citation_of_documents_users_do_not_have() -> None:
    hits = []
    for path in _files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for lineno, line in enumerate(text.splitlines(), start=1):
            for m in OUTSIDE_DOCUMENT.finditer(line):
                hits.append(f"{path.relative_to(ROOT)}:{lineno}: {m.group(0)!r} in {line.strip()[:100]!r}")
    assert not hits, ("cite the paper ([ZX18 ...]), a test or a docs page instead of an outside document:\n"
                      + "\n".join(hits))


def test_the_pattern_catches_each_form() -> None:
    for text in ("(CRF note §3.5)", "CRF note 4.4", "note §6.1", "[notes §3.2 table]",
                 "notes/data-and-evaluation.md §2.4", "[DESIGN §10]", "DESIGN's 30 s", "DESIGN `--l2-scope`"):
        assert OUTSIDE_DOCUMENT.search(text), text
    for text in ("[ZX18 Eq. 5]", "the design of the FCN", "See: docs/data.md", "Notes:"):
        assert not OUTSIDE_DOCUMENT.search(text), text
