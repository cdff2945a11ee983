"""Before/after medians of alternating `train_step.py --json` runs of two checkouts (tinyseg only).

`train_step.py` times one checkout; for an A/B comparison run it from both checkouts in turn
(``PYTHONPATH=/path/to/before python benchmarks/train_step.py --impl tinyseg --repeats 1 --json
before_1.json``, then the same for after, and so on for each round) and give the files here.
For each (variant, graph) it prints the per-round medians of each side, the median of those,
and the change.

    python benchmarks/ab_summary.py --before before_*.json --after after_*.json
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def medians(paths: list[Path]) -> dict[tuple[str, str, int], list[float]]:
    out: dict[tuple[str, str, int], list[float]] = {}
    for path in paths:
        for r in json.loads(path.read_text())["summary"]:
            out.setdefault((r["variant"], r["graph"], r["threads"]), []).append(r["tinyseg_step"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", type=Path, nargs="+", required=True)
    ap.add_argument("--after", type=Path, nargs="+", required=True)
    a = ap.parse_args()
    before, after = medians(a.before), medians(a.after)
    print("| threads | variant | CRF graph | before ms/step | after ms/step | change | rounds before / after |")
    print("|---|---|---|---|---|---|---|")
    for key, b in before.items():
        if key not in after:
            continue
        mb, ma = statistics.median(b), statistics.median(after[key])
        rounds = ", ".join(f"{v:.1f}" for v in b) + " / " + ", ".join(f"{v:.1f}" for v in after[key])
        print(f"| {key[2]} | {key[0]} | {key[1]} | {mb:.1f} | {ma:.1f} | {100 * (ma / mb - 1):+.1f} % | {rounds} |")


if __name__ == "__main__":
    main()
