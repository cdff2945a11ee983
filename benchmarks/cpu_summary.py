"""The CPU summary table of benchmarks/RESULTS.md, from the JSON files `train_step.py` writes.

One row per variant and CRF graph: tinyseg and the PyTorch twin at 1 thread and with a second
setting (`--two`: 2 threads, or nothing set, ``--threads 0``), median ms per training step and
their ratio; what the second setting buys tinyseg (1-thread time ÷ its time); optionally the same
setting measured before (`--before-two`, tinyseg's ms; the column only with it); and tinyseg's
peak RSS. In bold: a ratio
above the target, 1.0× the twin's step, and a second setting more than 3 % slower than 1 thread.
With ``--write`` the table replaces the one between the ``cpu_summary`` snippet markers of
RESULTS.md (which the performance page includes), so no number in it is typed by hand.

    python benchmarks/cpu_summary.py --one benchmarks/results/threads/train_step_cpu_threads_idle.json \\
        --two benchmarks/results/threads/train_step_cpu_threads_idle.json --write
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import thread_label  # noqa: E402

START, END = "<!-- --8<-- [start:cpu_summary] -->", "<!-- --8<-- [end:cpu_summary] -->"


def rows(path: Path, one_thread: bool) -> dict[tuple[str, str], dict]:
    """(variant, graph) -> the summary row of a `train_step.py --json` file at 1 thread, or at the
    other setting (a file may hold both: ``--threads 1 0``)."""
    return {(r["variant"], r["graph"]): r for r in json.loads(path.read_text())["summary"]
            if (r["threads"] == 1) == one_thread}


def _bold(text: str, miss: bool) -> str:
    return f"**{text}**" if miss else text


def table(one: Path, two: Path, before_two: Path | None) -> str:
    """Markdown: per setting "tinyseg / PyTorch ms (ratio)", the gain of the second setting, bold misses."""
    r1, r2 = rows(one, True), rows(two, False)
    rb = rows(before_two, False) if before_two else {}
    label = thread_label(next(iter(r2.values()))["threads"])
    head = (f"| variant (CRF graph) | 1 thread: tinyseg / PyTorch ms (ratio) | {label}: tinyseg / PyTorch ms (ratio) "
            f"| {label}: tinyseg's gain |" + (f" {label}, before: tinyseg ms |" if before_two else "")
            + " tinyseg peak MB |")
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for key, b in r2.items():
        a = r1[key]
        name = f"`{key[0]}`" + ("" if key[1] == "-" else f" ({key[1]})")
        gain = a["tinyseg_step"] / b["tinyseg_step"]
        before = "-"
        if key in rb:
            before = f"{rb[key]['tinyseg_step']:.0f}"
        cells = [name]
        for r in (a, b):
            ratio = _bold(f"{r['ratio']:.2f}×", r["ratio"] > 1.0)
            cells.append(f"{r['tinyseg_step']:.0f} / {r['torch_step']:.0f} ({ratio})")
        cells += [_bold(f"{gain:.2f}×", gain < 1 / 1.03)] + ([before] if before_two else []) + [
            f"{max(a['tinyseg_rss'], b['tinyseg_rss']):.0f}"]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--one", type=Path, required=True, help="train_step.py --json with a --threads 1 run")
    ap.add_argument("--two", type=Path, required=True, help="train_step.py --json with a --threads 2 or 0 (nothing set) run")
    ap.add_argument("--before-two", type=Path, help="an earlier run of the --two setting, for the 'before' column")
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
