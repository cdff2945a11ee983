"""The CUDA test support that needs no GPU: the g++ emulator and NVRTC (tinyseg.cuda.testing).

Emulator tests skip without a working g++ (C++20 ``<barrier>``); NVRTC tests skip without the
``nvidia-cuda-nvrtc-cu12`` wheel (the ``cuda-check`` extra). Kernels share one source so that the
suite compiles it once.
"""
from __future__ import annotations

import re
import uuid
from pathlib import Path

import numpy as np
import pytest

from tinyseg.cuda.testing import emulate, nvrtc

needs_gxx = pytest.mark.skipif(not emulate.available(), reason="g++ with C++20 <barrier> and pthreads is missing")
needs_nvrtc = pytest.mark.skipif(not nvrtc.nvrtc_available(),
                                 reason='NVRTC not installed (pip install -e ".[cuda-check]")')

KERNELS = r"""
// Kernels made by a macro: the emulator must see them after preprocessing.
#define SAXPY(NAME, T)                                                                  \
    extern "C" __global__ void NAME(const int n, const T a, const T* __restrict__ x, T* y) { \
        const int i = blockIdx.x * blockDim.x + threadIdx.x;                             \
        if (i < n) y[i] = a * x[i] + y[i];                                               \
    }
SAXPY(saxpy_f32, float)
SAXPY(saxpy_f64, double)

extern "C" __global__ void block_sum64(const float* __restrict__ x, float* sums, const int n) {
    __shared__ float buf[64];
    const int t = threadIdx.x, i = blockIdx.x * 64 + t;
    buf[t] = i < n ? x[i] : 0.0f;
    __syncthreads();
    for (int s = 32; s > 0; s >>= 1) {
        if (t < s) buf[t] += buf[t + s];
        __syncthreads();
    }
    if (t == 0) sums[blockIdx.x] = buf[0];
}

#ifndef DYN_SHARED
#define DYN_SHARED(T, name) \
    extern __shared__ __align__(16) unsigned char tinyseg_smem_[]; T* name = reinterpret_cast<T*>(tinyseg_smem_)
#endif
extern "C" __global__ void reverse_blocks(const double* x, double* y, int* aligned16) {
    DYN_SHARED(double, s);
    const int t = threadIdx.x, b = blockIdx.x * blockDim.x;
    s[t] = x[b + t];
    __syncthreads();
    y[b + t] = s[blockDim.x - 1 - t];
    if (t == 0) aligned16[blockIdx.x] = reinterpret_cast<unsigned long long>(s) % 16 == 0;
}

extern "C" __global__ void read_shared_unwritten(float* out) {
    DYN_SHARED(float, s);
    out[threadIdx.x] = s[threadIdx.x];
}

extern "C" __global__ void index_2d(int* out, unsigned* dims, const int H, const int W) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x < W && y < H) out[y * W + x] = 1000 * y + x;
    if (x == 0 && y == 0) {
        dims[0] = blockDim.x; dims[1] = blockDim.y; dims[2] = gridDim.x; dims[3] = gridDim.y;
    }
}

extern "C" __global__ void scalars(int i, unsigned u, long long ll, float f, double d, bool b, double* out) {
    out[0] = i; out[1] = u; out[2] = (double)ll; out[3] = f; out[4] = d; out[5] = b;
}

extern "C" __global__ void count_atomic(const int n, float* fsum, double* dsum, int* isum) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) { atomicAdd(fsum, 1.0f); atomicAdd(dsum, 0.5); atomicAdd(isum, 1); }
}

extern "C" __global__ void tail_return_then_sync(const int n, float* y) {
    __shared__ float first;
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    if (threadIdx.x == 0) first = (float)i;
    __syncthreads();
    y[i] = first;
}

extern "C" __global__ void assert_in_one_thread(int* out) {
    assert(!(blockIdx.x == 1 && threadIdx.x == 3));
    out[blockIdx.x * blockDim.x + threadIdx.x] = 1;
}

extern "C" __global__ void divergent_sync(int* out) {
    if (threadIdx.x < 2) {
        __syncthreads();
    } else {
        __syncthreads();
    }
    out[threadIdx.x] = 1;
}

extern "C" __global__ void short_param(short s, float* y) { y[0] = s; }
"""

# One source for both compilers: the GPU's DYN_SHARED, expf and double math without includes.
PORTABLE = r"""
#ifndef DYN_SHARED
#define DYN_SHARED(T, name) \
    extern __shared__ __align__(16) unsigned char tinyseg_smem_[]; T* name = reinterpret_cast<T*>(tinyseg_smem_)
#endif
extern "C" __global__ void block_softmax(const float* __restrict__ x, float* __restrict__ y) {
    DYN_SHARED(float, e);
    __shared__ float total;
    const int t = threadIdx.x, i = blockIdx.x * blockDim.x + t;
    e[t] = expf(x[i]);
    __syncthreads();
    if (t == 0) {
        float s = 0.0f;
        for (int k = 0; k < blockDim.x; ++k) s += e[k];
        total = s;
    }
    __syncthreads();
    y[i] = e[t] / total;
}

extern "C" __global__ void log_add_exp(const double* a, const double* b, double* out, const int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        const double m = fmax(a[i], b[i]);
        out[i] = m + log(exp(a[i] - m) + exp(b[i] - m)) + 0.0 * fabs(sqrt(1.0));
    }
}
"""


@pytest.fixture(scope="module")
def mod() -> emulate.EmulatedModule:
    return emulate.build(KERNELS)


@needs_gxx
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_saxpy_over_several_blocks_with_a_tail_matches_numpy(mod: emulate.EmulatedModule, dtype: type) -> None:
    rng = np.random.default_rng(0)
    n, block = 1000, 128  # 8 blocks, the last one 104 threads short
    x, y = rng.standard_normal(n).astype(dtype), rng.standard_normal(n + 3).astype(dtype)
    expected = y.copy()
    expected[:n] += dtype(2.5) * x
    kernel = mod.get_function("saxpy_f32" if dtype is np.float32 else "saxpy_f64")
    kernel(((n + block - 1) // block,), (block,), (np.int32(n), dtype(2.5), x, y))
    np.testing.assert_allclose(y, expected, rtol=1e-6 if dtype is np.float32 else 1e-15)
    assert np.array_equal(y[n:], expected[n:]), "threads past n must not write"


@needs_gxx
def test_block_tree_reduction_in_static_shared_memory_gives_per_block_sums(mod: emulate.EmulatedModule) -> None:
    n = 5 * 64 - 10
    x = np.random.default_rng(1).random(n).astype(np.float32)
    sums = np.full(5, np.nan, np.float32)
    mod.get_function("block_sum64")(5, 64, (x, sums, np.int32(n)))
    expected = np.pad(x, (0, 10)).reshape(5, 64).sum(axis=1)  # (blocks, threads)
    np.testing.assert_allclose(sums, expected, rtol=1e-5)


@needs_gxx
def test_dynamic_shared_memory_is_sized_at_launch_and_16_byte_aligned(mod: emulate.EmulatedModule) -> None:
    block, blocks = 32, 3
    x = np.arange(block * blocks, dtype=np.float64)
    y, aligned = np.zeros_like(x), np.zeros(blocks, np.int32)
    mod.get_function("reverse_blocks")(blocks, block, (x, y, aligned), shared_mem=block * 8)
    np.testing.assert_array_equal(y, x.reshape(blocks, block)[:, ::-1].ravel())  # (blocks, block) reversed
    np.testing.assert_array_equal(aligned, 1)


@needs_gxx
def test_unwritten_dynamic_shared_memory_reads_as_nan_not_zero(mod: emulate.EmulatedModule) -> None:
    out = np.zeros(8, np.float32)
    mod.get_function("read_shared_unwritten")(1, 8, (out,), shared_mem=32)
    assert np.isnan(out).all(), out


@needs_gxx
def test_shared_mem_above_48k_needs_the_limit_raised_as_on_the_gpu(mod: emulate.EmulatedModule) -> None:
    kernel, out = mod.get_function("read_shared_unwritten"), np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="max_dynamic_shared_size_bytes"):
        kernel(1, 4, (out,), shared_mem=64 * 1024)
    kernel.max_dynamic_shared_size_bytes = 64 * 1024
    kernel(1, 4, (out,), shared_mem=64 * 1024)
    assert np.isnan(out).all()


@needs_gxx
def test_2d_grid_and_block_indices_cover_the_image(mod: emulate.EmulatedModule) -> None:
    H, W = 7, 20
    out, dims = np.full((H, W), -1, np.int32), np.zeros(4, np.uint32)
    mod.get_function("index_2d")((3, 2), (8, 4), (out, dims, np.int32(H), np.int32(W)))
    yy, xx = np.mgrid[:H, :W]
    np.testing.assert_array_equal(out, 1000 * yy + xx)
    np.testing.assert_array_equal(dims, [8, 4, 3, 2])


@needs_gxx
def test_scalars_arrive_as_their_c_types(mod: emulate.EmulatedModule) -> None:
    out = np.zeros(6)
    args = (np.int32(-7), np.uint32(4_000_000_000), 2**40, np.float32(1.5), 2.25, True, out)
    mod.get_function("scalars")(1, 1, args)
    np.testing.assert_array_equal(out, [-7, 4e9, 2.0**40, 1.5, 2.25, 1])


@needs_gxx
@pytest.mark.parametrize("position, value, message", [
    (0, 3, r"parameter 'i' \(int i\) got a Python int, which CuPy passes as long long; pass np\.int32"),
    (3, 1.5, r"parameter 'f' \(float f\) got a Python float, which CuPy passes as double; pass np\.float32"),
    (4, np.float32(2.0), r"parameter 'd' \(double d\) got a NumPy float32 scalar"),
    (2, np.int32(5), r"parameter 'll' \(long long ll\) got a NumPy int32 scalar"),
    (6, [0.0] * 6, r"parameter 'out' \(double\* out\) takes a NumPy array, got list"),
])
def test_scalar_of_another_c_type_is_refused_as_cupy_would_misread_it(
        mod: emulate.EmulatedModule, position: int, value: object, message: str) -> None:
    args = [np.int32(-7), np.uint32(4), 5, np.float32(1.5), 2.25, True, np.zeros(6)]
    args[position] = value
    with pytest.raises(TypeError, match=message):
        mod.get_function("scalars")(1, 1, tuple(args))


@needs_gxx
def test_array_of_wrong_dtype_layout_or_count_raises_naming_the_parameter(mod: emulate.EmulatedModule) -> None:
    kernel = mod.get_function("saxpy_f32")
    x, y, read_only = np.ones(8, np.float32), np.ones(8, np.float32), np.ones(8, np.float32)
    read_only.flags.writeable = False
    with pytest.raises(TypeError, match=r"parameter 'x' \(const float\* x\) needs dtype float32, got float64; "
                                        r"pass x\.astype\(np\.float32\)"):
        kernel(1, 8, (np.int32(8), np.float32(1), x.astype(np.float64), y))
    with pytest.raises(TypeError, match=r"parameter 'y' \(float\* y\) needs a C-contiguous array"):
        kernel(1, 8, (np.int32(4), np.float32(1), x, y[::2]))
    with pytest.raises(TypeError, match=r"parameter 'y' \(float\* y\) writes through a read-only array"):
        kernel(1, 8, (np.int32(8), np.float32(1), x, read_only))
    with pytest.raises(TypeError, match=r"kernel saxpy_f32\(int n, float a, const float\* x, float\* y\) "
                                        r"takes 4 arguments, got 3"):
        kernel(1, 8, (np.int32(8), x, y))


@needs_gxx
def test_impossible_launches_and_unknown_kernels_raise(mod: emulate.EmulatedModule) -> None:
    out = np.zeros(1, np.int32)
    with pytest.raises(ValueError, match="1024 threads"):
        mod.get_function("assert_in_one_thread")(1, (32, 33), (out,))
    with pytest.raises(ValueError, match="positive"):
        mod.get_function("assert_in_one_thread")((1, 0), 1, (out,))
    with pytest.raises(ValueError, match=r"no __global__ kernel named 'nope'.*'saxpy_f32'"):
        mod.get_function("nope")
    with pytest.raises(ValueError, match=r"short_param: parameter 'short s' has a type the emulator does not support"):
        mod.get_function("short_param")


@needs_gxx
def test_atomic_add_from_every_block_counts_every_thread(mod: emulate.EmulatedModule) -> None:
    f, d, i = np.zeros(1, np.float32), np.zeros(1), np.zeros(1, np.int32)
    mod.get_function("count_atomic")(4, 256, (np.int32(1000), f, d, i))
    assert (f[0], d[0], i[0]) == (1000.0, 500.0, 1000)


@needs_gxx
def test_threads_that_return_early_do_not_block_syncthreads(mod: emulate.EmulatedModule) -> None:
    y = np.zeros(40, np.float32)
    mod.get_function("tail_return_then_sync")(2, 32, (np.int32(40), y))
    np.testing.assert_array_equal(y, [0.0] * 32 + [32.0] * 8)


@needs_gxx
def test_failed_assert_raises_naming_block_and_thread(mod: emulate.EmulatedModule) -> None:
    out = np.zeros(16, np.int32)
    with pytest.raises(emulate.KernelError, match=r"block \(1, 0, 0\) thread \(3, 0, 0\).*assert"):
        mod.get_function("assert_in_one_thread")(2, 8, (out,))


@needs_gxx
def test_syncthreads_at_two_different_lines_is_reported_as_divergent(mod: emulate.EmulatedModule) -> None:
    with pytest.raises(emulate.KernelError, match="divergent __syncthreads"):
        mod.get_function("divergent_sync")(1, 4, (np.zeros(4, np.int32),))


@needs_gxx
def test_compile_error_carries_gxx_message_and_the_numbered_line() -> None:
    source = '// line 1\nextern "C" __global__ void broken(float* y) { y[0] = undefined_name; }\n'
    with pytest.raises(emulate.CompileError) as info:
        emulate.build(source)
    message = str(info.value)
    assert "error" in message and "'undefined_name' was not declared" in message
    assert re.search(r">\s+2 \| extern .*undefined_name", message), message


@needs_gxx
def test_build_caches_the_library_under_tinyseg_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYSEG_CACHE", str(tmp_path))
    source = f'// {uuid.uuid4()}\nextern "C" __global__ void one(int* y) {{ y[threadIdx.x] = 1; }}\n'
    y = np.zeros(3, np.int32)
    emulate.build(source).get_function("one")(1, 3, (y,))
    assert [p.suffix for p in (tmp_path / "cuda_emu").iterdir()] == [".so"], "one library, no temporary left"
    np.testing.assert_array_equal(y, 1)


@needs_gxx
def test_portable_source_runs_in_the_emulator() -> None:
    x = np.random.default_rng(2).standard_normal(3 * 16).astype(np.float32)
    y = np.zeros_like(x)
    emulate.build(PORTABLE).get_function("block_softmax")(3, 16, (x, y), shared_mem=16 * 4)
    e = np.exp(x.reshape(3, 16))  # (blocks, threads)
    np.testing.assert_allclose(y, (e / e.sum(axis=1, keepdims=True)).ravel(), rtol=1e-5)


@needs_nvrtc
def test_portable_source_compiles_to_ptx_for_compute_90() -> None:
    ptx = nvrtc.compile_ptx(PORTABLE, arch="compute_90")
    assert ".target sm_90" in ptx
    assert ".entry block_softmax" in ptx and ".entry log_add_exp" in ptx
    assert re.search(r"\.extern \.shared \.align 16 \.b8 tinyseg_smem_\[\]", ptx)


@needs_nvrtc
def test_nvrtc_syntax_error_raises_with_nvrtc_log() -> None:
    with pytest.raises(nvrtc.NVRTCError, match=r"(?s)NVRTC_ERROR_COMPILATION.*kernel\.cu\(2\): error"):
        nvrtc.compile_ptx('// line 1\nextern "C" __global__ void k(float* y) { y[0] = 1.0f }\n')


def test_nvrtc_from_a_missing_path_is_unavailable_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(nvrtc.ENV_VAR, "/nonexistent/libnvrtc.so.12")
    assert not nvrtc.nvrtc_available()
    with pytest.raises(nvrtc.NVRTCError, match=r"/nonexistent/libnvrtc.so.12.*cuda-check"):
        nvrtc.compile_ptx('extern "C" __global__ void k() {}')
    with pytest.raises(ValueError, match="compute_90"):
        nvrtc.compile_ptx('extern "C" __global__ void k() {}', arch="sm_90")
