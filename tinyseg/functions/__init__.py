"""Differentiable functions, one module per family (`import tinyseg.functions as F`).

Each op is an `Op` subclass with a hand-written backward, a snake_case function carrying the
docstring, and a gradient-check case registered next to it.
"""
from .arithmetic import (add, broadcast_to, div, exp, getitem, log, matmul, mean, mul, neg, pow, reshape,
                         sub, sum, sum_to, transpose)

__all__ = ["add", "broadcast_to", "div", "exp", "getitem", "log", "matmul", "mean", "mul", "neg", "pow",
           "reshape", "sub", "sum", "sum_to", "transpose"]
from .activation import log_softmax, softmax, tanh
from .conv import conv2d, conv_transpose2d
from .im2col import col2im, im2col
from .loss import cross_entropy, l2_penalty, nll_loss
from .pooling import max_pool2d
from .prior import add_prior

__all__ += ["add_prior", "col2im", "conv2d", "conv_transpose2d", "cross_entropy", "im2col", "l2_penalty",
            "log_softmax", "max_pool2d", "nll_loss", "softmax", "tanh"]
from .crf import crf_contraction_bound, crf_default_weights, crf_kernels, crf_spectral_radius, mean_field_crf
from .crf_composite import mean_field_crf_composite

__all__ += ["crf_contraction_bound", "crf_default_weights", "crf_kernels", "crf_spectral_radius", "mean_field_crf",
            "mean_field_crf_composite"]
