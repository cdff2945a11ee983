"""The Table-2 numbers that pages quote are generated from the results and current.

``tools/make_results_quotes.py`` writes ``docs/outputs/table2_quotes.md`` (one snippet section
per claim) and ``docs/results/<preset>/table2_compact.md`` from ``docs/results/*/table2.json``.
"""
from __future__ import annotations

import re
from pathlib import Path

from helpers import load_benchmark, load_script  # tests/ is on sys.path (rootdir conftest)

ROOT = Path(__file__).resolve().parents[2]
QUOTES = ROOT / "docs/outputs/table2_quotes.md"
INCLUDE = re.compile(r"""--8<--\s+["']?(?:docs/outputs/)?table2_quotes\.md:([a-z][-_0-9a-z]*)""")
SECTION = re.compile(r"^<!-- --8<-- \[(start|end):([a-z][-_0-9a-z]*)\] -->$", re.M)
FIXED = [f"{p}_{c}" for p in ("phantom", "ddsm_bcrp") for c in ("fcn_vs_prior", "crf_vs_fcn", "multi_vs_fcn",
                                                                  "adv_vs_plain")]


def _tool():  # noqa: ANN202
    return load_script("tools/make_results_quotes.py")


def _sections() -> set[str]:
    marks = SECTION.findall(QUOTES.read_text(encoding="utf-8"))
    starts = [n for kind, n in marks if kind == "start"]
    ends = [n for kind, n in marks if kind == "end"]
    assert starts == ends, "every [start:NAME] needs its [end:NAME], in the same order"
    return set(starts)


def test_generated_quotes_and_compact_tables_are_current() -> None:
    stale = [path.relative_to(ROOT).as_posix() for path, text in _tool().outputs().items()
             if not path.is_file() or path.read_text(encoding="utf-8") != text]
    assert not stale, f"stale: {stale}; run python tools/make_results_quotes.py"


def test_every_included_quote_section_exists() -> None:
    have = _sections()
    missing = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        for name in INCLUDE.findall(page.read_text(encoding="utf-8")):
            if name not in have:
                missing.append(f"{page.relative_to(ROOT)}: {name}")
    assert not missing, "pages include Table-2 quote sections that the generator does not write:\n  " + \
        "\n  ".join(missing)


def test_the_fixed_section_names_exist_and_quote_numbers() -> None:
    have = _sections()
    assert set(FIXED) <= have, f"missing: {sorted(set(FIXED) - have)}"
    text = QUOTES.read_text(encoding="utf-8")
    for name in FIXED:
        body = text.split(f"[start:{name}] -->", 1)[1].split(f"<!-- --8<-- [end:{name}]", 1)[0]
        assert re.search(r"\d+\.\d\d\s±\s\d+\.\d\d\s%", body), f"{name} quotes no mean ± sd: {body!r}"
        if name.endswith(("crf_vs_fcn", "multi_vs_fcn", "adv_vs_plain")):
            assert "Wilcoxon signed-rank p = " in body, f"{name} quotes no test: {body!r}"


def test_quotes_follow_the_json() -> None:
    """A changed number in the results changes the sentence: nothing in it is typed."""
    tool = _tool()
    import json
    table = json.loads(tool.PRESETS["phantom"].read_text(encoding="utf-8"))
    table["rows"]["fcn_crf"]["dice_pooled_mean"] = 0.5
    assert "50.00\u00a0±" in tool.quotes(table)["crf_vs_fcn"]


def test_benchmark_summaries_agree_with_the_full_tables() -> None:
    """The performance page's summary tables (snippet sections of benchmarks/RESULTS.md) repeat
    rows of the full tables in the same file; each number must be the full table's."""
    text = (ROOT / "benchmarks/RESULTS.md").read_text(encoding="utf-8")

    def rows(block: str) -> list[list[str]]:
        return [[c.strip() for c in line.strip().strip("|").split("|")] for line in block.splitlines()
                if line.startswith("| ")]

    for section, full_from in (("gpu_summary", "Result (second run"),):
        start = text.index(f"[start:{section}]")
        full = {(r[1], r[2]): r for r in rows(text[text.index(full_from):start]) if r[0] == "1"}
        summary = rows(text[start:text.index(f"[end:{section}]")])[2:]  # no header, no |---|
        assert summary, f"{section} is empty"
        for r in summary:
            m = re.fullmatch(r"`(\w+)`(?: \((\w+)\))?", r[0])
            assert m, f"{section}: unexpected variant cell {r[0]!r}"
            f = full[(m.group(1), m.group(2) or "-")]
            assert r[1:5] == [f[3], f[4], f[5], f[9]], f"{section} {r[0]}: {r[1:5]} vs the full table's " \
                                                       f"{[f[3], f[4], f[5], f[9]]}"


def test_cpu_summary_is_the_one_the_script_writes_from_the_committed_json() -> None:
    """The CPU summary block of RESULTS.md is `benchmarks/cpu_summary.py`'s output for the committed
    JSON files, and the full tables beside it are the ones `train_step.py --markdown` wrote."""
    tool = load_benchmark("cpu_summary")
    res = ROOT / "benchmarks/results/threads"
    run = res / "train_step_cpu_threads_scheduled.json"  # the summary is the latest idle run
    expected = tool.table(run, run, res / "train_step_cpu_threads_idle.json")  # with the run before
    text = (ROOT / "benchmarks/RESULTS.md").read_text(encoding="utf-8")
    block = text[text.index(tool.START) + len(tool.START):text.index(tool.END)].strip()
    assert block == expected, "rerun benchmarks/cpu_summary.py --write (see its docstring for the files)"
    for name in ("train_step_cpu_threads_scheduled.md", "train_step_cpu_gain_dense_5rounds.md",
                 "train_step_cpu_gain_grid4_5rounds.md", "train_step_cpu_threads_idle.md",
                 "train_step_cpu_threads.md"):
        full = (res / name).read_text(encoding="utf-8").strip()
        assert full in text, f"the full table {name} is not in RESULTS.md as written"


def test_study_tables_and_quotes_are_current_and_every_included_section_exists() -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(ROOT / "tools/make_studies.py"), "--check"], capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    text = (ROOT / "docs/outputs/study_quotes.md").read_text(encoding="utf-8")
    have = {n for kind, n in SECTION.findall(text) if kind == "start"}
    include = re.compile(r"""--8<--\s+["']?docs/outputs/study_quotes\.md:([a-z][-_0-9a-z]*)""")
    missing = [f"{page.relative_to(ROOT)}: {name}" for page in sorted((ROOT / "docs").rglob("*.md"))
               for name in include.findall(page.read_text(encoding="utf-8")) if name not in have]
    assert not missing, f"pages include study quote sections that tools/make_studies.py does not write: {missing}"


def test_no_snippet_include_shares_a_line_with_a_list_bullet() -> None:
    # pymdownx.snippets only replaces a `--8<--` line on its own: after "- " it stays literal text
    bad = [f"{page.relative_to(ROOT)}:{k}" for page in sorted((ROOT / "docs").rglob("*.md"))
           for k, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1)
           if re.match(r"\s*(?:[-*+]|\d+\.)\s+--8<--", line)]
    assert not bad, f"snippet includes after a list bullet render as literal text: {bad}"
