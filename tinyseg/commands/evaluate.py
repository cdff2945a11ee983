"""`tinyseg evaluate`: score a run on a test split and write metrics.json."""
from __future__ import annotations

import argparse
import json
import re

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
    own = spec == t["data"] and seed == t["data_seed"]
    # The run's own test split goes to metrics.json; another dataset gets its own file, so the
    # run's recorded result is never overwritten by a different evaluation.
    name = "metrics.json" if own else f"metrics_{re.sub(r'[^A-Za-z0-9._-]+', '_', spec)}_seed{seed}.json"
    result = evaluate_run(r, load_dataset(spec, data_seed=seed, val_frac=t["val_frac"]), r.path, metrics_name=name)
    print(f"wrote {r.path / name}")
    print(json.dumps(result["test"], indent=2))
    print(f"prior-only baseline pooled Dice: {result['prior_baseline']['dice_pooled']:.4f}")
    return 0
