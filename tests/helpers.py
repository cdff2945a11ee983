"""Helpers shared by several test modules (tests import this, never each other).

`tests/` is on ``sys.path`` (pytest's rootdir conftest), so a test module says ``import helpers``.
"""
from __future__ import annotations

import importlib.util
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

import tinyseg as ts
from tinyseg.cuda import fast_paths
from tinyseg.cuda.testing import emulate, emulated

needs_gxx = pytest.mark.skipif(not emulate.available(),
                               reason="g++ (C++20 <barrier>, pthreads) is missing: the CUDA kernel emulator needs it")


@contextmanager
def fast_paths_emulated() -> Iterator[None]:
    """Every fast path on, and kernels run on NumPy arrays through the g++ emulator."""
    with emulated(), fast_paths(True):
        yield


def brute_force_kernel(image: np.ndarray, graph: str, m: int, include_self: bool) -> np.ndarray:
    """The (P, P) CRF kernel matrix written pair by pair from its definition (one image, (H, W))."""
    H, W = image.shape
    P = H * W
    K = np.zeros((P, P))
    for i in range(P):
        yi, xi = divmod(i, W)
        for j in range(P):
            yj, xj = divmod(j, W)
            if i == j and not include_self:
                continue
            dI2 = (image[yi, xi] - image[yj, xj]) ** 2
            if graph == "dense":
                K[i, j] = np.exp(-dI2 / 2) / (P - 1) if m == 0 else 0.5 * np.exp(-((yi - yj) ** 2 + (xi - xj) ** 2))
            elif abs(yi - yj) + abs(xi - xj) <= 1:  # 4-neighbours, plus the pixel itself when kept
                K[i, j] = np.exp(-dI2) if m == 0 else 1.0
    return K


def crf_inputs(xp: Any, seed: int = 0, N: int = 2, H: int = 4, W: int = 5, w_shape: tuple = (2,),
               scale: float = 2.0) -> tuple[Any, Any, Any]:
    """Unary (N, 2, H, W), image (N, 1, H, W) and CRF weights of `w_shape`, float64 on `xp`."""
    rng = np.random.default_rng(seed)
    u = scale * rng.standard_normal((N, 2, H, W))
    img = rng.standard_normal((N, 1, H, W))
    w = rng.uniform(0.5, 2.0, w_shape)
    return xp.asarray(u), xp.asarray(img), xp.asarray(w)


def case_outputs(case: Any, arrays: list[Any]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Output and input gradients of a gradient-check case on `arrays`, with a fixed upstream gradient."""
    xp = ts.get_array_module(*arrays)
    wrt = case.wrt if case.wrt is not None else [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    args = [ts.Tensor(a, requires_grad=True) if i in wrt else a for i, a in enumerate(arrays)]
    y = case.fn(*args)
    g = xp.asarray(np.random.default_rng(1).standard_normal(y.shape).astype(y.dtype))
    y.backward(g)
    return ts.as_numpy(y.data), [ts.as_numpy(args[i].grad) for i in wrt]


# The gradient-check cases whose ops a fast path overrides (tests/cuda/test_fast_path_layers.py emulated,
# tests/cuda/test_gpu_fast_paths.py on the GPU), and those where every fast path declines, with why.
FAST = ("conv2d/", "conv_transpose2d/", "col2im/", "im2col/", "max_pool2d/", "cross_entropy/", "tanh", "log_softmax/",
        "mean_field_crf/dense", "mean_field_crf/grid4")  # the gradient-check cases whose ops a fast path overrides
NO_KERNEL = {  # cases of those ops where every fast path declines, and why (fast and plain run the same code)
    "conv2d/kernel_covers_input_1x1_output": "1×1 output: the flat path, one matrix product each way, no col2im",
    "conv2d/flat_1x1_output_cropped": "1×1 output: the flat path, one matrix product each way, no col2im",
    "conv_transpose2d/1x1_input_big_kernel": "1×1 input: the flat path, one matrix product each way, no col2im",
    "max_pool2d/2x2_general_path": "pool2x2=False: the general window path, which no kernel replaces",
    "max_pool2d/3x3_stride2_overlapping": "3×3 windows: the kernel exists for 2×2 stride 2 only",
    "mean_field_crf/dense_authors_self_message": "the authors' self message: the kernels pass real messages only",
    "mean_field_crf/grid4_authors_self_message": "the authors' self message: the kernels pass real messages only",
}


def load_script(path: str, name: str | None = None):  # noqa: ANN201
    """The script at `path` (relative to the repository root) as a module named `name` (default:
    its file name), registered in ``sys.modules`` (dataclasses look their module up there).

    For the scripts the tests check that are not part of the package: benchmarks, tools, docs hooks.
    """
    file = Path(__file__).resolve().parents[1] / path
    name = name or file.stem
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_benchmark(name: str):  # noqa: ANN201
    """``benchmarks/<name>.py`` as a module (the benchmarks are scripts, not part of the package)."""
    return load_script(f"benchmarks/{name}.py")


# ---------------------------------------------------------------- one training step of a variant
#: (variant, graph) pairs a step is checked for: every variant, both graphs for those with a CRF.
VARIANT_GRAPHS = [(v, g) for v in ts.models.VARIANTS for g in ("dense", "grid4") if g == "dense" or "crf" in v]


def variant_step(variant: str, graph: str, x: Any, y: Any, device: str = "cpu", adam: bool = False,
                 logits: bool = False) -> dict[str, Any]:
    """One training step of a fresh `variant` (seed 0, prior 0.4) on `device`, as NumPy results.

    Returns ``loss``, ``r_ratio`` and ``grads`` (name -> gradient); with ``adam`` also ``params``
    after one Adam step (lr 3e-3); with ``logits`` also the eval-mode logits of x.
    x, y: arrays of `device` (N, 1, H, W) and (N, H, W). Run it inside whatever fast-path switch
    the caller compares.
    """
    from tinyseg.adversarial import loss_and_backward
    from tinyseg.optim import Adam

    model = ts.models.build_model(variant, np.full(x.shape[-2:], 0.4), seed=0, crf_graph=graph).to(device)
    opt = Adam(model.parameters(), lr=3e-3) if adam else None
    model.zero_grad()
    res = loss_and_backward(model, x, y, adversarial=model.adversarial, eps=0.1)
    out: dict[str, Any] = {"loss": res.loss, "r_ratio": float(res.r_ratio),
                           "grads": {n: ts.as_numpy(p.grad) for n, p in model.named_parameters()}}
    if opt is not None:
        opt.step()
        out["params"] = {n: ts.as_numpy(p.data) for n, p in model.named_parameters()}
    if logits:
        model.eval()
        with ts.no_grad():
            out["logits"] = ts.as_numpy(model(ts.Tensor(x)).data)
    return out


def assert_grads_close(got: dict[str, np.ndarray], expected: dict[str, np.ndarray], rel: float = 2e-3) -> None:
    """Every parameter gradient within `rel` of the largest entry of the expected one (float32 steps)."""
    assert got.keys() == expected.keys()
    for n, g in expected.items():
        scale = max(1e-6, float(np.abs(g).max()))
        np.testing.assert_allclose(got[n], g, rtol=0, atol=rel * scale, err_msg=f"gradient {n}")
