/* kernels: the fast CPU kernels against the reference kernels on larger shapes that
 * reach every fast path (GEMV with K % 32 != 0, blocked sgemm, multi-block flash
 * attention with the rel-pos grid split across key blocks, im2col conv), plus the
 * thread pool itself and the blocked GEMM of builds without BLAS (cpu_gemm.c: plain C
 * tiles on x86, NEON tiles on aarch64, where scripts/test-arm.sh runs this under qemu).
 *
 * Tolerance (fast vs reference, which sums in double): per element
 *   linear / conv: |Δ| <= 2·(K+2)·2^-24·Σ|x·w| (fp32 summation bound)
 *   attention:     |Δ| <= 2e-5 · max|v|  (outputs are convex combinations of v)
 *   others:        |Δ| <= 1e-7 + 2e-6 |ref|  (norms 1e-5) */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"
#include "core/quant.h"
#include "kernels/cpu/cpu.h"
#include "kernels/ops.h"
#include "test_util.h"

static uint64_t rng = 777;

static float *rand_buf(size_t n, double scale) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = (float)(tu_rand_normal(&rng) * scale);
    return p;
}

static ds_tensor bf16_tensor(int ndim, const int64_t *shape, double scale) {
    ds_tensor t = {0};
    t.dtype = DS_BF16;
    t.ndim = ndim;
    for (int i = 0; i < ndim; i++) t.shape[i] = shape[i];
    ds_tensor_set_contiguous(&t);
    int64_t n = ds_tensor_numel(&t);
    uint16_t *d = malloc((size_t)n * 2);
    for (int64_t i = 0; i < n; i++) d[i] = ds_f32_to_bf16((float)(tu_rand_normal(&rng) * scale));
    t.data = d;
    return t;
}

static double max_abs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

/* |fast - ref| <= atol + rtol|ref| everywhere */
static int close_all(const float *fast, const float *ref, size_t n, double atol, double rtol, double *worst) {
    *worst = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)fast[i] - ref[i]);
        if (!(e <= atol + rtol * fabs(ref[i]))) { *worst = isnan(e) ? INFINITY : fmax(*worst, e); }
    }
    return *worst == 0;
}

/* ---- linear ------------------------------------------------------------------------ */

static void linear_case(ds_backend *fast, ds_backend *ref, int M, int K, int N, int bias) {
    int64_t ws[2] = {N, K};
    ds_tensor W = bf16_tensor(2, ws, 0.05);
    ds_tensor b = bf16_tensor(1, ws, 1.0);
    float *x = rand_buf((size_t)M * K, 1.0);
    float *y1 = malloc((size_t)M * N * 4), *y2 = malloc((size_t)M * N * 4);
    ds_op_linear(fast, y1, x, M, K, &W, bias ? &b : NULL);
    ds_op_linear(ref, y2, x, M, K, &W, bias ? &b : NULL);
    /* bound from Σ|x||w| per output, computed on the fly */
    int bad = 0;
    const uint16_t *wd = W.data;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double mag = bias ? fabs(ds_bf16_to_f32(((uint16_t *)b.data)[n])) : 0;
            for (int k = 0; k < K; k++) mag += fabs(x[(size_t)m * K + k] * ds_bf16_to_f32(wd[(size_t)n * K + k]));
            double tol = 2.0 * (K + 2) / 16777216.0 * mag;
            if (!(fabs(y1[(size_t)m * N + n] - y2[(size_t)m * N + n]) <= tol)) bad++;
        }
    CHECK_MSG(bad == 0, "fast linear M=%d K=%d N=%d bias %d: %d outputs off", M, K, N, bias, bad);
    free(W.data); free(b.data); free(x); free(y1); free(y2);
}

/* ---- batched linear ------------------------------------------------------------------- */

/* A random [N, K] weight of dtype t (bf16, f32, q8_0, q4_0) with its rows widened to f32
 * (what the kernels must multiply by) in *deq. */
static ds_tensor weight_of(ds_dtype t, int N, int K, float **deq) {
    ds_tensor src = {.dtype = DS_F32, .ndim = 2, .shape = {N, K}};
    ds_tensor_set_contiguous(&src);
    src.data = rand_buf((size_t)N * K, 0.05);
    ds_tensor W = src;
    if (t == DS_BF16) {
        uint16_t *d = malloc((size_t)N * K * 2);
        for (int i = 0; i < N * K; i++) d[i] = ds_f32_to_bf16(((float *)src.data)[i]);
        W.dtype = DS_BF16;
        W.data = d;
    } else if (ds_dtype_is_quant(t)) {
        ds_quantize_tensor(NULL, &src, t, malloc((size_t)N * ds_quant_row_bytes(t, K)), &W);
    }
    if (W.data != src.data) free(src.data);
    *deq = malloc((size_t)N * K * sizeof(float));
    for (int n = 0; n < N; n++) ds_w_row_f32(&W, n, K, *deq + (size_t)n * K);
    return W;
}

/* Outputs of job J off the double product by more than the fp32 summation bound. */
static int job_off(const ds_linear_job *J, const float *y, const float *deq) {
    int bad = 0, K = J->K;
    int64_t n1 = J->n0 == 0 && J->n1 == 0 ? J->W->shape[0] : J->n1, N = n1 - J->n0;
    for (int m = 0; m < J->M; m++)
        for (int64_t n = 0; n < N; n++) {
            double s = J->b ? ds_tensor_get_f32(J->b, J->n0 + n) : 0, mag = fabs(s);
            for (int k = 0; k < K; k++) {
                double p = (double)J->x[(size_t)m * K + k] * deq[(size_t)(J->n0 + n) * K + k];
                s += p;
                mag += fabs(p);
            }
            if (!(fabs(y[(size_t)m * N + n] - s) <= 2.0 * (K + 2) / 16777216.0 * mag + 1e-6)) bad++;
        }
    return bad;
}

/* n_jobs jobs of mixed dtypes and shapes (some sharing x, some on row ranges, some with a
 * bias, some too tall for the GEMV) through ds_op_linear_batch on each backend: every
 * output within the bound, and the fast batch bit-identical to one ds_op_linear_rows per
 * job (a row's result must not depend on how the rows were split or grouped). */
static void linear_batch_case(ds_backend *const *bes, int n_be, int n_jobs, int seed) {
    static const ds_dtype types[4] = {DS_BF16, DS_Q8_0, DS_Q4_0, DS_F32};
    static const int shapes[][3] = {{1, 1280, 517}, {1, 1280, 96}, {3, 1000, 130}, {1, 96, 1029},
                                    {2, 33, 7}, {5, 640, 61}, {17, 256, 40}, {1, 64, 4}};
    const int n_shapes = (int)(sizeof shapes / sizeof shapes[0]);
    ds_linear_job *jobs = calloc((size_t)n_jobs, sizeof *jobs);
    ds_tensor *W = calloc((size_t)n_jobs, sizeof *W), *bias = calloc((size_t)n_jobs, sizeof *bias);
    float **deq = calloc((size_t)n_jobs, sizeof *deq), **xs = calloc((size_t)n_jobs, sizeof *xs);
    float **ys = calloc((size_t)n_jobs, sizeof *ys), **y1 = calloc((size_t)n_jobs, sizeof *y1);
    for (int i = 0; i < n_jobs; i++) {
        const int *sh = shapes[(i * 5 + seed) % n_shapes];
        ds_linear_job *J = &jobs[i];
        J->M = sh[0]; J->K = sh[1];
        W[i] = weight_of(types[(i + seed) % 4], sh[2], sh[1], &deq[i]);
        J->W = &W[i];
        /* jobs of the same shape share x every other time (the prep is reused) */
        for (int k = 0; k < i && !J->x; k++)
            if (jobs[k].M == J->M && jobs[k].K == J->K && (i + k) % 2) J->x = jobs[k].x;
        if (!J->x) J->x = xs[i] = rand_buf((size_t)J->M * J->K, 1.0);
        if (i % 3 == 1 && sh[2] >= 8) { J->n0 = 3; J->n1 = sh[2] - 2; }   /* row range */
        if (i % 4 == 2) {
            int64_t bs[1] = {sh[2]};
            bias[i] = bf16_tensor(1, bs, 1.0);
            J->b = &bias[i];
        }
        int64_t N = (J->n1 ? J->n1 : sh[2]) - J->n0;
        ys[i] = malloc((size_t)J->M * N * sizeof(float));
        y1[i] = malloc((size_t)J->M * N * sizeof(float));
        J->y = ys[i];
    }
    for (int e = 0; e < n_be; e++) {
        for (int i = 0; i < n_jobs; i++) memset(ys[i], 0xff, 4);   /* NaN: every output written */
        ds_op_linear_batch(bes[e], n_jobs, jobs);
        int bad = 0, diff = 0;
        for (int i = 0; i < n_jobs; i++) {
            const ds_linear_job *J = &jobs[i];
            bad += job_off(J, ys[i], deq[i]);
            if (e == 0) {   /* the fast backend: one job at a time gives the same bits */
                int64_t n1 = J->n1 ? J->n1 : J->W->shape[0], N = n1 - J->n0;
                ds_op_linear_rows(bes[e], y1[i], J->x, J->M, J->K, J->W, J->b, J->n0, n1);
                diff += memcmp(y1[i], ys[i], (size_t)J->M * N * sizeof(float)) != 0;
            }
        }
        CHECK_MSG(bad == 0, "linear batch of %d jobs (seed %d) on %s: %d outputs off", n_jobs, seed,
                  ds_backend_name(bes[e]), bad);
        CHECK_MSG(diff == 0, "linear batch of %d jobs (seed %d) on %s: %d jobs differ from ds_op_linear_rows",
                  n_jobs, seed, ds_backend_name(bes[e]), diff);
    }
    for (int i = 0; i < n_jobs; i++) {
        free(W[i].data); free(bias[i].data); free(deq[i]); free(xs[i]); free(ys[i]); free(y1[i]);
    }
    free(jobs); free(W); free(bias); free(deq); free(xs); free(ys); free(y1);
}

static void test_linear_batch(ds_backend *fast, ds_backend *ref) {
    ds_backend *fast3 = NULL;   /* odd thread count: chunks split jobs at odd places */
    CHECK(ds_backend_cpu_new(3, &fast3, NULL) == DSOCR_OK);
    ds_backend *bes[3] = {fast, ref, fast3};
    linear_batch_case(bes, 3, 1, 0);
    linear_batch_case(bes, 3, 7, 1);    /* like q/k/v or the gate/up of the experts */
    linear_batch_case(bes, 3, 13, 2);
    linear_batch_case(bes, 3, 70, 3);   /* more than one pass */
    ds_op_linear_batch(fast, 0, NULL);  /* nothing to do */
    ds_backend_free(fast3);
}

/* ---- attention ----------------------------------------------------------------------- */

/* c on the fast and the reference backend, each against want [n] within tol. */
static void attention_both(ds_backend *fast, ds_backend *ref, ds_attn_args c, float *out, const float *want, size_t n,
                           double tol, const char *what) {
    ds_backend *bes[2] = {fast, ref};
    for (int e = 0; e < 2; e++) {
        double worst;
        c.out = out;
        ds_op_attention(bes[e], &c);
        CHECK_MSG(close_all(out, want, n, tol, 0, &worst), "%s attention %s: worst %.3g", ds_backend_name(bes[e]), what,
                  worst);
    }
}

static void attention_case(ds_backend *fast, ds_backend *ref, int batch, int Lq, int Lk, int H, int hd,
                           int causal, int q_pos0, int grid_h, int grid_w) {
    int D = H * hd, row = 3 * D, L = Lq > Lk ? Lq : Lk;
    float *qkv = rand_buf((size_t)batch * L * row, 1.0);
    float *o1 = malloc((size_t)batch * Lq * D * 4), *o2 = malloc((size_t)batch * Lq * D * 4);
    ds_attn_args a = {0};
    a.q = qkv; a.k = qkv + D; a.v = qkv + 2 * D;
    a.q_stride = a.k_stride = a.v_stride = row;
    a.out_stride = D;
    a.Lq = Lq; a.Lk = Lk; a.n_heads = H; a.head_dim = hd; a.batch = batch;
    a.q_batch_stride = a.k_batch_stride = a.v_batch_stride = (int64_t)L * row;
    a.out_batch_stride = (int64_t)Lq * D;
    a.scale = 1.0f / sqrtf((float)hd);
    a.causal = causal; a.q_pos0 = q_pos0;
    float *rh1 = NULL, *rw1 = NULL, *rh2 = NULL, *rw2 = NULL, *Rh = NULL, *Rw = NULL;
    if (grid_h) {
        Rh = rand_buf((size_t)(2 * grid_h - 1) * hd, 0.3);
        Rw = rand_buf((size_t)(2 * grid_w - 1) * hd, 0.3);
        size_t nh = (size_t)batch * H * Lq * grid_h, nw = (size_t)batch * H * Lq * grid_w;
        rh1 = malloc(nh * 4); rw1 = malloc(nw * 4); rh2 = malloc(nh * 4); rw2 = malloc(nw * 4);
        ds_op_relpos(fast, rh1, rw1, a.q, row, a.q_batch_stride, batch, H, hd, grid_h, grid_w, grid_h, grid_w, Rh, Rw);
        ds_op_relpos(ref, rh2, rw2, a.q, row, a.q_batch_stride, batch, H, hd, grid_h, grid_w, grid_h, grid_w, Rh, Rw);
        double w1, w2;
        /* dots of hd terms of size ~0.3: |Δ| <= 1e-5 · hd-scaled magnitude */
        CHECK_MSG(close_all(rh1, rh2, nh, 1e-5 * sqrt(hd), 1e-5, &w1) && close_all(rw1, rw2, nw, 1e-5 * sqrt(hd), 1e-5, &w2),
                  "fast relpos %dx%d: worst %.3g %.3g", grid_h, grid_w, w1, w2);
        a.rel_h = rh2; a.rel_w = rw2; a.kh = grid_h; a.kw = grid_w;
    }
    a.out = o1;
    ds_op_attention(fast, &a);
    a.out = o2;
    ds_op_attention(ref, &a);
    double worst;
    double vmax = max_abs(qkv, (size_t)batch * L * row);
    CHECK_MSG(close_all(o1, o2, (size_t)batch * Lq * D, 2e-5 * vmax, 0, &worst),
              "fast attention batch %d Lq %d Lk %d H %d hd %d causal %d pos0 %d grid %dx%d: worst %.3g",
              batch, Lq, Lk, H, hd, causal, q_pos0, grid_h, grid_w, worst);
    {   /* keys and values in bf16 (any layout, batch and bias: widened where no kernel
         * reads them), against the f32 reference over the rounded values */
        size_t nq = (size_t)batch * L * row;
        uint16_t *qkv16 = malloc(nq * 2);
        float *qkvr = malloc(nq * 4);
        for (size_t i = 0; i < nq; i++) { qkv16[i] = ds_f32_to_bf16(qkv[i]); qkvr[i] = ds_round_bf16(qkv[i]); }
        ds_attn_args r = a, c = a;
        r.k = qkvr + D; r.v = qkvr + 2 * D;
        r.out = o2;
        ds_op_attention(ref, &r);
        c.k = c.v = NULL;
        c.k16 = qkv16 + D; c.v16 = qkv16 + 2 * D;
        char what[128];
        snprintf(what, sizeof what, "bf16 K/V batch %d Lq %d Lk %d grid %dx%d", batch, Lq, Lk, grid_h, grid_w);
        attention_both(fast, ref, c, o1, o2, (size_t)batch * Lq * D, 2e-5 * vmax, what);
        free(qkv16); free(qkvr);
        ds_op_attention(ref, &a);   /* o2 back to the f32 reference for the checks below */
    }
    if (batch == 1 && !grid_h) {   /* the same keys and values head-major, as the decoder's cache */
        float *kh = malloc((size_t)H * Lk * hd * 4), *vh = malloc((size_t)H * Lk * hd * 4);
        for (int h = 0; h < H; h++)
            for (int j = 0; j < Lk; j++)
                for (int d = 0; d < hd; d++) {
                    kh[((size_t)h * Lk + j) * hd + d] = a.k[(size_t)j * row + h * hd + d];
                    vh[((size_t)h * Lk + j) * hd + d] = a.v[(size_t)j * row + h * hd + d];
                }
        ds_attn_args b = a;
        b.k = kh; b.v = vh; b.k_stride = b.v_stride = hd;
        b.k_head_stride = b.v_head_stride = (int64_t)Lk * hd;
        char what[128];
        snprintf(what, sizeof what, "head-major Lq %d Lk %d H %d hd %d causal %d", Lq, Lk, H, hd, causal);
        attention_both(fast, ref, b, o1, o2, (size_t)Lq * D, 2e-5 * vmax, what);
        /* the same cache in bf16 (the quantized decoders'): ds_op_copy_rows_bf16 rounds to
         * nearest even; both backends against the f32 reference over the rounded values */
        size_t n = (size_t)H * Lk * hd;
        uint16_t *k16 = malloc(n * 2), *v16 = malloc(n * 2);
        ds_op_copy_rows_bf16(fast, k16, hd, kh, hd, H * Lk, hd);
        ds_op_copy_rows_bf16(fast, v16, hd, vh, hd, H * Lk, hd);
        int bad = 0;
        for (size_t i = 0; i < n; i++) {
            bad += k16[i] != ds_f32_to_bf16(kh[i]) || v16[i] != ds_f32_to_bf16(vh[i]);
            kh[i] = ds_round_bf16(kh[i]);
            vh[i] = ds_round_bf16(vh[i]);
        }
        CHECK_MSG(bad == 0, "copy_rows_bf16: %d values not rounded to nearest even", bad);
        b.out = o2;
        ds_op_attention(ref, &b);   /* f32 keys and values that are the bf16 ones */
        ds_attn_args c = b;
        c.k = c.v = NULL;
        c.k16 = k16; c.v16 = v16;
        snprintf(what, sizeof what, "head-major bf16 K/V Lq %d Lk %d H %d hd %d causal %d", Lq, Lk, H, hd, causal);
        attention_both(fast, ref, c, o1, o2, (size_t)Lq * D, 2e-5 * vmax, what);
        free(k16); free(v16);
        free(kh); free(vh);
    }
    free(qkv); free(o1); free(o2); free(rh1); free(rw1); free(rh2); free(rw2); free(Rh); free(Rw);
}

/* ---- conv ------------------------------------------------------------------------------ */

static void conv_case(ds_backend *fast, ds_backend *ref, int H, int W, int Cin, int Cout, int k, int s, int p) {
    int64_t ws[4] = {Cout, Cin, k, k};
    ds_tensor w = bf16_tensor(4, ws, 0.05);
    int64_t bs[1] = {Cout};
    ds_tensor b = bf16_tensor(1, bs, 1.0);
    int Ho = (H + 2 * p - k) / s + 1, Wo = (W + 2 * p - k) / s + 1;
    float *x = rand_buf((size_t)H * W * Cin, 1.0);
    float *y1 = malloc((size_t)Ho * Wo * Cout * 4), *y2 = malloc((size_t)Ho * Wo * Cout * 4);
    ds_op_conv2d(fast, y1, x, H, W, Cin, &w, &b, s, p);
    ds_op_conv2d(ref, y2, x, H, W, Cin, &w, &b, s, p);
    /* |x| ~ 1, |w| ~ 0.05: Σ|x·w| <= taps · 0.05 · 4 (loose magnitude bound) */
    double taps = (double)Cin * k * k, worst;
    CHECK_MSG(close_all(y1, y2, (size_t)Ho * Wo * Cout, 2.0 * (taps + 2) / 16777216.0 * taps * 0.2, 0, &worst),
              "fast conv %dx%dx%d -> %d k%d s%d p%d: worst %.3g", H, W, Cin, Cout, k, s, p, worst);
    free(w.data); free(b.data); free(x); free(y1); free(y2);
}

/* ---- elementwise and norms --------------------------------------------------------------- */

static void elementwise(ds_backend *fast, ds_backend *ref) {
    size_t n = 100003;
    float *x = rand_buf(n, 4.0), *g = rand_buf(n, 1.0), *a1 = malloc(n * 4), *a2 = malloc(n * 4);
    double worst;
    for (int op = 0; op < 4; op++) {
        memcpy(a1, x, n * 4);
        memcpy(a2, x, n * 4);
        switch (op) {
        case 0: ds_op_gelu_erf(fast, a1, n); ds_op_gelu_erf(ref, a2, n); break;
        case 1: ds_op_quick_gelu(fast, a1, n); ds_op_quick_gelu(ref, a2, n); break;
        case 2: ds_op_silu(fast, a1, n); ds_op_silu(ref, a2, n); break;
        default: ds_op_silu_mul(fast, a1, a1, g, n); ds_op_silu_mul(ref, a2, a2, g, n); break;
        }
        CHECK_MSG(close_all(a1, a2, n, 1e-7, 2e-6, &worst), "fast activation %d: worst %.3g", op, worst);
    }
    int rows = 37, dims[3] = {768, 1280, 1000};
    for (int d = 0; d < 3; d++) {
        int dim = dims[d];
        int64_t sh[1] = {dim};
        ds_tensor w = bf16_tensor(1, sh, 1.0), b = bf16_tensor(1, sh, 1.0);
        ds_op_layernorm(fast, a1, x, rows, dim, &w, &b, 1e-6f);
        ds_op_layernorm(ref, a2, x, rows, dim, &w, &b, 1e-6f);
        CHECK_MSG(close_all(a1, a2, (size_t)rows * dim, 1e-5, 1e-5, &worst), "fast layernorm %d: %.3g", dim, worst);
        ds_op_layernorm(fast, a1, x, rows, dim, NULL, NULL, 1e-5f);
        ds_op_layernorm(ref, a2, x, rows, dim, NULL, NULL, 1e-5f);
        CHECK_MSG(close_all(a1, a2, (size_t)rows * dim, 1e-5, 1e-5, &worst), "fast layernorm no affine %d: %.3g", dim, worst);
        ds_op_rmsnorm(fast, a1, x, rows, dim, &w, 1e-6f);
        ds_op_rmsnorm(ref, a2, x, rows, dim, &w, 1e-6f);
        CHECK_MSG(close_all(a1, a2, (size_t)rows * dim, 1e-6, 1e-5, &worst), "fast rmsnorm %d: %.3g", dim, worst);
        memcpy(a1, x, (size_t)rows * dim * 4);
        memcpy(a2, x, (size_t)rows * dim * 4);
        for (int i = 0; i < dim; i += 5) a1[dim + i] = a2[dim + i] = -INFINITY;
        ds_op_softmax(fast, a1, rows, dim);
        ds_op_softmax(ref, a2, rows, dim);
        CHECK_MSG(close_all(a1, a2, (size_t)rows * dim, 1e-8, 1e-5, &worst), "fast softmax %d: %.3g", dim, worst);
        free(w.data); free(b.data);
    }
    free(x); free(g); free(a1); free(a2);
}

/* ---- blocked GEMM -------------------------------------------------------------------------- */

/* C = alpha·A·op(B) + beta·C on padded leading dimensions, against double sums; with
 * beta = 0 C starts as NaN (must not be read); the padding columns must stay put. */
static void gemm_case(int trans_b, int M, int N, int K, float alpha, float beta) {
    int lda = K + 3, ldb = (trans_b ? K : N) + 5, ldc = N + 2;
    float *A = rand_buf((size_t)M * lda, 1.0), *B = rand_buf((size_t)(trans_b ? N : K) * ldb, 1.0);
    float *C = rand_buf((size_t)M * ldc, 1.0), *C0 = malloc((size_t)M * ldc * 4);
    if (beta == 0.0f)
        for (size_t i = 0; i < (size_t)M * ldc; i++) if (i % ldc < (size_t)N) C[i] = NAN;
    memcpy(C0, C, (size_t)M * ldc * 4);
    ds_cpu_sgemm_blocked(trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    int bad = 0, pad_ok = 1;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double s = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                double p = (double)A[(size_t)i * lda + k] * (trans_b ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
                s += p;
                mag += fabs(p);
            }
            double c0 = beta == 0.0f ? 0 : (double)beta * C0[(size_t)i * ldc + j];
            double want = alpha * s + c0, tol = 2.0 * (K + 2) / 16777216.0 * (fabs(alpha) * mag + fabs(c0)) + 1e-30;
            if (!(fabs(C[(size_t)i * ldc + j] - want) <= tol)) bad++;
        }
        for (int j = N; j < ldc; j++) pad_ok &= memcmp(&C[(size_t)i * ldc + j], &C0[(size_t)i * ldc + j], 4) == 0;
    }
    CHECK_MSG(bad == 0 && pad_ok, "blocked gemm trans_b %d M=%d N=%d K=%d alpha %g beta %g: %d bad, padding %s",
              trans_b, M, N, K, alpha, beta, bad, pad_ok ? "kept" : "written");
    free(A); free(B); free(C); free(C0);
}

static void test_gemm(void) {
    /* exact tiles, ragged edges, several MC / NC / KC blocks (64 / 96 / 256), K = 0 */
    static const int shapes[][3] = {{1, 1, 1}, {8, 12, 256}, {9, 13, 257}, {70, 100, 300}, {3, 200, 5},
                                    {130, 25, 64}, {4, 5, 0}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 2; t++) {
            float beta = s % 3 == 0 ? 0.0f : s % 3 == 1 ? 1.0f : 0.5f;
            gemm_case(t, shapes[s][0], shapes[s][1], shapes[s][2], t ? 0.125f : 1.0f, beta);
        }
}

/* ---- pool --------------------------------------------------------------------------------- */

typedef struct { atomic_int *hits; ds_pool *pool; atomic_int nested_ok; } pool_ctx;

static void count_task(void *ctx, int64_t i0, int64_t i1, int tid) {
    pool_ctx *c = ctx;
    (void)tid;
    for (int64_t i = i0; i < i1; i++) atomic_fetch_add(&c->hits[i], 1);
}

static void inner_task(void *ctx, int64_t i0, int64_t i1, int tid) {
    (void)ctx; (void)i0; (void)i1; (void)tid;
}

static void nested_task(void *ctx, int64_t i0, int64_t i1, int tid) {
    pool_ctx *c = ctx;
    (void)tid;
    ds_pool_for(c->pool, 100, 1, inner_task, NULL);   /* must run inline, not deadlock */
    for (int64_t i = i0; i < i1; i++) atomic_fetch_add(&c->hits[i], 1);
    atomic_store(&c->nested_ok, 1);
}

static void test_pool(void) {
    CHECK(ds_physical_cores() >= 1);
    for (int nt = 1; nt <= 3; nt++) {
        ds_pool *p;
        dsocr_error err;
        CHECK(ds_pool_new(nt, &p, &err) == DSOCR_OK);
        CHECK_EQ_INT(ds_pool_threads(p), nt);
        static const int64_t ns[] = {0, 1, 7, 1000, 100003};
        for (int t = 0; t < 5; t++)
            for (int64_t grain = 1; grain <= 4096; grain *= 64) {
                int64_t n = ns[t];
                atomic_int *hits = calloc((size_t)n + 1, sizeof *hits);
                pool_ctx c = {hits, p, 0};
                ds_pool_for(p, n, grain, count_task, &c);
                int ok = 1;
                for (int64_t i = 0; i < n; i++) ok &= atomic_load(&hits[i]) == 1;
                CHECK_MSG(ok, "pool %d threads: n=%lld grain=%lld covers each index once", nt, (long long)n, (long long)grain);
                free(hits);
            }
        atomic_int *hits = calloc(64, sizeof *hits);
        pool_ctx c = {hits, p, 0};
        for (int rep = 0; rep < 200; rep++) ds_pool_for(p, 64, 1, nested_task, &c);   /* many quick jobs */
        int ok = 1;
        for (int i = 0; i < 64; i++) ok &= atomic_load(&hits[i]) == 200;
        CHECK_MSG(ok && atomic_load(&c.nested_ok), "pool %d threads: nested calls run inline", nt);
        free(hits);
        /* many tiny jobs back to back: workers join late or not at all, never twice */
        hits = calloc(8, sizeof *hits);
        pool_ctx c2 = {hits, p, 0};
        for (int rep = 0; rep < 20000; rep++) ds_pool_for(p, 8, 1, count_task, &c2);
        ok = 1;
        for (int i = 0; i < 8; i++) ok &= atomic_load(&hits[i]) == 20000;
        CHECK_MSG(ok, "pool %d threads: 20000 tiny jobs each cover every index once", nt);
        free(hits);
        ds_pool_free(p);
    }
    ds_pool *p;
    CHECK(ds_pool_new(0, &p, NULL) == DSOCR_OK);
    CHECK_EQ_INT(ds_pool_threads(p), ds_physical_cores());
    ds_pool_free(p);
    ds_pool_for(NULL, 10, 1, inner_task, NULL);
}

int main(void) {
    dsocr_error err;
    ds_backend *fast = NULL, *ref = NULL;
    CHECK(ds_backend_cpu_new(0, &fast, &err) == DSOCR_OK);
    CHECK(ds_backend_ref_new(0, &ref, &err) == DSOCR_OK);
    if (!fast || !ref) return tu_done("test_kernels_fast");
    printf("fast: %s, reference: %s\n", ds_backend_name(fast), ds_backend_name(ref));
#if defined(__aarch64__)
    CHECK_MSG(strstr(ds_backend_name(fast), "neon") != NULL, "aarch64 picks the NEON kernels: %s", ds_backend_name(fast));
#endif
#if defined(__x86_64__)
    const char *cap = getenv("DSOCR_CPU");
    if (cap && strcmp(cap, "avx2") == 0 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        CHECK_MSG(strstr(ds_backend_name(fast), "(avx2,") != NULL, "DSOCR_CPU=avx2 picks the AVX2 kernels: %s", ds_backend_name(fast));
    if (cap && strcmp(cap, "generic") == 0)
        CHECK_MSG(strstr(ds_backend_name(fast), "(generic,") != NULL, "DSOCR_CPU=generic picks no SIMD: %s", ds_backend_name(fast));
    if (!cap) {   /* any other value caps nothing: the same kernels as without it */
        ds_backend *typo = NULL;
        setenv("DSOCR_CPU", "avx-2", 1);
        CHECK(ds_backend_cpu_new(1, &typo, &err) == DSOCR_OK);
        unsetenv("DSOCR_CPU");
        char want[96];
        snprintf(want, sizeof want, "%s", ds_backend_name(fast));
        *strchr(want, ',') = 0;   /* "cpu (avx512-vnni" */
        CHECK_MSG(typo && strstr(ds_backend_name(typo), want) == ds_backend_name(typo), "DSOCR_CPU=avx-2: %s, without: %s",
                  typo ? ds_backend_name(typo) : "?", ds_backend_name(fast));
        ds_backend_free(typo);
    }
#endif
    test_gemm();
    test_pool();
    /* GEMV (M < 16) and sgemm paths; K % 32 != 0; N % 4 != 0; M >= 128: the widened
     * weight in tiles (600: two rows of tiles; 4100 x 4100: two panels of the buffer) */
    static const int lin[][3] = {{1, 1280, 517}, {2, 1000, 301}, {4, 96, 1029}, {7, 1283, 130}, {15, 640, 257},
                                 {16, 640, 257}, {64, 1280, 300}, {200, 768, 1100}, {3, 31, 7},
                                 {600, 300, 530}, {130, 4100, 4100}};
    for (size_t i = 0; i < sizeof lin / sizeof lin[0]; i++) linear_case(fast, ref, lin[i][0], lin[i][1], lin[i][2], (int)(i & 1));
    test_linear_batch(fast, ref);
    /* flash attention: several query and key blocks */
    attention_case(fast, ref, 1, 600, 600, 2, 64, 0, 0, 24, 25);     /* relpos, key blocks split a grid row */
    attention_case(fast, ref, 3, 196, 196, 2, 64, 0, 0, 14, 14);     /* windows */
    attention_case(fast, ref, 1, 300, 1100, 2, 128, 1, 800, 0, 0);   /* causal, q_pos0, 3 key blocks */
    attention_case(fast, ref, 1, 1, 1100, 3, 128, 1, 1099, 0, 0);    /* decode */
    attention_case(fast, ref, 1, 520, 520, 1, 64, 1, 0, 0, 0);       /* causal prefill */
    attention_case(fast, ref, 2, 257, 257, 2, 64, 0, 0, 0, 0);       /* CLIP-like */
    /* conv paths */
    conv_case(fast, ref, 64, 48, 3, 32, 16, 16, 0);
    conv_case(fast, ref, 17, 15, 40, 24, 3, 1, 1);
    conv_case(fast, ref, 17, 15, 40, 24, 3, 2, 1);
    conv_case(fast, ref, 9, 11, 70, 33, 1, 1, 0);
    elementwise(fast, ref);
    ds_backend_free(fast);
    ds_backend_free(ref);
    return tu_done("test_kernels_fast");
}
