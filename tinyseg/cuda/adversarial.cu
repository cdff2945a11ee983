// The adversarial input of [ZX18 Eq. 7] in one launch, one block per image:
//   g_hat = g / max|g|,  R = eps g_hat / ||g_hat||_2  (R = 0 where g vanishes),  x_adv = I + R,
//   ratio[n] = ||R_n|| / max(||I_n||, 1e-12).
// tinyseg/cuda/adversarial.py launches it (block: a power of two, shared memory: blockDim.x values);
// its NumPy arithmetic, adversarial_perturbation, is the oracle (tests/test_fused_layers.py).
extern "C" __global__ void adversarial_input(const REAL* __restrict__ g, const REAL* __restrict__ image,
                                             REAL* __restrict__ x_adv, REAL* __restrict__ ratio,
                                             const REAL eps, const long long D) {
    DYN_SHARED(REAL, red);
    const size_t base = (size_t)blockIdx.x * D;
    REAL m = 0;
    for (long long d = threadIdx.x; d < D; d += blockDim.x) {
        const REAL a = g[base + d] < 0 ? -g[base + d] : g[base + d];
        m = a > m ? a : m;
    }
    const REAL scale = ts_block_reduce(red, m, true);
    const REAL safe = scale > 0 ? scale : (REAL)1;
    REAL a = 0, b = 0;
    for (long long d = threadIdx.x; d < D; d += blockDim.x) {
        const REAL h = g[base + d] / safe;
        a += h * h;
        b += image[base + d] * image[base + d];
    }
    const REAL norm = ts_sqrt(ts_block_reduce(red, a, false));
    const REAL norm_i = ts_sqrt(ts_block_reduce(red, b, false));
    REAL c = 0;
    for (long long d = threadIdx.x; d < D; d += blockDim.x) {
        const REAL r = norm > 0 ? eps * (g[base + d] / safe) / norm : (REAL)0;
        x_adv[base + d] = image[base + d] + r;
        c += r * r;
    }
    const REAL norm_r = ts_sqrt(ts_block_reduce(red, c, false));
    if (threadIdx.x == 0) ratio[blockIdx.x] = norm_r / (norm_i > (REAL)1e-12 ? norm_i : (REAL)1e-12);
}
