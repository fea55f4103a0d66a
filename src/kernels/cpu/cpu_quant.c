/* Fast linear over block-quantized weights (Q8_0, Q4_0; layouts in core/tensor.h).
 * - small M (decode): a fused dequantize-GEMV that streams each quantized row once;
 *   the weights are widened to f32 in registers and multiplied with the exact f32
 *   activations (no activation rounding), one f16 scale per 32-element block;
 * - large M: ds_cpu_linear's blocked sgemm, fed by ds_cpu_dequant_row below.
 * Per block and row: t = Σ w_q · x (two 16-lane FMAs), acc += d · t. Q4_0's "- 8" is
 * folded into the activations once per call: c = -8 · (x_lo + x_hi) starts t. */
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define Q8_BYTES 34   /* f16 scale + 32 int8 */
#define Q4_BYTES 18   /* f16 scale + 16 bytes of nibbles */

typedef struct {
    ds_backend *be;
    float *y; const float *x;
    int M, K, nb;          /* nb blocks per row */
    const ds_tensor *W, *b;
    int64_t n0, N;
    size_t row_bytes;
} qgemv_job;

static inline uint16_t load_u16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return h;
}

/* ---- vectorised dequantization (the large-M path) -------------------------------- */

__attribute__((target("avx512f,avx512bw,f16c")))
static void dequant_row_avx512(ds_dtype t, const uint8_t *src, int64_t n, float *dst) {
    int64_t nfull = n / DS_QBLOCK;
    const __m512i low4 = _mm512_set1_epi32(15), eight = _mm512_set1_epi32(8);
    for (int64_t b = 0; b < nfull; b++) {
        float *o = dst + b * DS_QBLOCK;
        if (t == DS_Q8_0) {
            const uint8_t *p = src + b * Q8_BYTES;
            __m512 d = _mm512_set1_ps(_cvtsh_ss(load_u16(p)));
            _mm512_storeu_ps(o, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p + 2))))));
            _mm512_storeu_ps(o + 16, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p + 18))))));
        } else {
            const uint8_t *p = src + b * Q4_BYTES;
            __m512 d = _mm512_set1_ps(_cvtsh_ss(load_u16(p)));
            __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + 2)));
            _mm512_storeu_ps(o, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_and_si512(v, low4), eight))));
            _mm512_storeu_ps(o + 16, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(v, 4), eight))));
        }
    }
    if (nfull * DS_QBLOCK < n)   /* partial last block */
        ds_dequantize_row(t, src + ds_dtype_bytes(t, nfull * DS_QBLOCK), n - nfull * DS_QBLOCK, dst + nfull * DS_QBLOCK);
}

void ds_cpu_dequant_row(const ds_tensor *W, int64_t row, int64_t n, float *dst) {
    if (ds_cpu_has_avx512) dequant_row_avx512(W->dtype, ds_w_row_ptr(W, row), n, dst);
    else ds_dequantize_row(W->dtype, ds_w_row_ptr(W, row), n, dst);
}

/* ---- GEMV for small M -------------------------------------------------------------- */

/* y[m][j..j+4) for m in [m0, m0+MB), MB = 2..4: 4·MB accumulators kept in registers
 * (macros, as in cpu_linear.c). xq [M][nb*32] is x zero-padded to whole blocks;
 * c [M][nb*16] is Q4's folded offset (unused by Q8). */
#define QG_M2(X, r) X(r, 0) X(r, 1)
#define QG_M3(X, r) X(r, 0) X(r, 1) X(r, 2)
#define QG_M4(X, r) X(r, 0) X(r, 1) X(r, 2) X(r, 3)
#define QG_ALL(X, MS) MS(X, 0) MS(X, 1) MS(X, 2) MS(X, 3)
#define QG_ACC_ZERO(r, m) __m512 acc##r##m = _mm512_setzero_ps();
#define QG_STORE(r, m) out[r][m] = _mm512_reduce_add_ps(acc##r##m);
#define QG_PREFETCH(r) _mm_prefetch((const char *)((uintptr_t)(w##r + b * bb) + pf), GEMV_PF_HINT);

#define Q8_LOAD_W(r) const uint8_t *p##r = w##r + b * Q8_BYTES; \
    __m512 wl##r = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p##r + 2)))); \
    __m512 wh##r = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p##r + 18)))); \
    __m512 d##r = _mm512_set1_ps(_cvtsh_ss(load_u16(p##r)));
#define Q8_FMA(r, m) { \
    __m512 t = _mm512_mul_ps(wl##r, _mm512_loadu_ps(xq + (m0 + m) * sx + b * 32)); \
    t = _mm512_fmadd_ps(wh##r, _mm512_loadu_ps(xq + (m0 + m) * sx + b * 32 + 16), t); \
    acc##r##m = _mm512_fmadd_ps(t, d##r, acc##r##m); }

#define Q4_LOAD_W(r) const uint8_t *p##r = w##r + b * Q4_BYTES; \
    __m512i v##r = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p##r + 2))); \
    __m512 wl##r = _mm512_cvtepi32_ps(_mm512_and_si512(v##r, low4)); \
    __m512 wh##r = _mm512_cvtepi32_ps(_mm512_srli_epi32(v##r, 4)); \
    __m512 d##r = _mm512_set1_ps(_cvtsh_ss(load_u16(p##r)));
#define Q4_FMA(r, m) { \
    __m512 t = _mm512_fmadd_ps(wl##r, _mm512_loadu_ps(xq + (m0 + m) * sx + b * 32), \
                               _mm512_loadu_ps(c + (m0 + m) * sc + b * 16)); \
    t = _mm512_fmadd_ps(wh##r, _mm512_loadu_ps(xq + (m0 + m) * sx + b * 32 + 16), t); \
    acc##r##m = _mm512_fmadd_ps(t, d##r, acc##r##m); }

#define QG_KERNEL(NAME, BB, LOAD_W, FMA, MS) \
__attribute__((target("avx512f,avx512bw,f16c"))) \
static void NAME(const qgemv_job *G, const float *xq, const float *c, int64_t sx, int64_t sc, \
                 int64_t j, int m0, float out[4][4]) { \
    const uint8_t *w0 = ds_w_row_ptr(G->W, G->n0 + j), *w1 = ds_w_row_ptr(G->W, G->n0 + j + 1); \
    const uint8_t *w2 = ds_w_row_ptr(G->W, G->n0 + j + 2), *w3 = ds_w_row_ptr(G->W, G->n0 + j + 3); \
    const __m512i low4 = _mm512_set1_epi32(15); \
    (void)low4; (void)c; (void)sc; \
    /* the same blocks of the next group of rows, as an address (may lie past the tensor) */ \
    const uintptr_t pf = (uintptr_t)(GEMV_PF_GROUPS * 4 * G->row_bytes); const int bb = BB; \
    QG_ALL(QG_ACC_ZERO, MS) \
    for (int b = 0; b < G->nb; b++) { \
        QG_PREFETCH(0) QG_PREFETCH(1) QG_PREFETCH(2) QG_PREFETCH(3) \
        LOAD_W(0) LOAD_W(1) LOAD_W(2) LOAD_W(3) \
        QG_ALL(FMA, MS) \
    } \
    QG_ALL(QG_STORE, MS) \
}
QG_KERNEL(q8_rows4_m2, Q8_BYTES, Q8_LOAD_W, Q8_FMA, QG_M2)
QG_KERNEL(q8_rows4_m3, Q8_BYTES, Q8_LOAD_W, Q8_FMA, QG_M3)
QG_KERNEL(q8_rows4_m4, Q8_BYTES, Q8_LOAD_W, Q8_FMA, QG_M4)
QG_KERNEL(q4_rows4_m2, Q4_BYTES, Q4_LOAD_W, Q4_FMA, QG_M2)
QG_KERNEL(q4_rows4_m3, Q4_BYTES, Q4_LOAD_W, Q4_FMA, QG_M3)
QG_KERNEL(q4_rows4_m4, Q4_BYTES, Q4_LOAD_W, Q4_FMA, QG_M4)

/* M = 1 (decode): the 4 rows one after another, two blocks per step with independent
 * accumulators, so that the weights are one sequential stream the hardware prefetcher
 * follows (as gemv_rows4_seq_m1 in cpu_linear.c; reading 4 rows side by side kept
 * q8/q4 decode near the bf16 rate). */
#define Q8_BLOCK_DOT(p, xb, acc) { \
    __m512 t_ = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)((p) + 2)))), \
                              _mm512_loadu_ps(xb)); \
    t_ = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)((p) + 18)))), \
                         _mm512_loadu_ps((xb) + 16), t_); \
    acc = _mm512_fmadd_ps(t_, _mm512_set1_ps(_cvtsh_ss(load_u16(p))), acc); }
#define Q4_BLOCK_DOT(p, xb, cb, acc) { \
    __m512i v_ = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)((p) + 2))); \
    __m512 t_ = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(v_, low4)), _mm512_loadu_ps(xb), _mm512_loadu_ps(cb)); \
    t_ = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(v_, 4)), _mm512_loadu_ps((xb) + 16), t_); \
    acc = _mm512_fmadd_ps(t_, _mm512_set1_ps(_cvtsh_ss(load_u16(p))), acc); }

__attribute__((target("avx512f,avx512bw,f16c")))
static void q8_rows4_seq_m1(const qgemv_job *G, const float *xq, const float *c, int64_t sx, int64_t sc,
                            int64_t j, int m0, float out[4][4]) {
    (void)c; (void)sc;
    xq += m0 * sx;
    for (int r = 0; r < 4; r++) {
        const uint8_t *w = ds_w_row_ptr(G->W, G->n0 + j + r);
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        int b = 0;
        for (; b + 2 <= G->nb; b += 2) {
            Q8_BLOCK_DOT(w + b * Q8_BYTES, xq + b * 32, a0)
            Q8_BLOCK_DOT(w + (b + 1) * Q8_BYTES, xq + (b + 1) * 32, a1)
        }
        if (b < G->nb) Q8_BLOCK_DOT(w + b * Q8_BYTES, xq + b * 32, a0)
        out[r][0] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    }
}

__attribute__((target("avx512f,avx512bw,f16c")))
static void q4_rows4_seq_m1(const qgemv_job *G, const float *xq, const float *c, int64_t sx, int64_t sc,
                            int64_t j, int m0, float out[4][4]) {
    xq += m0 * sx;
    c += m0 * sc;
    const __m512i low4 = _mm512_set1_epi32(15);
    for (int r = 0; r < 4; r++) {
        const uint8_t *w = ds_w_row_ptr(G->W, G->n0 + j + r);
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        int b = 0;
        for (; b + 2 <= G->nb; b += 2) {
            Q4_BLOCK_DOT(w + b * Q4_BYTES, xq + b * 32, c + b * 16, a0)
            Q4_BLOCK_DOT(w + (b + 1) * Q4_BYTES, xq + (b + 1) * 32, c + (b + 1) * 16, a1)
        }
        if (b < G->nb) Q4_BLOCK_DOT(w + b * Q4_BYTES, xq + b * 32, c + b * 16, a0)
        out[r][0] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    }
}

/* Q4_0, M = 1, on AVX512-VNNI + VBMI (Ice Lake and later, Zen 4): two blocks per
 * vpdpbusd, with x quantized to int8 per block (as llama.cpp's q4_0 x q8_0 dot).
 * For blocks b, b+1 one masked 36-byte load holds [d_b, q_b (16 bytes), d_b+1, q_b+1];
 * vpermb spreads the nibble bytes to [q_b, q_b+1, q_b, q_b+1], the upper half shifted
 * right by 4, & 15: 64 unsigned nibbles, byte i of the low half being element i of its
 * block and of the high half element 16 + i. x is laid out in that order once per
 * call (xi, int8), so lane l of vpdpbusd sums 4 products q·xi of one block. Its
 * accumulator starts at cv_l = -8 · Σ (those 4 xi), which makes the lane sum Σ (q - 8)·xi
 * exactly in int32; then acc += f32(lane) · d_w · d_x, the two scales spread to the
 * lanes by vpermw + vcvtph2ps and a prepared vector. x rounding: at most d_x / 2 =
 * max|x_b| / 254 per element, far below the 4-bit weight error. (A kernel that
 * turned nibbles into bf16 128 + q for vdpbf16ps ran at the same speed here and needs
 * AVX512-BF16, which fewer CPUs have; both beat widening nibbles to f32: q4 decode 49.6
 * -> 55-59 tokens/s, bench_decode decode.) */
typedef struct { int8_t xi[64]; int32_t cv[16]; float dx[16]; } q4v_pair;   /* 192 bytes */

__attribute__((target("avx512f,avx512bw,avx512vnni,avx512vbmi,f16c,fma")))
static void q4v_rows_m1(const qgemv_job *G, const q4v_pair *xp, int64_t j, int n, float *out) {
    const int np = (G->nb + 1) / 2;
    const __m512i perm = _mm512_set_epi8(35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20,
                                         17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2,
                                         35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20,
                                         17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2);
    const __m512i shifts = _mm512_set_epi64(0x0004000400040004, 0x0004000400040004, 0x0004000400040004, 0x0004000400040004,
                                            0, 0, 0, 0);
    const __m512i dperm = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                           9, 9, 9, 9, 0, 0, 0, 0, 9, 9, 9, 9, 0, 0, 0, 0);
    const __m512i low4 = _mm512_set1_epi8(15);
    const __mmask64 full = 0xFFFFFFFFFull, half = 0x3FFFFull;   /* 36 bytes; an odd last block: 18 */
    for (int r = 0; r < n; r++) {
        const uint8_t *w = ds_w_row_ptr(G->W, G->n0 + j + r);
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        for (int pi = 0; pi < np; pi++) {
            const q4v_pair *x = xp + pi;
            __m512i raw = _mm512_maskz_loadu_epi8(2 * pi + 1 < G->nb ? full : half, w + (size_t)pi * 2 * Q4_BYTES);
            __m512i nib = _mm512_and_si512(_mm512_srlv_epi16(_mm512_permutexvar_epi8(perm, raw), shifts), low4);
            __m512i isum = _mm512_dpbusd_epi32(_mm512_loadu_si512((const void *)x->cv), nib,
                                               _mm512_loadu_si512((const void *)x->xi));
            __m512 dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(dperm, raw)));
            __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(dw, _mm512_loadu_ps(x->dx)));
            if (pi & 1) a1 = _mm512_add_ps(a1, t);
            else a0 = _mm512_add_ps(a0, t);
        }
        out[r] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    }
}

/* x for q4v_rows_m1: per pair of blocks, int8 x in the nibble order, the lanes' -8 · Σ xi,
 * and each lane's d_x (a block past nb is zero). */
static void q4v_prep(const float *x, int K, int nb, q4v_pair *xp) {
    for (int pi = 0; pi < (nb + 1) / 2; pi++) {
        q4v_pair *P = &xp[pi];
        for (int h = 0; h < 2; h++) {   /* block 2·pi + h */
            int b = 2 * pi + h;
            float mx = 0;
            for (int i = 0; i < 32; i++) {
                int k = b * 32 + i;
                float v = b < nb && k < K ? fabsf(x[k]) : 0.0f;
                if (v > mx) mx = v;
            }
            float d = mx / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
            for (int i = 0; i < 32; i++) {   /* element i -> byte (i < 16 ? 0 : 32) + 16·h + i % 16 */
                int k = b * 32 + i;
                float v = b < nb && k < K ? x[k] : 0.0f;
                P->xi[(i < 16 ? 0 : 32) + 16 * h + i % 16] = (int8_t)lrintf(v * id);
            }
            for (int l = 0; l < 4; l++) {   /* lanes 4h..4h+3 (low half) and 8+4h.. (high half) */
                P->dx[4 * h + l] = d;
                P->dx[8 + 4 * h + l] = d;
            }
        }
        for (int l = 0; l < 16; l++)
            P->cv[l] = -8 * (P->xi[4 * l] + P->xi[4 * l + 1] + P->xi[4 * l + 2] + P->xi[4 * l + 3]);
    }
}

static int use_q4v(const qgemv_job *G) {
    return ds_cpu_has_avx512vnni && G->W->dtype == DS_Q4_0 && G->M == 1;
}


/* One weight row against one activation row (the N % 4 leftovers). */
__attribute__((target("avx512f,avx512bw,f16c")))
static float qgemv_row1(ds_dtype t, const uint8_t *w, const float *xq, const float *c, int nb) {
    const __m512i low4 = _mm512_set1_epi32(15);
    __m512 acc = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m512 wl, wh, tt;
        if (t == DS_Q8_0) {
            const uint8_t *p = w + b * Q8_BYTES;
            wl = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p + 2))));
            wh = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p + 18))));
            tt = _mm512_setzero_ps();
        } else {
            const uint8_t *p = w + b * Q4_BYTES;
            __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + 2)));
            wl = _mm512_cvtepi32_ps(_mm512_and_si512(v, low4));
            wh = _mm512_cvtepi32_ps(_mm512_srli_epi32(v, 4));
            tt = _mm512_loadu_ps(c + b * 16);
        }
        tt = _mm512_fmadd_ps(wl, _mm512_loadu_ps(xq + b * 32), tt);
        tt = _mm512_fmadd_ps(wh, _mm512_loadu_ps(xq + b * 32 + 16), tt);
        acc = _mm512_fmadd_ps(tt, _mm512_set1_ps(_cvtsh_ss(load_u16(w + b * (t == DS_Q8_0 ? Q8_BYTES : Q4_BYTES)))), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

typedef void (*qg_kernel)(const qgemv_job *, const float *, const float *, int64_t, int64_t, int64_t, int, float[4][4]);

static qgemv_job qgemv_of(const ds_linear_job *J) {
    int nb = (int)ds_quant_blocks(J->K);
    return (qgemv_job){NULL, J->y, J->x, J->M, J->K, nb, J->W, J->b, J->n0, ds_job_n1(J) - J->n0,
                       ds_quant_row_bytes(J->W->dtype, J->K)};
}

/* Floats of buf the prepared x takes: xq [M][nb*32], then Q4's c [M][nb*16]. */
size_t ds_cpu_quant_gemv_prep_floats(const ds_linear_job *J) {
    return (size_t)J->M * (size_t)ds_quant_blocks(J->K) * 48;
}

void ds_cpu_quant_gemv_prep(const ds_linear_job *J, float *buf) {
    const qgemv_job G = qgemv_of(J);
    const int M = G.M, K = G.K;
    const int64_t sx = (int64_t)G.nb * 32, sc = (int64_t)G.nb * 16;
    const int q8 = G.W->dtype == DS_Q8_0;
    float *xq = buf, *c = xq + (size_t)M * sx;
    if (use_q4v(&G)) {   /* 192 bytes per pair of blocks: 24 floats per block of the 48 */
        q4v_prep(G.x, K, G.nb, (q4v_pair *)buf);
        return;
    }
    for (int m = 0; m < M; m++) {
        memcpy(xq + m * sx, G.x + (size_t)m * K, (size_t)K * sizeof(float));
        memset(xq + m * sx + K, 0, (size_t)(sx - K) * sizeof(float));
        for (int64_t b = 0; !q8 && b < G.nb; b++)
            for (int i = 0; i < 16; i++)
                c[m * sc + b * 16 + i] = -8.0f * (xq[m * sx + b * 32 + i] + xq[m * sx + b * 32 + 16 + i]);
    }
}

/* y rows [j0, j1) of the job (relative to n0), from the prepared x. */
/* ---- AVX2 + FMA (x86 CPUs without AVX-512) ------------------------------------------
 * One weight row against one activation row, blocks front to back, two accumulators;
 * int8 (or nibble - 8) widened to f32 8 lanes at a time, exact f32 activations. */
__attribute__((target("avx2,fma,f16c")))
static float qrow_avx2(ds_dtype t, const uint8_t *w, const float *xq, int nb) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    const __m128i low4 = _mm_set1_epi8(15);
    const __m256i eight = _mm256_set1_epi32(8);
    for (int b = 0; b < nb; b++) {
        const float *x = xq + b * 32;
        __m256i q0, q1, q2, q3;   /* elements 0-7, 8-15, 16-23, 24-31 as int32 */
        float d;
        if (t == DS_Q8_0) {
            const uint8_t *p = w + b * Q8_BYTES;
            q0 = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p + 2)));
            q1 = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p + 10)));
            q2 = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p + 18)));
            q3 = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p + 26)));
            d = _cvtsh_ss(load_u16(p));
        } else {
            const uint8_t *p = w + b * Q4_BYTES;
            __m128i v = _mm_loadu_si128((const __m128i *)(p + 2));
            __m128i lo = _mm_and_si128(v, low4), hi = _mm_and_si128(_mm_srli_epi16(v, 4), low4);
            q0 = _mm256_sub_epi32(_mm256_cvtepu8_epi32(lo), eight);
            q1 = _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)), eight);
            q2 = _mm256_sub_epi32(_mm256_cvtepu8_epi32(hi), eight);
            q3 = _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8)), eight);
            d = _cvtsh_ss(load_u16(p));
        }
        __m256 t0 = _mm256_mul_ps(_mm256_cvtepi32_ps(q0), _mm256_loadu_ps(x));
        __m256 t1 = _mm256_mul_ps(_mm256_cvtepi32_ps(q1), _mm256_loadu_ps(x + 8));
        t0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q2), _mm256_loadu_ps(x + 16), t0);
        t1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q3), _mm256_loadu_ps(x + 24), t1);
        const __m256 vd = _mm256_set1_ps(d);
        if (b & 1) a1 = _mm256_fmadd_ps(_mm256_add_ps(t0, t1), vd, a1);
        else a0 = _mm256_fmadd_ps(_mm256_add_ps(t0, t1), vd, a0);
    }
    __m256 s = _mm256_add_ps(a0, a1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

/* Rows [j0, j1): each weight row read once from memory, then from cache for the other
 * activation rows; x as ds_cpu_quant_gemv_prep lays it out (xq, zero-padded blocks). */
static void quant_rows_avx2(const qgemv_job *G, const float *xq, int64_t sx, int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; j++) {
        const uint8_t *w = ds_w_row_ptr(G->W, G->n0 + j);
        float bias = G->b ? ds_tensor_get_f32(G->b, G->n0 + j) : 0.0f;
        for (int m = 0; m < G->M; m++) G->y[(size_t)m * G->N + j] = qrow_avx2(G->W->dtype, w, xq + m * sx, G->nb) + bias;
    }
}

void ds_cpu_quant_gemv_rows(const ds_linear_job *J, const float *buf, int64_t j0, int64_t j1) {
    const qgemv_job Gs = qgemv_of(J), *G = &Gs;
    const int M = G->M;
    const int64_t sx = (int64_t)G->nb * 32, sc = (int64_t)G->nb * 16;
    const int q8 = G->W->dtype == DS_Q8_0;
    const float *xq = buf, *c = xq + (size_t)M * sx;
    static const qg_kernel k8[4] = {q8_rows4_seq_m1, q8_rows4_m2, q8_rows4_m3, q8_rows4_m4};
    static const qg_kernel k4[4] = {q4_rows4_seq_m1, q4_rows4_m2, q4_rows4_m3, q4_rows4_m4};
    if (!ds_cpu_has_avx512) {
        quant_rows_avx2(G, xq, sx, j0, j1);
        return;
    }
    int64_t j = j0;
    if (use_q4v(G)) {
        q4v_rows_m1(G, (const q4v_pair *)buf, j, (int)(j1 - j), G->y + j);
        j = j1;
    }
    for (; j + 4 <= j1; j += 4)
        for (int m0 = 0; m0 < M; m0 += 4) {
            int MB = M - m0 < 4 ? M - m0 : 4;
            float out[4][4];
            (q8 ? k8 : k4)[MB - 1](G, xq, c, sx, sc, j, m0, out);
            for (int r = 0; r < 4; r++)
                for (int m = 0; m < MB; m++) G->y[(size_t)(m0 + m) * G->N + j + r] = out[r][m];
        }
    for (; j < j1; j++)
        for (int m = 0; m < M; m++)
            G->y[(size_t)m * G->N + j] = qgemv_row1(G->W->dtype, ds_w_row_ptr(G->W, G->n0 + j), xq + m * sx, c + m * sc, G->nb);
    if (G->b)
        for (int64_t jj = j0; jj < j1; jj++) {
            float bias = ds_tensor_get_f32(G->b, G->n0 + jj);
            for (int m = 0; m < M; m++) G->y[(size_t)m * G->N + jj] += bias;
        }
}

#else /* !__x86_64__ */

/* Other architectures: the same contract in plain C. The batched-linear dispatch only
 * takes the quantized GEMV path on AVX-512 machines, so these serve the dequantizing
 * large-M path and keep the file portable (tests/test-arm.sh builds it for aarch64). */
void ds_cpu_dequant_row(const ds_tensor *W, int64_t row, int64_t n, float *dst) {
    ds_dequantize_row(W->dtype, ds_w_row_ptr(W, row), n, dst);
}

size_t ds_cpu_quant_gemv_prep_floats(const ds_linear_job *J) { return (size_t)J->M * (size_t)J->K; }

void ds_cpu_quant_gemv_prep(const ds_linear_job *J, float *buf) {
    memcpy(buf, J->x, (size_t)J->M * (size_t)J->K * sizeof(float));
}

void ds_cpu_quant_gemv_rows(const ds_linear_job *J, const float *buf, int64_t j0, int64_t j1) {
    const int64_t N = ds_job_n1(J) - J->n0;
    float w[DS_QBLOCK];
    for (int64_t j = j0; j < j1; j++) {
        const uint8_t *row = ds_w_row_ptr(J->W, J->n0 + j);
        for (int m = 0; m < J->M; m++) {
            const float *x = buf + (size_t)m * J->K;
            float acc = 0.0f;
            for (int64_t k0 = 0; k0 < J->K; k0 += DS_QBLOCK) {
                int64_t n = J->K - k0 < DS_QBLOCK ? J->K - k0 : DS_QBLOCK;
                ds_dequantize_row(J->W->dtype, row + ds_dtype_bytes(J->W->dtype, k0), n, w);
                for (int64_t k = 0; k < n; k++) acc += w[k] * x[k0 + k];
            }
            if (J->b) acc += ds_tensor_get_f32(J->b, J->n0 + j);
            J->y[(size_t)m * N + j] = acc;
        }
    }
}

#endif
