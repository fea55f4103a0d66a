/* kernels: every op of ops.h against plain double-precision references written
 * here, on odd shapes, for the reference backend and the fast CPU backend.
 *
 * Tolerances: a dot product of K terms in fp32 may be off by about K·u·Σ|xᵢwᵢ|
 * (u = 2^-24); linear and conv are held to 2·(K+2)·u·Σ|xᵢwᵢ| per element, which any
 * correct fp32 summation order meets. Elementwise ops: 2e-6 relative + 1e-7. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "test_util.h"

static uint64_t rng = 12345;

static float *rand_buf(size_t n, double scale) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = (float)(tu_rand_normal(&rng) * scale);
    return p;
}

/* A weight tensor [d0, d1, (d2, d3)] of random values in dtype dt (data malloc'd). */
static ds_tensor rand_tensor(ds_dtype dt, int ndim, const int64_t *shape, double scale) {
    ds_tensor t = {0};
    t.dtype = dt;
    t.ndim = ndim;
    for (int i = 0; i < ndim; i++) t.shape[i] = shape[i];
    ds_tensor_set_contiguous(&t);
    int64_t n = ds_tensor_numel(&t);
    t.data = malloc((size_t)n * ds_dtype_size(dt) + 1);
    for (int64_t i = 0; i < n; i++) {
        float v = (float)(tu_rand_normal(&rng) * scale);
        if (dt == DS_F32) ((float *)t.data)[i] = v;
        else if (dt == DS_BF16) ((uint16_t *)t.data)[i] = ds_f32_to_bf16(v);
        else { /* F16: build from a bf16-ish value that f16 holds exactly: 10-bit mantissa */
            uint16_t h;
            float a = fabsf(v);
            int e = 0;
            if (a < 1e-4f) h = 0;
            else {
                float m = frexpf(a, &e);                 /* a = m·2^e, m in [0.5, 1) */
                int mant = (int)(m * 2048.0f) - 1024;     /* 10 bits after the leading 1 */
                h = (uint16_t)(((e - 1 + 15) << 10) | (mant & 0x3ff));
            }
            if (v < 0) h |= 0x8000;
            ((uint16_t *)t.data)[i] = h;
        }
    }
    return t;
}

static ds_tensor vec_tensor(ds_dtype dt, int64_t n, double scale) { return rand_tensor(dt, 1, &n, scale); }

static double elem(const ds_tensor *t, int64_t i) { return ds_tensor_get_f32(t, i); }

/* max over i of |a-b| / (atol + rtol|b|): <= 1 passes */
static double rel_err(const float *a, const double *b, size_t n, double atol, double rtol) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(a[i] - b[i]) / (atol + rtol * fabs(b[i]));
        if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

static const double U = 1.0 / 16777216.0;   /* fp32 unit roundoff */

/* ---- linear --------------------------------------------------------------------- */

static void test_linear_case(ds_backend *be, int M, int K, int N, ds_dtype wdt, int bias_kind, int64_t n0, int64_t n1) {
    int64_t ws[2] = {N, K};
    ds_tensor W = rand_tensor(wdt, 2, ws, 0.5);
    ds_tensor b = vec_tensor(bias_kind == 2 ? DS_BF16 : DS_F32, N, 1.0);
    const ds_tensor *bp = bias_kind ? &b : NULL;
    float *x = rand_buf((size_t)M * K, 1.0);
    int64_t Ns = n1 - n0;
    float *y = malloc((size_t)M * Ns * sizeof(float));
    if (n0 == 0 && n1 == N) ds_op_linear(be, y, x, M, K, &W, bp);
    else ds_op_linear_rows(be, y, x, M, K, &W, bp, n0, n1);
    int bad = 0;
    for (int m = 0; m < M; m++)
        for (int64_t j = 0; j < Ns; j++) {
            double s = bp ? elem(&b, n0 + j) : 0, mag = fabs(s);
            for (int k = 0; k < K; k++) {
                double p = (double)x[(size_t)m * K + k] * elem(&W, (n0 + j) * K + k);
                s += p;
                mag += fabs(p);
            }
            double tol = 2.0 * (K + 2) * U * mag + 1e-30;
            if (!(fabs(y[(size_t)m * Ns + j] - s) <= tol) && bad++ < 3)
                fprintf(stderr, "linear M=%d K=%d N=%d [%d,%lld]: %.9g vs %.9g (tol %.3g)\n",
                        M, K, N, m, (long long)j, y[(size_t)m * Ns + j], s, tol);
        }
    CHECK_MSG(bad == 0, "%s: linear M=%d K=%d N=%d W %s bias %d rows %lld..%lld: %d bad",
              ds_backend_name(be), M, K, N, ds_dtype_name(wdt), bias_kind, (long long)n0, (long long)n1, bad);
    free(W.data); free(b.data); free(x); free(y);
}

static void test_linear(ds_backend *be) {
    static const int shapes[][3] = {{1, 67, 13}, {37, 67, 13}, {1, 1, 1}, {3, 128, 64}, {8, 130, 33},
                                    {16, 256, 96}, {17, 300, 130}, {64, 64, 257}, {5, 1000, 40}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int d = 0; d < 3; d++) {
            ds_dtype dt = d == 0 ? DS_BF16 : d == 1 ? DS_F32 : DS_F16;
            test_linear_case(be, shapes[s][0], shapes[s][1], shapes[s][2], dt, (int)((s + d) % 3), 0, shapes[s][2]);
        }
    /* row slices, as used to split fused qkv */
    test_linear_case(be, 1, 67, 39, DS_BF16, 1, 13, 26);
    test_linear_case(be, 37, 67, 39, DS_BF16, 2, 26, 39);
    test_linear_case(be, 20, 96, 300, DS_F32, 1, 7, 290);
}

/* Thread count must not change any result bit. */
static void test_linear_deterministic(ds_backend *be1, ds_backend *be2) {
    int M = 37, K = 200, N = 301;
    int64_t ws[2] = {N, K};
    ds_tensor W = rand_tensor(DS_BF16, 2, ws, 0.5);
    float *x = rand_buf((size_t)M * K, 1.0);
    float *y1 = malloc((size_t)M * N * 4), *y2 = malloc((size_t)M * N * 4);
    for (int m = 1; m <= M; m += 35) {
        ds_op_linear(be1, y1, x, m, K, &W, NULL);
        ds_op_linear(be2, y2, x, m, K, &W, NULL);
        CHECK_MSG(memcmp(y1, y2, (size_t)m * N * 4) == 0, "%s vs %s: linear M=%d differs with thread count",
                  ds_backend_name(be1), ds_backend_name(be2), m);
    }
    free(W.data); free(x); free(y1); free(y2);
}

/* ---- conv2d ---------------------------------------------------------------------- */

static void test_conv_case(ds_backend *be, int H, int Wd, int Cin, int Cout, int k, int stride, int pad, int bias) {
    int64_t ws[4] = {Cout, Cin, k, k};
    ds_tensor w = rand_tensor(DS_BF16, 4, ws, 0.3);
    ds_tensor b = vec_tensor(DS_F32, Cout, 1.0);
    float *x = rand_buf((size_t)H * Wd * Cin, 1.0);
    int Ho = (H + 2 * pad - k) / stride + 1, Wo = (Wd + 2 * pad - k) / stride + 1;
    float *y = malloc((size_t)Ho * Wo * Cout * sizeof(float));
    ds_op_conv2d(be, y, x, H, Wd, Cin, &w, bias ? &b : NULL, stride, pad);
    int bad = 0;
    for (int oy = 0; oy < Ho; oy++)
        for (int ox = 0; ox < Wo; ox++)
            for (int co = 0; co < Cout; co++) {
                double s = bias ? elem(&b, co) : 0, mag = fabs(s);
                for (int ci = 0; ci < Cin; ci++)
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= Wd) continue;
                            double p = (double)x[((size_t)iy * Wd + ix) * Cin + ci] *
                                       elem(&w, (((int64_t)co * Cin + ci) * k + ky) * k + kx);
                            s += p;
                            mag += fabs(p);
                        }
                double got = y[((size_t)oy * Wo + ox) * Cout + co];
                if (!(fabs(got - s) <= 2.0 * (Cin * k * k + 2) * U * mag + 1e-30)) bad++;
            }
    CHECK_MSG(bad == 0, "%s: conv %dx%dx%d -> %d k%d s%d p%d bias %d: %d bad", ds_backend_name(be),
              H, Wd, Cin, Cout, k, stride, pad, bias, bad);
    free(w.data); free(b.data); free(x); free(y);
}

static void test_conv(ds_backend *be) {
    test_conv_case(be, 32, 48, 3, 8, 16, 16, 0, 1);    /* patch embed */
    test_conv_case(be, 7, 9, 5, 6, 3, 1, 1, 0);        /* 3x3 s1 p1 */
    test_conv_case(be, 12, 12, 20, 17, 3, 1, 1, 1);
    test_conv_case(be, 9, 7, 4, 6, 3, 2, 1, 0);        /* 3x3 s2 p1, odd sizes */
    test_conv_case(be, 8, 8, 16, 24, 3, 2, 1, 1);
    test_conv_case(be, 5, 6, 16, 7, 1, 1, 0, 0);       /* 1x1 */
    test_conv_case(be, 4, 4, 64, 33, 1, 1, 0, 1);
}

/* ---- norms, softmax, activations ------------------------------------------------- */

static void test_norms(ds_backend *be) {
    static const int dims[] = {1, 67, 768, 1280};
    for (size_t di = 0; di < 4; di++) {
        int rows = 5, dim = dims[di];
        ds_tensor w = vec_tensor(DS_BF16, dim, 1.0), b = vec_tensor(DS_F32, dim, 1.0);
        float *x = rand_buf((size_t)rows * dim, 3.0), *y = malloc((size_t)rows * dim * 4);
        for (size_t i = 0; i < (size_t)rows * dim; i++) x[i] += 2.0f;   /* non-zero mean */
        double *ref = malloc((size_t)rows * dim * sizeof(double));
        /* layernorm */
        for (int r = 0; r < rows; r++) {
            double mean = 0, var = 0;
            for (int i = 0; i < dim; i++) mean += x[r * dim + i];
            mean /= dim;
            for (int i = 0; i < dim; i++) var += (x[r * dim + i] - mean) * (x[r * dim + i] - mean);
            var /= dim;
            for (int i = 0; i < dim; i++)
                ref[r * dim + i] = (x[r * dim + i] - mean) / sqrt(var + 1e-6) * elem(&w, i) + elem(&b, i);
        }
        ds_op_layernorm(be, y, x, rows, dim, &w, &b, 1e-6f);
        CHECK_MSG(rel_err(y, ref, (size_t)rows * dim, 1e-5, 1e-5) <= 1, "%s: layernorm dim %d", ds_backend_name(be), dim);
        memcpy(y, x, (size_t)rows * dim * 4);
        ds_op_layernorm(be, y, y, rows, dim, &w, &b, 1e-6f);           /* in place */
        CHECK_MSG(rel_err(y, ref, (size_t)rows * dim, 1e-5, 1e-5) <= 1, "%s: layernorm in place dim %d", ds_backend_name(be), dim);
        /* rmsnorm */
        for (int r = 0; r < rows; r++) {
            double ss = 0;
            for (int i = 0; i < dim; i++) ss += (double)x[r * dim + i] * x[r * dim + i];
            for (int i = 0; i < dim; i++) ref[r * dim + i] = elem(&w, i) * x[r * dim + i] / sqrt(ss / dim + 1e-6);
        }
        memcpy(y, x, (size_t)rows * dim * 4);
        ds_op_rmsnorm(be, y, y, rows, dim, &w, 1e-6f);
        CHECK_MSG(rel_err(y, ref, (size_t)rows * dim, 1e-6, 1e-5) <= 1, "%s: rmsnorm dim %d", ds_backend_name(be), dim);
        free(w.data); free(b.data); free(x); free(y); free(ref);
    }
}

static void test_softmax(ds_backend *be) {
    static const int ns[] = {1, 13, 64, 129, 4100};
    for (size_t t = 0; t < 5; t++) {
        int rows = 4, n = ns[t];
        float *x = rand_buf((size_t)rows * n, 4.0);
        for (int i = 0; i < n; i += 3) x[n + i] = -INFINITY;        /* row 1: some masked */
        for (int i = 0; i < n; i++) x[2 * n + i] = -INFINITY;       /* row 2: all masked */
        x[3 * n] = 80.0f;                                           /* row 3: large values */
        double *ref = malloc((size_t)rows * n * sizeof(double));
        for (int r = 0; r < rows; r++) {
            double mx = -INFINITY, sum = 0;
            for (int i = 0; i < n; i++) if (x[r * n + i] > mx) mx = x[r * n + i];
            for (int i = 0; i < n; i++) sum += mx == -INFINITY ? 0 : exp(x[r * n + i] - mx);
            for (int i = 0; i < n; i++) ref[r * n + i] = mx == -INFINITY ? 0 : exp(x[r * n + i] - mx) / sum;
        }
        ds_op_softmax(be, x, rows, n);
        CHECK_MSG(rel_err(x, ref, (size_t)rows * n, 1e-7, 1e-5) <= 1, "%s: softmax n=%d", ds_backend_name(be), n);
        int zeros = 1;
        for (int i = 0; i < n; i++) zeros &= x[2 * n + i] == 0.0f && (i % 3 || x[n + i] == 0.0f);
        CHECK_MSG(zeros, "%s: softmax -inf entries give exact 0 (n=%d)", ds_backend_name(be), n);
        free(x); free(ref);
    }
}

static void test_activations(ds_backend *be) {
    size_t n = 10007;
    float *x = rand_buf(n, 3.0), *y = malloc(n * 4), *g = rand_buf(n, 1.0);
    static const float specials[] = {0.0f, -0.0f, 1e-8f, -1e-8f, 30.0f, -30.0f, 90.0f, -90.0f, 5.5f, -5.5f, 1e-3f};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) x[i * 7] = specials[i];
    double *ref = malloc(n * sizeof(double));
    for (int op = 0; op < 4; op++) {
        for (size_t i = 0; i < n; i++) {
            double v = x[i];
            ref[i] = op == 0 ? 0.5 * v * (1 + erf(v / sqrt(2.0))) : op == 1 ? v / (1 + exp(-1.702 * v))
                   : op == 2 ? v / (1 + exp(-v)) : v / (1 + exp(-v)) * g[i];
        }
        memcpy(y, x, n * 4);
        const char *name = op == 0 ? "gelu_erf" : op == 1 ? "quick_gelu" : op == 2 ? "silu" : "silu_mul";
        if (op == 0) ds_op_gelu_erf(be, y, n);
        else if (op == 1) ds_op_quick_gelu(be, y, n);
        else if (op == 2) ds_op_silu(be, y, n);
        else ds_op_silu_mul(be, y, y, g, n);          /* y aliases gate */
        CHECK_MSG(rel_err(y, ref, n, 1e-7, 2e-6) <= 1, "%s: %s (err %.3g)", ds_backend_name(be), name,
                  rel_err(y, ref, n, 1e-7, 2e-6));
        if (op == 3) {                                  /* y aliases up */
            memcpy(y, g, n * 4);
            ds_op_silu_mul(be, y, x, y, n);
            CHECK_MSG(rel_err(y, ref, n, 1e-7, 2e-6) <= 1, "%s: silu_mul aliasing up", ds_backend_name(be));
        }
    }
    free(x); free(y); free(g); free(ref);
}

/* ---- elementwise and data movement ------------------------------------------------- */

static void test_simple(ds_backend *be) {
    size_t n = 70001;
    float *a = rand_buf(n, 1), *b = rand_buf(n, 1), *y = malloc(n * 4);
    ds_op_add(be, y, a, b, n);
    int ok = 1;
    for (size_t i = 0; i < n; i++) ok &= y[i] == a[i] + b[i];
    CHECK_MSG(ok, "add");
    memcpy(y, a, n * 4);
    ds_op_axpy(be, y, 0.25f, b, n);
    ok = 1;
    for (size_t i = 0; i < n; i++) ok &= fabsf(y[i] - (a[i] + 0.25f * b[i])) <= 1e-6f * (1 + fabsf(y[i]));
    CHECK_MSG(ok, "axpy");
    ds_tensor bias = vec_tensor(DS_BF16, 37, 1.0);
    memcpy(y, a, 5 * 37 * 4);
    ds_op_add_row_vec(be, y, 5, 37, &bias);
    ok = 1;
    for (int i = 0; i < 5 * 37; i++) ok &= y[i] == a[i] + (float)elem(&bias, i % 37);
    CHECK_MSG(ok, "add_row_vec");
    /* transpose 37 x 53 */
    ds_op_transpose(be, y, a, 37, 53);
    ok = 1;
    for (int r = 0; r < 37; r++) for (int c = 0; c < 53; c++) ok &= y[c * 37 + r] == a[r * 53 + c];
    CHECK_MSG(ok, "transpose");
    /* embed */
    int64_t ts[2] = {50, 19};
    ds_tensor table = rand_tensor(DS_BF16, 2, ts, 1.0);
    int32_t ids[4] = {0, 49, 7, 7};
    ds_op_embed(be, y, &table, ids, 4);
    ok = 1;
    for (int i = 0; i < 4; i++) for (int d = 0; d < 19; d++) ok &= y[i * 19 + d] == (float)elem(&table, ids[i] * 19 + d);
    CHECK_MSG(ok, "embed");
    /* tensor_to_f32, contiguous and a transposed view */
    ds_op_tensor_to_f32(be, y, &table);
    ok = 1;
    for (int i = 0; i < 50 * 19; i++) ok &= y[i] == (float)elem(&table, i);
    CHECK_MSG(ok, "tensor_to_f32");
    ds_tensor tv = table;
    tv.shape[0] = 19; tv.shape[1] = 50; tv.stride[0] = 1; tv.stride[1] = 19;
    ds_op_tensor_to_f32(be, y, &tv);
    ok = 1;
    for (int r = 0; r < 19; r++) for (int c = 0; c < 50; c++) ok &= y[r * 50 + c] == (float)elem(&table, c * 19 + r);
    CHECK_MSG(ok, "tensor_to_f32 strided");
    ds_op_upload(be, y, a, n);
    ds_op_download(be, b, y, n);
    CHECK(memcmp(a, b, n * 4) == 0);
    free(a); free(b); free(y); free(bias.data); free(table.data);
}

static void test_windows(ds_backend *be) {
    static const int cases[][4] = {{40, 40, 3, 14}, {64, 64, 2, 14}, {5, 9, 4, 4}};
    for (int t = 0; t < 3; t++) {
        int H = cases[t][0], W = cases[t][1], C = cases[t][2], win = cases[t][3];
        int nwy = (H + win - 1) / win, nwx = (W + win - 1) / win;
        size_t ny = (size_t)nwy * nwx * win * win * C;
        float *x = rand_buf((size_t)H * W * C, 1), *y = malloc(ny * 4), *z = malloc((size_t)H * W * C * 4);
        for (size_t i = 0; i < ny; i++) y[i] = NAN;
        ds_op_window_partition(be, y, x, H, W, C, win);
        int ok = 1, pad_zero = 1;
        for (int wy = 0; wy < nwy; wy++) for (int wx = 0; wx < nwx; wx++)
            for (int ty = 0; ty < win; ty++) for (int tx = 0; tx < win; tx++) for (int c = 0; c < C; c++) {
                float v = y[((((size_t)wy * nwx + wx) * win + ty) * win + tx) * C + c];
                int iy = wy * win + ty, ix = wx * win + tx;
                if (iy < H && ix < W) ok &= v == x[((size_t)iy * W + ix) * C + c];
                else pad_zero &= v == 0.0f && !signbit(v);
            }
        CHECK_MSG(ok, "window_partition %dx%d win %d", H, W, win);
        CHECK_MSG(pad_zero, "window_partition padding is exact +0 (%dx%d win %d)", H, W, win);
        ds_op_window_merge(be, z, y, H, W, C, win);
        CHECK_MSG(memcmp(z, x, (size_t)H * W * C * 4) == 0, "window_merge round trip %dx%d win %d", H, W, win);
        free(x); free(y); free(z);
    }
}

/* ---- attention --------------------------------------------------------------------- */

/* Double reference of ds_op_attention, straight from the header's definition. */
static void ref_attention(double *out, const ds_attn_args *a) {
    int batch = a->batch > 0 ? a->batch : 1, hd = a->head_dim;
    double *s = malloc((size_t)a->Lk * sizeof(double));
    for (int b = 0; b < batch; b++) for (int h = 0; h < a->n_heads; h++) for (int i = 0; i < a->Lq; i++) {
        const float *q = a->q + b * a->q_batch_stride + (size_t)i * a->q_stride + h * hd;
        double mx = -INFINITY;
        for (int j = 0; j < a->Lk; j++) {
            const float *k = a->k + b * a->k_batch_stride + (size_t)j * a->k_stride + h * hd;
            double d = 0;
            for (int e = 0; e < hd; e++) d += (double)q[e] * k[e];
            d *= a->scale;
            if (a->rel_h) {
                size_t row = ((size_t)b * a->n_heads + h) * a->Lq + i;
                d += (double)a->rel_h[row * a->kh + j / a->kw] + a->rel_w[row * a->kw + j % a->kw];
            }
            if (a->causal && j > a->q_pos0 + i) d = -INFINITY;
            s[j] = d;
            if (d > mx) mx = d;
        }
        double sum = 0;
        for (int j = 0; j < a->Lk; j++) { s[j] = mx == -INFINITY ? 0 : exp(s[j] - mx); sum += s[j]; }
        for (int e = 0; e < hd; e++) {
            double acc = 0;
            for (int j = 0; j < a->Lk; j++) acc += s[j] * a->v[b * a->v_batch_stride + (size_t)j * a->v_stride + h * hd + e];
            out[(((size_t)b * a->Lq + i) * a->n_heads + h) * hd + e] = sum > 0 ? acc / sum : 0;
        }
    }
    free(s);
}

/* Runs one attention problem on a fused-qkv layout: each token row holds
 * [q | k | v] (3·H·hd floats, plus `extra` unused floats), batch problems back to back. */
static void attn_case(ds_backend *be, int batch, int Lq, int Lk, int H, int hd, int causal, int q_pos0,
                      int relpos_grid, const char *what) {
    int D = H * hd, extra = 5, row = 3 * D + extra;
    int L = Lq > Lk ? Lq : Lk;
    float *qkv = rand_buf((size_t)batch * L * row, 1.0);
    int out_stride = D + 3;
    float *out = malloc((size_t)batch * Lq * out_stride * sizeof(float));
    ds_attn_args a = {0};
    a.out = out; a.out_stride = out_stride;
    a.q = qkv; a.k = qkv + D; a.v = qkv + 2 * D;
    a.q_stride = a.k_stride = a.v_stride = row;
    a.Lq = Lq; a.Lk = Lk; a.n_heads = H; a.head_dim = hd; a.batch = batch;
    a.q_batch_stride = a.k_batch_stride = a.v_batch_stride = (int64_t)L * row;
    a.out_batch_stride = (int64_t)Lq * out_stride;
    a.scale = 1.0f / sqrtf((float)hd);
    a.causal = causal; a.q_pos0 = q_pos0;
    float *rel_h = NULL, *rel_w = NULL, *Rh = NULL, *Rw = NULL;
    if (relpos_grid) {  /* square grids: Lq = qh*qw = Lk = kh*kw */
        int qh = relpos_grid, qw = Lq / relpos_grid;
        a.kh = qh; a.kw = qw;
        Rh = rand_buf((size_t)(2 * qh - 1) * hd, 0.5);
        Rw = rand_buf((size_t)(2 * qw - 1) * hd, 0.5);
        rel_h = malloc((size_t)batch * H * Lq * qh * 4);
        rel_w = malloc((size_t)batch * H * Lq * qw * 4);
        ds_op_relpos(be, rel_h, rel_w, a.q, a.q_stride, a.q_batch_stride, batch, H, hd, qh, qw, qh, qw, Rh, Rw);
        /* relpos itself against its definition */
        double worst = 0;
        for (int b = 0; b < batch; b++) for (int h = 0; h < H; h++) for (int i = 0; i < Lq; i++) {
            int qy = i / qw, qx = i % qw;
            const float *q = a.q + b * a.q_batch_stride + (size_t)i * row + h * hd;
            size_t r = ((size_t)b * H + h) * Lq + i;
            for (int ky = 0; ky < qh; ky++) {
                double s = 0, mag = 0;
                for (int d = 0; d < hd; d++) { s += (double)q[d] * Rh[(qy - ky + qh - 1) * hd + d]; mag += fabs(q[d] * Rh[(qy - ky + qh - 1) * hd + d]); }
                double e = fabs(rel_h[r * qh + ky] - s) / (2.0 * (hd + 2) * U * mag + 1e-30);
                if (e > worst) worst = e;
            }
            for (int kx = 0; kx < qw; kx++) {
                double s = 0, mag = 0;
                for (int d = 0; d < hd; d++) { s += (double)q[d] * Rw[(qx - kx + qw - 1) * hd + d]; mag += fabs(q[d] * Rw[(qx - kx + qw - 1) * hd + d]); }
                double e = fabs(rel_w[r * qw + kx] - s) / (2.0 * (hd + 2) * U * mag + 1e-30);
                if (e > worst) worst = e;
            }
        }
        CHECK_MSG(worst <= 1, "%s: relpos %s (err %.3g)", ds_backend_name(be), what, worst);
        a.rel_h = rel_h; a.rel_w = rel_w;
    }
    ds_op_attention(be, &a);
    double *ref = malloc((size_t)batch * Lq * D * sizeof(double));
    ref_attention(ref, &a);
    /* outputs are convex combinations of v: hold to 2e-5 of max|v| (~1) */
    double worst = 0;
    for (int b = 0; b < batch; b++) for (int i = 0; i < Lq; i++) for (int d = 0; d < D; d++) {
        double e = fabs(out[(size_t)b * a.out_batch_stride + (size_t)i * out_stride + d] - ref[((size_t)b * Lq + i) * D + d]);
        if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
    }
    CHECK_MSG(worst <= 2e-5, "%s: attention %s: batch %d Lq %d Lk %d H %d hd %d causal %d pos0 %d: max err %.3g",
              ds_backend_name(be), what, batch, Lq, Lk, H, hd, causal, q_pos0, worst);
    free(qkv); free(out); free(ref); free(rel_h); free(rel_w); free(Rh); free(Rw);
}

static void test_attention(ds_backend *be) {
    attn_case(be, 1, 37, 37, 3, 16, 0, 0, 0, "bidirectional");
    attn_case(be, 1, 1, 1, 1, 8, 0, 0, 0, "single key");
    attn_case(be, 1, 19, 19, 2, 32, 1, 0, 0, "causal prefill");
    attn_case(be, 1, 5, 12, 2, 16, 1, 7, 0, "causal with q_pos0");
    attn_case(be, 1, 1, 40, 4, 128, 1, 39, 0, "decode step");
    attn_case(be, 3, 13, 13, 2, 24, 0, 0, 0, "batched fused qkv");
    attn_case(be, 2, 30, 30, 2, 8, 0, 0, 5, "relpos 5x6");
    attn_case(be, 2, 49, 49, 3, 64, 0, 0, 7, "relpos 7x7");
    attn_case(be, 1, 70, 300, 2, 64, 0, 0, 0, "long keys");
    attn_case(be, 1, 300, 300, 2, 64, 1, 0, 0, "long causal");
    attn_case(be, 1, 289, 289, 1, 64, 0, 0, 17, "relpos 17x17");
}

/* ---- rope ---------------------------------------------------------------------------- */

static void test_rope(ds_backend *be) {
    int L = 4, H = 3, hd = 16, stride = H * hd + 7, pos0 = 5;
    float inv_freq[8];
    for (int i = 0; i < hd / 2; i++) inv_freq[i] = (float)(1.0 / pow(10000.0, 2.0 * i / hd));
    float *x = rand_buf((size_t)L * stride, 1.0), *x0 = malloc((size_t)L * stride * 4);
    memcpy(x0, x, (size_t)L * stride * 4);
    ds_op_rope(be, x, stride, L, H, hd, pos0, inv_freq);
    double worst = 0;
    int untouched = 1;
    for (int i = 0; i < L; i++) {
        for (int h = 0; h < H; h++)
            for (int j = 0; j < hd / 2; j++) {
                double ang = (double)((float)(pos0 + i) * inv_freq[j]);
                double a = x0[i * stride + h * hd + j], b = x0[i * stride + h * hd + j + hd / 2];
                double r0 = a * cos(ang) - b * sin(ang), r1 = b * cos(ang) + a * sin(ang);
                worst = fmax(worst, fabs(x[i * stride + h * hd + j] - r0));
                worst = fmax(worst, fabs(x[i * stride + h * hd + j + hd / 2] - r1));
            }
        for (int c = H * hd; c < stride; c++) untouched &= x[i * stride + c] == x0[i * stride + c];
    }
    CHECK_MSG(worst <= 1e-5, "%s: rope max err %.3g", ds_backend_name(be), worst);
    CHECK_MSG(untouched, "rope leaves the row padding alone");
    free(x); free(x0);
}

/* ---- interpolation ------------------------------------------------------------------ */

static double cubic_d(double t) {
    t = fabs(t);
    if (t < 1) return (1.5 * t - 2.5) * t * t + 1;
    if (t < 2) return (((t - 5) * t + 8) * t - 4) * -0.5;
    return 0;
}

/* out[o] along one axis, double: spec 7.5 */
static void aa_axis_d(double *out, const double *in, int n_in, int n_out, int step_in, int step_out, int count) {
    double scale = (double)n_in / n_out, support = scale >= 1 ? 2 * scale : 2, inv = scale >= 1 ? 1 / scale : 1;
    for (int o = 0; o < n_out; o++) {
        double c = scale * (o + 0.5);
        int xmin = (int)(c - support + 0.5), xmax = (int)(c + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > n_in) xmax = n_in;
        double w[256], tot = 0;
        for (int j = 0; j < xmax - xmin; j++) { w[j] = cubic_d((j + (xmin - c) + 0.5) * inv); tot += w[j]; }
        for (int l = 0; l < count; l++) {
            double acc = 0;
            for (int j = 0; j < xmax - xmin; j++) acc += w[j] / tot * in[(size_t)(xmin + j) * step_in + l];
            out[(size_t)o * step_out + l] = acc;
        }
    }
}

static void bicubic_d(double *out, const float *in, int ih, int iw, int C, int oh, int ow) {
    double *src = malloc((size_t)ih * iw * C * sizeof(double)), *tmp = malloc((size_t)ih * ow * C * sizeof(double));
    for (size_t i = 0; i < (size_t)ih * iw * C; i++) src[i] = in[i];
    for (int y = 0; y < ih; y++) aa_axis_d(tmp + (size_t)y * ow * C, src + (size_t)y * iw * C, iw, ow, C, C, C);
    aa_axis_d(out, tmp, ih, oh, ow * C, ow * C, ow * C);
    free(src); free(tmp);
}

static void test_bicubic(void) {
    static const int cases[][5] = {{64, 64, 32, 32, 3}, {16, 16, 20, 20, 2}, {64, 64, 40, 40, 1},
                                   {16, 16, 80, 80, 1}, {7, 9, 5, 12, 3}, {1, 4, 1, 8, 1}, {12, 5, 3, 5, 2}};
    for (int t = 0; t < 7; t++) {
        int ih = cases[t][0], iw = cases[t][1], oh = cases[t][2], ow = cases[t][3], C = cases[t][4];
        float *in = rand_buf((size_t)ih * iw * C, 1.0), *out = malloc((size_t)oh * ow * C * 4);
        double *ref = malloc((size_t)oh * ow * C * sizeof(double));
        ds_interp_bicubic_aa(out, in, ih, iw, C, oh, ow);
        bicubic_d(ref, in, ih, iw, C, oh, ow);
        double e = rel_err(out, ref, (size_t)oh * ow * C, 2e-6, 0);
        CHECK_MSG(e <= 1, "bicubic_aa %dx%d -> %dx%d: err %.3g", ih, iw, oh, ow, e * 2e-6);
        /* constant input stays constant */
        for (size_t i = 0; i < (size_t)ih * iw * C; i++) in[i] = 0.75f;
        ds_interp_bicubic_aa(out, in, ih, iw, C, oh, ow);
        int ok = 1;
        for (size_t i = 0; i < (size_t)oh * ow * C; i++) ok &= fabsf(out[i] - 0.75f) <= 1e-6f;
        CHECK_MSG(ok, "bicubic_aa keeps a constant %dx%d -> %dx%d", ih, iw, oh, ow);
        free(in); free(out); free(ref);
    }
    /* identity when the size is unchanged: exact */
    float *in = rand_buf(16 * 16 * 3, 1.0), *out = malloc(16 * 16 * 3 * 4);
    ds_interp_bicubic_aa(out, in, 16, 16, 3, 16, 16);
    CHECK(memcmp(in, out, 16 * 16 * 3 * 4) == 0);
    free(in); free(out);
    /* a linear ramp is reproduced exactly wherever all taps lie inside: 64->32 gives
     * out[o] = 2o + 0.5 (taps at offsets ±0.5..±3.5 / 2, symmetric) */
    float ramp[64], r32[32], r20[20];
    for (int i = 0; i < 64; i++) ramp[i] = (float)i;
    ds_interp_bicubic_aa(r32, ramp, 1, 64, 1, 1, 32);
    int ok = 1;
    for (int o = 2; o < 30; o++) ok &= fabsf(r32[o] - (2.0f * o + 0.5f)) <= 1e-4f;
    CHECK_MSG(ok, "bicubic_aa 64->32 ramp");
    /* 16->20 upscaling: out[o] = 0.8 (o + 0.5) - 0.5 in the interior */
    ds_interp_bicubic_aa(r20, ramp, 16, 1, 1, 20, 1);
    ok = 1;
    for (int o = 3; o < 17; o++) ok &= fabsf(r20[o] - (0.8f * (o + 0.5f) - 0.5f)) <= 1e-5f;
    CHECK_MSG(ok, "bicubic_aa 16->20 ramp");
    /* 4->8, output 3 by hand: taps at t = -1.25, -0.25, 0.75, 1.75 give weights
     * -0.0703125, 0.8671875, 0.2265625, -0.0234375 (sum 1) on [1, 2, 4, 8] = 2.3828125 */
    float in4[4] = {1, 2, 4, 8}, out8[8];
    ds_interp_bicubic_aa(out8, in4, 1, 4, 1, 1, 8);
    CHECK_NEAR(out8[3], 2.3828125, 1e-6, 0);
}

static void test_interp_linear(void) {
    float in2[2] = {0, 4}, out4[4];
    ds_interp_linear(out4, in2, 2, 1, 4);   /* s = 0, 0.25, 0.75, 1.25 -> clamped to the last */
    CHECK_NEAR(out4[0], 0, 1e-7, 0);
    CHECK_NEAR(out4[1], 1, 1e-6, 0);
    CHECK_NEAR(out4[2], 3, 1e-6, 0);
    CHECK_NEAR(out4[3], 4, 1e-6, 0);
    static const int cases[][2] = {{127, 79}, {127, 63}, {127, 159}, {27, 27}, {5, 3}};
    for (int t = 0; t < 5; t++) {
        int n_in = cases[t][0], n_out = cases[t][1], C = 7;
        float *in = rand_buf((size_t)n_in * C, 1), *out = malloc((size_t)n_out * C * 4);
        ds_interp_linear(out, in, n_in, C, n_out);
        /* PyTorch (CPU) computes the source index in fp32: match that to 1e-6, and the
         * all-double formula to 5e-5 (fp32 index rounding at ~100 moves lambda ~1e-5) */
        double worst = 0, worst_d = 0, scale = (double)n_in / n_out;
        float scale_f = (float)n_in / (float)n_out;
        for (int o = 0; o < n_out; o++) {
            double s = fmax(scale * (o + 0.5) - 0.5, 0);
            float sf = fmaxf(scale_f * ((float)o + 0.5f) - 0.5f, 0.0f);
            int i0 = (int)floor(s), i1 = i0 + 1 < n_in ? i0 + 1 : n_in - 1;
            int j0 = (int)floorf(sf), j1 = j0 + 1 < n_in ? j0 + 1 : n_in - 1;
            double l = s - i0, lf = (double)(sf - (float)j0);
            for (int c = 0; c < C; c++) {
                worst_d = fmax(worst_d, fabs(out[o * C + c] - ((1 - l) * in[i0 * C + c] + l * in[i1 * C + c])));
                worst = fmax(worst, fabs(out[o * C + c] - ((1 - lf) * in[j0 * C + c] + lf * in[j1 * C + c])));
            }
        }
        CHECK_MSG(worst <= 1e-6, "interp_linear %d -> %d: err %.3g (fp32 index)", n_in, n_out, worst);
        CHECK_MSG(worst_d <= 5e-5, "interp_linear %d -> %d: err %.3g (double)", n_in, n_out, worst_d);
        if (n_in == n_out) CHECK(memcmp(in, out, (size_t)n_in * C * 4) == 0);
        free(in); free(out);
    }
}

/* ---- main ------------------------------------------------------------------------------- */

static void run_all(ds_backend *be) {
    printf("backend: %s\n", ds_backend_name(be));
    test_linear(be);
    test_conv(be);
    test_norms(be);
    test_softmax(be);
    test_activations(be);
    test_simple(be);
    test_windows(be);
    test_attention(be);
    test_rope(be);
}

int main(void) {
    dsocr_error err;
    ds_backend *ref = NULL, *cpu = NULL, *cpu1 = NULL;
    CHECK(ds_backend_ref_new(2, &ref, &err) == DSOCR_OK);
    CHECK(ds_backend_cpu_new(0, &cpu, &err) == DSOCR_OK);
    CHECK(ds_backend_cpu_new(1, &cpu1, &err) == DSOCR_OK);
    if (!ref || !cpu || !cpu1) return tu_done("test_kernels");
    CHECK(ds_backend_threads(cpu) >= 1);
    CHECK_EQ_INT(ds_backend_threads(cpu1), 1);
    float *buf = ds_buf_alloc(cpu, 1000);
    CHECK(buf && ((uintptr_t)buf & 63) == 0);
    ds_buf_free(cpu, buf);
    run_all(ref);
    run_all(cpu);
    test_linear_deterministic(cpu, cpu1);
    test_bicubic();
    test_interp_linear();
    ds_backend_free(ref);
    ds_backend_free(cpu);
    ds_backend_free(cpu1);
    return tu_done("test_kernels");
}
