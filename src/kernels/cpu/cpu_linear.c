/* Fast linear: y[M, N] = x[M, K] · W[n0:n1, :]ᵀ (+ b).
 * - small M (decode) with bf16 weights: a GEMV (AVX-512 here, NEON in
 *   cpu_linear_neon.c) that streams each weight row once, exact f32 math on widened
 *   weights (no bf16 rounding of activations);
 * - otherwise: blocks of weight rows widened to f32 in per-thread scratch, then
 *   single-threaded ds_cpu_sgemm per block (OpenBLAS, or the blocked GEMM of
 *   cpu_gemm.c in -DDSOCR_NO_BLAS builds), blocks spread over the pool. */
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <string.h>

#include "kernels/cpu/cpu.h"
#include "kernels/ref/ref.h"

int ds_cpu_has_avx512, ds_cpu_has_avx512vnni, ds_cpu_has_avx2;

/* ---- bf16 widening --------------------------------------------------------------- */

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bw")))
static void bf16_to_f32_avx512(const uint16_t *src, int64_t n, float *dst) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)(src + i));
        __m512i w = _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16);
        _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(w));
    }
    for (; i < n; i++) dst[i] = ds_bf16_to_f32(src[i]);
}

__attribute__((target("avx512f")))
static void f16_to_f32_avx512(const uint16_t *src, int64_t n, float *dst) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + i))));
    for (; i < n; i++) dst[i] = ds_f16_to_f32(src[i]);
}
#endif

void ds_cpu_row_to_f32(const ds_tensor *W, int64_t row, int64_t n, float *dst) {
#if defined(__x86_64__)
    if (ds_cpu_has_avx512 && W->dtype == DS_BF16) bf16_to_f32_avx512(ds_w_row_ptr(W, row), n, dst);
    else if (ds_cpu_has_avx512 && W->dtype == DS_F16) f16_to_f32_avx512(ds_w_row_ptr(W, row), n, dst);
    else if (ds_cpu_has_avx2 && W->dtype == DS_BF16) ds_avx2_bf16_to_f32(ds_w_row_ptr(W, row), n, dst);
#elif defined(__aarch64__)
    if (ds_cpu_has_neon && W->dtype == DS_BF16) ds_neon_bf16_to_f32(ds_w_row_ptr(W, row), n, dst);
    else if (ds_cpu_has_neon && W->dtype == DS_F16) ds_neon_f16_to_f32(ds_w_row_ptr(W, row), n, dst);
#else
    if (0) {}
#endif
    else if (ds_dtype_is_quant(W->dtype)) ds_cpu_dequant_row(W, row, n, dst);
    else ds_w_row_f32(W, row, n, dst);
}

/* ---- GEMV for small M ------------------------------------------------------------ */

#if defined(__x86_64__)

/* A 32-bf16 chunk read as 16 uint32 lanes holds w[2i] in the low half and w[2i+1] in
 * the high half of lane i: `<< 16` widens the even elements, `& 0xffff0000` the odd
 * ones, with no shuffles. x is split the same way once per task: xe/xo [M][K/32*16]. */
typedef struct {
    ds_backend *be;
    float *y; const float *x;
    int M, K;
    const ds_tensor *W, *b;
    int64_t n0, N;
} gemv_job;

#define GEMV_ROWS 4   /* weight rows per inner step: 4·MB accumulators in flight */

/* y[m][j..j+4) for m in [m0, m0+MB), MB = 2..4, over the vector part of K. Written
 * with macros so that all 4·MB accumulators stay in registers (loops over arrays of
 * __m512 were not unrolled by gcc -O2 and spilled to the stack). */
#define GEMV_M2(X, r) X(r, 0) X(r, 1)
#define GEMV_M3(X, r) X(r, 0) X(r, 1) X(r, 2)
#define GEMV_M4(X, r) X(r, 0) X(r, 1) X(r, 2) X(r, 3)
#define GEMV_ALL(X, MS) MS(X, 0) MS(X, 1) MS(X, 2) MS(X, 3)
#define GEMV_ACC_ZERO(r, m) __m512 acc##r##m = _mm512_setzero_ps();
#define GEMV_LOAD_X(r, m) __m512 ve##m = _mm512_loadu_ps(xe + (m0 + m) * stride_x + c * 16), \
                                 vo##m = _mm512_loadu_ps(xo + (m0 + m) * stride_x + c * 16);
#define GEMV_LOAD_W(r) __m512i raw##r = _mm512_loadu_si512((const void *)(w##r + c * 32)); \
    __m512 we##r = _mm512_castsi512_ps(_mm512_slli_epi32(raw##r, 16)); \
    __m512 wo##r = _mm512_castsi512_ps(_mm512_and_si512(raw##r, hi_mask));
#define GEMV_FMA(r, m) acc##r##m = _mm512_fmadd_ps(we##r, ve##m, acc##r##m); \
                       acc##r##m = _mm512_fmadd_ps(wo##r, vo##m, acc##r##m);
#define GEMV_STORE(r, m) out[r][m] = _mm512_reduce_add_ps(acc##r##m);

/* Each step also prefetches the same columns of the next group of 4 rows: without it
 * the 331 MB lm_head GEMV ran 10-25% slower in A/B runs of tests/bench_kernels.c. */
#define GEMV_KERNEL(MB, MS) \
__attribute__((target("avx512f,avx512bw"))) \
static void gemv_rows4_m##MB(const gemv_job *G, const float *xe, const float *xo, int64_t stride_x, \
                             int64_t j, int m0, int nchunks, float out[GEMV_ROWS][4]) { \
    const uint16_t *w0 = ds_w_row_ptr(G->W, G->n0 + j), *w1 = ds_w_row_ptr(G->W, G->n0 + j + 1); \
    const uint16_t *w2 = ds_w_row_ptr(G->W, G->n0 + j + 2), *w3 = ds_w_row_ptr(G->W, G->n0 + j + 3); \
    const __m512i hi_mask = _mm512_set1_epi32((int)0xffff0000u); \
    /* same columns of the next group of rows, as an address (may lie past the tensor) */ \
    const uintptr_t pf = (uintptr_t)(GEMV_PF_GROUPS * GEMV_ROWS * G->W->stride[0] * 2); \
    GEMV_ALL(GEMV_ACC_ZERO, MS) \
    for (int c = 0; c < nchunks; c++) { \
        _mm_prefetch((const char *)((uintptr_t)(w0 + c * 32) + pf), GEMV_PF_HINT); \
        _mm_prefetch((const char *)((uintptr_t)(w1 + c * 32) + pf), GEMV_PF_HINT); \
        _mm_prefetch((const char *)((uintptr_t)(w2 + c * 32) + pf), GEMV_PF_HINT); \
        _mm_prefetch((const char *)((uintptr_t)(w3 + c * 32) + pf), GEMV_PF_HINT); \
        MS(GEMV_LOAD_X, 0) \
        GEMV_LOAD_W(0) GEMV_LOAD_W(1) GEMV_LOAD_W(2) GEMV_LOAD_W(3) \
        GEMV_ALL(GEMV_FMA, MS) \
    } \
    GEMV_ALL(GEMV_STORE, MS) \
}
GEMV_KERNEL(2, GEMV_M2)
GEMV_KERNEL(3, GEMV_M3)
GEMV_KERNEL(4, GEMV_M4)

/* M = 1 (decode): the 4 rows one after another, so that the weights are read as one
 * sequential stream that the hardware prefetcher follows; 4 independent accumulators
 * per row (2 chunks x even/odd) hide the FMA latency. Reading the 4 rows side by side
 * as the MB >= 2 kernels do ran at 12-13 GB/s on one Zen 4 core, this at 22-25 GB/s
 * (bench_decode gemv). */
__attribute__((target("avx512f,avx512bw")))
static void gemv_rows4_seq_m1(const gemv_job *G, const float *xe, const float *xo,
                              int64_t j, int nchunks, float out[GEMV_ROWS][4]) {
    const __m512i hi_mask = _mm512_set1_epi32((int)0xffff0000u);
    for (int r = 0; r < GEMV_ROWS; r++) {
        const uint16_t *w = ds_w_row_ptr(G->W, G->n0 + j + r);
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        __m512 a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
        int c = 0;
        for (; c + 2 <= nchunks; c += 2) {
            __m512i r0 = _mm512_loadu_si512((const void *)(w + c * 32));
            __m512i r1 = _mm512_loadu_si512((const void *)(w + c * 32 + 32));
            a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(r0, 16)), _mm512_loadu_ps(xe + c * 16), a0);
            a1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(r0, hi_mask)), _mm512_loadu_ps(xo + c * 16), a1);
            a2 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(r1, 16)), _mm512_loadu_ps(xe + c * 16 + 16), a2);
            a3 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(r1, hi_mask)), _mm512_loadu_ps(xo + c * 16 + 16), a3);
        }
        if (c < nchunks) {
            __m512i r0 = _mm512_loadu_si512((const void *)(w + c * 32));
            a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(r0, 16)), _mm512_loadu_ps(xe + c * 16), a0);
            a1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(r0, hi_mask)), _mm512_loadu_ps(xo + c * 16), a1);
        }
        out[r][0] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    }
}

/* Same for a single weight row (the N % 4 leftovers). */
__attribute__((target("avx512f,avx512bw")))
static float gemv_row1(const uint16_t *w, const float *xe, const float *xo, int nchunks) {
    __m512 acc = _mm512_setzero_ps();
    const __m512i hi_mask = _mm512_set1_epi32((int)0xffff0000u);
    for (int c = 0; c < nchunks; c++) {
        __m512i raw = _mm512_loadu_si512((const void *)(w + c * 32));
        acc = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(raw, 16)), _mm512_loadu_ps(xe + c * 16), acc);
        acc = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(raw, hi_mask)), _mm512_loadu_ps(xo + c * 16), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

/* x split for the row kernels: xe/xo [M][K/32*16] (even / odd elements of each
 * 32-element chunk) in buf. */
void ds_cpu_bf16_gemv_prep(const ds_linear_job *J, float *buf) {
    const int K = J->K, nchunks = K / 32;
    const int64_t sx = (int64_t)nchunks * 16;
    float *xe = buf, *xo = buf + (size_t)J->M * sx;
    for (int m = 0; m < J->M; m++)
        for (int i = 0; i < nchunks * 16; i++) {
            xe[m * sx + i] = J->x[(size_t)m * K + 2 * i];
            xo[m * sx + i] = J->x[(size_t)m * K + 2 * i + 1];
        }
}

/* y rows [j0, j1) of the job (relative to n0), from the prepared x. */
__attribute__((target("avx512f,avx512bw")))
void ds_cpu_bf16_gemv_rows(const ds_linear_job *J, const float *buf, int64_t j0, int64_t j1) {
    const gemv_job Gs = {NULL, J->y, J->x, J->M, J->K, J->W, J->b, J->n0, ds_job_n1(J) - J->n0}, *G = &Gs;
    const int K = G->K, M = G->M, nchunks = K / 32, kv = nchunks * 32;
    const int64_t sx = (int64_t)nchunks * 16;
    const float *xe = buf, *xo = buf + (size_t)M * sx;
    int64_t j = j0;
    for (; j + GEMV_ROWS <= j1; j += GEMV_ROWS) {
        for (int m0 = 0; m0 < M; m0 += 4) {
            int MB = M - m0 < 4 ? M - m0 : 4;
            float out[GEMV_ROWS][4];
            switch (MB) {
            case 1: gemv_rows4_seq_m1(G, xe + m0 * sx, xo + m0 * sx, j, nchunks, out); break;
            case 2: gemv_rows4_m2(G, xe, xo, sx, j, m0, nchunks, out); break;
            case 3: gemv_rows4_m3(G, xe, xo, sx, j, m0, nchunks, out); break;
            default: gemv_rows4_m4(G, xe, xo, sx, j, m0, nchunks, out); break;
            }
            for (int r = 0; r < GEMV_ROWS; r++)
                for (int m = 0; m < MB; m++) G->y[(size_t)(m0 + m) * G->N + j + r] = out[r][m];
        }
    }
    for (; j < j1; j++)
        for (int m = 0; m < M; m++)
            G->y[(size_t)m * G->N + j] = gemv_row1(ds_w_row_ptr(G->W, G->n0 + j), xe + m * sx, xo + m * sx, nchunks);
    /* K tail and bias, scalar */
    if (kv == K && !G->b) return;
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

#endif   /* __x86_64__ */

/* ---- blocked sgemm ----------------------------------------------------------------- */

typedef struct {
    ds_backend *be;
    float *y; const float *x;
    int M, K;
    const ds_tensor *W, *b;
    int64_t n0, N, nb;     /* nb weight rows per block */
} gemm_job;

/* y[m][j] += b[b0 + j] over a rows x cols block of y with row stride ldy. */
static void add_bias_block(float *y, int64_t ldy, int rows, int64_t cols, const ds_tensor *b, int64_t b0) {
    for (int m = 0; m < rows; m++)
        for (int64_t j = 0; j < cols; j++) y[(size_t)m * ldy + j] += ds_tensor_get_f32(b, b0 + j);
}

/* items = blocks of nb weight rows */
static void gemm_task(void *ctx, int64_t b0, int64_t b1, int tid) {
    gemm_job *G = ctx;
    for (int64_t blk = b0; blk < b1; blk++) {
        int64_t j0 = blk * G->nb, jn = G->N - j0 < G->nb ? G->N - j0 : G->nb;
        const float *wf;
        int64_t ldw;
        if (G->W->dtype == DS_F32) {        /* used in place */
            wf = ds_w_row_ptr(G->W, G->n0 + j0);
            ldw = G->W->stride[0];
        } else {
            float *buf = ds_scratch(G->be, tid);                     /* [jn, K] */
            for (int64_t r = 0; r < jn; r++) ds_cpu_row_to_f32(G->W, G->n0 + j0 + r, G->K, buf + r * G->K);
            wf = buf;
            ldw = G->K;
        }
        ds_cpu_sgemm(1, G->M, (int)jn, G->K, 1.0f, G->x, G->K, wf, (int)ldw, 0.0f, G->y + j0, (int)G->N);
        if (G->b) add_bias_block(G->y + j0, G->N, G->M, jn, G->b, G->n0 + j0);
    }
}

/* ---- large M: widen the weight once, then tiles over the whole output ------------
 * Vision and prefill (M = 256..4900 rows). Calling sgemm per block of a few weight
 * rows, as gemm_task does, makes the BLAS pack all of x (up to 4900 x 3072 floats)
 * again for every block: SAM's linears ran at half the sgemm rate that way. Here the
 * weight slice is widened to f32 once into a shared buffer (a panel of at most
 * WIDE_MAX_FLOATS), and each thread runs sgemm on whole TM x TN tiles of y. */
#define WIDE_MIN_M 128
#define WIDE_MAX_FLOATS ((size_t)16 << 20)   /* 64 MiB */
#ifndef WIDE_TM
#define WIDE_TM 512
#endif

typedef struct {
    const ds_tensor *W;
    float *wf;              /* [rows, K] widened */
    int64_t row0;           /* first weight row of the panel */
    int K;
} widen_job;

static void widen_task(void *ctx, int64_t r0, int64_t r1, int tid) {
    (void)tid;
    widen_job *J = ctx;
    for (int64_t r = r0; r < r1; r++) ds_cpu_row_to_f32(J->W, J->row0 + r, J->K, J->wf + r * J->K);
}

typedef struct {
    float *y; const float *x;
    int M, K;
    const float *wf; int64_t ldw;   /* the panel's rows, y columns [c0, c0 + nc) */
    const ds_tensor *b;
    int64_t n0, N, c0, nc;          /* N: y's row length */
    int tm, tn, n_tn;               /* tile sizes; tiles per row of tiles */
} tile_job;

static void tile_task(void *ctx, int64_t t0, int64_t t1, int tid) {
    (void)tid;
    tile_job *T = ctx;
    for (int64_t t = t0; t < t1; t++) {
        int m0 = (int)(t / T->n_tn) * T->tm, c = (int)(t % T->n_tn) * T->tn;
        int mn = T->M - m0 < T->tm ? T->M - m0 : T->tm;
        int cn = T->nc - c < T->tn ? (int)T->nc - c : T->tn;
        float *yt = T->y + (size_t)m0 * T->N + T->c0 + c;
        ds_cpu_sgemm(1, mn, cn, T->K, 1.0f, T->x + (size_t)m0 * T->K, T->K, T->wf + (size_t)c * T->ldw,
                     (int)T->ldw, 0.0f, yt, (int)T->N);
        if (T->b) add_bias_block(yt, T->N, mn, cn, T->b, T->n0 + T->c0 + c);
    }
}

/* 1 when it ran; 0 when the shared buffer could not grow (the caller falls back). */
static int linear_wide(ds_backend *be, float *y, const float *x, int M, int K,
                       const ds_tensor *W, const ds_tensor *b, int64_t n0, int64_t N) {
    /* Tiles depend on M and N only, never on the thread count: which outputs share an
     * sgemm call can change result bits (see below). >= 8 tiles keep 2-8 threads busy. */
    int n_tm = (M + WIDE_TM - 1) / WIDE_TM;
    int64_t want_tn = n_tm >= 8 ? 1 : (8 + n_tm - 1) / n_tm;
    int64_t tn = (N + want_tn - 1) / want_tn;
    tn = (tn + 15) & ~(int64_t)15;
    if (tn < 128) tn = 128;
    int64_t panel = W->dtype == DS_F32 ? N : (int64_t)(WIDE_MAX_FLOATS / (size_t)K) / tn * tn;
    if (panel < tn) return 0;
    if (panel > N) panel = N;
    float *buf = NULL;
    if (W->dtype != DS_F32 && !(buf = ds_backend_work(be, DS_WORK_WEIGHTS, (size_t)panel * K))) return 0;
    for (int64_t c0 = 0; c0 < N; c0 += panel) {
        int64_t nc = N - c0 < panel ? N - c0 : panel;
        const float *wf;
        int64_t ldw;
        if (W->dtype == DS_F32) {   /* used in place */
            wf = ds_w_row_ptr(W, n0 + c0);
            ldw = W->stride[0];
        } else {                    /* [nc, K] */
            widen_job J = {W, buf, n0 + c0, K};
            ds_pool_for(be->pool, nc, 16, widen_task, &J);
            wf = buf;
            ldw = K;
        }
        int n_tn = (int)((nc + tn - 1) / tn);
        tile_job T = {y, x, M, K, wf, ldw, b, n0, N, c0, nc, WIDE_TM, (int)tn, n_tn};
        ds_pool_for(be->pool, (int64_t)n_tm * n_tn, 1, tile_task, &T);
    }
    return 1;
}

void ds_cpu_linear(ds_backend *be, float *y, const float *x, int M, int K,
                   const ds_tensor *W, const ds_tensor *b, int64_t n0, int64_t n1) {
    if (M <= 0 || n1 <= n0) return;
    int64_t N = n1 - n0;
    const ds_linear_job J = {y, x, M, K, W, b, n0, n1};
    if (ds_cpu_gemv_ok(&J)) {   /* decode: the batched GEMV with one job */
        ds_cpu_linear_batch(be, 1, &J);
        return;
    }
#if defined(__aarch64__)
    if (ds_cpu_has_neon && W->dtype == DS_BF16 && M < DS_GEMV_MAX_M) {   /* reads x in place: no scratch */
        ds_neon_gemv_bf16(be, y, x, M, K, W, b, n0, n1);
        return;
    }
#endif
    if (M >= WIDE_MIN_M && linear_wide(be, y, x, M, K, W, b, n0, N)) return;
    /* Block size: the widened block must fit the scratch; otherwise ~32 blocks for
     * balance, at least 64 rows so sgemm runs at full speed. */
    int64_t nb_max = (int64_t)(DS_SCRATCH_FLOATS / (size_t)(K > 0 ? K : 1));
    if (nb_max < 1) {   /* a row longer than the scratch: stay correct, slowly */
        ds_ref_linear(be, y, x, M, K, W, b, n0, n1);
        return;
    }
    /* The blocks must not depend on the thread count: which columns share one sgemm
     * call changes result bits on some BLAS kernels (OpenBLAS Haswell: AVX2 hosts). */
    int64_t nb = (N + 31) / 32;
    if (nb < 64) nb = 64;
    if (nb > 512) nb = 512;
    nb = (nb + 15) & ~(int64_t)15;
    if (nb > nb_max) nb = nb_max;
    gemm_job G = {be, y, x, M, K, W, b, n0, N, nb};
    ds_pool_for(be->pool, (N + nb - 1) / nb, 1, gemm_task, &G);
}
