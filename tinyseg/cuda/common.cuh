// Shared by every tinyseg CUDA source. The loader (tinyseg/cuda/kernels.py) prepends
// `#define REAL float` (or double) and this file; the CPU emulator (testing/emulate.py) defines the CUDA
// keywords and DYN_SHARED itself before including the same text, so one source serves both.
#ifndef DYN_SHARED
// Dynamic shared memory as a typed pointer: one untyped extern array per kernel, so a source
// compiled for float and for double never declares the same symbol with two types.
#define DYN_SHARED(T, name) \
    extern __shared__ __align__(16) unsigned char tinyseg_smem_[]; \
    T* name = reinterpret_cast<T*>(tinyseg_smem_)
#endif

// exp for the element type, so kernels are written once for float and double.
__device__ __forceinline__ float ts_exp(float x) { return expf(x); }
__device__ __forceinline__ double ts_exp(double x) { return exp(x); }

// sigma(d) without overflow for any |d|, and sigma'(d) = sigma(1 - sigma).
__device__ __forceinline__ void ts_sigmoid(REAL d, REAL* s, REAL* ds) {
    REAL e = ts_exp(-(d < 0 ? -d : d));
    REAL r = (REAL)1 / ((REAL)1 + e);
    *s = d >= 0 ? r : e * r;
    *ds = e * r * r;
}

__device__ __forceinline__ int ts_iabs(int a) { return a < 0 ? -a : a; }

// Sum acc[0..3] over the block into red[0], red[blockDim.x], red[2 blockDim.x], red[3 blockDim.x]
// (a fixed-order tree, so results do not depend on timing). blockDim.x must be a power of two;
// red holds 4 blockDim.x elements. Every thread of the block must call it.
__device__ __forceinline__ void ts_block_sum4(REAL* red, const REAL acc[4]) {
    const int t = threadIdx.x, B = blockDim.x;
    for (int k = 0; k < 4; ++k) red[k * B + t] = acc[k];
    __syncthreads();
    for (int s = B / 2; s > 0; s /= 2) {
        if (t < s)
            for (int k = 0; k < 4; ++k) red[k * B + t] += red[k * B + t + s];
        __syncthreads();
    }
}

__device__ __forceinline__ float ts_log(float x) { return logf(x); }
__device__ __forceinline__ double ts_log(double x) { return log(x); }

__device__ __forceinline__ float ts_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double ts_sqrt(double x) { return sqrt(x); }

// Reduce v over the block (sum, or max when is_max) with red holding blockDim.x elements; every
// thread gets the result. blockDim.x must be a power of two; every thread must call it.
__device__ __forceinline__ REAL ts_block_reduce(REAL* red, REAL v, bool is_max) {
    const int t = threadIdx.x;
    red[t] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s /= 2) {
        if (t < s) red[t] = is_max ? (red[t + s] > red[t] ? red[t + s] : red[t]) : red[t] + red[t + s];
        __syncthreads();
    }
    const REAL r = red[0];
    __syncthreads();  // red is reused by the next reduction
    return r;
}

// ---- helpers of the CRF kernels (crf_dense.cu, crf_grid4.cu)

// The 1-D position tables g[d] = e^{-d^2}, d < H and d < W, into shared memory (dense graph).
__device__ __forceinline__ void crf_position_tables(REAL* gy, REAL* gx, int H, int W) {
    for (int j = threadIdx.x; j < H; j += blockDim.x) gy[j] = ts_exp(-(REAL)(j * j));
    for (int j = threadIdx.x; j < W; j += blockDim.x) gx[j] = ts_exp(-(REAL)(j * j));
}

// What a reverse iteration does at pixel i (o = its (n, 0, i) offset in (N, 2, P)) once the
// kernel sums are known, the same for both graphs: accumulate this pixel's share of dL/dw and
// dL/d(K_0 1) (gk1_i, at gk1 + n P + i), and step back through q = sigma(delta):
// g1_out = sigma'(delta_i) (K_0 gs_0 + K_1 gs_1)_i, g0_out = -g1_out, gU += g_out.
__device__ __forceinline__ void crf_backward_pixel(size_t o, int P, const REAL* w, const REAL* k1,
                                                   const REAL* msg, const REAL* g_in, REAL dq, REAL kgs,
                                                   REAL acc[4], REAL* gk1_i, REAL* g_out, REAL* gU) {
    const REAL g0 = g_in[o], g1 = g_in[o + P], s0 = msg[o], s1 = msg[o + P];
    acc[0] += g0 * (k1[o] - s0);
    acc[1] += g1 * s0;
    acc[2] += g0 * (k1[o + P] - s1);
    acc[3] += g1 * s1;
    *gk1_i += w[0] * g0;
    const REAL g1n = dq * kgs;
    g_out[o] = -g1n;
    g_out[o + P] = g1n;
    gU[o] -= g1n;
    gU[o + P] += g1n;
}

// The block's share of dL/dw into gw_part (N, gridDim.x, 4), added to earlier iterations' shares.
__device__ __forceinline__ void crf_store_gw(REAL* red, const REAL acc[4], REAL* gw_part) {
    ts_block_sum4(red, acc);
    if (threadIdx.x == 0) {
        REAL* part = gw_part + ((size_t)blockIdx.y * gridDim.x + blockIdx.x) * 4;
        for (int k = 0; k < 4; ++k) part[k] += red[k * blockDim.x];
    }
}
