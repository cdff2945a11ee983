"""Lesson 02, exercise 1: where the naive convolution spends its time, and what
im2col costs in memory.

Times `conv2d_naive`, `conv2d_im2col` and `F.conv2d` on 29 images of 1×40×40 with
the first layer of FCN 1 (six 5×5 kernels), and builds the im2col matrix. The naive
loops call `np.sum` once per output value, N·O·OH·OW = 29·6·36·36 = 225,504 times,
on 25 products each: the time goes to the Python interpreter, not to arithmetic.
im2col copies every 5×5 patch into a row: a matrix of N·OH·OW = 37,584 rows by
C·KH·KW = 25 columns, 25·36²/40² ≈ 20 times the input's size (each pixel is copied
into up to 25 patches; border pixels into fewer).

The times are printed, not asserted (they depend on the machine); the claims checked
are that the three agree, and that the loop count, the matrix shape and its size
relative to the input are those above.

Run: ``python lessons/solutions/02_conv_timing.py`` (exits 1 if a claim does not
hold).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import tinyseg as ts
from tinyseg.utils import lesson_definitions

# the lesson's functions and classes, without running the lesson
lesson02 = lesson_definitions(
    Path(__file__).resolve().parents[1] / "02_fcn.py")


def timed(f, *args):  # noqa: ANN001, ANN002, ANN201
    t0 = time.perf_counter()
    y = f(*args)
    return y, time.perf_counter() - t0


def main() -> int:
    rng = np.random.default_rng(0)
    N, C, H, W, O, K = 29, 1, 40, 40, 6, 5
    x = rng.standard_normal((N, C, H, W))
    Wk = rng.standard_normal((O, C, K, K))
    y_naive, t_naive = timed(lesson02.conv2d_naive, x, Wk)
    y_cols, t_cols = timed(lesson02.conv2d_im2col, x, Wk)
    y_lib, t_lib = timed(lambda a, b: ts.F.conv2d(a, b).data, x, Wk)
    OH, OW = H - K + 1, W - K + 1
    loops = N * O * OH * OW
    print(f"naive {t_naive * 1e3:.0f} ms ({loops:,} calls of np.sum, "
          f"{t_naive / loops * 1e6:.1f} µs each), "
          f"im2col {t_cols * 1e3:.1f} ms, F.conv2d {t_lib * 1e3:.1f} ms")

    # (N, C, OH, OW, K, K)
    cols = np.lib.stride_tricks.sliding_window_view(x, (K, K), axis=(2, 3))
    # (N*OH*OW, C*K*K): one patch per row
    cols = cols.transpose(0, 2, 3, 1, 4, 5).reshape(N * OH * OW, C * K * K)
    print(f"im2col matrix {cols.shape}: {cols.nbytes / 2**20:.1f} MiB in float64, "
          f"{cols.astype(np.float32).nbytes / 2**20:.1f} MiB in float32; "
          f"the input is {x.nbytes / 2**20:.2f} MiB "
          f"(ratio {cols.nbytes / x.nbytes:.1f})")
    ok = (np.abs(y_naive - y_cols).max() < 1e-10
          and np.abs(y_naive - y_lib).max() < 1e-10
          and loops == 225_504 and cols.shape == (37_584, 25)
          and abs(cols.nbytes / x.nbytes - 25 * OH * OW / (H * W)) < 1e-12)
    print("claims hold" if ok else "a claim does not hold")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
