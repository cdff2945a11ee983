// The dense mean-field CRF of [ZX18 Eq. 2-5] as four kernels: messages are computed pair by pair,
// on the fly, instead of through a materialised (N, P, P) intensity kernel.
//
// Kernels (m = 0 intensity, m = 1 position; both without the self pair unless self_weight = 1):
//   K_0 x_i = (sum_j e^{-(I_i - I_j)^2 / 2} x_j - (1 - self_weight) x_i) / (P - 1)
//   K_1 x_i = (sum_j gy[|y_i - y_j|] gx[|x_i - x_j|] x_j - (1 - self_weight) x_i) / 2,  g[d] = e^{-d^2}
// Launch: grid (S, N), block (B) with B a power of two. Block (b, n) stages what every pixel of
// image n needs (features, q, ...) in shared memory and computes the pixels
// i = b B + threadIdx.x, then steps of S B. Weights w are (2, 2), w[2 m + l] for kernel m, label l.
// tinyseg/cuda/crf.py launches them; tinyseg/functions/crf.py is the plain path and
// the test oracle (tests/test_crf_fused.py).

// K_m 1 for both kernels: k1 (N, 2, P). Shared: image (P), gy (H), gx (W).
extern "C" __global__ void crf_dense_ones(const REAL* __restrict__ image, REAL* __restrict__ k1,
                                          const int H, const int W, const REAL self_weight) {
    const int P = H * W, n = blockIdx.y;
    DYN_SHARED(REAL, smem);
    REAL *img = smem, *gy = smem + P, *gx = gy + H;
    for (int j = threadIdx.x; j < P; j += blockDim.x) img[j] = image[(size_t)n * P + j];
    crf_position_tables(gy, gx, H, W);
    __syncthreads();
    const REAL scale = (REAL)1 / (REAL)(P > 1 ? P - 1 : 1), off = (REAL)1 - self_weight;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < P; i += gridDim.x * blockDim.x) {
        const int yi = i / W, xi = i % W;
        const REAL Ii = img[i];
        REAL a = 0, b = 0;
        for (int yj = 0; yj < H; ++yj) {
            const REAL gyv = gy[ts_iabs(yi - yj)];
            const REAL* Ir = img + yj * W;
            for (int xj = 0; xj < W; ++xj) {
                const REAL d = Ii - Ir[xj];
                a += ts_exp((REAL)-0.5 * d * d);
                b += gyv * gx[ts_iabs(xi - xj)];
            }
        }
        const size_t o = (size_t)n * 2 * P + i;
        k1[o] = scale * (a - off);
        k1[o + P] = (REAL)0.5 * (b - off);
    }
}

// One mean-field iteration: q = sigma(z_in[1] - z_in[0]), s_m = K_m q,
//   z_out[0] = U[0] + sum_m w[m][0] (k1_m - s_m),   z_out[1] = U[1] + sum_m w[m][1] s_m.
// Saves delta = z_in[1] - z_in[0] (N, P) and s (N, 2, P) for the backward pass.
// Shared: image (P), q (P), gy (H), gx (W).
extern "C" __global__ void crf_dense_step(const REAL* __restrict__ U, const REAL* __restrict__ image,
                                          const REAL* __restrict__ w, const REAL* __restrict__ k1,
                                          const REAL* __restrict__ z_in, REAL* __restrict__ z_out,
                                          REAL* __restrict__ delta_out, REAL* __restrict__ msg_out,
                                          const int H, const int W, const REAL self_weight) {
    const int P = H * W, n = blockIdx.y;
    DYN_SHARED(REAL, smem);
    REAL *img = smem, *q = smem + P, *gy = q + P, *gx = gy + H;
    const REAL* zi = z_in + (size_t)n * 2 * P;
    for (int j = threadIdx.x; j < P; j += blockDim.x) {
        REAL s, ds;
        ts_sigmoid(zi[P + j] - zi[j], &s, &ds);
        img[j] = image[(size_t)n * P + j];
        q[j] = s;
    }
    crf_position_tables(gy, gx, H, W);
    __syncthreads();
    const REAL scale = (REAL)1 / (REAL)(P > 1 ? P - 1 : 1), off = (REAL)1 - self_weight;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < P; i += gridDim.x * blockDim.x) {
        const int yi = i / W, xi = i % W;
        const REAL Ii = img[i];
        REAL a = 0, b = 0;  // unscaled K_0 q and K_1 q, self pair included
        for (int yj = 0; yj < H; ++yj) {
            const REAL gyv = gy[ts_iabs(yi - yj)];
            const REAL *qr = q + yj * W, *Ir = img + yj * W;
            for (int xj = 0; xj < W; ++xj) {
                const REAL d = Ii - Ir[xj];
                a += ts_exp((REAL)-0.5 * d * d) * qr[xj];
                b += gyv * gx[ts_iabs(xi - xj)] * qr[xj];
            }
        }
        const size_t o = (size_t)n * 2 * P + i;
        const REAL s0 = scale * (a - off * q[i]), s1 = (REAL)0.5 * (b - off * q[i]);
        z_out[o] = U[o] + w[0] * (k1[o] - s0) + w[2] * (k1[o + P] - s1);
        z_out[o + P] = U[o + P] + w[1] * s0 + w[3] * s1;
        delta_out[(size_t)n * P + i] = zi[P + i] - zi[i];
        msg_out[o] = s0;
        msg_out[o + P] = s1;
    }
}

// Reverse of one iteration. In: g_in = dL/dz_out (N, 2, P) and the iteration's saved delta, s.
// Out: g_out = dL/dz_in through q (g_out[0] = -g_out[1]); accumulates gU += g_out,
// gk1 += w[0][0] g_in[0] (dL/d(K_0 1)), gI += d/dI of this iteration's messages (when
// need_image), and gw_part[n, b, 2 m + l] += this block's share of dL/dw.
//   gs_m = w[m][1] g1 - w[m][0] g0 (dL/d(K_m q)),  g1_out = sigma'(delta) sum_m K_m gs_m,
//   image: -(gs_0 [I, K_0] q + q [I, K_0] gs_0), [I, K_0] x_i = sum_j e_ij (I_i - I_j) x_j / (P - 1).
// Shared: image, q, gs_0, gs_1 (P each), gy (H), gx (W), reduction (4 B).
extern "C" __global__ void crf_dense_step_backward(
        const REAL* __restrict__ image, const REAL* __restrict__ w, const REAL* __restrict__ k1,
        const REAL* __restrict__ delta, const REAL* __restrict__ msg, const REAL* __restrict__ g_in,
        REAL* __restrict__ g_out, REAL* __restrict__ gU, REAL* __restrict__ gk1, REAL* __restrict__ gI,
        REAL* __restrict__ gw_part, const int H, const int W, const REAL self_weight, const int need_image) {
    const int P = H * W, n = blockIdx.y;
    DYN_SHARED(REAL, smem);
    REAL *img = smem, *q = img + P, *gs0 = q + P, *gs1 = gs0 + P, *gy = gs1 + P, *gx = gy + H, *red = gx + W;
    const REAL* gi = g_in + (size_t)n * 2 * P;
    for (int j = threadIdx.x; j < P; j += blockDim.x) {
        REAL s, ds;
        ts_sigmoid(delta[(size_t)n * P + j], &s, &ds);
        img[j] = image[(size_t)n * P + j];
        q[j] = s;
        gs0[j] = w[1] * gi[P + j] - w[0] * gi[j];
        gs1[j] = w[3] * gi[P + j] - w[2] * gi[j];
    }
    crf_position_tables(gy, gx, H, W);
    __syncthreads();
    const REAL scale = (REAL)1 / (REAL)(P > 1 ? P - 1 : 1), off = (REAL)1 - self_weight;
    REAL acc[4] = {0, 0, 0, 0};
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < P; i += gridDim.x * blockDim.x) {
        const int yi = i / W, xi = i % W;
        const REAL Ii = img[i];
        REAL A = 0, B = 0, C = 0, D = 0, E = 0;  // sums over j of e gs0, e I gs0, e I q, e q, g gs1
        for (int yj = 0; yj < H; ++yj) {
            const REAL gyv = gy[ts_iabs(yi - yj)];
            const REAL *Ir = img + yj * W, *qr = q + yj * W, *g0r = gs0 + yj * W, *g1r = gs1 + yj * W;
            for (int xj = 0; xj < W; ++xj) {
                const REAL d = Ii - Ir[xj], e = ts_exp((REAL)-0.5 * d * d);
                A += e * g0r[xj];
                E += gyv * gx[ts_iabs(xi - xj)] * g1r[xj];
                if (need_image) {
                    B += e * Ir[xj] * g0r[xj];
                    C += e * Ir[xj] * qr[xj];
                    D += e * qr[xj];
                }
            }
        }
        if (need_image)
            gI[(size_t)n * P + i] -= scale * (gs0[i] * (Ii * D - C) + q[i] * (Ii * A - B));
        REAL s, ds;
        ts_sigmoid(delta[(size_t)n * P + i], &s, &ds);
        crf_backward_pixel((size_t)n * 2 * P + i, P, w, k1, msg, g_in, ds,
                           scale * (A - off * gs0[i]) + (REAL)0.5 * (E - off * gs1[i]), acc,
                           gk1 + (size_t)n * P + i, g_out, gU);
    }
    crf_store_gw(red, acc, gw_part);
}

// The image gradient through K_0 1 (the unary-independent part of the label-0 message):
// gI -= gk1 [I, K_0] 1 + [I, K_0] gk1. Shared: image (P), gk1 (P).
extern "C" __global__ void crf_dense_ones_backward(const REAL* __restrict__ image, const REAL* __restrict__ gk1,
                                                   REAL* __restrict__ gI, const int H, const int W) {
    const int P = H * W, n = blockIdx.y;
    DYN_SHARED(REAL, smem);
    REAL *img = smem, *x = smem + P;
    for (int j = threadIdx.x; j < P; j += blockDim.x) {
        img[j] = image[(size_t)n * P + j];
        x[j] = gk1[(size_t)n * P + j];
    }
    __syncthreads();
    const REAL scale = (REAL)1 / (REAL)(P > 1 ? P - 1 : 1);
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < P; i += gridDim.x * blockDim.x) {
        const REAL Ii = img[i];
        REAL A = 0, B = 0, C = 0, D = 0;  // sums over j of e x, e I x, e I, e
        for (int j = 0; j < P; ++j) {
            const REAL d = Ii - img[j], e = ts_exp((REAL)-0.5 * d * d);
            A += e * x[j];
            B += e * img[j] * x[j];
            C += e * img[j];
            D += e;
        }
        gI[(size_t)n * P + i] -= scale * (x[i] * (Ii * D - C) + (Ii * A - B));
    }
}
