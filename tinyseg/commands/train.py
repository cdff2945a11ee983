"""`tinyseg train`: train a Table-2 variant and write a run directory."""
from __future__ import annotations

import argparse
from dataclasses import fields

from ..config import CHOICES, TrainConfig
from ..data.datasets import data_help
from . import BOXES_HELP
from ..errors import OptionError
from ..train import fit

HELP = "train a model variant on a dataset and write a run directory"


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    p.add_argument("--variant", default=d.variant, help=f"one of: {', '.join(CHOICES['variant'])} (default {d.variant})")
    p.add_argument("--data", default=d.data, help=data_help(d.data))
    p.add_argument("--out", required=True, help="run directory to create")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--eps", default=d.eps, help="adversarial ε, or 'auto' (0.1 inbreast-like, 0.5 DDSM-like)")
    p.add_argument("--l2", type=float, default=d.l2, help="λ of λ/2‖w‖² (default 0.5)")
    p.add_argument("--l2-scope", choices=CHOICES["l2_scope"], default=d.l2_scope)
    p.add_argument("--crf-graph", choices=CHOICES["crf_graph"], default=d.crf_graph)
    p.add_argument("--n-iter", type=int, default=d.n_iter, help="mean-field iterations in training")
    p.add_argument("--n-iter-eval", type=int, default=d.n_iter_eval, help="mean-field iterations at evaluation")
    p.add_argument("--adv-kernel", choices=CHOICES["adv_kernel"], default=d.adv_kernel)
    p.add_argument("--fusion", choices=CHOICES["fusion"], default=d.fusion)
    p.add_argument("--prior-init", choices=CHOICES["prior_init"], default=d.prior_init)
    p.add_argument("--val-frac", type=float, default=d.val_frac, help="0 = fixed budget, keep the last epoch")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--data-seed", type=int, default=d.data_seed)
    p.add_argument("--boxes", choices=CHOICES["boxes"], default=d.boxes, help=BOXES_HELP)
    p.add_argument("--device", choices=CHOICES["device"], default=d.device)
    p.add_argument("--dtype", choices=CHOICES["dtype"], default=d.dtype)
    p.add_argument("--init-from", default=None, help="a run directory whose FCN weights start this run")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    if values.get("eps") not in (None, "auto"):
        try:
            values["eps"] = float(values["eps"])
        except ValueError:
            raise OptionError(f"--eps must be a number or 'auto', got {values['eps']!r}.") from None
    return TrainConfig(**values)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    result = fit(config, args.out, resume=args.resume, quiet=args.quiet)
    m = result.path / "metrics.json"
    if m.exists():
        import json

        metrics = json.loads(m.read_text())
        print(f"{config.variant}: test pooled Dice {metrics['test']['dice_pooled']:.4f} "
              f"(prior-only baseline {metrics['prior_baseline']['dice_pooled']:.4f}), run in {args.out}")
    return 0
