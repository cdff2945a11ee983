"""The CPU summary table of benchmarks/RESULTS.md, from the JSON files `train_step.py` writes.

One row per variant and CRF graph: tinyseg and the PyTorch twin at 1 and at 2 threads (median
ms per training step, their ratio), the 2-thread ratio of an earlier run for comparison, and
tinyseg's peak RSS. A 2-thread ratio above the target, 1.0× the twin's step, is in bold.
With ``--write`` the table replaces the one between the ``cpu_summary``
snippet markers of RESULTS.md (which the performance page includes), so no number in it is
typed by hand.

    python benchmarks/cpu_summary.py --one results/train_step_cpu.json \\
        --two results/train_step_cpu_2threads.json \\
        --before-two results/train_step_cpu_2threads_before.json --write
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
START, END = "<!-- --8<-- [start:cpu_summary] -->", "<!-- --8<-- [end:cpu_summary] -->"


def rows(path: Path) -> dict[tuple[str, str], dict]:
    """(variant, graph) -> the summary row of one `train_step.py --json` file."""
    return {(r["variant"], r["graph"]): r for r in json.loads(path.read_text())["summary"]}


def table(one: Path, two: Path, before_two: Path | None) -> str:
    """Markdown: per thread count "tinyseg / PyTorch ms (ratio)", bold where 2 threads exceed 1.0×."""
    r1, r2 = rows(one), rows(two)
    rb = rows(before_two) if before_two else {}
    head = ("| variant (CRF graph) | 1 thread: tinyseg / PyTorch ms (ratio) | 2 threads: tinyseg / PyTorch ms "
            "(ratio) | 2 threads: ratio before | tinyseg peak MB |")
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for key, b in r2.items():
        a = r1[key]
        name = f"`{key[0]}`" + ("" if key[1] == "-" else f" ({key[1]})")
        before = f"{rb[key]['ratio']:.2f}×" if key in rb else "-"
        ratio2 = f"{b['ratio']:.2f}×" if b["ratio"] <= 1.0 else f"**{b['ratio']:.2f}×**"
        out.append(f"| {name} | {a['tinyseg_step']:.0f} / {a['torch_step']:.0f} ({a['ratio']:.2f}×) "
                   f"| {b['tinyseg_step']:.0f} / {b['torch_step']:.0f} ({ratio2}) | {before} "
                   f"| {max(a['tinyseg_rss'], b['tinyseg_rss']):.0f} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--one", type=Path, required=True, help="train_step.py --json at --threads 1")
    ap.add_argument("--two", type=Path, required=True, help="train_step.py --json at --threads 2")
    ap.add_argument("--before-two", type=Path, help="an earlier 2-thread run, for the 'ratio before' column")
    ap.add_argument("--write", action="store_true", help="replace the cpu_summary table in RESULTS.md")
    a = ap.parse_args()
    md = table(a.one, a.two, a.before_two)
    if not a.write:
        print(md)
        return
    results = HERE / "RESULTS.md"
    text = results.read_text()
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{results} has no {START} ... {END} block to replace")
    results.write_text(pattern.sub(lambda _: f"{START}\n{md}\n{END}", text, count=1))
    print(f"wrote the cpu_summary table of {results}")


if __name__ == "__main__":
    main()
