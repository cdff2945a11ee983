"""Differentiable functions, one module per family (`import tinyseg.functions as F`).

Each op is an `Op` subclass with a hand-written backward, a snake_case function carrying the
docstring, and a gradient-check case registered next to it.
"""
from .arithmetic import (add, broadcast_to, div, exp, getitem, log, matmul, mean, mul, neg, pow, reshape,
                         sub, sum, sum_to, transpose)

__all__ = ["add", "broadcast_to", "div", "exp", "getitem", "log", "matmul", "mean", "mul", "neg", "pow",
           "reshape", "sub", "sum", "sum_to", "transpose"]
