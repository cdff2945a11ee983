"""Regenerate what the docs show from the lessons: figures, printed outputs and wall times.

Each ``lessons/NN_topic.py`` writes its figures as ``NN_*.png`` through ``tinyseg.utils.savefig``
(fixed size and dpi, seeded data, ``metadata={"Software": None}``), so a re-run rewrites
byte-identical files and the committed figures do not churn. For every lesson this script runs

1. the default run with ``--out docs/figures``: its figures go to the site, its printed output
   (stdout: the numbered findings) to ``docs/outputs/NN_topic.txt``;
2. the ``--fast`` run with a temporary ``--out``, so that its figures never overwrite the
   default ones: its output goes to ``docs/outputs/NN_topic.fast.txt``;
3. the default run's findings, one snippet section each, to ``docs/outputs/NN_topic.findings.txt``
   (`findings_sections`), which the lesson pages include beside the text that discusses them.

Paths in the outputs are rewritten to the lesson's default output folder
(``runs/lessons/NN_topic/``), so a page shows what a reader sees when running the lesson.
With ``--times`` the wall time of both runs is written to ``docs/outputs/times.json`` and the
table ``docs/outputs/times.md`` that the home page and README quote; measure on an otherwise idle
machine. Lessons run one at a time, in order. Docs builds never run this; run it after changing a lesson, then commit
``docs/figures/`` and ``docs/outputs/``.

The diagrams (``docs/figures/diagram_*.png``, drawn by ``tools/make_diagrams.py``, no training)
are redrawn first.

Usage:
    python tools/make_figures.py                 # the diagrams and every lesson
    python tools/make_figures.py diagrams        # only the diagrams
    python tools/make_figures.py 01 03           # only lessons 01 and 03
    python tools/make_figures.py --times         # also rewrite the wall-time table
    python tools/make_figures.py findings        # only re-cut docs/outputs/NN_topic.findings.txt
    python tools/make_figures.py --device gpu    # forwarded to each lesson
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ROOT / "lessons"
FIGURES = ROOT / "docs" / "figures"
OUTPUTS = ROOT / "docs" / "outputs"


def _digests(prefix: str) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(FIGURES.glob(f"{prefix}_*.png"))}


def normalise(text: str, out: Path, lesson: str) -> str:
    """Rewrite the run's output folder (and the checkout's path) to what a reader's run prints."""
    default = f"runs/lessons/{lesson}"
    for path in (str(out.resolve()), str(out)):
        text = text.replace(path + os.sep, default + "/").replace(path, default)
    return text.replace(str(ROOT) + os.sep, "")


WIDTH = 86  # columns of an output line on the page: the content column holds about 88


def wrap(text: str, width: int = WIDTH) -> str:
    """Wrap long printed lines for the page, continuing under the text of a numbered finding."""
    lines = []
    for line in text.splitlines():
        if len(line) <= width:
            lines.append(line)
            continue
        lead = re.match(r"\s*(\[\d+\] )?", line).end()
        lines.extend(textwrap.wrap(line, width, subsequent_indent=" " * max(lead, 4),
                                   break_long_words=False, break_on_hyphens=False))
    return "\n".join(lines) + ("\n" if text.endswith("\n") else "")


def _run(lesson: Path, out: Path, extra: list[str], env: dict[str, str]) -> tuple[str, float]:
    cmd = [sys.executable, str(lesson), "--out", str(out), *extra]
    shown = " ".join(str(Path(c).relative_to(ROOT)) if c.startswith(str(ROOT)) else c for c in cmd)
    print(f"$ {shown}", flush=True)
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-3000:] + result.stderr[-3000:])
        raise SystemExit(f"{lesson.name} {' '.join(extra)} failed (exit {result.returncode})")
    return wrap(normalise(result.stdout, out, lesson.stem)), seconds


FINDING = re.compile(r"\[(\d+)\] ")


def findings_sections(text: str) -> str:
    """The printed output cut into one snippet section per numbered finding (``f1``, ``f2``, …).

    A finding is a line starting ``[N] `` and the indented lines that continue it (`wrap`'s
    continuation, `_continues`); pages include one with ``--8<-- "docs/outputs/NN_topic.findings.txt:fN"``
    beside the text that discusses it. Lines outside findings (progress, headers) are left out.
    """
    sections: list[tuple[str, list[str]]] = []
    inside = False  # the last line belongs to a finding
    for line in text.splitlines():
        m = FINDING.match(line)
        if m:
            sections.append((m.group(1), [line]))
            inside = True
        elif inside and line.startswith(" ") and _continues(line):
            sections[-1][1].append(line)
        else:
            inside = False
    out = []
    for number, lines in sections:
        out += [f"--8<-- [start:f{number}]", *lines, f"--8<-- [end:f{number}]"]
    return "\n".join(out) + "\n"


def _continues(line: str) -> bool:
    """An indented line that continues a wrapped finding: not a table row (two spaces inside),
    not a "saved FIGURE" note, not blank."""
    text = line.strip()
    return bool(text) and "  " not in text and not text.startswith("saved ")


def write_findings(stem: str) -> None:
    """``docs/outputs/<stem>.findings.txt`` from ``docs/outputs/<stem>.txt`` (no lesson run)."""
    _write(OUTPUTS / f"{stem}.findings.txt", findings_sections((OUTPUTS / f"{stem}.txt").read_text()))


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def machine() -> str:
    """One line naming the machine the times were measured on."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _common import cpu_model  # noqa: PLC0415  (the benchmarks' one description of the CPU)

    cpu = cpu_model()
    threads = os.environ.get("OMP_NUM_THREADS") or os.environ.get("OPENBLAS_NUM_THREADS") or "default"
    return f"{cpu}, {os.cpu_count()} cores, BLAS threads: {threads}, Python {platform.python_version()}"


def times_table(times: dict[str, dict[str, float]], where: str) -> str:
    """The markdown table of lesson wall times that pages include."""
    def fmt(s: float) -> str:
        return f"{s:.0f} s" if s < 90 else f"{s / 60:.1f} min"

    def title(path: Path) -> str:  # "Lesson 04 — adversarial training [ZX18 Eq. 7-8]." -> "adversarial training"
        first = path.read_text().split("\n", 1)[0].split("—", 1)[-1]
        return re.sub(r"\s*\[ZX18[^\]]*\]", "", first).strip().rstrip(".") or path.stem

    titles = {p.stem: title(p) for p in sorted(LESSONS.glob("[0-9][0-9]_*.py"))}
    rows = ["| lesson | rebuilds | default run | `--fast` |", "|---|---|---|---|"]
    for stem in sorted(times):
        link = f"[{stem[:2]}](lessons/{stem}.md)"
        rows.append(f"| {link} | {titles.get(stem, stem)} | {fmt(times[stem]['default'])} "
                    f"| {fmt(times[stem]['fast'])} |")
    return "\n".join(rows) + f"\n\n*Wall time of one cold run each (data cache included), on {where}; " \
                             "measured by `python tools/make_figures.py --times`.*\n"


README_START, README_END = "<!-- lesson-times:start -->", "<!-- lesson-times:end -->"


def readme_table(times: dict[str, dict[str, float]]) -> str:
    """README's lesson table: the same times as docs/outputs/times.md, with the script names."""
    table = times_table(times, "")
    rows = [line for line in table.splitlines() if line.startswith("|")]
    rows = [re.sub(r"\[(\d\d)\]\(lessons/(\w+)\.md\)", r"`\2.py`", row) for row in rows]
    return "\n".join(rows)


def write_readme_times(times: dict[str, dict[str, float]], where: str) -> None:
    """Replace README's lesson table (between its two markers) with the measured times."""
    readme = ROOT / "README.md"
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise SystemExit(f"README.md lacks the markers {README_START} / {README_END}")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    block = f"{README_START}\n{readme_table(times)}\n\n*Wall time of one cold run each, on {where}.*\n{README_END}"
    _write(readme, head + block + tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="lesson numbers to run, e.g. 01 03, 'diagrams', or 'findings' "
                                                   "(default: all)")
    parser.add_argument("--device", default=None, help="passed on to every lesson (cpu|gpu|auto)")
    parser.add_argument("--times", action="store_true", help="write the wall-time table docs/outputs/times.md")
    args = parser.parse_args(argv)

    if args.only == ["findings"]:  # re-cut the committed outputs, run nothing
        for path in sorted(LESSONS.glob("[0-9][0-9]_*.py")):
            write_findings(path.stem)
        return 0
    FIGURES.mkdir(parents=True, exist_ok=True)
    if not args.only or "diagrams" in args.only:
        before = _digests("diagram")
        result = subprocess.run([sys.executable, str(ROOT / "tools" / "make_diagrams.py"), "--out", str(FIGURES)],
                                cwd=ROOT, env=dict(os.environ, MPLBACKEND="Agg"), capture_output=True, text=True)
        if result.returncode != 0:
            sys.stderr.write(result.stdout[-3000:] + result.stderr[-3000:])
            print("tools/make_diagrams.py failed", file=sys.stderr)
            return 1
        for name, digest in _digests("diagram").items():
            print(f"    {name}: {'new' if name not in before else 'unchanged' if before[name] == digest else 'CHANGED'}")
        args.only = [n for n in args.only if n != "diagrams"]
        if not args.only and "diagrams" in (argv or sys.argv[1:]):
            return 0

    lessons = sorted(LESSONS.glob("[0-9][0-9]_*.py"))
    if args.only:
        lessons = [p for p in lessons if p.name[:2] in args.only]
        missing = set(args.only) - {p.name[:2] for p in lessons}
        if missing:
            parser.error(f"no lesson numbered {', '.join(sorted(missing))} in {LESSONS}")
    if not lessons:
        parser.error(f"no lessons/NN_*.py found in {LESSONS}")

    FIGURES.mkdir(parents=True, exist_ok=True)
    OUTPUTS.mkdir(parents=True, exist_ok=True)
    times_path = OUTPUTS / "times.json"
    saved = json.loads(times_path.read_text()) if times_path.exists() else {}
    times, where = saved.get("lessons", {}), saved.get("machine", "")
    extra = ["--device", args.device] if args.device else []
    for lesson in lessons:
        prefix = lesson.name[:2]
        with tempfile.TemporaryDirectory() as cache:
            # A fresh data cache for each lesson: the times include building the data, as a reader's first run does.
            env = dict(os.environ, MPLBACKEND="Agg", TINYSEG_CACHE=cache)
            before = _digests(prefix)
            text, seconds = _run(lesson, FIGURES, extra, env)
            _write(OUTPUTS / f"{lesson.stem}.txt", text)
            write_findings(lesson.stem)
            after = _digests(prefix)
            if not after:
                print(f"{lesson.name} wrote no {prefix}_*.png into {FIGURES}", file=sys.stderr)
                return 1
            for name, digest in after.items():
                state = "new" if name not in before else ("unchanged" if before[name] == digest else "CHANGED")
                print(f"    {name}: {state}")
            with tempfile.TemporaryDirectory() as out:
                fast_text, fast_seconds = _run(lesson, Path(out), ["--fast", *extra], env)
            _write(OUTPUTS / f"{lesson.stem}.fast.txt", fast_text)
        print(f"    {lesson.name}: {seconds:.1f} s, --fast {fast_seconds:.1f} s")
        if args.times:
            times[lesson.stem] = {"default": round(seconds, 1), "fast": round(fast_seconds, 1)}
    if args.times:
        where = machine() + (f", --device {args.device}" if args.device else "")
        _write(times_path, json.dumps({"machine": where, "lessons": times}, indent=2, sort_keys=True) + "\n")
        _write(OUTPUTS / "times.md", times_table(times, where))
        write_readme_times(times, where)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
