/* Decode speed: what bounds a token on this machine, piece by piece.
 *
 *   bench_decode pool                 fork/join cost of ds_pool_for (1, 2 threads)
 *   bench_decode gemv [MB]            a pure streaming read of MB (default 1024) MB vs the
 *                                     GEMV over the same bytes (bf16, q8_0, q4_0): one
 *                                     big matrix, and expert-sized matrices one
 *                                     ds_op_linear each vs batches of 14
 *   bench_decode decode DIR [reps] [steps]
 *                                     decode tokens/s of the bf16, q8_0 and q4_0 decoders
 *                                     at 1 and 2 threads, all six interleaved in every rep
 *                                     (medians), with the read bandwidth measured between
 *                                     reps and the load average printed with each rep.
 * The machine is shared: every line carries the 1-minute load average. */
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/pool.h"
#include "core/quant.h"
#include "io/checkpoint.h"
#include "io/config.h"
#include "kernels/ops.h"
#include "model/decoder.h"
#include "model/quantize.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double loadavg(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void die(const dsocr_error *err) {
    fprintf(stderr, "bench_decode: %s\n", err->message);
    exit(1);
}

static uint64_t rng = 99;
static uint32_t rnd(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

/* ---- streaming read ------------------------------------------------------------------ */

typedef struct { const char *p; size_t bytes; __m512i sum[64]; } stream_job;

/* items = 64 KiB blocks; 4 independent 512-bit accumulators */
__attribute__((target("avx512f")))
static void stream_task(void *ctx, int64_t i0, int64_t i1, int tid) {
    stream_job *J = ctx;
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    const char *end = J->p + J->bytes;
    for (const char *q = J->p + i0 * 65536; q < J->p + i1 * 65536 && q < end; q += 256) {
        a0 = _mm512_add_epi64(a0, _mm512_load_si512((const void *)q));
        a1 = _mm512_add_epi64(a1, _mm512_load_si512((const void *)(q + 64)));
        a2 = _mm512_add_epi64(a2, _mm512_load_si512((const void *)(q + 128)));
        a3 = _mm512_add_epi64(a3, _mm512_load_si512((const void *)(q + 192)));
    }
    J->sum[tid & 63] = _mm512_add_epi64(J->sum[tid & 63], _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
}

/* GB/s of one read of buf through pool (chunks handed out as for the kernels) */
static double stream_gbs(ds_pool *pool, const void *buf, size_t bytes) {
    static stream_job J;
    J.p = buf;
    J.bytes = bytes;
    double t0 = now_ms();
    ds_pool_for(pool, (int64_t)(bytes / 65536), 1, stream_task, &J);
    return bytes / ((now_ms() - t0) * 1e6);
}

/* ---- pool ---------------------------------------------------------------------------- */

/* items of `*ctx` microseconds of busy work each */
static void busy_task(void *ctx, int64_t i0, int64_t i1, int tid) {
    (void)tid;
    double us = *(const double *)ctx, t0 = now_ms();
    for (int64_t i = i0; i < i1; i++)
        while (now_ms() - t0 < (double)(i - i0 + 1) * us / 1e3) {}
}

/* Fork/join cost: 2 items of w µs each; on 2 threads the ideal is w per call, so the
 * excess over w is what a dispatch costs (wake-up, claiming, waiting for the worker). */
static void bench_pool(void) {
    const double works[3] = {0, 5, 50};
    for (int nt = 1; nt <= 2; nt++) {
        ds_pool *p;
        dsocr_error err;
        if (ds_pool_new(nt, &p, &err)) die(&err);
        for (int wi = 0; wi < 3; wi++) {
            double w = works[wi], per[5];
            const int n = w > 10 ? 2000 : 20000;
            for (int rep = 0; rep < 5; rep++) {
                double t0 = now_ms();
                for (int i = 0; i < n; i++) ds_pool_for(p, 2, 1, busy_task, &w);
                per[rep] = (now_ms() - t0) * 1e3 / n;
            }
            printf("pool %d thread%s, 2 items of %4.0f us: %7.2f us per ds_pool_for (median of 5; ideal %.0f; load %.2f)\n",
                   nt, nt > 1 ? "s" : "", w, median(per, 5), nt > 1 ? w : 2 * w, loadavg());
        }
        ds_pool_free(p);
    }
}

/* ---- GEMV vs stream ---------------------------------------------------------------------- */

/* A [N, K] weight of dtype t with random contents (valid f16 scales), in one buffer. */
static ds_tensor rand_weight(ds_dtype t, int64_t N, int K) {
    ds_tensor W = {.name = "bench", .dtype = t, .ndim = 2, .shape = {N, K}};
    ds_tensor_set_contiguous(&W);
    if (ds_dtype_is_quant(t)) W.stride[0] = ds_quant_blocks(K) * DS_QBLOCK;
    size_t bytes = ds_dtype_bytes(t, N * W.stride[0]);
    uint8_t *d = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    for (size_t i = 0; i < bytes; i++) d[i] = (uint8_t)rnd();
    if (t == DS_BF16)   /* small normal numbers */
        for (size_t i = 1; i < bytes; i += 2) d[i] = (uint8_t)(0x3c + (d[i] & 1) * 0x80);
    else if (ds_dtype_is_x4(t))   /* the f16 scales follow the units */
        for (size_t b = 64 * (size_t)(N / 4 * ds_quant_blocks(K)); b < bytes; b += 2) { d[b] = 0; d[b + 1] = 0x2c; }
    else
        for (size_t b = 0; b < bytes; b += (t == DS_Q8_0 ? 34 : 18)) { d[b] = 0; d[b + 1] = 0x2c; }
    W.data = d;
    return W;
}

static size_t weight_bytes(const ds_tensor *W) { return ds_dtype_bytes(W->dtype, W->shape[0] * W->stride[0]); }

static void bench_gemv(size_t mb) {
    const int K = 1280, reps = 7;
    ds_dtype types[3] = {DS_BF16, DS_Q8_0, DS_Q4_0};
    const char *names[3] = {"bf16", "q8", "q4"};
    {   /* the quantized layouts the backend reads fastest */
        ds_backend *be;
        dsocr_error err;
        if (ds_backend_cpu_new(1, &be, &err)) die(&err);
        for (int i = 1; i < 3; i++) types[i] = ds_backend_quant_dtype(be, types[i]);
        ds_backend_free(be);
    }
    size_t bytes = mb << 20;
    void *buf = aligned_alloc(64, bytes);
    memset(buf, 1, bytes);
    float *x = malloc(K * sizeof(float)), *y = malloc(((size_t)4 << 20) * sizeof(float));
    for (int k = 0; k < K; k++) x[k] = (float)(rnd() % 1000) / 1000.0f - 0.5f;
    ds_tensor W[3], E[3][64];
    int n_exp = 0;
    for (int i = 0; i < 3; i++) {
        size_t row = ds_dtype_bytes(types[i], ds_quant_blocks(K) * DS_QBLOCK);
        W[i] = rand_weight(types[i], (int64_t)(bytes / row), K);
        /* expert-sized: 896 x 1280, as many as fill the same bytes (cap 64 distinct) */
        n_exp = (int)(bytes / (row * 896));
        if (n_exp > 64) n_exp = 64;
        for (int e = 0; e < n_exp; e++) E[i][e] = rand_weight(types[i], 896, K);
    }
    float *ye = malloc((size_t)n_exp * 896 * sizeof(float));
    for (int nt = 1; nt <= 2; nt++) {
        ds_backend *be;
        ds_pool *pool;
        dsocr_error err;
        if (ds_backend_cpu_new(nt, &be, &err) || ds_pool_new(nt, &pool, &err)) die(&err);
        double s[reps], g[3][reps], one[3][reps], bat[3][reps];
        for (int r = 0; r < reps; r++) {
            s[r] = stream_gbs(pool, buf, bytes);
            for (int i = 0; i < 3; i++) {
                double t0 = now_ms();
                ds_op_linear(be, y, x, 1, K, &W[i], NULL);
                g[i][r] = weight_bytes(&W[i]) / ((now_ms() - t0) * 1e6);
                size_t eb = weight_bytes(&E[i][0]) * (size_t)n_exp;
                t0 = now_ms();
                for (int e = 0; e < n_exp; e++) ds_op_linear(be, ye + (size_t)e * 896, x, 1, K, &E[i][e], NULL);
                one[i][r] = eb / ((now_ms() - t0) * 1e6);
                ds_linear_job jobs[14];
                t0 = now_ms();
                for (int e0 = 0; e0 < n_exp; e0 += 14) {
                    int n = n_exp - e0 < 14 ? n_exp - e0 : 14;
                    for (int j = 0; j < n; j++)
                        jobs[j] = (ds_linear_job){.y = ye + (size_t)(e0 + j) * 896, .x = x, .M = 1, .K = K, .W = &E[i][e0 + j]};
                    ds_op_linear_batch(be, n, jobs);
                }
                bat[i][r] = eb / ((now_ms() - t0) * 1e6);
            }
        }
        printf("%d thread%s (load %.2f): stream read %.1f GB/s (median of %d; best %.1f)\n", nt, nt > 1 ? "s" : "",
               loadavg(), median(s, reps), reps, s[reps - 1]);
        for (int i = 0; i < 3; i++)
            printf("  %-5s GB/s of weights: one %zu MB GEMV %.1f (%.0f%% of stream) | %d experts 896x1280: one linear each %.1f, "
                   "batches of 14 %.1f (%.0f%%)\n", names[i], weight_bytes(&W[i]) >> 20, median(g[i], reps),
                   100 * median(g[i], reps) / median(s, reps), n_exp, median(one[i], reps), median(bat[i], reps),
                   100 * median(bat[i], reps) / median(s, reps));
        ds_pool_free(pool);
        ds_backend_free(be);
    }
    for (int i = 0; i < 3; i++) {
        free(W[i].data);
        for (int e = 0; e < n_exp; e++) free(E[i][e].data);
    }
    free(buf); free(x); free(y); free(ye);
}

/* ---- decode ------------------------------------------------------------------------------ */

static double tbytes(const ds_tensor *t) {
    return t->data ? (double)ds_dtype_bytes(t->dtype, t->shape[0] * t->stride[0]) : 0;
}
static double mlp_bytes(const ds_mlp_weights *m) { return tbytes(&m->gate) + tbytes(&m->up) + tbytes(&m->down); }

/* Weight bytes one token reads: dense matrices, router, k average experts, lm_head. */
static double token_bytes(const ds_decoder_weights *w, int k) {
    double b = tbytes(&w->lm_head) + tbytes(&w->embed_tokens) / (double)w->embed_tokens.shape[0];
    for (int l = 0; l < w->n_layers; l++) {
        const ds_decoder_layer_weights *lw = &w->layers[l];
        b += tbytes(&lw->wq) + tbytes(&lw->wk) + tbytes(&lw->wv) + tbytes(&lw->wo);
        if (!lw->is_moe) { b += mlp_bytes(&lw->mlp); continue; }
        b += tbytes(&lw->router) + mlp_bytes(&lw->shared);
        double e = 0;
        for (int i = 0; i < w->n_experts; i++) e += mlp_bytes(&lw->experts[i]);
        b += e / w->n_experts * k;
    }
    return b;
}

static void bench_decode(const char *dir, int reps, int S) {
    dsocr_error err;
    char path[4200];
    ds_config cfg;
    ds_checkpoint *ck = NULL;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (ds_config_load(path, &cfg, &err) || ds_ckpt_open(dir, &ck, &err)) die(&err);
    const char *names[3] = {"bf16", "q8_0", "q4_0"};
    ds_decoder_weights w[3];
    ds_decoder_quant q[2];
    for (int i = 0; i < 3; i++) {
        ds_binder *b = ds_binder_new(ck);
        ds_decoder_bind(b, &cfg, &w[i]);
        if (ds_binder_finish(b, &err)) die(&err);
    }
    ds_backend *be[2];
    ds_pool *pool[2];
    for (int t = 0; t < 2; t++)
        if (ds_backend_cpu_new(t + 1, &be[t], &err) || ds_pool_new(t + 1, &pool[t], &err)) die(&err);
    for (int i = 0; i < 2; i++) {   /* in the layout the backend reads fastest (x4 on AVX512-VNNI) */
        ds_quant_plan plan = ds_quant_plan_for(ds_backend_quant_dtype(be[0], i ? DS_Q4_0 : DS_Q8_0), 0);
        if (ds_decoder_quantize(&w[i + 1], &plan, 2, &q[i], &err)) die(&err);
    }
    const int V = cfg.lm.vocab_size, T = 16;
    ds_decoder_params dp = {.max_ctx = T + S + 1, .max_batch = 0, .rope_bf16_inv_freq = 0, .kv_bf16 = 0};
    ds_decoder *d[2][3];
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < 3; i++) {
            dp.kv_bf16 = i > 0;   /* as dsocr --quant runs the quantized decoders */
            if (ds_decoder_new(be[t], &cfg.lm, &w[i], &dp, &d[t][i], &err)) die(&err);
        }
    float *logits = malloc((size_t)V * sizeof *logits);
    int32_t prompt[16], *ids = malloc((size_t)S * sizeof *ids);
    for (int i = 0; i < T; i++) prompt[i] = (int32_t)(rnd() % (uint32_t)V);
    for (int i = 0; i < S; i++) ids[i] = (int32_t)(rnd() % (uint32_t)V);
    const size_t bw_bytes = (size_t)1 << 30;
    void *buf = aligned_alloc(64, bw_bytes);
    memset(buf, 1, bw_bytes);
    double *tps[2][3], *bw[2], *load = malloc((size_t)reps * sizeof(double));
    for (int t = 0; t < 2; t++) {
        bw[t] = malloc((size_t)reps * sizeof(double));
        for (int i = 0; i < 3; i++) tps[t][i] = malloc((size_t)reps * sizeof(double));
    }
    /* one untimed pass per decoder: first touch of the mapped bf16 pages */
    for (int i = 0; i < 3; i++) {
        if (ds_decoder_prefill(d[1][i], prompt, T, NULL, 0, NULL, logits, NULL, &err)) die(&err);
        for (int s = 0; s < S; s++)
            if (ds_decoder_step(d[1][i], ids[s], logits, &err)) die(&err);
    }
    for (int r = 0; r < reps; r++) {
        load[r] = loadavg();
        for (int t = 0; t < 2; t++) {
            double best = 0;
            for (int k = 0; k < 2; k++) best = fmax(best, stream_gbs(pool[t], buf, bw_bytes));
            bw[t][r] = best;
            for (int i = 0; i < 3; i++) {
                if (ds_decoder_prefill(d[t][i], prompt, T, NULL, 0, NULL, logits, NULL, &err)) die(&err);
                double t0 = now_ms();
                for (int s = 0; s < S; s++)
                    if (ds_decoder_step(d[t][i], ids[s], logits, &err)) die(&err);
                tps[t][i][r] = S / ((now_ms() - t0) / 1e3);
            }
        }
        printf("rep %d (load %.2f): 1 thread %.2f / %.2f / %.2f tok/s, %.1f GB/s; 2 threads %.2f / %.2f / %.2f tok/s, %.1f GB/s\n",
               r + 1, load[r], tps[0][0][r], tps[0][1][r], tps[0][2][r], bw[0][r], tps[1][0][r], tps[1][1][r],
               tps[1][2][r], bw[1][r]);
        fflush(stdout);
    }
    int k = cfg.lm.num_experts_per_tok;
    double lo = load[0], hi = load[0];
    for (int r = 1; r < reps; r++) { lo = fmin(lo, load[r]); hi = fmax(hi, load[r]); }
    printf("\ndecode, %d forced tokens after a %d-id prompt, medians of %d reps (load average %.2f .. %.2f)\n", S, T, reps,
           lo, hi);
    printf("threads  read GB/s  format  tok/s   vs bf16  MB/token  GB/s of weights  of read bandwidth\n");
    for (int t = 0; t < 2; t++) {
        double b = median(bw[t], reps), m0 = median(tps[t][0], reps);
        for (int i = 0; i < 3; i++) {
            double m = median(tps[t][i], reps), mbt = token_bytes(&w[i], k) / 1e6;
            printf("%7d  %9.1f  %-6s  %6.2f  %6.2fx  %8.1f  %15.1f  %16.0f%%\n", t + 1, b, names[i], m, m / m0, mbt,
                   mbt * m / 1e3, 100 * mbt * m / 1e3 / b);
        }
    }
    for (int t = 0; t < 2; t++) {
        for (int i = 0; i < 3; i++) { ds_decoder_free(d[t][i]); free(tps[t][i]); }
        ds_backend_free(be[t]);
        ds_pool_free(pool[t]);
        free(bw[t]);
    }
    for (int i = 0; i < 3; i++) ds_decoder_weights_free(&w[i]);
    for (int i = 0; i < 2; i++) ds_decoder_quant_free(&q[i]);
    free(buf); free(logits); free(ids); free(load);
    ds_ckpt_close(ck);
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "pool")) bench_pool();
    else if (argc >= 2 && !strcmp(argv[1], "gemv")) bench_gemv(argc > 2 ? (size_t)atoi(argv[2]) : 1024);
    else if (argc >= 3 && !strcmp(argv[1], "decode"))
        bench_decode(argv[2], argc > 3 ? atoi(argv[3]) : 5, argc > 4 ? atoi(argv[4]) : 16);
    else {
        fprintf(stderr, "usage: bench_decode pool | gemv [MB] | decode DIR [reps] [steps]\n");
        return 2;
    }
    return 0;
}
