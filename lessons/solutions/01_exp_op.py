"""Lesson 01, exercise 3: an `ExpOp` whose backward uses only its saved output,
gradient-checked.

Run: ``python lessons/solutions/01_exp_op.py`` (raises if the gradient check fails).
"""
from __future__ import annotations

import numpy as np

import tinyseg as ts


class ExpOp(ts.Op):
    """y = e^x; dy/dx = e^x = y, so backward needs the output only."""

    def forward(self, x):  # noqa: ANN001, ANN201
        self.y = ts.get_array_module(x).exp(x)
        return self.y

    def backward(self, gy):  # noqa: ANN001, ANN201
        return gy * self.y


def main() -> None:
    x = np.random.default_rng(0).standard_normal((5, 4))
    ts.check_backward(lambda t: ExpOp()(t), [x], name="ExpOp")
    print("check_backward(ExpOp): passes")


if __name__ == "__main__":
    main()
