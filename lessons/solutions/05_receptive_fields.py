"""Lesson 05, exercise 1: every (k1, k2, k3) of 2-9 pixels that gives a 1×1 code,
and which see the whole ROI.

The code side is ⌊(⌊(40 − k1 + 1)/2⌋ − k2 + 1)/2⌋ − k3 + 1; the lesson's
`receptive_field` gives the side of the window one code unit sees,
k1 + 2 k2 + 4 k3 − 3. The window is 40 (the whole ROI) only if k1 is odd, since
2 k2 + 4 k3 is even: no FCN with an even first kernel, FCN 2 (k1 = 4) included, can
see every row with these valid convolutions and floored pools, whatever k2 and k3.
FCN 2 is fixed by making its first kernel odd, 3 or 5, and taking k2, k3 from one of
the 1×1 configurations with field 40 that the script lists, e.g. (3, 4, 8) or
(5, 3, 8).

Run: ``python lessons/solutions/05_receptive_fields.py`` (exits 1 if a claim does
not hold).
"""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

import tinyseg as ts
from tinyseg.utils import lesson_definitions

# the lesson's functions and classes, without running the lesson
lesson05 = lesson_definitions(
    Path(__file__).resolve().parents[1] / "05_multiscale.py")


def code_side(k1: int, k2: int, k3: int, size: int = 40) -> int:
    return ((size - k1 + 1) // 2 - k2 + 1) // 2 - k3 + 1


def main() -> int:
    one_by_one = [k for k in itertools.product(range(2, 10), repeat=3)
                  if code_side(*k) == 1]
    fields = {k: lesson05.receptive_field(1, k[0], 1, k[1], 1, k[2])[0]
              for k in one_by_one}
    whole = [k for k in one_by_one if fields[k] == 40]
    print(f"{len(one_by_one)} (k1, k2, k3) give a 1×1 code: "
          + ", ".join(f"{k}→{fields[k]}" for k in one_by_one))
    print(f"{len(whole)} see the whole 40×40 ROI: {whole}")
    for name, (_, k1, _, k2, _, k3) in ts.models.FCN_CONFIGS.items():
        print(f"{name}: (k1, k2, k3) = {(k1, k2, k3)}, "
              f"field {fields[(k1, k2, k3)]}")
    even = [k for k in one_by_one if k[0] % 2 == 0]
    print(f"largest field with an even k1: {max(fields[k] for k in even)}")
    ok = (all((k1, k2, k3) in one_by_one
              for _, k1, _, k2, _, k3 in ts.models.FCN_CONFIGS.values())
          and whole and all(k[0] % 2 == 1 for k in whole)
          and (3, 4, 8) in whole and (5, 3, 8) in whole
          and all(fields[k] == k[0] + 2 * k[1] + 4 * k[2] - 3 for k in one_by_one))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
