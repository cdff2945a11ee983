"""`tinyseg study`: what one component buys, beyond Table 2 (resumable, `--jobs`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..config import CHOICES
from ..data.datasets import data_help

HELP = "run a study of what one component buys: crf, adversarial or multiscale"
STUDIES = ("crf", "adversarial", "multiscale")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", choices=STUDIES,
                   help="crf: the CRF at inference on FCNs of growing quality, tight and drawn boxes; "
                        "adversarial: Dice under attack against the training ε, and with fewer training masses; "
                        "multiscale: multi_fcn against fcn per mass-size third, drawn boxes")
    p.add_argument("--data", default="phantom", help=data_help("phantom"))
    p.add_argument("--boxes", nargs="+", choices=CHOICES["boxes"], default=None,
                   help="box protocol(s) (default: tight drawn for crf, tight for adversarial, drawn for multiscale)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per model (default 3)")
    p.add_argument("--epochs", type=int, default=30,
                   help="epoch budget (default 30; crf: the largest FCN budget of 1 3 10 30)")
    p.add_argument("--out", required=True, help="output folder (runs/ inside it; an interrupted study resumes)")
    p.add_argument("--fast", action="store_true", help="16 training masses, at most 2 epochs (a smoke test)")
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once, each in its own process (default 1)")
    p.add_argument("--threads-per-job", type=int, default=None, metavar="T",
                   help="BLAS/OpenMP threads of each worker process (default: cores // jobs)")
    p.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    from .. import studies

    common = dict(data=args.data, seeds=args.seeds, out=args.out, fast=args.fast, data_seed=args.data_seed,
                  jobs=args.jobs, threads_per_job=args.threads_per_job, quiet=args.quiet)
    if args.study == "crf":
        grid = [e for e in studies.CRF_EPOCHS if e < args.epochs] + [args.epochs]
        studies.run_crf_study(protocols=args.boxes or ("tight", "drawn"), epochs_grid=grid, **common)
    elif args.study == "adversarial":
        studies.run_adversarial_study(epochs=args.epochs, boxes=(args.boxes or ["tight"])[0], **common)
    else:
        studies.run_multiscale_study(epochs=args.epochs, boxes=(args.boxes or ["drawn"])[0], **common)
    print((Path(args.out) / f"{args.study}_study.md").read_text())
    return 0
