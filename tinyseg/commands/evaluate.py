"""`tinyseg evaluate`: score a run on a test split and write metrics.json."""
from __future__ import annotations

import argparse
import json

HELP = "evaluate a trained run on its (or another) dataset's test split"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory written by `tinyseg train`")
    p.add_argument("--data", default=None, help="data spec to evaluate on (default: the run's own)")
    p.add_argument("--data-seed", type=int, default=None)
    p.add_argument("--device", default="cpu")


def run(args: argparse.Namespace) -> int:
    from ..data import load_dataset
    from ..evaluation import evaluate_run
    from ..train import load_run

    r = load_run(args.run, device=args.device)
    t = r.config["train"]
    spec = args.data or t["data"]
    seed = t["data_seed"] if args.data_seed is None else args.data_seed
    result = evaluate_run(r, load_dataset(spec, data_seed=seed, val_frac=t["val_frac"]), r.path)
    print(json.dumps(result["test"], indent=2))
    print(f"prior-only baseline pooled Dice: {result['prior_baseline']['dice_pooled']:.4f}")
    return 0
