"""Which CUDA fast paths passed their checks on a GPU: the records for `tinyseg.cuda.VERIFIED`.

Reads what ``benchmarks/gpu_check.sh`` leaves in its output folder — the pytest JUnit XML of the GPU
verification run and ``fast_paths_taken.jsonl`` (one line per test: the fast paths it exercised) —
and decides, for every registered fast path, whether it is verified: it was exercised by at least
one passing test in float32 and one in float64 (Adam: by its own parity test), and no test that
exercised it failed. Prints a table and writes ``verified.json``: name -> {what, gpu, date,
command}, ready to be copied into `tinyseg.cuda.registry.VERIFIED` by a person who has read the
log. Nothing is switched on automatically.

Usage:
    python benchmarks/gpu_verified.py OUT_DIR [--gpu "NVIDIA H200"] [--command "..."]
"""
from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def outcomes(junit: Path) -> dict[str, str]:
    """pytest node id -> 'passed' | 'failed' | 'skipped', from a JUnit XML file."""
    result = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        path = case.get("classname", "").replace(".", "/") + ".py"
        node = f"{path}::{case.get('name')}"
        tags = {child.tag for child in case}
        result[node] = "failed" if tags & {"failure", "error"} else "skipped" if "skipped" in tags else "passed"
    return result


def verdicts(taken_lines: list[dict], results: dict[str, str], names: list[str]) -> dict[str, dict]:
    """Per fast path: the passing and failing tests that exercised it, and whether it is verified."""
    out = {name: {"passed": [], "failed": []} for name in names}
    for line in taken_lines:
        status = results.get(line["test"], "failed")  # a test missing from the XML did not pass
        for name in line["taken"]:
            if name in out and status != "skipped":
                out[name]["passed" if status == "passed" else "failed"].append(line["test"])
    for name, v in out.items():
        dtypes = {d for d in ("float32", "float64") if any(d in t for t in v["passed"])}
        both = dtypes == {"float32", "float64"} or any("training_step" in t for t in v["passed"])
        v["verified"] = bool(v["passed"]) and not v["failed"] and both
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="gpu_check.sh's output folder")
    parser.add_argument("--gpu", default="", help="the GPU's name, as nvidia-smi prints it")
    parser.add_argument("--command", default="benchmarks/gpu_check.sh", help="the command that ran the tests")
    args = parser.parse_args(argv)

    import tinyseg.cuda as tc  # registers every fast path (needs no GPU)

    junit, taken = args.out / "pytest_gpu.xml", args.out / "fast_paths_taken.jsonl"
    if not junit.exists() or not taken.exists():
        print(f"need {junit} and {taken} (run benchmarks/gpu_check.sh first)", file=sys.stderr)
        return 2
    lines = [json.loads(line) for line in taken.read_text().splitlines() if line.strip()]
    result = verdicts(lines, outcomes(junit), sorted(tc.FAST_PATHS))
    records = {}
    for name, v in result.items():
        mark = "VERIFIED" if v["verified"] else ("FAILED" if v["failed"] else "not exercised")
        print(f"{name:18} {mark:14} passed {len(v['passed']):3d}  failed {len(v['failed']):3d}")
        for test in v["failed"][:5]:
            print(f"    failed: {test}")
        if v["verified"]:
            records[name] = {"what": f"{len(v['passed'])} tests of tests/cuda/test_gpu_fast_paths.py and "
                                     "tests/cuda/test_gpu_parity.py that ran it, none failing",
                             "gpu": args.gpu, "date": date.today().isoformat(), "command": args.command}
    (args.out / "verified.json").write_text(json.dumps(records, indent=2) + "\n")
    print(f"wrote {args.out / 'verified.json'} ({len(records)} of {len(result)} fast paths verified)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
