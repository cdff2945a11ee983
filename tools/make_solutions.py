"""Regenerate the printed output of every exercise solution that the lesson pages show.

Each ``lessons/solutions/NN_name.py`` is run as a reader runs it (``python
lessons/solutions/NN_name.py``, from a temporary working folder, the Agg backend), one at a time;
its stdout goes to ``docs/outputs/solutions/NN_name.txt``, which the lesson page includes under
the solution's source. The text is normalised and wrapped as ``tools/make_figures.py`` does for
the lessons (the checkout's path removed; long lines wrapped), but to 84 columns: the solutions
sit in an admonition inside a list item, narrower than the content column. A solution that exits
non-zero (its claim does not hold) stops the script and writes nothing for it.

``02_conv_timing`` prints wall times, so its output depends on the machine and changes with every
run; the others print the same text on every run. Docs builds never run this; run it after
changing a solution, then commit ``docs/outputs/solutions/``.

Usage:
    python tools/make_solutions.py                 # every solution
    python tools/make_solutions.py 03 05_prob      # those whose name starts so
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_figures import normalise, wrap  # noqa: E402  (tools/ is not a package)

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "lessons" / "solutions"
OUTPUTS = ROOT / "docs" / "outputs" / "solutions"
WIDTH = 84  # columns of an output line inside a solution block (tests/test_solutions.py)


def run(script: Path) -> tuple[str, float]:
    """Run one solution from a fresh working folder; its normalised, wrapped stdout and seconds."""
    with tempfile.TemporaryDirectory() as cwd:
        env = dict(os.environ, MPLBACKEND="Agg")
        start = time.perf_counter()
        result = subprocess.run([sys.executable, str(script)], cwd=cwd, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            sys.stderr.write(result.stdout[-3000:] + result.stderr[-3000:])
            raise SystemExit(f"{script.name} failed (exit {result.returncode})")
        return wrap(normalise(result.stdout, Path(cwd), script.stem), WIDTH), seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="name prefixes, e.g. 03 or 05_prob (default: all)")
    args = parser.parse_args(argv)
    scripts = sorted(SOLUTIONS.glob("[0-9][0-9]_*.py"))
    if args.only:
        scripts = [p for p in scripts if any(p.stem.startswith(o) for o in args.only)]
    if not scripts:
        parser.error(f"no solution in {SOLUTIONS} matches {' '.join(args.only)}")
    OUTPUTS.mkdir(parents=True, exist_ok=True)
    for script in scripts:
        text, seconds = run(script)
        path = OUTPUTS / f"{script.stem}.txt"
        state = "new" if not path.exists() else "unchanged" if path.read_text() == text else "CHANGED"
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        print(f"{script.name}: {seconds:.1f} s, {path.relative_to(ROOT)} {state}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
