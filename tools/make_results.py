"""Copy a finished `tinyseg table2` run into the docs and draw its figures.

    python tools/make_results.py RESULTS_DIR docs/results/<name>

RESULTS_DIR is the ``--out`` folder of ``tinyseg table2`` (with ``table2.json``, ``table2.md`` and
``runs/``). Writes ``table2.json``, ``table2.md``, ``fig3_contours.png`` (seed-0 contours of
several variants on six test ROIs, as the paper's Fig. 3), ``fig4_trimap.png`` (trimap accuracy
against width, mean ± std over seeds, as Fig. 4) and ``training_curves.png`` (seed 0) into the
destination. The checkpoints stay where they are (too large for the repository).

Then it runs ``tools/make_results_quotes.py``, which rewrites, from every preset's
``table2.json`` under ``docs/results/``, the compact ``table2_compact.md`` beside each
``table2.md`` and the sentences that pages quote (``docs/outputs/table2_quotes.md``).
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_results_quotes  # noqa: E402  (tools/ is not a package)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", type=Path)
    p.add_argument("dest", type=Path)
    args = p.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tinyseg import viz
    from tinyseg.data import load_dataset
    from tinyseg.utils import savefig

    table = json.loads((args.results / "table2.json").read_text())
    args.dest.mkdir(parents=True, exist_ok=True)
    for name in ("table2.json", "table2.md"):
        shutil.copyfile(args.results / name, args.dest / name)
    rows, runs = table["rows"], args.results / "runs"

    curves = {v: rows[v]["trimap_mean"] for v in rows}
    errors = {v: rows[v]["trimap_std"] for v in rows}
    curves["prior-only"], errors["prior-only"] = table["baselines"]["prior_only"]["trimap"], [0.0] * 5
    savefig(viz.trimap_curves(curves, errors=errors), args.dest / "fig4_trimap.png")

    ds = load_dataset(table["data"], data_seed=table["command"].get("data_seed", 0),
                      boxes=table["command"].get("boxes", "tight"))
    shown = [v for v in ("fcn", "adv_fcn", "fcn_crf", "adv_fcn_crf", "adv_multi_fcn_crf") if v in rows]
    preds = {}
    for v in shown:
        with np.load(runs / f"{v}_s0" / "test_pred.npz") as z:
            preds[v] = z["pred"][:6]
    fig = viz.contours(ds.test.images[:6], ds.test.labels[:6], preds)
    # The docs show it at the content column's width (about 940 px at a 1280 px window): 6.9 in
    # at 200 dpi keeps its 9-point labels at about 17 px there.
    fig.set_size_inches(1.15 * 6, 1.3 * len(preds) + 0.3)
    fig.tight_layout()
    savefig(fig, args.dest / "fig3_contours.png", dpi=200)

    histories = {}
    for v in rows:
        with open(runs / f"{v}_s0" / "history.csv") as f:
            histories[v] = [{k: float(x) for k, x in r.items()} for r in csv.DictReader(f)]
    savefig(viz.training_curves(histories), args.dest / "training_curves.png")
    plt.close("all")
    print(f"wrote {args.dest}")
    return make_results_quotes.main([])


if __name__ == "__main__":
    sys.exit(main())
