"""Time generating + preprocessing the default synthetic dataset (116 ROIs) on one CPU core.

    python benchmarks/data_pipeline.py [--runs 5] [--write-results]

Each run is a fresh process pinned to one core with BLAS/OpenMP threads set to 1 before NumPy is
imported; it times `load_dataset("phantom", cache=False)` (generation, crop, resize, enhancement,
splits) after the imports, and reports the import time separately. The median over the runs is
printed and, with `--write-results`, written to the "## Data pipeline" section of
benchmarks/RESULTS.md (other sections are left alone). Target: < 10 s.
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported, here and in the child processes

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Data pipeline"


def child() -> None:
    """One timed run, in its own process, on one core."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    t0 = time.perf_counter()
    from tinyseg.data import load_dataset  # noqa: PLC0415

    t1 = time.perf_counter()
    ds = load_dataset("phantom", cache=False)
    t2 = time.perf_counter()
    n = len(ds.train) + len(ds.val) + len(ds.test)
    print(json.dumps({"import_s": t1 - t0, "build_s": t2 - t1, "n_rois": n}))


def machine() -> str:
    from _common import cpu_model  # noqa: PLC0415  (benchmarks/ is sys.path[0] when run as a script)

    return f"{cpu_model()}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}"


def versions() -> str:
    import numpy  # noqa: PLC0415
    import pydicom  # noqa: PLC0415
    import scipy  # noqa: PLC0415

    import tinyseg  # noqa: PLC0415
    return (f"Python {platform.python_version()}, NumPy {numpy.__version__}, SciPy {scipy.__version__}, "
            f"pydicom {pydicom.__version__}, tinyseg {tinyseg.__version__}")


def write_section(text: str) -> None:
    """Replace (or append) this benchmark's section of RESULTS.md, keeping every other section."""
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    lines = old.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.rstrip() == SECTION), None)
    if start is None:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        new = "".join(lines[:start]) + text + ("\n" + "".join(lines[end:]) if end < len(lines) else "")
    tmp = RESULTS.with_name(RESULTS.name + ".tmp")
    tmp.write_text(new)
    os.replace(tmp, RESULTS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="separate processes to time (median reported)")
    parser.add_argument("--write-results", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child()
        return
    runs = []
    for _ in range(args.runs):
        out = subprocess.run([sys.executable, __file__, "--child"], capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"run: build {runs[-1]['build_s']:.2f} s, import {runs[-1]['import_s']:.2f} s", flush=True)
    build = statistics.median(r["build_s"] for r in runs)
    imp = statistics.median(r["import_s"] for r in runs)
    verdict = "meets" if build < 10 else "MISSES"
    summary = (f"median {build:.2f} s to generate and preprocess {runs[0]['n_rois']} ROIs on one core "
               f"(min {min(r['build_s'] for r in runs):.2f}, max {max(r['build_s'] for r in runs):.2f}; "
               f"import {imp:.2f} s extra) — {verdict} the < 10 s target")
    print(summary)
    if args.write_results:
        write_section(f"{SECTION}\n\n"
                      f"- What: `load_dataset(\"phantom\", cache=False)`: generate the 116 synthetic INbreast-like "
                      f"ROI canvases, crop, resize to 40×40, enhance, split (target < 10 s).\n"
                      f"- Machine: {machine()}; one core (`sched_setaffinity`), BLAS/OpenMP threads = 1.\n"
                      f"- Versions: {versions()}.\n"
                      f"- Command: `python benchmarks/data_pipeline.py --runs {args.runs} --write-results` "
                      f"({args.runs} separate processes).\n"
                      f"- Result: {summary}.\n")
        print(f"updated {RESULTS}")


if __name__ == "__main__":
    main()
