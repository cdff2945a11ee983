// The grid4 mean-field CRF (the authors' 4-neighbour graph, with real messages) as four kernels,
// one thread per pixel, neighbours read straight from global memory.
//
// Kernels (m = 0 contrast, m = 1 constant), on the 4-neighbours N(i) of pixel i:
//   K_0 x_i = self_weight x_i + sum_{j in N(i)} e^{-(I_i - I_j)^2} x_j,   K_1 x_i = self_weight x_i + sum_{j in N(i)} x_j
// Image gradient of a^T K_0 b (Grid4Kernel.image_vjp in tinyseg/functions/crf_kernels.py): sum_{j in N(i)} 2 (a_i b_j + a_j b_i) (I_j - I_i) e_ij.
// Launch: grid (ceil(P / B), N), block (B). Weights w are (2, 2), w[2 m + l]. The plain path
// (crf_kernels.Grid4Kernel) is the test oracle (tests/test_crf_fused.py).

// The neighbours of pixel i = y W + x: up, down, left, right; count returned, indices in nb.
__device__ __forceinline__ int grid4_neighbours(int i, int H, int W, int nb[4]) {
    const int y = i / W, x = i % W;
    int k = 0;
    if (y > 0) nb[k++] = i - W;
    if (y < H - 1) nb[k++] = i + W;
    if (x > 0) nb[k++] = i - 1;
    if (x < W - 1) nb[k++] = i + 1;
    return k;
}

__device__ __forceinline__ REAL grid4_edge(REAL a, REAL b) {
    const REAL d = a - b;
    return ts_exp(-d * d);
}

// K_m 1 for both kernels: k1 (N, 2, P).
extern "C" __global__ void crf_grid4_ones(const REAL* __restrict__ image, REAL* __restrict__ k1,
                                          const int H, const int W, const REAL self_weight) {
    const int P = H * W, n = blockIdx.y;
    const REAL* img = image + (size_t)n * P;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < P; i += gridDim.x * blockDim.x) {
        int nb[4];
        const int deg = grid4_neighbours(i, H, W, nb);
        REAL a = self_weight;
        for (int k = 0; k < deg; ++k) a += grid4_edge(img[i], img[nb[k]]);
        k1[(size_t)n * 2 * P + i] = a;
        k1[(size_t)n * 2 * P + P + i] = self_weight + (REAL)deg;
    }
}

// One mean-field iteration, as crf_dense_step: q = sigma(z_in[1] - z_in[0]), s_m = K_m q,
//   z_out[0] = U[0] + sum_m w[m][0] (k1_m - s_m),   z_out[1] = U[1] + sum_m w[m][1] s_m.
extern "C" __global__ void crf_grid4_step(const REAL* __restrict__ U, const REAL* __restrict__ image,
                                          const REAL* __restrict__ w, const REAL* __restrict__ k1,
                                          const REAL* __restrict__ z_in, REAL* __restrict__ z_out,
                                          REAL* __restrict__ delta_out, REAL* __restrict__ msg_out,
                                          const int H, const int W, const REAL self_weight) {
    const int P = H * W, n = blockIdx.y;
    const REAL *img = image + (size_t)n * P, *z0 = z_in + (size_t)n * 2 * P, *z1 = z0 + P;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < P; i += gridDim.x * blockDim.x) {
        int nb[4];
        const int deg = grid4_neighbours(i, H, W, nb);
        REAL qi, ds;
        ts_sigmoid(z1[i] - z0[i], &qi, &ds);
        REAL s0 = self_weight * qi, s1 = self_weight * qi;
        for (int k = 0; k < deg; ++k) {
            const int j = nb[k];
            REAL qj;
            ts_sigmoid(z1[j] - z0[j], &qj, &ds);
            s0 += grid4_edge(img[i], img[j]) * qj;
            s1 += qj;
        }
        const size_t o = (size_t)n * 2 * P + i;
        z_out[o] = U[o] + w[0] * (k1[o] - s0) + w[2] * (k1[o + P] - s1);
        z_out[o + P] = U[o + P] + w[1] * s0 + w[3] * s1;
        delta_out[(size_t)n * P + i] = z1[i] - z0[i];
        msg_out[o] = s0;
        msg_out[o + P] = s1;
    }
}

// Reverse of one iteration, as crf_dense_step_backward (same arguments and outputs; gw_part is
// (N, gridDim.x, 4)). gs_m = w[m][1] g1 - w[m][0] g0 is recomputed for each neighbour.
extern "C" __global__ void crf_grid4_step_backward(
        const REAL* __restrict__ image, const REAL* __restrict__ w, const REAL* __restrict__ k1,
        const REAL* __restrict__ delta, const REAL* __restrict__ msg, const REAL* __restrict__ g_in,
        REAL* __restrict__ g_out, REAL* __restrict__ gU, REAL* __restrict__ gk1, REAL* __restrict__ gI,
        REAL* __restrict__ gw_part, const int H, const int W, const REAL self_weight, const int need_image) {
    const int P = H * W, n = blockIdx.y;
    DYN_SHARED(REAL, red);  // 4 B values, for the block's share of dL/dw
    const REAL *img = image + (size_t)n * P, *dl = delta + (size_t)n * P;
    const REAL *g0 = g_in + (size_t)n * 2 * P, *g1 = g0 + P;
    REAL acc[4] = {0, 0, 0, 0};
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < P; i += gridDim.x * blockDim.x) {
        int nb[4];
        const int deg = grid4_neighbours(i, H, W, nb);
        REAL qi, dqi;
        ts_sigmoid(dl[i], &qi, &dqi);
        const REAL gs0i = w[1] * g1[i] - w[0] * g0[i], gs1i = w[3] * g1[i] - w[2] * g0[i];
        REAL kgs0 = self_weight * gs0i, kgs1 = self_weight * gs1i, gimg = 0;
        for (int k = 0; k < deg; ++k) {
            const int j = nb[k];
            const REAL e = grid4_edge(img[i], img[j]);
            const REAL gs0j = w[1] * g1[j] - w[0] * g0[j], gs1j = w[3] * g1[j] - w[2] * g0[j];
            kgs0 += e * gs0j;
            kgs1 += gs1j;
            if (need_image) {
                REAL qj, dqj;
                ts_sigmoid(dl[j], &qj, &dqj);
                gimg += (REAL)2 * (gs0i * qj + gs0j * qi) * (img[j] - img[i]) * e;
            }
        }
        if (need_image) gI[(size_t)n * P + i] += gimg;
        crf_backward_pixel((size_t)n * 2 * P + i, P, w, k1, msg, g_in, dqi, kgs0 + kgs1, acc,
                           gk1 + (size_t)n * P + i, g_out, gU);
    }
    crf_store_gw(red, acc, gw_part);
}

// The image gradient through K_0 1: gI += sum_{j in N(i)} 2 (gk1_i + gk1_j) (I_j - I_i) e_ij.
extern "C" __global__ void crf_grid4_ones_backward(const REAL* __restrict__ image, const REAL* __restrict__ gk1,
                                                   REAL* __restrict__ gI, const int H, const int W) {
    const int P = H * W, n = blockIdx.y;
    const REAL *img = image + (size_t)n * P, *x = gk1 + (size_t)n * P;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < P; i += gridDim.x * blockDim.x) {
        int nb[4];
        const int deg = grid4_neighbours(i, H, W, nb);
        REAL g = 0;
        for (int k = 0; k < deg; ++k) {
            const int j = nb[k];
            g += (REAL)2 * (x[i] + x[j]) * (img[j] - img[i]) * grid4_edge(img[i], img[j]);
        }
        gI[(size_t)n * P + i] += g;
    }
}
