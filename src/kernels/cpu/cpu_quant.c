/* Fast linear over block-quantized weights (Q8_0, Q4_0, Q4_0X4; layouts in core/quant.h).
 * - small M (decode), Q8_0 / Q4_0: a fused dequantize-GEMV that streams each quantized
 *   row once; the weights are widened to f32 in registers and multiplied with the exact
 *   f32 activations, one f16 scale per 32-element block. Per block and row:
 *   t = Σ w_q · x (two 16-lane FMAs), acc += d · t; Q4_0's "- 8" is folded into the
 *   activations once per call: c = -8 · (x_lo + x_hi) starts t;
 * - small M, Q4_0X4 on AVX512-VNNI: int8 dot products over four interleaved rows
 *   (x rounded to int8 per block; the section below);
 * - large M: ds_cpu_linear's blocked sgemm, fed by ds_cpu_dequant_row below. */
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

static void dequant_x4_row_avx512(const ds_tensor *W, int64_t row, int64_t n, float *dst);

void ds_cpu_dequant_row(const ds_tensor *W, int64_t row, int64_t n, float *dst) {
    if (ds_cpu_has_avx512 && W->dtype == DS_Q4_0X4) dequant_x4_row_avx512(W, row, n, dst);
    else if (ds_cpu_has_avx512) dequant_row_avx512(W->dtype, ds_w_row_ptr(W, row), n, dst);
    else ds_dequantize_w_row(W, row, n, dst);
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

/* ---- Q4_0X4 on AVX512-VNNI ------------------------------------------------------------
 * Four weight rows interleaved per block (core/quant.h): one 64-byte load holds one
 * block of four rows, and one vpdpbusd per half multiplies it by x, whose 16 bytes per
 * half are shared by the four rows. x is rounded to int8 per 32-element block once per
 * call (scale d_x = max|x_b| / 127, as llama.cpp's q4_0 x q8_0 dot; error at most d_x / 2
 * per element, far below the 4-bit weight step) and laid out in the units' dword order.
 * Lane i of the int32 result sums the products q·x of row i % 4 (q the raw nibble);
 * acc += f32(lane) · d_w · d_x, with the products d_w · d_x prepared for a chunk of
 * blocks at a time (one vcvtph2ps per four blocks) and broadcast per block from 16
 * bytes. The nibbles' -8 is added in that preparation too, as Σ_b d_w · d_x · (-8 Σ x_b)
 * per row: one FMA per four blocks instead of a third load per block.
 * Per block of four rows: 7 vector instructions (and, shift, and, 2 vpdpbusd, convert,
 * FMA) and 4 loads. The row-by-row Q4_0 kernels took ~1.3 ns per block and core even in
 * cache (f32 widening, or vpermb + vpdpbusd on two blocks), this one ~0.45: q4 decode
 * becomes bound by memory instead of by instructions. */
typedef struct { int8_t lo[64], hi[64]; } x4_xblock;   /* 128 bytes */
#define X4_CHUNK 64   /* blocks whose d_w · d_x a group prepares at once: 4 KiB per x row */

/* Floats of the prepared x per activation row: nb x4_xblocks, then (after those of
 * all rows) dx4 and cx4 [nb * 4] each. */
static size_t x4_xfloats(int nb) { return (size_t)nb * (sizeof(x4_xblock) / sizeof(float)); }

#define X4_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,f16c,fma")))

/* x [K] -> nb x4_xblocks, dx4 [nb * 4] (d_x repeated for the four rows) and cx4
 * (-8 · Σ x_b in the same way, exact in f32). Runs for
 * every distinct x of every linear, on each thread (each expert's down has its own x):
 * vectorised, it is ~1% of a q4 token instead of ~8%. Rounding is the MXCSR default,
 * to nearest even, as lrintf (tests/test_quant.c rounds x that way). */
X4_TARGET static void x4_prep_row(const float *x, int K, int nb, x4_xblock *xb, float *dx4, float *cx4) {
    const __m512i lo_idx = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    const __m512i hi_idx = _mm512_add_epi32(lo_idx, _mm512_set1_epi32(4));
    const __m512i ones = _mm512_set1_epi8(1);
    for (int b = 0; b < nb; b++) {
        int n = K - b * 32 < 32 ? K - b * 32 : 32;
        __mmask16 k0 = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
        __mmask16 k1 = n >= 32 ? (__mmask16)0xFFFF : n > 16 ? (__mmask16)((1u << (n - 16)) - 1) : 0;
        __m512 v0 = _mm512_maskz_loadu_ps(k0, x + b * 32), v1 = _mm512_maskz_loadu_ps(k1, x + b * 32 + 16);
        float mx = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        float d = mx / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
        __m512 vid = _mm512_set1_ps(id);
        __m128i q0 = _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v0, vid)));   /* elements 0..15 */
        __m128i q1 = _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v1, vid)));   /* 16..31 */
        __m512i q = _mm512_inserti32x4(_mm512_castsi128_si512(q0), q1, 1);
        __m512i lo = _mm512_permutexvar_epi32(lo_idx, q), hi = _mm512_permutexvar_epi32(hi_idx, q);
        /* dword i: payload bytes 4 * (i / 4) .. + 3 of the low (elements 0..15) and high (16..31) nibbles */
        __m512i sum = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, lo), ones, hi);
        _mm512_storeu_si512((void *)xb[b].lo, lo);
        _mm512_storeu_si512((void *)xb[b].hi, hi);
        _mm_storeu_ps(dx4 + 4 * b, _mm_set1_ps(d));
        _mm_storeu_ps(cx4 + 4 * b, _mm_set1_ps(-2.0f * (float)_mm512_reduce_add_epi32(sum)));   /* each x 4 times: -8/4 */
    }
}

/* Block c0 + b of the group against the MB x rows, into accumulator half h. */
#define X4_BLOCK(b, h) { \
    __m512i raw_ = _mm512_loadu_si512((const void *)(units + (size_t)(c0 + (b)) * 64)); \
    __m512i lo_ = _mm512_and_si512(raw_, low4), hi_ = _mm512_and_si512(_mm512_srli_epi16(raw_, 4), low4); \
    for (int m = 0; m < MB; m++) { \
        const x4_xblock *x_ = xb[m] + c0 + (b); \
        __m512i is_ = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo_, _mm512_loadu_si512((const void *)x_->lo)); \
        is_ = _mm512_dpbusd_epi32(is_, hi_, _mm512_loadu_si512((const void *)x_->hi)); \
        acc[m][h] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is_), _mm512_broadcast_f32x4(_mm_load_ps(sc[m] + 4 * (b))), acc[m][h]); \
    } }

/* y of rows 4g..4g+3 for MB (1..4) x rows: out[r][m]. Inlined with a constant MB, so
 * the loops over m unroll and the accumulators stay in registers. */
static inline __attribute__((always_inline)) X4_TARGET
void x4_group(const ds_tensor *W, int64_t g, int nb, const x4_xblock *const xb[4], const float *const dx4[4],
              const float *const cx4[4], const int MB, float out[4][4]) {
    const uint8_t *units = ds_x4_units(W, g);
    const uint16_t *s16 = ds_x4_scales(W, g);
    const __m512i low4 = _mm512_set1_epi8(15);
    __m512 acc[4][2], corr[4];   /* corr lane i: blocks ≡ i / 4 (mod 4) of row i % 4 */
    for (int m = 0; m < MB; m++) acc[m][0] = acc[m][1] = corr[m] = _mm512_setzero_ps();
    for (int c0 = 0; c0 < nb; c0 += X4_CHUNK) {
        const int cn = nb - c0 < X4_CHUNK ? nb - c0 : X4_CHUNK;
        float sc[4][X4_CHUNK * 4] __attribute__((aligned(64)));   /* d_w · d_x per (block, row) */
        for (int m = 0; m < MB; m++)
            for (int i = 0; i < cn * 4; i += 16) {
                __mmask16 k = cn * 4 - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (cn * 4 - i)) - 1);
                __m512 dw = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, s16 + (size_t)c0 * 4 + i));
                __m512 s = _mm512_mul_ps(dw, _mm512_maskz_loadu_ps(k, dx4[m] + (size_t)c0 * 4 + i));
                _mm512_store_ps(sc[m] + i, s);
                corr[m] = _mm512_fmadd_ps(s, _mm512_maskz_loadu_ps(k, cx4[m] + (size_t)c0 * 4 + i), corr[m]);
            }
        int b = 0;
        for (; b + 2 <= cn; b += 2) {   /* two accumulators per x row: FMA latency */
            X4_BLOCK(b, 0)
            X4_BLOCK(b + 1, 1)
        }
        if (b < cn) X4_BLOCK(b, 0)
    }
    for (int m = 0; m < MB; m++) {   /* lane i is row i % 4 */
        __m512 a = _mm512_add_ps(_mm512_add_ps(acc[m][0], acc[m][1]), corr[m]);
        __m128 r = _mm_add_ps(_mm_add_ps(_mm512_castps512_ps128(a), _mm512_extractf32x4_ps(a, 1)),
                              _mm_add_ps(_mm512_extractf32x4_ps(a, 2), _mm512_extractf32x4_ps(a, 3)));
        float v[4];
        _mm_storeu_ps(v, r);
        for (int i = 0; i < 4; i++) out[i][m] = v[i];
    }
}

typedef void (*x4_kernel)(const ds_tensor *, int64_t, int, const x4_xblock *const[4], const float *const[4],
                          const float *const[4], float[4][4]);
#define X4_KERNEL(NAME, MB) X4_TARGET static void NAME(const ds_tensor *W, int64_t g, int nb, \
    const x4_xblock *const xb[4], const float *const dx4[4], const float *const cx4[4], float out[4][4]) { \
    x4_group(W, g, nb, xb, dx4, cx4, MB, out); }
X4_KERNEL(x4_m1, 1)
X4_KERNEL(x4_m2, 2)
X4_KERNEL(x4_m3, 3)
X4_KERNEL(x4_m4, 4)

/* Rows [j0, j1) (relative to n0; n0 and j0 multiples of 4, j1 may cut the last group)
 * from the prepared x: [M] x4_xblock runs, then dx4 [M][nb * 4], then cx4 [M][nb * 4]. */
static void x4_rows(const qgemv_job *G, const float *buf, int64_t j0, int64_t j1) {
    static const x4_kernel kern[4] = {x4_m1, x4_m2, x4_m3, x4_m4};
    const size_t sx = x4_xfloats(G->nb);
    const float *dx = buf + (size_t)G->M * sx, *cx = dx + (size_t)G->M * G->nb * 4;
    for (int64_t j = j0; j < j1; j += 4)
        for (int m0 = 0; m0 < G->M; m0 += 4) {
            int MB = G->M - m0 < 4 ? G->M - m0 : 4;
            const x4_xblock *xb[4];
            const float *dx4[4], *cx4[4];
            for (int m = 0; m < 4; m++) {
                int mm = m0 + (m < MB ? m : 0);
                xb[m] = (const x4_xblock *)(buf + (size_t)mm * sx);
                dx4[m] = dx + (size_t)mm * G->nb * 4;
                cx4[m] = cx + (size_t)mm * G->nb * 4;
            }
            float out[4][4];
            kern[MB - 1](G->W, (G->n0 + j) / 4, G->nb, xb, dx4, cx4, out);
            for (int r = 0; r < 4 && j + r < j1; r++)
                for (int m = 0; m < MB; m++) G->y[(size_t)(m0 + m) * G->N + j + r] = out[r][m];
        }
}

/* Row `row` of a Q4_0X4 tensor as f32 (the large-M path): vpcompressd gathers the
 * row's four dwords of each unit, which are then its 16 nibble bytes in order. */
__attribute__((target("avx512f,avx512bw,f16c")))
static void dequant_x4_row_avx512(const ds_tensor *W, int64_t row, int64_t n, float *dst) {
    const int64_t nfull = n / DS_QBLOCK;
    const int r = (int)(row % 4);
    const uint8_t *units = ds_x4_units(W, row / 4);
    const uint16_t *s16 = ds_x4_scales(W, row / 4);
    const __mmask16 pick = (__mmask16)(0x1111u << r);
    const __m512i low4 = _mm512_set1_epi32(15), eight = _mm512_set1_epi32(8);
    for (int64_t b = 0; b < nfull; b++) {
        __m512 d = _mm512_set1_ps(_cvtsh_ss(s16[4 * b + r]));
        __m512i raw = _mm512_loadu_si512((const void *)(units + (size_t)b * 64));
        __m512i v = _mm512_cvtepu8_epi32(_mm512_castsi512_si128(_mm512_maskz_compress_epi32(pick, raw)));
        _mm512_storeu_ps(dst + b * DS_QBLOCK, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_and_si512(v, low4), eight))));
        _mm512_storeu_ps(dst + b * DS_QBLOCK + 16, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(v, 4), eight))));
    }
    for (int64_t i = nfull * DS_QBLOCK; i < n; i++) dst[i] = ds_x4_get(W, row, i);   /* partial last block */
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

/* Floats of buf the prepared x takes: xq [M][nb*32], then Q4's c [M][nb*16]; for
 * Q4_0X4 [M] x4_xblock runs, then dx4 and cx4 [M][nb * 4] each. */
size_t ds_cpu_quant_gemv_prep_floats(const ds_linear_job *J) {
    const size_t nb = (size_t)ds_quant_blocks(J->K);
    if (J->W->dtype == DS_Q4_0X4) return (size_t)J->M * (x4_xfloats((int)nb) + nb * 8);
    return (size_t)J->M * nb * 48;
}

void ds_cpu_quant_gemv_prep(const ds_linear_job *J, float *buf) {
    const qgemv_job G = qgemv_of(J);
    const int M = G.M, K = G.K;
    const int64_t sx = (int64_t)G.nb * 32, sc = (int64_t)G.nb * 16;
    const int q8 = G.W->dtype == DS_Q8_0;
    float *xq = buf, *c = xq + (size_t)M * sx;
    if (G.W->dtype == DS_Q4_0X4) {
        const size_t sxb = x4_xfloats(G.nb);
        for (int m = 0; m < M; m++)
            x4_prep_row(G.x + (size_t)m * K, K, G.nb, (x4_xblock *)(buf + m * sxb),
                        buf + M * sxb + (size_t)m * G.nb * 4, buf + M * sxb + (size_t)(M + m) * G.nb * 4);
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
    if (G->W->dtype == DS_Q4_0X4) {   /* ds_cpu_gemv_ok: VNNI, n0 on a group */
        x4_rows(G, buf, j0, j1);
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
    ds_dequantize_w_row(W, row, n, dst);
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
