// Shared by every tinyseg CUDA source. The loader (tinyseg/cuda/__init__.py) prepends
// `#define REAL float` (or double) and this file; the CPU emulator (emulate.py) defines the CUDA
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
