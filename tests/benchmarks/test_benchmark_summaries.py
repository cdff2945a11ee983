"""The scripts that turn benchmark JSON into the tables of benchmarks/RESULTS.md."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from helpers import load_benchmark  # tests/ is on sys.path (rootdir conftest)

ROOT = Path(__file__).resolve().parents[2]


_load = load_benchmark


def _row(variant: str, graph: str, threads: int, ts: float, torch: float, rss: float = 100.0) -> dict:
    return {"variant": variant, "graph": graph, "threads": threads, "tinyseg_step": ts, "torch_step": torch,
            "ratio": ts / torch, "tinyseg_rss": rss}


def test_cpu_summary_gives_each_variant_both_settings_the_gain_and_marks_the_misses(tmp_path: Path) -> None:
    cpu_summary = _load("cpu_summary")
    one, two, before = tmp_path / "one.json", tmp_path / "two.json", tmp_path / "before.json"
    one.write_text(json.dumps({"summary": [_row("fcn", "-", 1, 10, 20), _row("fcn_crf", "dense", 1, 30, 20, 150),
                                           _row("multi_fcn", "-", 1, 40, 50)]}))
    two.write_text(json.dumps({"summary": [_row("fcn", "-", 0, 9, 10), _row("fcn_crf", "dense", 0, 25, 20, 120),
                                           _row("multi_fcn", "-", 0, 42, 50)]}))
    before.write_text(json.dumps({"summary": [_row("fcn", "-", 0, 12, 10)]}))
    lines = cpu_summary.table(one, two, before).splitlines()
    assert lines[0].startswith("| variant (CRF graph) | 1 thread: tinyseg / PyTorch ms (ratio) | nothing set: ")
    assert lines[2] == "| `fcn` | 10 / 20 (0.50×) | 9 / 10 (0.90×) | 1.11× | 12 | 100 |"
    assert lines[3] == "| `fcn_crf` (dense) | 30 / 20 (**1.50×**) | 25 / 20 (**1.25×**) | 1.20× | - | 150 |"
    assert lines[4] == "| `multi_fcn` | 40 / 50 (0.80×) | 42 / 50 (0.84×) | **0.95×** | - | 100 |"


def test_ab_summary_takes_the_median_of_each_sides_rounds(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    ab_summary = _load("ab_summary")
    files = {}
    for side, values in (("before", (10.0, 30.0, 20.0)), ("after", (9.0, 8.0, 100.0))):
        files[side] = []
        for k, v in enumerate(values):
            path = tmp_path / f"{side}_{k}.json"
            path.write_text(json.dumps({"summary": [_row("fcn", "-", 1, v, 1.0)]}))
            files[side].append(str(path))
    sys.argv = ["ab_summary", "--before", *files["before"], "--after", *files["after"]]
    ab_summary.main()
    out = capsys.readouterr().out.splitlines()
    assert out[2] == "| 1 | fcn | - | 20.0 | 9.0 | -55.0 % | 10.0, 30.0, 20.0 / 9.0, 8.0, 100.0 |"
