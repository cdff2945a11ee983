// Adam on every parameter in one launch (a "multi-tensor" update), instead of one launch per
// parameter. Parameter k has sizes offsets[k + 1] - offsets[k] and lives at the device addresses
// ptrs[k] (value), ptrs[K + k] (gradient), ptrs[2K + k] (first moment), ptrs[3K + k] (second).
// Thread e finds its parameter by bisection in offsets. The arithmetic is optim.Adam's
// (1 - beta computed in double by the caller). tinyseg/cuda/optim.py launches it; tinyseg/optim.py is
// the oracle (tests/test_optim_fused.py).
extern "C" __global__ void adam_multi(const unsigned long long* __restrict__ ptrs, const long long* __restrict__ offsets,
                                      const int K, const REAL b1, const REAL one_minus_b1, const REAL b2,
                                      const REAL one_minus_b2, const REAL step_size, const REAL inv_sqrt_bc2,
                                      const REAL eps) {
    const long long total = offsets[K];
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x) {
        int lo = 0, hi = K - 1;  // the k with offsets[k] <= e < offsets[k + 1]
        while (lo < hi) {
            const int mid = (lo + hi + 1) / 2;
            if (offsets[mid] <= e) lo = mid; else hi = mid - 1;
        }
        const long long i = e - offsets[lo];
        REAL* p = reinterpret_cast<REAL*>(ptrs[lo]);
        const REAL* g = reinterpret_cast<const REAL*>(ptrs[K + lo]);
        REAL* m = reinterpret_cast<REAL*>(ptrs[2 * K + lo]);
        REAL* v = reinterpret_cast<REAL*>(ptrs[3 * K + lo]);
        const REAL gi = g[i];
        const REAL mi = b1 * m[i] + one_minus_b1 * gi;
        const REAL vi = b2 * v[i] + one_minus_b2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] -= step_size * mi / (ts_sqrt(vi) * inv_sqrt_bc2 + eps);
    }
}
