"""`tinyseg table2`: the Table-2 reproduction (all variants × seeds), resumable."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..config import CHOICES
from ..data.datasets import data_help
from . import BOXES_HELP

HELP = "reproduce Table 2: train every variant for every seed, write table2.md / table2.json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="phantom", help=data_help("phantom"))
    p.add_argument("--seeds", type=int, default=3, help="seeds per variant (default 3)")
    p.add_argument("--epochs", type=int, default=100, help="epoch budget per run (default 100)")
    p.add_argument("--variants", nargs="+", default=None, metavar="V", help=f"subset of: {' '.join(CHOICES['variant'])}")
    p.add_argument("--out", required=True, help="output folder (runs/ inside it; an interrupted table resumes)")
    p.add_argument("--fast", action="store_true", help="16 training masses, fewer CRF iterations (smoke test)")
    p.add_argument("--device", choices=CHOICES["device"], default="auto")
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--boxes", choices=CHOICES["boxes"], default="tight", help=BOXES_HELP)
    p.add_argument("--crf-graph", choices=CHOICES["crf_graph"], default="dense")
    p.add_argument("--jobs", type=int, default=1,
                   help="runs trained at once, each in its own process (default 1: one after another)")
    p.add_argument("--threads-per-job", type=int, default=None, metavar="T",
                   help="BLAS/OpenMP threads of each worker process (default: cores // jobs)")
    p.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    from ..experiments import run_table2

    table = run_table2(args.data, args.seeds, args.epochs, args.variants, args.out, fast=args.fast,
                       device=args.device, data_seed=args.data_seed, boxes=args.boxes, quiet=args.quiet, jobs=args.jobs,
                       threads_per_job=args.threads_per_job, crf_graph=args.crf_graph)
    print((Path(args.out) / "table2.md").read_text())
    return 0 if table["rows"] else 1
