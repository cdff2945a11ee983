r"""The mean-field CRF with hand-written CUDA kernels: the fast path of `MeanFieldCRFOp`.

The plain op (`tinyseg.functions.crf` with `crf_kernels`) spends a dozen array operations per
iteration — and for ``graph="dense"`` materialises the (N, P, P) intensity kernel; on a GPU each
operation is a kernel launch. Here each iteration is ONE kernel: ``crf_dense.cu`` computes the
dense messages pair by pair from the features staged in shared memory, ``crf_grid4.cu`` reads
the 4 neighbours. T + 1 launches forward, T + 2 backward, no (N, P, P) array. The arithmetic is
the plain op's, reordered (the image gradient is `crf_kernels`' ``image_vjp`` written per pixel);
tests compare the two on the CPU through the kernel emulator and on the GPU directly.

Launch: grid (S, N) with blocks of `BLOCK` threads. Dense: S blocks per image so that small
batches still fill the GPU (two blocks per multiprocessor), each staging the whole image;
grid4: one thread per pixel.

Registered as the fast path ``crf`` (both graphs). It declines the authors' self message,
n_iter = 0, an empty batch, and dense images above `MAX_PIXELS`.

See: tinyseg/cuda/crf_dense.cu, tinyseg/cuda/crf_grid4.cu, tests/cuda/test_crf_fast_path.py.
"""
from __future__ import annotations

from typing import Any

from ..backend import get_array_module
from ..functions.activation import _softmax
from ..functions.crf import MeanFieldCRFOp, per_label_weights
from . import kernels
from .kernels import get_kernel, multiprocessor_count
from .registry import Record, register

MAX_PIXELS = 4096  # larger dense images take the plain path (shared memory holds 4 P values)
_MAX_GRID_Y = 65535  # CUDA's limit on gridDim.y: larger batches run in slices


def applies(op: MeanFieldCRFOp, unary: Any) -> bool:
    """True when the kernels can run `op` on `unary` (N, 2, H, W)."""
    N, P = unary.shape[0], unary.shape[-1] * unary.shape[-2]
    return (op.n_iter > 0 and not op.authors_self_message and N > 0 and (op.graph == "grid4" or P <= MAX_PIXELS)
            and get_kernel(f"crf_{op.graph}.cu", f"crf_{op.graph}_step", unary) is not None)


def _launch(graph: str, name: str, like: Any, grid: tuple[int, int], shared_values: int, args: tuple) -> None:
    """Launch kernel ``crf_<graph>_<name>`` with ``shared_values`` elements of dynamic shared memory."""
    kernels.launch(get_kernel(f"crf_{graph}.cu", f"crf_{graph}_{name}", like), grid, args, shared_values, like)


def _splits(graph: str, N: int, P: int, like: Any) -> int:
    """Blocks per image (grid x): grid4 one thread per pixel; dense enough blocks for two per
    multiprocessor, no more than the pixels need."""
    per_pixel = -(-P // kernels.BLOCK)
    return per_pixel if graph == "grid4" else max(1, min(per_pixel, -(-2 * multiprocessor_count(like) // N)))


def _shared(graph: str, arrays_of_p: int, P: int, H: int, W: int, reduce: bool) -> int:
    """Dynamic shared memory (elements): dense stages P-vectors and the 1-D position tables."""
    dense = arrays_of_p * P + H + W if graph == "dense" else 0
    return dense + (4 * kernels.BLOCK if reduce else 0)


def _slices(N: int) -> list[tuple[int, int]]:
    """Batch slices that fit CUDA's grid limit."""
    return [(n0, min(N, n0 + _MAX_GRID_Y)) for n0 in range(0, N, _MAX_GRID_Y)]


def crf_forward(U: Any, image: Any, w: Any, n_iter: int, graph: str, self_weight: float) -> tuple[Any, tuple]:
    """T mean-field iterations; returns Z_T (N, 2, P) and the state `crf_backward` needs.

    Args:
        U: (N, 2, P) unaries (logits, or probabilities in the "prob" domain).
        image: (N, H, w) features, same dtype.
        w: (2, 2) weights ``w[m, l]``, kernel m and label l, same dtype and device.
        n_iter: T ≥ 1.
        graph: "dense" or "grid4".
        self_weight: 1.0 keeps the self pair, 0.0 excludes it.
    """
    xp = get_array_module(U)
    N, H, W = image.shape
    P = H * W
    U, image, w = (xp.ascontiguousarray(a) for a in (U, image.reshape(N, P), w))  # image (N, H, w) -> (N, P)
    real, i32 = U.dtype.type, xp.int32
    k1 = xp.empty_like(U)  # (N, 2, P): K_m 1
    deltas = xp.empty((n_iter, N, P), U.dtype)  # saved per iteration for the backward pass
    msgs = xp.empty((n_iter, N, 2, P), U.dtype)
    buffers = [xp.empty_like(U), xp.empty_like(U)]  # z_out, used in turn
    for n0, n1 in _slices(N):
        _launch(graph, "ones", U, (_splits(graph, n1 - n0, P, U), n1 - n0), _shared(graph, 1, P, H, W, False),
                (image[n0:n1], k1[n0:n1], i32(H), i32(W), real(self_weight)))
    z = U
    for t in range(n_iter):
        z_out = buffers[t % 2]
        for n0, n1 in _slices(N):
            _launch(graph, "step", U, (_splits(graph, n1 - n0, P, U), n1 - n0), _shared(graph, 2, P, H, W, False),
                    (U[n0:n1], image[n0:n1], w, k1[n0:n1], z[n0:n1], z_out[n0:n1], deltas[t, n0:n1],
                     msgs[t, n0:n1], i32(H), i32(W), real(self_weight)))
        z = z_out
    return z, (graph, image, w, k1, deltas, msgs, H, W, self_weight)


def crf_backward(gZ: Any, state: tuple, need_image: bool) -> tuple[Any, Any, Any]:
    """Back through `crf_forward`: returns gU (N, 2, P), gw (2, 2) (kernel, label) and gI (N, P) or None.

    Args:
        gZ: (N, 2, P) gradient of the loss with respect to Z_T.
        state: the second result of `crf_forward`.
        need_image: also return the gradient with respect to the image features.
    """
    xp = get_array_module(gZ)
    graph, image, w, k1, deltas, msgs, H, W, self_weight = state
    n_iter, N, P = deltas.shape
    real, i32 = gZ.dtype.type, xp.int32
    gZ = xp.ascontiguousarray(gZ)
    gU = gZ.copy()
    gk1 = xp.zeros((N, P), gZ.dtype)  # dL/d(K_0 1)
    gI = xp.zeros((N, P), gZ.dtype)
    S = _splits(graph, min(N, _MAX_GRID_Y), P, gZ)
    gw_part = xp.zeros((N, S, 4), gZ.dtype)  # per block, summed at the end (fixed order)
    buffers = [xp.empty_like(gZ), xp.empty_like(gZ)]
    g = gZ
    for t in reversed(range(n_iter)):
        g_out = buffers[t % 2]
        for n0, n1 in _slices(N):
            _launch(graph, "step_backward", gZ, (S, n1 - n0), _shared(graph, 4, P, H, W, True),
                    (image[n0:n1], w, k1[n0:n1], deltas[t, n0:n1], msgs[t, n0:n1], g[n0:n1], g_out[n0:n1],
                     gU[n0:n1], gk1[n0:n1], gI[n0:n1], gw_part[n0:n1], i32(H), i32(W), real(self_weight),
                     i32(need_image)))
        g = g_out
    if need_image:
        for n0, n1 in _slices(N):
            _launch(graph, "ones_backward", gZ, (S, n1 - n0), 2 * P if graph == "dense" else 0,
                    (image[n0:n1], gk1[n0:n1], gI[n0:n1], i32(H), i32(W)))
    gw = gw_part.sum(axis=(0, 1)).reshape(2, 2)  # (4,) -> (kernel, label)
    return gU, gw, gI if need_image else None


def mean_field_forward(op: MeanFieldCRFOp, record: Record, unary: Any, image: Any, weights: Any) -> Any:
    """`MeanFieldCRFOp.forward` by the kernels; keeps what the backward needs in the record."""
    record.crf = None
    if not applies(op, unary):
        return NotImplemented
    N, _, H, W = unary.shape
    U = unary.reshape(N, 2, H * W)  # (N, 2, P)
    if op.unary_domain == "prob":
        U = _softmax(U, axis=1)
    w = per_label_weights(weights.astype(unary.dtype))  # (2, 2)
    Z, state = crf_forward(U, image.astype(unary.dtype).reshape(N, H, W), w, op.n_iter, op.graph,
                           1.0 if op.include_self else 0.0)
    if op.keep_kernels:
        record.crf, record.U = state, U
    return Z.reshape(N, 2, H, W)  # (N, 2, P) -> (N, 2, H, W)


def mean_field_backward(op: MeanFieldCRFOp, record: Record, gy: Any) -> Any:
    """`MeanFieldCRFOp.backward` by the kernels, from the state of `mean_field_forward`."""
    state = getattr(record, "crf", None)
    if state is None:  # the forward ran the plain code
        return NotImplemented
    N = gy.shape[0]
    gU, gw, gI = crf_backward(gy.reshape(N, 2, -1), state, op.inputs[1].requires_grad)  # (N, 2, P)
    return op._input_grads(gU, gw, gI, record.U)


register(MeanFieldCRFOp, name="crf", forward=mean_field_forward, backward=mean_field_backward)
