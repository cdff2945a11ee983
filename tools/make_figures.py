"""Regenerate the docs figures: run every lesson with ``--out docs/figures``.

Each ``lessons/NN_topic.py`` writes its figures as ``NN_*.png`` through ``tinyseg.utils.savefig``
(fixed size and dpi, seeded data, ``metadata={"Software": None}``), so a re-run rewrites
byte-identical files and the committed figures do not churn. Lessons run one at a time, in order,
with their default settings (not ``--fast``: the docs show the real runs); run this after changing
a lesson, then commit ``docs/figures/``. Docs builds never run it.

Usage:
    python tools/make_figures.py                 # every lesson
    python tools/make_figures.py 01 03           # only lessons 01 and 03
    python tools/make_figures.py --device gpu    # forwarded to each lesson
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ROOT / "lessons"
FIGURES = ROOT / "docs" / "figures"


def _digests(prefix: str) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(FIGURES.glob(f"{prefix}_*.png"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="lesson numbers to run, e.g. 01 03 (default: all)")
    parser.add_argument("--device", default=None, help="passed on to every lesson (cpu|gpu|auto)")
    args = parser.parse_args(argv)

    lessons = sorted(LESSONS.glob("[0-9][0-9]_*.py"))
    if args.only:
        lessons = [p for p in lessons if p.name[:2] in args.only]
        missing = set(args.only) - {p.name[:2] for p in lessons}
        if missing:
            parser.error(f"no lesson numbered {', '.join(sorted(missing))} in {LESSONS}")
    if not lessons:
        parser.error(f"no lessons/NN_*.py found in {LESSONS}")

    FIGURES.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, MPLBACKEND="Agg")
    for lesson in lessons:
        prefix = lesson.name[:2]
        before = _digests(prefix)
        cmd = [sys.executable, str(lesson), "--out", str(FIGURES)]
        if args.device:
            cmd += ["--device", args.device]
        print(f"$ {' '.join(str(Path(c).relative_to(ROOT)) if c.startswith(str(ROOT)) else c for c in cmd)}",
              flush=True)
        start = time.perf_counter()
        result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            sys.stderr.write(result.stdout[-3000:] + result.stderr[-3000:])
            print(f"{lesson.name} failed (exit {result.returncode})", file=sys.stderr)
            return 1
        after = _digests(prefix)
        if not after:
            print(f"{lesson.name} wrote no {prefix}_*.png into {FIGURES}", file=sys.stderr)
            return 1
        for name, digest in after.items():
            state = "new" if name not in before else ("unchanged" if before[name] == digest else "CHANGED")
            print(f"    {name}: {state}")
        print(f"    {lesson.name} took {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
