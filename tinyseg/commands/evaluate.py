"""`tinyseg evaluate`: score a run on a test split and write metrics.json."""
from __future__ import annotations

import argparse
import json
import re

from ..config import CHOICES
from ..data.datasets import data_help

HELP = "evaluate a trained run on its (or another) dataset's test split"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory written by `tinyseg train`")
    p.add_argument("--data", default=None, help=data_help(None) + " (default: the run's own)")
    p.add_argument("--data-seed", type=int, default=None)
    p.add_argument("--boxes", choices=CHOICES["boxes"], default=None,
                   help="ROI boxes to evaluate on, tight or drawn (default: the run's own, from its config.json)")
    p.add_argument("--device", choices=CHOICES["device"], default="cpu")
    p.add_argument("--no-figures", action="store_true", help="write metrics only, no PNG figures")


def run(args: argparse.Namespace) -> int:
    from ..data import load_dataset
    from ..evaluation import evaluate_run
    from ..runs import load_run

    r = load_run(args.run, device=args.device)
    t = r.config["train"]
    spec = args.data or t["data"]
    seed = t["data_seed"] if args.data_seed is None else args.data_seed
    run_boxes = t.get("boxes", "tight")  # runs written before the option existed used tight boxes
    boxes = run_boxes if args.boxes is None else args.boxes
    own = spec == t["data"] and seed == t["data_seed"] and boxes == run_boxes
    # The run's own test split goes to metrics.json; another dataset gets its own file, so the
    # run's recorded result is never overwritten by a different evaluation.
    name = "metrics.json" if own else (f"metrics_{re.sub(r'[^A-Za-z0-9._-]+', '_', spec)}_seed{seed}"
                                       f"{'_drawn' if boxes == 'drawn' else ''}.json")
    dataset = load_dataset(spec, data_seed=seed, val_frac=t["val_frac"], boxes=boxes)
    pred = r.predict(dataset.test.images)  # once, for the metrics and the figures
    result = evaluate_run(r, dataset, r.path, metrics_name=name, pred=pred)
    print(f"wrote {r.path / name}")
    if not args.no_figures:
        for path in write_figures(r, dataset, name.replace(".json", ""), pred):
            print(f"wrote {path}")
    print(json.dumps(result["test"], indent=2))
    print(f"prior-only baseline pooled Dice: {result['prior_baseline']['dice_pooled']:.4f}")
    return 0


def write_figures(run, dataset, stem: str, pred) -> list:  # noqa: ANN001
    """Test contours (Fig. 3 style), trimap accuracy against the prior baseline (Fig. 4 style) and
    the training curves of `run`, as PNGs in the run directory."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .. import metrics, viz
    from ..data import prior_baseline_predict
    from ..utils import savefig

    test = dataset.test
    base = prior_baseline_predict(run.stats["prior"], len(test))
    k = min(6, len(test))
    out = [savefig(viz.contours(test.images[:k], test.labels[:k], {run.variant: pred[:k], "prior only": base[:k]}),
                   run.path / f"{stem}_contours.png"),
           savefig(viz.trimap_curves({run.variant: metrics.trimap_accuracy(pred, test.labels),
                                      "prior only": metrics.trimap_accuracy(base, test.labels)}),
                   run.path / f"{stem}_trimap.png")]
    history = run.path / "history.csv"
    if history.exists():
        with open(history) as f:
            rows = [{key: float(v) for key, v in row.items()} for row in csv.DictReader(f)]
        out.append(savefig(viz.training_curves({run.variant: rows}), run.path / "training_curves.png"))
    plt.close("all")
    return out
