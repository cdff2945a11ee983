// Single-launch versions of layer pieces that the plain path spells as many array operations:
// col2im (KH KW strided slice-adds), 2x2 max pooling (3 maximums forward, a dozen masked
// copies backward), softmax cross-entropy (max, exp, sum, log, gather, ...) and tanh's backward.
// Each is one thread per output element, with a grid-stride loop, so any grid size is correct.
// tinyseg/cuda/layers.py launches them; the plain paths are their test oracles
// (tests/test_fused_layers.py).

// col2im as a gather: pixel (n, c, h, w) of the unpadded image sums every column entry that
// im2col copied from it, in the plain path's order (kernel offsets i, j row-major).
// col (N, C KH KW, OH OW) -> x (N, C, H, W).
extern "C" __global__ void col2im_gather(const REAL* __restrict__ col, REAL* __restrict__ x, const int N, const int C,
                                         const int H, const int W, const int KH, const int KW, const int sh,
                                         const int sw, const int ph, const int pw, const int OH, const int OW) {
    const long long total = (long long)N * C * H * W;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (long long)gridDim.x * blockDim.x) {
        const int w = (int)(idx % W), h = (int)((idx / W) % H);
        const long long nc = idx / ((long long)H * W);  // n C + c
        const int hp = h + ph, wp = w + pw;  // coordinates in the padded image
        const REAL* cn = col + nc * KH * KW * OH * OW;
        REAL sum = 0;
        for (int i = 0; i < KH; ++i) {
            const int oh_s = hp - i;  // = oh sh when this offset reads the pixel
            if (oh_s < 0 || oh_s % sh) continue;
            const int oh = oh_s / sh;
            if (oh >= OH) continue;
            for (int j = 0; j < KW; ++j) {
                const int ow_s = wp - j;
                if (ow_s < 0 || ow_s % sw) continue;
                const int ow = ow_s / sw;
                if (ow >= OW) continue;
                sum += cn[((long long)(i * KW + j) * OH + oh) * OW + ow];
            }
        }
        x[idx] = sum;
    }
}

// 2x2 stride-2 max pooling, floor mode: y (N, C, OH, OW) and arg, the row-major position (0..3)
// of the FIRST maximum of each window (the plain path's tie rule). x (N, C, H, W).
extern "C" __global__ void maxpool2x2_forward(const REAL* __restrict__ x, REAL* __restrict__ y,
                                              unsigned char* __restrict__ arg, const int NC, const int H,
                                              const int W, const int OH, const int OW) {
    const long long total = (long long)NC * OH * OW;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (long long)gridDim.x * blockDim.x) {
        const int ow = (int)(idx % OW), oh = (int)((idx / OW) % OH);
        const long long nc = idx / ((long long)OH * OW);
        const REAL* xw = x + (nc * H + 2 * oh) * W + 2 * ow;  // top-left pixel of the window
        const REAL v[4] = {xw[0], xw[1], xw[W], xw[W + 1]};
        int best = 0;
        for (int k = 1; k < 4; ++k)  // the first maximum, or the first NaN (NumPy's max and argmax)
            if (v[k] > v[best] || (v[k] != v[k] && v[best] == v[best])) best = k;
        y[idx] = v[best];
        arg[idx] = (unsigned char)best;
    }
}

// Backward of maxpool2x2_forward: gx (N, C, H, W) gets gy at each window's recorded maximum and
// zero elsewhere (including a dropped odd last row or column). One thread per input pixel.
extern "C" __global__ void maxpool2x2_backward(const REAL* __restrict__ gy, const unsigned char* __restrict__ arg,
                                               REAL* __restrict__ gx, const int NC, const int H, const int W,
                                               const int OH, const int OW) {
    const long long total = (long long)NC * H * W;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (long long)gridDim.x * blockDim.x) {
        const int w = (int)(idx % W), h = (int)((idx / W) % H);
        const long long nc = idx / ((long long)H * W);
        const int oh = h / 2, ow = w / 2;
        REAL g = 0;
        if (oh < OH && ow < OW) {
            const long long o = (nc * OH + oh) * OW + ow;
            if (arg[o] == (h % 2) * 2 + (w % 2)) g = gy[o];
        }
        gx[idx] = g;
    }
}

// Softmax cross-entropy per pixel: loss[p] = log sum_c e^{z_c - m} - (z_t - m), m = max_c z_c,
// for logits (N, C, S) and integer targets (N, S); p = n S + s. Sum and mean on the caller's side.
extern "C" __global__ void softmax_xent_forward(const REAL* __restrict__ z, const long long* __restrict__ target,
                                                REAL* __restrict__ loss, const int N, const int C, const int S) {
    const long long total = (long long)N * S;
    for (long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x; p < total;
         p += (long long)gridDim.x * blockDim.x) {
        const long long n = p / S, s = p % S;
        const REAL* zp = z + n * C * S + s;  // z[n, c, s] = zp[c S]
        REAL m = zp[0];
        for (int c = 1; c < C; ++c) m = zp[(long long)c * S] > m ? zp[(long long)c * S] : m;
        REAL se = 0;
        for (int c = 0; c < C; ++c) se += ts_exp(zp[(long long)c * S] - m);
        loss[p] = ts_log(se) - (zp[target[p] * S] - m);
    }
}

// Its gradient: gz = (softmax(z) - onehot(t)) gy / count, gy a 0-d array on the device (no sync).
extern "C" __global__ void softmax_xent_backward(const REAL* __restrict__ z, const long long* __restrict__ target,
                                                 const REAL* __restrict__ gy, REAL* __restrict__ gz, const int N,
                                                 const int C, const int S, const REAL inv_count) {
    const long long total = (long long)N * S;
    const REAL scale = gy[0] * inv_count;
    for (long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x; p < total;
         p += (long long)gridDim.x * blockDim.x) {
        const long long n = p / S, s = p % S;
        const REAL* zp = z + n * C * S + s;
        REAL* gp = gz + n * C * S + s;
        REAL m = zp[0];
        for (int c = 1; c < C; ++c) m = zp[(long long)c * S] > m ? zp[(long long)c * S] : m;
        REAL se = 0;
        for (int c = 0; c < C; ++c) se += ts_exp(zp[(long long)c * S] - m);
        for (int c = 0; c < C; ++c)
            gp[(long long)c * S] = (ts_exp(zp[(long long)c * S] - m) / se - (target[p] == c ? (REAL)1 : (REAL)0)) * scale;
    }
}

// tanh's backward from its output: gx = gy (1 - y^2).
extern "C" __global__ void tanh_backward(const REAL* __restrict__ y, const REAL* __restrict__ gy,
                                         REAL* __restrict__ gx, const long long n) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        gx[i] = gy[i] * ((REAL)1 - y[i] * y[i]);
}

// log_softmax over the middle axis of x viewed as (outer, C, inner), by log-sum-exp:
// y = (x - m) - log sum_c e^{x_c - m}, m = max_c x_c.
extern "C" __global__ void log_softmax_forward(const REAL* __restrict__ x, REAL* __restrict__ y,
                                               const long long outer, const int C, const long long inner) {
    const long long total = outer * inner;
    for (long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x; p < total;
         p += (long long)gridDim.x * blockDim.x) {
        const long long base = (p / inner) * C * inner + p % inner;  // x[o, c, s] = x[base + c inner]
        REAL m = x[base];
        for (int c = 1; c < C; ++c) m = x[base + c * inner] > m ? x[base + c * inner] : m;
        REAL se = 0;
        for (int c = 0; c < C; ++c) se += ts_exp(x[base + c * inner] - m);
        const REAL lse = ts_log(se);
        for (int c = 0; c < C; ++c) y[base + c * inner] = (x[base + c * inner] - m) - lse;
    }
}

// Its gradient from the output: gx = gy - e^y sum_c gy_c.
extern "C" __global__ void log_softmax_backward(const REAL* __restrict__ y, const REAL* __restrict__ gy,
                                                REAL* __restrict__ gx, const long long outer, const int C,
                                                const long long inner) {
    const long long total = outer * inner;
    for (long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x; p < total;
         p += (long long)gridDim.x * blockDim.x) {
        const long long base = (p / inner) * C * inner + p % inner;
        REAL sg = 0;
        for (int c = 0; c < C; ++c) sg += gy[base + c * inner];
        for (int c = 0; c < C; ++c) gx[base + c * inner] = gy[base + c * inner] - ts_exp(y[base + c * inner]) * sg;
    }
}
