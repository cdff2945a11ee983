"""`tinyseg study`: what one component buys, beyond Table 2 (resumable, `--jobs`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..config import CHOICES

HELP = "run a study of what one component buys (crf: the CRF at inference as the FCN's quality varies)"
STUDIES = ("crf",)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", choices=STUDIES, help="which study: crf (the CRF on fixed unaries)")
    p.add_argument("--data", default="phantom", help="data spec (default phantom)")
    p.add_argument("--boxes", nargs="+", choices=CHOICES["boxes"], default=list(CHOICES["boxes"]),
                   help="box protocols to run (default: tight drawn)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per protocol (default 3)")
    p.add_argument("--epochs", type=int, nargs="+", default=None, metavar="E",
                   help="FCN epoch budgets (default 1 3 10 30)")
    p.add_argument("--out", required=True, help="output folder (runs/ inside it; an interrupted study resumes)")
    p.add_argument("--fast", action="store_true", help="16 training masses, budgets of at most 2 epochs (smoke test)")
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once, each in its own process (default 1)")
    p.add_argument("--threads-per-job", type=int, default=None, metavar="T",
                   help="BLAS/OpenMP threads of each worker process (default: cores // jobs)")
    p.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    from ..studies import CRF_EPOCHS, run_crf_study

    run_crf_study(args.data, args.boxes, args.seeds, args.epochs or CRF_EPOCHS, args.out, fast=args.fast,
                  data_seed=args.data_seed, jobs=args.jobs, threads_per_job=args.threads_per_job, quiet=args.quiet)
    print((Path(args.out) / "crf_study.md").read_text())
    return 0
