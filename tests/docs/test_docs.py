"""The docs stay in step with the code: paper tags, figures, API pages, offline configuration.

These checks read files only (no MkDocs, no browser), so they run in every `pytest` call. The
rendered site is checked by `tests/docs/test_docs_browser.py`.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAPER_MAP = DOCS / "paper_map.md"
MKDOCS_YML = ROOT / "mkdocs.yml"

# Modules that are public but documented elsewhere than an API page, with the reason.
NO_API_PAGE = {
    "tinyseg.cli": "the command line: documented by `tinyseg --help` and on the pages",
    "tinyseg.commands": "the subcommands of the command line (same)",
    "tinyseg.cuda.testing": "test support for the CUDA kernels (emulator, NVRTC check, op counter), not library API",
}

TAG = re.compile(r"\[ZX18([^\]]*)\]")
ITEM_KINDS = {"eq": "Eq.", "eqs": "Eq.", "equation": "Eq.", "equations": "Eq.", "table": "Table",
              "tab": "Table", "fig": "Fig.", "figs": "Fig.", "figure": "Fig.", "§": "§", "sec": "§"}
ITEM = re.compile(r"^(eqs?\.?|equations?|tables?|tab\.|figs?\.?|figures?|§|sec\.?)\s*(.+)$", re.IGNORECASE)
NUMBER_RANGE = re.compile(r"^(\d+)\s*[-–]\s*(\d+)$")
NUMBER = re.compile(r"^(\d+)([a-z]?)(?:\(([a-z])\))?(?:\.\d+)*$")


def parse_tag(text: str) -> set[str]:
    """The paper items a tag names, e.g. ``" Eq. 2-5; Table 1"`` -> {Eq. 2, ..., Eq. 5, Table 1}.

    Items follow the paper map's first column: ``Eq. N``, ``Table N``, ``Fig. N`` / ``Fig. Na``,
    ``§N`` (subsections count as their section). A bare ``[ZX18]`` names no item. Raises
    ValueError for text that is not in this form, so that a malformed tag cannot slip through.
    """
    items: set[str] = set()
    kind = None
    for part in (p.strip() for p in re.split(r"[;,]|\band\b", text)):
        if not part:
            continue
        m = ITEM.match(part)
        if m:
            word = m.group(1).lower().rstrip(".s") or m.group(1).lower()
            kind = ITEM_KINDS.get(word) or ITEM_KINDS.get(m.group(1).lower().rstrip("."))
            rest = m.group(2).strip()
        elif kind is not None:  # "Eq. 7, 8": the kind carries over
            rest = part
        else:
            raise ValueError(f"cannot read paper tag [ZX18{text}]: expected e.g. [ZX18 Eq. 5], "
                             "[ZX18 Eq. 2-5], [ZX18 Table 1], [ZX18 Fig. 2a], [ZX18 §4]")
        if kind is None:
            raise ValueError(f"cannot read paper tag [ZX18{text}]")
        r = NUMBER_RANGE.match(rest)
        if r:
            lo, hi = int(r.group(1)), int(r.group(2))
            if lo > hi:
                raise ValueError(f"backwards range in paper tag [ZX18{text}]")
            items.update(f"{kind} {n}" if kind != "§" else f"§{n}" for n in range(lo, hi + 1))
            continue
        n = NUMBER.match(rest)
        if not n:
            raise ValueError(f"cannot read paper tag [ZX18{text}]: {part!r}")
        if kind == "§":
            items.add(f"§{n.group(1)}")
        else:
            items.add(f"{kind} {n.group(1)}{n.group(2) or n.group(3) or ''}")
    return items


def paper_map_items() -> set[str]:
    """The first-column entries of the tables in docs/paper_map.md (``Eq. 1``, ``Fig. 2a``, ...)."""
    items = set()
    for line in PAPER_MAP.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.lstrip().startswith("|") and cells and not set(cells[0]) <= set("-: "):
            items.add(cells[0])
    return items


def covered(item: str, mapped: set[str]) -> bool:
    """``Fig. 2`` is covered by ``Fig. 2a``/``Fig. 2b``; everything else must match exactly."""
    return item in mapped or (item.startswith("Fig.") and any(m.startswith(item) and m[len(item):].isalpha()
                                                                for m in mapped))


def source_tags() -> dict[str, list[str]]:
    """Every [ZX18 ...] tag in the package and the lessons -> where it occurs."""
    found: dict[str, list[str]] = {}
    for path in sorted([*(ROOT / "tinyseg").rglob("*.py"), *(ROOT / "lessons").glob("*.py")]):
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for m in TAG.finditer(line.replace("\\ ", " ")):  # LaTeX's "\ " inside math is a space
                found.setdefault(m.group(1), []).append(f"{path.relative_to(ROOT)}:{lineno}")
    return found


def test_paper_tag_parser_reads_the_tag_conventions() -> None:
    assert parse_tag(" Eq. 5") == {"Eq. 5"}
    assert parse_tag(" Eq. 2-5") == {"Eq. 2", "Eq. 3", "Eq. 4", "Eq. 5"}
    assert parse_tag(" Eqs. 7–8; Table 1") == {"Eq. 7", "Eq. 8", "Table 1"}
    assert parse_tag(" Eq. 7, 8") == {"Eq. 7", "Eq. 8"}
    assert parse_tag(" Fig. 2a") == {"Fig. 2a"} and parse_tag(" Fig. 2(b)") == {"Fig. 2b"}
    assert parse_tag(" §4") == {"§4"} and parse_tag(" §4.2") == {"§4"}
    assert parse_tag("") == set()
    with pytest.raises(ValueError):
        parse_tag(" page 3")
    assert covered("Fig. 2", {"Fig. 2a"}) and not covered("Eq. 9", {"Eq. 1"})


def test_paper_map_lists_every_equation_table_and_figure_of_the_paper() -> None:
    mapped = paper_map_items()
    expected = {f"Eq. {n}" for n in range(1, 9)} | {"Table 1", "Table 2"} | {
        "Fig. 1", "Fig. 2a", "Fig. 2b", "Fig. 3", "Fig. 4"} | {"§2", "§3", "§4"}
    assert not expected - mapped, f"docs/paper_map.md has no row for {sorted(expected - mapped)}"


def test_every_paper_tag_in_the_source_is_in_the_paper_map() -> None:
    mapped = paper_map_items()
    missing = []
    for text, places in source_tags().items():
        try:
            items = parse_tag(text)
        except ValueError as e:
            missing.append(f"{e} at {', '.join(places[:3])}")
            continue
        missing += [f"[ZX18{text}] ({item}) at {', '.join(places[:3])}" for item in sorted(items)
                    if not covered(item, mapped)]
    assert not missing, "paper tags without a row in docs/paper_map.md:\n  " + "\n  ".join(missing)


FIGURE_REF = re.compile(r"figures/((?:\d\d|diagram)_[A-Za-z0-9_.-]+?\.png)")
DIAGRAMS_SCRIPT = ROOT / "tools" / "make_diagrams.py"


def test_every_figure_a_page_shows_exists_and_is_written_by_its_lesson() -> None:
    """``NN_*.png`` come from lessons/NN_*.py; ``diagram_*.png`` from tools/make_diagrams.py."""
    problems = []
    for page in sorted(DOCS.rglob("*.md")):
        for name in sorted(set(FIGURE_REF.findall(page.read_text(encoding="utf-8")))):
            where = page.relative_to(ROOT)
            if not (DOCS / "figures" / name).is_file():
                problems.append(f"{where}: docs/figures/{name} does not exist (run tools/make_figures.py)")
            if name.startswith("diagram_"):
                if f'"{name}"' not in DIAGRAMS_SCRIPT.read_text(encoding="utf-8"):
                    problems.append(f"{where}: tools/make_diagrams.py does not write {name}")
                continue
            lessons = sorted((ROOT / "lessons").glob(f"{name[:2]}_*.py"))
            if not any(name in p.read_text(encoding="utf-8") for p in lessons):
                problems.append(f"{where}: no lessons/{name[:2]}_*.py writes {name} "
                                "(a lesson must spell the file name out)")
    assert not problems, "\n".join(problems)


def public_modules() -> list[str]:
    """Dotted names of tinyseg's public modules (no leading underscore anywhere in the path).

    Package ``__init__`` files only re-export, so the package itself needs no page; the command
    line is listed in NO_API_PAGE.
    """
    names = []
    for path in sorted((ROOT / "tinyseg").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if any(p.startswith("_") for p in parts) or "__pycache__" in parts:
            continue
        name = ".".join(parts)
        if not any(name == skip or name.startswith(skip + ".") for skip in NO_API_PAGE):
            names.append(name)
    return names


def api_pages() -> dict[str, str]:
    """docs/api/<page>.md -> the module its ``::: tinyseg.x`` directive renders."""
    pages = {}
    for page in sorted((DOCS / "api").glob("*.md")):
        m = re.search(r"^::: (tinyseg(?:\.\w+)*)\s*$", page.read_text(encoding="utf-8"), re.MULTILINE)
        pages[page.name] = m.group(1) if m else ""
    return pages


def test_every_public_module_has_an_api_page_in_the_nav() -> None:
    documented = set(api_pages().values())
    nav = MKDOCS_YML.read_text(encoding="utf-8")
    missing = [m for m in public_modules() if m not in documented]
    assert not missing, ("public modules without an API page; add docs/api/<module>.md containing "
                         "'::: <module>' and list it under 'API reference' in mkdocs.yml: " + ", ".join(missing))
    not_in_nav = [f"api/{page}" for page in api_pages() if f"api/{page}" not in nav]
    assert not not_in_nav, f"API pages missing from the nav in mkdocs.yml: {not_in_nav}"


def test_every_api_page_documents_an_existing_module() -> None:
    for page, module in api_pages().items():
        assert module, f"docs/api/{page} has no '::: tinyseg.<module>' line"
        path = ROOT / Path(*module.split("."))
        assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), (
            f"docs/api/{page} documents {module}, which does not exist (pages are not stubs)")


def test_every_lesson_page_belongs_to_a_lesson_script() -> None:
    for page in sorted((DOCS / "lessons").glob("*.md")):
        assert (ROOT / "lessons" / f"{page.stem}.py").is_file(), (
            f"docs/lessons/{page.name} has no lessons/{page.stem}.py (pages for unwritten lessons are left out)")


def test_site_config_makes_no_remote_requests() -> None:
    config = MKDOCS_YML.read_text(encoding="utf-8")
    assert re.search(r"^\s*font:\s*false\b", config, re.MULTILINE), "theme.font must be false (no Google Fonts)"
    assert not re.search(r"^repo_url:", config, re.MULTILINE), "repo_url makes every page call api.github.com"
    assert "assets/vendor/iframe-worker/shim.js" in config, "the offline plugin would fetch its shim from unpkg.com"
    remote = [line.strip() for line in config.splitlines()
              if re.match(r"\s*-\s*https?://", line)]
    assert not remote, f"remote assets in mkdocs.yml: {remote}"
    for asset in ("katex/katex.min.js", "katex/katex.min.css", "katex/contrib/auto-render.min.js",
                  "katex/LICENSE", "iframe-worker/shim.js", "iframe-worker/LICENSE"):
        assert (DOCS / "assets" / "vendor" / asset).is_file(), (
            f"docs/assets/vendor/{asset} is missing: run tools/vendor_docs_assets.sh")


def test_the_performance_page_is_built_once_benchmarks_results_exist() -> None:
    config = MKDOCS_YML.read_text(encoding="utf-8")
    in_nav = re.search(r"^\s*- [^:]+: performance\.md\s*$", config, re.MULTILINE) is not None
    excluded = re.search(r"^exclude_docs:[^\n]*\n(?:\s+\S[^\n]*\n)*?\s+performance\.md\s*$", config,
                         re.MULTILINE) is not None
    if (ROOT / "benchmarks" / "RESULTS.md").is_file():
        assert in_nav and not excluded, ("benchmarks/RESULTS.md exists: list performance.md in the nav of "
                                         "mkdocs.yml and remove it from exclude_docs")
    else:
        assert excluded and not in_nav, ("docs/performance.md includes benchmarks/RESULTS.md, which does not "
                                         "exist yet: keep the page in exclude_docs and out of the nav")


def test_docstring_math_is_written_for_the_docs_site() -> None:
    """The API pages typeset `$...$` and `$$...$$` with KaTeX; reST `:math:` / `.. math::` stays raw text."""
    offending = []
    for path in sorted((ROOT / "tinyseg").rglob("*.py")):
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if ":math:`" in line or re.match(r"\s*\.\. math::", line):
                offending.append(f"{path.relative_to(ROOT)}:{lineno}")
    assert not offending, ("reST math in docstrings (write $...$ inline and $$...$$ for display, in r\"\"\" \"\"\" "
                           "strings): " + ", ".join(offending))
