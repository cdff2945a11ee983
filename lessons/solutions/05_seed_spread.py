"""Lesson 05, exercise 4: is the multi-scale gain larger than the spread between
seeds?

Reads the committed Table-2 reproduction (docs/results/phantom/table2.json, written
by ``tinyseg table2``: every variant trained with several seeds). On it the
difference between the mean pooled Dice of `multi_fcn` and `fcn` is smaller than the
standard deviation over seeds of either, and the seed-by-seed differences do not
even agree in sign: one seed's run, as in the lesson, cannot tell whether
multi-scale helps on this data.

Run: ``python lessons/solutions/05_seed_spread.py`` (exits 1 if the committed table
says otherwise, or is missing).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

TABLE = (Path(__file__).resolve().parents[2]
         / "docs" / "results" / "phantom" / "table2.json")


def main() -> int:
    if not TABLE.exists():
        print(f"no committed results at {TABLE}")
        return 1
    table = json.loads(TABLE.read_text())
    fcn, multi = table["rows"]["fcn"], table["rows"]["multi_fcn"]
    gain = multi["dice_pooled_mean"] - fcn["dice_pooled_mean"]
    spread = max(fcn["dice_pooled_std"], multi["dice_pooled_std"])
    per_seed = [m - f for m, f in zip(multi["dice_pooled_seeds"],
                                      fcn["dice_pooled_seeds"])]
    command = table["command"]
    print(f"{command['seeds']} seeds × {command['epochs']} epochs: "
          f"multi_fcn − fcn = {100 * gain:+.2f} points; "
          f"seed std fcn {100 * fcn['dice_pooled_std']:.2f}, "
          f"multi_fcn {100 * multi['dice_pooled_std']:.2f} points; "
          f"per seed: {', '.join(f'{100 * d:+.2f}' for d in per_seed)}")
    mixed = min(per_seed) < 0 < max(per_seed)
    print(f"gain smaller than the seed spread: {abs(gain) < spread}; "
          f"per-seed differences of both signs: {mixed}")
    return 0 if abs(gain) < spread and mixed else 1


if __name__ == "__main__":
    sys.exit(main())
