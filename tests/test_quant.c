/* Quantized weights (core/quant.c, kernels/cpu/cpu_quant.c): f16 conversion, the
 * Q8_0 / Q4_0 quantizers (round-trip error, determinism, thread-count independence,
 * layout through ds_tensor_get_f32), and ds_op_linear / ds_op_linear_rows over
 * quantized weights on the reference and the fast CPU backend against a
 * double-precision product with the dequantized weights.
 *
 * Tolerances
 *   round trip, per element: |w - deq(q(w))| <= d/2 (1 + 2^-10), d the block's f16 scale,
 *     for the elements inside the grid (Q4's +8 end is clamped to 7: <= d more)
 *   linear, per output: |y - ref| <= 2·(K+2)·2^-24·Σ|x·w| + 1e-6 (fp32 summation bound) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"
#include "core/quant.h"
#include "kernels/ops.h"
#include "test_util.h"

static uint64_t rng = 4242;

/* ---- f16 ---------------------------------------------------------------------------- */

static void f16_checks(void) {
    CHECK_EQ_INT(ds_f32_to_f16(0.0f), 0);
    CHECK_EQ_INT(ds_f32_to_f16(-0.0f), 0x8000);
    CHECK_EQ_INT(ds_f32_to_f16(1.0f), 0x3c00);
    CHECK_EQ_INT(ds_f32_to_f16(-2.0f), 0xc000);
    CHECK_EQ_INT(ds_f32_to_f16(65504.0f), 0x7bff);
    CHECK_EQ_INT(ds_f32_to_f16(65520.0f), 0x7c00);          /* rounds to inf */
    CHECK_EQ_INT(ds_f32_to_f16(65519.0f), 0x7bff);
    CHECK_EQ_INT(ds_f32_to_f16(INFINITY), 0x7c00);
    CHECK(ds_f32_to_f16(NAN) & 0x3ff);
    CHECK_EQ_INT(ds_f32_to_f16(1.0f + 1.0f / 2048), 0x3c00); /* tie -> even */
    CHECK_EQ_INT(ds_f32_to_f16(1.0f + 3.0f / 2048), 0x3c02); /* tie -> even (up) */
    CHECK_EQ_INT(ds_f32_to_f16(ldexpf(1.0f, -24)), 1);       /* smallest subnormal */
    CHECK_EQ_INT(ds_f32_to_f16(ldexpf(1.0f, -25)), 0);       /* tie -> even (0) */
    CHECK_EQ_INT(ds_f32_to_f16(ldexpf(1.0f, -14)), 0x0400);  /* smallest normal */
    /* every finite half round-trips */
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00) continue;
        if (ds_f32_to_f16(ds_f16_to_f32((uint16_t)h)) != h) bad++;
    }
    CHECK_MSG(bad == 0, "%d halves do not round-trip", bad);
}

/* ---- quantizers --------------------------------------------------------------------- */

static float block_scale(ds_dtype t, const uint8_t *row, int64_t b) {
    const uint8_t *blk = row + ds_dtype_bytes(t, b * DS_QBLOCK);
    return ds_f16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
}

static void roundtrip_checks(ds_dtype t) {
    const int K = 200;   /* 7 blocks, the last one partial */
    float x[200], y[200];
    uint8_t q[7 * 34], q2[7 * 34];
    double worst = 0;
    for (int trial = 0; trial < 50; trial++) {
        double scale = trial < 25 ? 0.02 : 3.0;
        for (int i = 0; i < K; i++) x[i] = (float)(tu_rand_normal(&rng) * scale);
        if (trial == 3) for (int i = 32; i < 64; i++) x[i] = 0.0f;   /* an all-zero block */
        if (trial == 4) x[5] = 40.0f;                                 /* an outlier */
        ds_quantize_row(t, x, DS_F32, K, q);
        ds_quantize_row(t, x, DS_F32, K, q2);
        CHECK(!memcmp(q, q2, ds_quant_row_bytes(t, K)));
        ds_dequantize_row(t, q, K, y);
        for (int i = 0; i < K; i++) {
            float d = fabsf(block_scale(t, q, i / DS_QBLOCK));
            double e = fabs((double)x[i] - y[i]), tol = d * 0.5 * (1 + 1.0 / 1024) + 1e-12;
            if (t == DS_Q4_0 && e > tol) tol += d;   /* the clamped +8 end of the grid */
            worst = fmax(worst, e / (d > 0 ? d : 1));
            CHECK_MSG(e <= tol, "%s trial %d elem %d: %g -> %g (d %g)", ds_dtype_name(t), trial, i, x[i], y[i], d);
        }
        if (trial == 3) CHECK(block_scale(t, q, 1) == 0.0f && y[40] == 0.0f);
        /* the block's extreme value is exact up to the f16 scale */
        if (trial == 4) CHECK_NEAR(y[5], 40.0f, 40.0 / 1024, 0);
        /* bf16 source gives the same bytes as its f32 widening */
        uint16_t xb[200];
        float xw[200];
        for (int i = 0; i < K; i++) { xb[i] = ds_f32_to_bf16(x[i]); xw[i] = ds_bf16_to_f32(xb[i]); }
        ds_quantize_row(t, xb, DS_BF16, K, q);
        ds_quantize_row(t, xw, DS_F32, K, q2);
        CHECK(!memcmp(q, q2, ds_quant_row_bytes(t, K)));
    }
    printf("%s round trip: worst |error| / block scale = %.4f\n", ds_dtype_name(t), worst);
    /* known bytes: a ramp, so a format change cannot pass silently */
    for (int i = 0; i < 32; i++) x[i] = (float)(i - 16) / 16.0f;   /* -1 .. 0.9375 */
    ds_quantize_row(t, x, DS_F32, 32, q);
    if (t == DS_Q8_0) {
        CHECK_EQ_INT(q[0] | q[1] << 8, ds_f32_to_f16(1.0f / 127));
        CHECK_EQ_INT((int8_t)q[2], -127);
        CHECK_EQ_INT((int8_t)q[2 + 16], 0);
        CHECK_EQ_INT((int8_t)q[2 + 31], (int)lrintf(0.9375f * 127));
    } else {
        CHECK_EQ_INT(q[0] | q[1] << 8, ds_f32_to_f16(1.0f / 8));   /* m = -1, d = m / -8 */
        CHECK_EQ_INT(q[2] & 15, 0);          /* -1 -> -8 */
        CHECK_EQ_INT(q[2] >> 4, 8);          /* x[16] = 0 -> 0 */
        CHECK_EQ_INT(q[2 + 15] >> 4, 15);    /* 0.9375 -> 7.5 -> 8 clamped to 7 */
    }
}

/* A contiguous [N, K] bf16 matrix of N(0, 1) values (free its data). */
static ds_tensor rand_bf16_matrix(int N, int K) {
    ds_tensor t = {.dtype = DS_BF16, .ndim = 2, .shape = {N, K}};
    ds_tensor_set_contiguous(&t);
    uint16_t *d = malloc((size_t)N * K * 2);
    for (int i = 0; i < N * K; i++) d[i] = ds_f32_to_bf16((float)tu_rand_normal(&rng));
    t.data = d;
    return t;
}

/* ds_quantize_tensor: same bytes for 1 and 2 threads; element view agrees. */
static void tensor_checks(ds_dtype t) {
    const int N = 37, K = 100;
    ds_tensor src = rand_bf16_matrix(N, K);
    size_t bytes = (size_t)N * ds_quant_row_bytes(t, K);
    void *a = malloc(bytes), *b = malloc(bytes);
    ds_pool *p1 = NULL, *p2 = NULL;
    dsocr_error err;
    CHECK(ds_pool_new(1, &p1, &err) == DSOCR_OK);
    CHECK(ds_pool_new(2, &p2, &err) == DSOCR_OK);
    ds_tensor qa, qb;
    ds_quantize_tensor(p1, &src, t, a, &qa);
    ds_quantize_tensor(p2, &src, t, b, &qb);
    CHECK(!memcmp(a, b, bytes));
    CHECK_EQ_INT(qa.dtype, t);
    CHECK_EQ_INT(qa.stride[0], 128);
    CHECK_EQ_INT(ds_dtype_bytes(t, qa.stride[0]), ds_quant_row_bytes(t, K));
    float row[100];
    int bad = 0;
    for (int r = 0; r < N; r++) {
        ds_dequantize_row(t, (const char *)a + (size_t)r * ds_quant_row_bytes(t, K), K, row);
        for (int k = 0; k < K; k++) bad += ds_tensor_get_f32(&qa, r * qa.stride[0] + k) != row[k];
    }
    CHECK_MSG(bad == 0, "%s: %d elements differ between ds_tensor_get_f32 and ds_dequantize_row", ds_dtype_name(t), bad);
    ds_pool_free(p1); ds_pool_free(p2);
    free(src.data); free(a); free(b);
}

/* Q4_0X4: the same values as Q4_0 (quantized from the same source) through every
 * accessor; the same bytes for 1 and 2 threads; rows that are not whole groups of four
 * fall back to Q4_0. */
static void x4_checks(ds_dtype t) {
    const ds_dtype base = ds_quant_base(t);
    const int N = 36, K = 100;
    ds_tensor src = rand_bf16_matrix(N, K);
    size_t bytes = (size_t)N * ds_quant_row_bytes(t, K);
    CHECK_EQ_INT(bytes, (size_t)N * ds_quant_row_bytes(base, K));
    void *a = malloc(bytes), *b = malloc(bytes), *c = malloc(bytes);
    ds_pool *p2 = NULL;
    dsocr_error err;
    CHECK(ds_pool_new(2, &p2, &err) == DSOCR_OK);
    ds_tensor qx, qx2, qb;
    ds_quantize_tensor(NULL, &src, t, a, &qx);
    ds_quantize_tensor(p2, &src, t, b, &qx2);
    ds_quantize_tensor(NULL, &src, base, c, &qb);
    CHECK_EQ_INT(qx.dtype, t);
    CHECK(!memcmp(a, b, bytes));
    float rx[100], rb[100];
    int bad = 0;
    for (int r = 0; r < N; r++) {
        ds_dequantize_w_row(&qx, r, K, rx);
        ds_dequantize_w_row(&qb, r, K, rb);
        for (int k = 0; k < K; k++) {
            bad += rx[k] != rb[k];
            bad += ds_tensor_get_f32(&qx, r * qx.stride[0] + k) != rb[k];
        }
    }
    CHECK_MSG(bad == 0, "%s: %d values differ from %s", ds_dtype_name(t), bad, ds_dtype_name(base));
    /* a spot check of the layout itself: row 5 (group 1, r = 1), block 2, element 21 */
    const uint8_t *u = ds_x4_units(&qx, 1) + 64 * 2;
    float dd = ds_f16_to_f32(ds_x4_scales(&qx, 1)[4 * 2 + 1]);
    int q = (u[4 * (4 * 1 + 1) + 1] >> 4) - 8;   /* dword 4 * (5 / 4) + 1, byte 5 % 4 */
    CHECK(dd * (float)q == ds_tensor_get_f32(&qb, 5 * qb.stride[0] + 2 * 32 + 21));
    src.shape[0] = 35;   /* not whole groups: the twin */
    ds_quantize_tensor(NULL, &src, t, b, &qx2);
    CHECK_EQ_INT(qx2.dtype, base);
    ds_pool_free(p2);
    free(src.data); free(a); free(b); free(c);
}

/* ---- linear ------------------------------------------------------------------------- */

typedef struct { ds_tensor W; void *data; float *deq; } qweight;   /* deq [N, K] */

static qweight make_qweight(ds_dtype t, int N, int K) {
    qweight q;
    ds_tensor src = {.dtype = DS_F32, .ndim = 2, .shape = {N, K}};
    ds_tensor_set_contiguous(&src);
    float *w = malloc((size_t)N * K * sizeof *w);
    for (int i = 0; i < N * K; i++) w[i] = (float)(tu_rand_normal(&rng) * 0.05);
    src.data = w;
    q.data = malloc((size_t)N * ds_quant_row_bytes(t, K));
    ds_quantize_tensor(NULL, &src, t, q.data, &q.W);
    q.deq = malloc((size_t)N * K * sizeof *q.deq);
    for (int n = 0; n < N; n++) ds_dequantize_w_row(&q.W, n, K, q.deq + (size_t)n * K);
    free(w);
    return q;
}

/* How the kernel under test reads x: exactly, or rounded to int8 per 32-element block
 * with the scale max|x_b| / 127 (the AVX512-VNNI GEMV of the x4 layouts, cpu_quant.c). */
enum { X_EXACT, X_INT8 };

/* The x4 GEMV runs for fewer than 16 x rows on AVX512-VNNI, from a whole group. */
static int x_mode(ds_backend *be, ds_dtype t, int M, int n0) {
    return ds_dtype_is_x4(t) && M < 16 && n0 % 4 == 0 && strstr(ds_backend_name(be), "avx512-vnni") ? X_INT8 : X_EXACT;
}

static void x_as_kernel_reads(const float *x, int K, int mode, double *xr) {
    for (int b = 0; b * 32 < K; b++) {
        float mx = 0;
        for (int k = b * 32; k < K && k < b * 32 + 32; k++) mx = fabsf(x[k]) > mx ? fabsf(x[k]) : mx;
        float d = mx / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
        for (int k = b * 32; k < K && k < b * 32 + 32; k++)
            xr[k] = mode == X_INT8 ? (double)d * lrintf(x[k] * id) : x[k];
    }
}

/* y [M, n1-n0] vs the double product with the dequantized rows n0..n1 and x as the
 * kernel reads it, within the f32 summation bound. */
static int linear_off(const float *y, const float *x, const qweight *q, const ds_tensor *bias,
                      int M, int K, int n0, int n1, int mode) {
    int bad = 0;
    double *xr = malloc((size_t)K * sizeof *xr);
    for (int m = 0; m < M; m++) {
        x_as_kernel_reads(x + (size_t)m * K, K, mode, xr);
        for (int n = n0; n < n1; n++) {
            double s = bias ? ds_tensor_get_f32(bias, n) : 0, mag = fabs(s);
            for (int k = 0; k < K; k++) {
                double p = xr[k] * q->deq[(size_t)n * K + k];
                s += p;
                mag += fabs(p);
            }
            double tol = 2.0 * (K + 2) / 16777216.0 * mag + 1e-6;
            if (!(fabs(y[(size_t)m * (n1 - n0) + n - n0] - s) <= tol)) bad++;
        }
    }
    free(xr);
    return bad;
}

static void linear_case(ds_backend *const *bes, int n_be, ds_dtype t, int M, int K, int N, int use_bias) {
    qweight q = make_qweight(t, N, K);
    float *x = malloc((size_t)M * K * sizeof *x), *y = malloc((size_t)M * N * sizeof *y);
    for (int i = 0; i < M * K; i++) x[i] = (float)tu_rand_normal(&rng);
    float bias_data[64];
    for (int i = 0; i < 64; i++) bias_data[i] = (float)tu_rand_normal(&rng);
    ds_tensor bias = {.dtype = DS_F32, .ndim = 1, .shape = {N}, .stride = {1}, .data = bias_data};
    const ds_tensor *b = use_bias && N <= 64 ? &bias : NULL;
    for (int i = 0; i < n_be; i++) {
        int mode = x_mode(bes[i], q.W.dtype, M, 0);
        for (int j = 0; j < M * N; j++) y[j] = NAN;
        ds_op_linear(bes[i], y, x, M, K, &q.W, b);
        int bad = linear_off(y, x, &q, b, M, K, 0, N, mode);
        CHECK_MSG(bad == 0, "%s linear %s M=%d K=%d N=%d bias %d: %d outputs off",
                  ds_backend_name(bes[i]), ds_dtype_name(t), M, K, N, b != NULL, bad);
        /* a row range (experts are sliced this way) */
        int n0 = N / 3, n1 = N - N / 4;
        if (n1 > n0) {
            ds_op_linear_rows(bes[i], y, x, M, K, &q.W, b, n0, n1);
            bad = linear_off(y, x, &q, b, M, K, n0, n1, x_mode(bes[i], q.W.dtype, M, n0));
            CHECK_MSG(bad == 0, "%s linear_rows %s M=%d K=%d rows %d..%d: %d outputs off",
                      ds_backend_name(bes[i]), ds_dtype_name(t), M, K, n0, n1, bad);
        }
    }
    free(q.data); free(q.deq); free(x); free(y);
}

int main(void) {
    f16_checks();
    roundtrip_checks(DS_Q8_0);
    roundtrip_checks(DS_Q4_0);
    tensor_checks(DS_Q8_0);
    tensor_checks(DS_Q4_0);
    x4_checks(DS_Q4_0X4);

    dsocr_error err;
    ds_backend *bes[3] = {0};
    CHECK(ds_backend_ref_new(2, &bes[0], &err) == DSOCR_OK);
    CHECK(ds_backend_cpu_new(2, &bes[1], &err) == DSOCR_OK);
    CHECK(ds_backend_cpu_new(1, &bes[2], &err) == DSOCR_OK);
    if (!bes[0] || !bes[1] || !bes[2]) return tu_done("test_quant");
    const ds_dtype types[3] = {DS_Q8_0, DS_Q4_0, DS_Q4_0X4};
    /* M < 16: the fused GEMV (all 4 row-group sizes, N % 4 leftovers, K % 32 != 0;
     * for Q4_0X4, N % 4 != 0 quantizes to Q4_0); M >= 16: dequantized panels + sgemm */
    const int Ms[] = {1, 2, 3, 4, 5, 7, 15, 16, 33};
    const int shapes[][2] = {{64, 13}, {48, 8}, {100, 12}, {1280, 67}, {896, 64}, {32, 1}};
    for (int ti = 0; ti < 3; ti++)
        for (size_t mi = 0; mi < sizeof Ms / sizeof Ms[0]; mi++)
            for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
                linear_case(bes, 3, types[ti], Ms[mi], shapes[si][0], shapes[si][1], (int)(mi + si) % 2);
    /* a long row (the dense MLP's down_proj) and many rows over both threads */
    linear_case(bes, 3, DS_Q8_0, 1, 6848, 40, 0);
    linear_case(bes, 3, DS_Q4_0, 1, 6848, 40, 1);
    linear_case(bes, 3, DS_Q4_0, 2, 256, 1000, 0);
    linear_case(bes, 3, DS_Q4_0X4, 1, 6848, 40, 1);   /* more than one chunk of scales */
    linear_case(bes, 3, DS_Q4_0X4, 3, 4100, 8, 1);    /* a partial last chunk and block */
    linear_case(bes, 3, DS_Q4_0X4, 2, 256, 1000, 0);
    for (int i = 0; i < 3; i++) ds_backend_free(bes[i]);
    return tu_done("test_quant");
}
