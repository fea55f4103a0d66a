/* NEON (aarch64) pieces of the fast linear (cpu_linear.c):
 * - bf16 / f16 weight rows widened to f32 (bf16: SHLL by 16 puts each half-word in
 *   the top of a 32-bit lane; f16: FCVTL, baseline on ARMv8);
 * - the bf16 GEMV for small M: 4 weight rows x up to 4 activation rows per step, 8
 *   weights per row per step widened in registers, exact f32 FMAs (the activations
 *   are never rounded to bf16, which is why the BF16 extension's BFDOT/BFMMLA,
 *   bf16 x bf16 products, are not used here). */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "kernels/cpu/cpu.h"

/* ---- widening ----------------------------------------------------------------------- */

void ds_neon_bf16_to_f32(const uint16_t *src, int64_t n, float *dst) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint16x8_t h = vld1q_u16(src + i);
        vst1q_f32(dst + i, vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16)));
        vst1q_f32(dst + i + 4, vreinterpretq_f32_u32(vshll_high_n_u16(h, 16)));
    }
    for (; i < n; i++) dst[i] = ds_bf16_to_f32(src[i]);
}

void ds_neon_f16_to_f32(const uint16_t *src, int64_t n, float *dst) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(dst + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(src + i))));
    for (; i < n; i++) dst[i] = ds_f16_to_f32(src[i]);
}

/* ---- GEMV for small M ------------------------------------------------------------------ */

typedef struct {
    float *y; const float *x;
    int M, K;
    const ds_tensor *W, *b;
    int64_t n0, N;
} gemv_job;

/* y[m0+m][j+r] for r < 4, m < MB over the first nchunks·8 columns. Written with macros
 * so that the 4·MB accumulators stay in registers. */
#define GEMV_M1(X, r) X(r, 0)
#define GEMV_M2(X, r) X(r, 0) X(r, 1)
#define GEMV_M3(X, r) X(r, 0) X(r, 1) X(r, 2)
#define GEMV_M4(X, r) X(r, 0) X(r, 1) X(r, 2) X(r, 3)
#define GEMV_ALL(X, MS) MS(X, 0) MS(X, 1) MS(X, 2) MS(X, 3)
#define GEMV_ACC_ZERO(r, m) float32x4_t acc##r##m = vdupq_n_f32(0.0f);
#define GEMV_LOAD_X(r, m) const float32x4_t xl##m = vld1q_f32(x + (size_t)(m0 + m) * K + c * 8), \
                                            xh##m = vld1q_f32(x + (size_t)(m0 + m) * K + c * 8 + 4);
#define GEMV_LOAD_W(r) const uint16x8_t raw##r = vld1q_u16(w##r + c * 8); \
    const float32x4_t wl##r = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(raw##r), 16)); \
    const float32x4_t wh##r = vreinterpretq_f32_u32(vshll_high_n_u16(raw##r, 16));
#define GEMV_FMA(r, m) acc##r##m = vfmaq_f32(acc##r##m, wl##r, xl##m); \
                       acc##r##m = vfmaq_f32(acc##r##m, wh##r, xh##m);
#define GEMV_STORE(r, m) out[r][m] = vaddvq_f32(acc##r##m);

#define GEMV_KERNEL(MB, MS) \
static void gemv_rows4_m##MB(const gemv_job *G, int64_t j, int m0, int nchunks, float out[4][4]) { \
    const float *x = G->x; \
    const int K = G->K; \
    const uint16_t *w0 = ds_w_row_ptr(G->W, G->n0 + j), *w1 = ds_w_row_ptr(G->W, G->n0 + j + 1); \
    const uint16_t *w2 = ds_w_row_ptr(G->W, G->n0 + j + 2), *w3 = ds_w_row_ptr(G->W, G->n0 + j + 3); \
    GEMV_ALL(GEMV_ACC_ZERO, MS) \
    for (int c = 0; c < nchunks; c++) { \
        MS(GEMV_LOAD_X, 0) \
        GEMV_LOAD_W(0) GEMV_LOAD_W(1) GEMV_LOAD_W(2) GEMV_LOAD_W(3) \
        GEMV_ALL(GEMV_FMA, MS) \
    } \
    GEMV_ALL(GEMV_STORE, MS) \
}
GEMV_KERNEL(1, GEMV_M1)
GEMV_KERNEL(2, GEMV_M2)
GEMV_KERNEL(3, GEMV_M3)
GEMV_KERNEL(4, GEMV_M4)

/* One weight row (the N % 4 leftovers) against activation row xm. */
static float gemv_row1(const uint16_t *w, const float *xm, int nchunks) {
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (int c = 0; c < nchunks; c++) {
        uint16x8_t raw = vld1q_u16(w + c * 8);
        acc = vfmaq_f32(acc, vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(raw), 16)), vld1q_f32(xm + c * 8));
        acc = vfmaq_f32(acc, vreinterpretq_f32_u32(vshll_high_n_u16(raw, 16)), vld1q_f32(xm + c * 8 + 4));
    }
    return vaddvq_f32(acc);
}

/* items = weight rows */
static void gemv_task(void *ctx, int64_t j0, int64_t j1, int tid) {
    (void)tid;
    gemv_job *G = ctx;
    int K = G->K, M = G->M, nchunks = K / 8, kv = nchunks * 8;
    int64_t j = j0;
    for (; j + 4 <= j1; j += 4)
        for (int m0 = 0; m0 < M; m0 += 4) {
            int MB = M - m0 < 4 ? M - m0 : 4;
            float out[4][4];
            switch (MB) {
            case 1: gemv_rows4_m1(G, j, m0, nchunks, out); break;
            case 2: gemv_rows4_m2(G, j, m0, nchunks, out); break;
            case 3: gemv_rows4_m3(G, j, m0, nchunks, out); break;
            default: gemv_rows4_m4(G, j, m0, nchunks, out); break;
            }
            for (int r = 0; r < 4; r++)
                for (int m = 0; m < MB; m++) G->y[(size_t)(m0 + m) * G->N + j + r] = out[r][m];
        }
    for (; j < j1; j++)
        for (int m = 0; m < M; m++)
            G->y[(size_t)m * G->N + j] = gemv_row1(ds_w_row_ptr(G->W, G->n0 + j), G->x + (size_t)m * K, nchunks);
    /* K tail and bias, scalar */
    for (int64_t jj = j0; jj < j1; jj++) {
        const uint16_t *w = ds_w_row_ptr(G->W, G->n0 + jj);
        float bias = G->b ? ds_tensor_get_f32(G->b, G->n0 + jj) : 0.0f;
        for (int m = 0; m < M; m++) {
            float s = 0.0f;
            for (int k = kv; k < K; k++) s += G->x[(size_t)m * K + k] * ds_bf16_to_f32(w[k]);
            G->y[(size_t)m * G->N + jj] += s + bias;
        }
    }
}

void ds_neon_gemv_bf16(ds_backend *be, float *y, const float *x, int M, int K,
                       const ds_tensor *W, const ds_tensor *b, int64_t n0, int64_t n1) {
    gemv_job G = {y, x, M, K, W, b, n0, n1 - n0};
    ds_pool_for(be->pool, G.N, 16, gemv_task, &G);
}

#else
/* ISO C forbids an empty translation unit */
typedef int ds_cpu_linear_neon_unused;
#endif
