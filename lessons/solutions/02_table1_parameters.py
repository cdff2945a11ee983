"""Lesson 02, exercise 4: each FCN of Table 1 maps 40×40 to 1×1; its parameter count
by hand.

A valid k×k convolution maps s to s − k + 1; a 2×2 pool maps s to ⌊s/2⌋. The
parameters are the three convolutions (c_out·c_in·k² weights + c_out biases), the
40×40 transpose convolution to two classes (c3·2·40·40 weights, no bias) and the
position prior (2·40·40).

Run: ``python lessons/solutions/02_table1_parameters.py`` (exits 1 if a count or a
size differs).
"""
from __future__ import annotations

import sys

import tinyseg as ts


def code_side(k1: int, k2: int, k3: int, size: int = 40) -> int:
    s = (size - k1 + 1) // 2          # conv k1, pool
    s = (s - k2 + 1) // 2             # conv k2, pool
    return s - k3 + 1                 # conv k3


def count_by_hand(c1: int, k1: int, c2: int, k2: int, c3: int, k3: int,
                  size: int = 40) -> int:
    convs = ((c1 * 1 * k1 * k1 + c1) + (c2 * c1 * k2 * k2 + c2)
             + (c3 * c2 * k3 * k3 + c3))
    # + the transpose convolution's weights + the prior's bias
    return convs + c3 * 2 * size * size + 2 * size * size


def main() -> int:
    ok = True
    for name, (c1, k1, c2, k2, c3, k3) in ts.models.FCN_CONFIGS.items():
        side = code_side(k1, k2, k3)
        by_hand = count_by_hand(c1, k1, c2, k2, c3, k3)
        lib = ts.models.FCN(name).num_parameters()
        print(f"{name}: (c, k) = ({c1}, {k1}), ({c2}, {k2}), ({c3}, {k3}) "
              f"→ code {side}×{side}; "
              f"parameters by hand {by_hand:,}, num_parameters() {lib:,}")
        ok &= side == 1 and by_hand == lib
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
