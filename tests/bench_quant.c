/* Load-time quantization on a full-size checkpoint: fidelity and decode speed of the
 * bf16, Q8_0 and Q4_0 decoders in ONE run (the ratios are what counts on a shared,
 * noisy machine), and the load path's time and resident memory.
 *
 *   bench_quant DIR [--threads N] [--steps S] [--reps R] [--prompts P]
 *       fidelity: P random prompts of 64 ids, the bf16 decoder greedy for S positions,
 *       Q8_0 / Q4_0 teacher-forced on its tokens (|Δlogit|, arg-max agreement);
 *       speed: per rep, each decoder prefills 16 ids then decodes S forced tokens;
 *       medians of R reps, with the weight bytes each token reads and the machine's
 *       memory read bandwidth (same threads).
 *   bench_quant DIR --load q8|q4 [--keep-pages]
 *       what dsocr_model_load does: quantize with madvise(DONTNEED) on the bf16 pages
 *       (unless --keep-pages); prints time and RssFile / RssAnon before and after. */
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
#include "kernels/profile.h"
#include "model/decoder.h"
#include "model/quantize.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double proc_kib(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double v = -1;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, n) && line[n] == ':') v = atof(line + n + 1);
    if (f) fclose(f);
    return v;
}

static uint64_t rng = 12345;
static uint32_t rnd(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[b]) b = i;
    return b;
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
    fprintf(stderr, "bench_quant: %s\n", err->message);
    exit(1);
}

/* ---- bytes a decode token reads ----------------------------------------------------- */

static double tbytes(const ds_tensor *t) {
    return t->data ? (double)ds_dtype_bytes(t->dtype, t->shape[0] * t->stride[0]) : 0;
}

static double mlp_bytes(const ds_mlp_weights *m) { return tbytes(&m->gate) + tbytes(&m->up) + tbytes(&m->down); }

/* Weights one token reads: every dense matrix, the router, k of the experts (their
 * average size), one embedding row, lm_head. */
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

/* ---- memory read bandwidth ------------------------------------------------------------ */

typedef struct { const uint64_t *p; uint64_t sums[64]; } bw_job;

static void bw_task(void *ctx, int64_t i0, int64_t i1, int tid) {
    bw_job *J = ctx;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int64_t i = i0 * 4096; i < i1 * 4096; i += 4) {
        s0 += J->p[i]; s1 += J->p[i + 1]; s2 += J->p[i + 2]; s3 += J->p[i + 3];
    }
    J->sums[tid & 63] += s0 + s1 + s2 + s3;
}

static double bandwidth_gbs(int threads) {
    const size_t bytes = (size_t)1 << 30;
    uint64_t *p = malloc(bytes);
    if (!p) return 0;
    memset(p, 1, bytes);
    ds_pool *pool = NULL;
    dsocr_error err;
    if (ds_pool_new(threads, &pool, &err)) die(&err);
    bw_job J = {p, {0}};
    double best = 0;
    for (int r = 0; r < 5; r++) {
        double t0 = now_ms();
        ds_pool_for(pool, (int64_t)(bytes / 8 / 4096), 64, bw_task, &J);
        double gbs = bytes / ((now_ms() - t0) * 1e6);
        if (gbs > best) best = gbs;
    }
    ds_pool_free(pool);
    free(p);
    return best;
}

/* ---- fidelity -------------------------------------------------------------------------- */

typedef struct { double sum_abs, max_abs, max_logit; long n; int agree, positions; } fid;

static void run_forced(ds_decoder *d, const int32_t *prompt, int T, const int32_t *forced, int32_t *chosen,
                       int S, float *logits, int V) {
    dsocr_error err;
    if (ds_decoder_prefill(d, prompt, T, NULL, 0, NULL, logits, NULL, &err)) die(&err);
    for (int p = 1; p < S; p++) {
        int32_t id = forced ? forced[p - 1] : argmax(logits + (size_t)(p - 1) * V, V);
        if (chosen) chosen[p - 1] = id;
        if (ds_decoder_step(d, id, logits + (size_t)p * V, &err)) die(&err);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_quant DIR [--threads N] [--steps S] [--reps R] [--prompts P] | DIR --load q8|q4 [--keep-pages]\n");
        return 2;
    }
    const char *dir = argv[1], *load = NULL;
    int threads = 2, S = 32, reps = 5, prompts = 4, keep = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) S = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--prompts") && i + 1 < argc) prompts = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--load") && i + 1 < argc) load = argv[++i];
        else if (!strcmp(argv[i], "--keep-pages")) keep = 1;
        else { fprintf(stderr, "bench_quant: unknown argument %s\n", argv[i]); return 2; }
    }
    if (S < 2 || reps < 1 || prompts < 1 || S > 4096) { fprintf(stderr, "bench_quant: bad numbers\n"); return 2; }
    dsocr_error err;
    char path[4200];
    ds_config cfg;
    ds_checkpoint *ck = NULL;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (ds_config_load(path, &cfg, &err) || ds_ckpt_open(dir, &ck, &err)) die(&err);

    if (load) {   /* the load path alone */
        ds_backend *lbe = NULL;   /* the layout it would pick (x4 on AVX512-VNNI) */
        if (ds_backend_cpu_new(1, &lbe, &err)) die(&err);
        ds_dtype t = ds_backend_quant_dtype(lbe, !strcmp(load, "q4") ? DS_Q4_0 : DS_Q8_0);
        ds_backend_free(lbe);
        ds_decoder_weights w;
        ds_binder *b = ds_binder_new(ck);
        ds_decoder_bind(b, &cfg, &w);
        if (ds_binder_finish(b, &err)) die(&err);
        double f0 = proc_kib("RssFile"), a0 = proc_kib("RssAnon");
        ds_quant_plan plan = ds_quant_plan_for(t, !keep);
        ds_decoder_quant q;
        if (ds_decoder_quantize(&w, &plan, threads, &q, &err)) die(&err);
        printf("load %s (%d threads, %s bf16 pages): %lld tensors, %.2f G params, %.0f MiB -> %.0f MiB in %.0f ms "
               "(%.2f GB/s of bf16 read)\n", ds_dtype_name(t), threads, keep ? "keeping" : "dropping",
               (long long)q.n_tensors, q.n_params / 1e9, q.source_bytes / 1048576.0, q.bytes / 1048576.0, q.ms,
               q.source_bytes / (q.ms * 1e6));
        printf("RssFile %.0f -> %.0f MiB, RssAnon %.0f -> %.0f MiB, VmHWM %.0f MiB\n", f0 / 1024, proc_kib("RssFile") / 1024,
               a0 / 1024, proc_kib("RssAnon") / 1024, proc_kib("VmHWM") / 1024);
        ds_decoder_quant_free(&q);
        ds_decoder_weights_free(&w);
        ds_ckpt_close(ck);
        return 0;
    }

    ds_backend *be = NULL;
    if (ds_backend_cpu_new(threads, &be, &err)) die(&err);
    const char *names[3] = {"bf16", "q8_0", "q4_0"};
    ds_decoder_weights w[3];
    ds_decoder_quant q[2];
    for (int i = 0; i < 3; i++) {
        ds_binder *b = ds_binder_new(ck);
        ds_decoder_bind(b, &cfg, &w[i]);
        if (ds_binder_finish(b, &err)) die(&err);
    }
    for (int i = 0; i < 2; i++) {
        ds_quant_plan plan = ds_quant_plan_for(ds_backend_quant_dtype(be, i ? DS_Q4_0 : DS_Q8_0), 0);
        if (ds_decoder_quantize(&w[i + 1], &plan, threads, &q[i], &err)) die(&err);
        printf("quantized %s (%s): %lld tensors, %.2f G params, %.0f MiB -> %.0f MiB in %.0f ms\n", names[i + 1], ds_dtype_name(plan.linear),
               (long long)q[i].n_tensors, q[i].n_params / 1e9, q[i].source_bytes / 1048576.0, q[i].bytes / 1048576.0, q[i].ms);
    }
    const int V = cfg.lm.vocab_size, T = 64;
    ds_decoder_params dp = {.max_ctx = T + S + 1, .max_batch = 0, .rope_bf16_inv_freq = 0, .kv_bf16 = 0};
    ds_decoder *d[3];
    for (int i = 0; i < 3; i++) {
        dp.kv_bf16 = i > 0;   /* as dsocr --quant runs the quantized decoders */
        if (ds_decoder_new(be, &cfg.lm, &w[i], &dp, &d[i], &err)) die(&err);
    }

    // fidelity: teacher-forced on the bf16 greedy tokens
    float *lg[3];
    for (int i = 0; i < 3; i++) lg[i] = malloc((size_t)S * V * sizeof(float));
    int32_t *prompt = malloc((size_t)T * sizeof *prompt), *chosen = malloc((size_t)S * sizeof *chosen);
    fid f[2];
    memset(f, 0, sizeof f);
    double *posmax[2] = {malloc((size_t)prompts * S * sizeof(double)), malloc((size_t)prompts * S * sizeof(double))};
    for (int pi = 0; pi < prompts; pi++) {
        for (int t = 0; t < T; t++) prompt[t] = (int32_t)(rnd() % (uint32_t)V);
        run_forced(d[0], prompt, T, NULL, chosen, S, lg[0], V);
        for (int i = 0; i < 2; i++) {
            run_forced(d[i + 1], prompt, T, chosen, NULL, S, lg[i + 1], V);
            for (int p = 0; p < S; p++) {
                const float *a = lg[0] + (size_t)p * V, *b = lg[i + 1] + (size_t)p * V;
                double pm = 0;
                for (int v = 0; v < V; v++) {
                    double e = fabs((double)a[v] - b[v]);
                    pm = fmax(pm, e);
                    f[i].sum_abs += e;
                    f[i].max_logit = fmax(f[i].max_logit, fabs(a[v]));
                }
                posmax[i][f[i].positions] = pm;
                f[i].max_abs = fmax(f[i].max_abs, pm);
                f[i].n += V;
                f[i].agree += argmax(a, V) == argmax(b, V);
                f[i].positions++;
            }
        }
        fprintf(stderr, "fidelity: prompt %d of %d done\n", pi + 1, prompts);
    }
    printf("\nfidelity, %d random prompts x %d positions (teacher-forced on the bf16 greedy tokens):\n", prompts, S);
    printf("  format  mean|dlogit|  median per-position max|dlogit|  max|dlogit|  arg-max agree  (max |logit| %.3g)\n",
           f[0].max_logit);
    for (int i = 0; i < 2; i++)
        printf("  %-6s  %12.4g  %31.4g  %11.4g  %6.2f%% (%d/%d)\n", names[i + 1], f[i].sum_abs / f[i].n,
               median(posmax[i], f[i].positions), f[i].max_abs, 100.0 * f[i].agree / f[i].positions, f[i].agree,
               f[i].positions);

    // speed: each rep runs the three decoders back to back
    double *tps[3];
    for (int i = 0; i < 3; i++) tps[i] = malloc((size_t)reps * sizeof(double));
    for (int t = 0; t < 16; t++) prompt[t] = (int32_t)(rnd() % (uint32_t)V);
    for (int t = 0; t < S; t++) chosen[t] = (int32_t)(rnd() % (uint32_t)V);
    for (int r = 0; r < reps; r++) {
        for (int i = 0; i < 3; i++) {
            if (ds_decoder_prefill(d[i], prompt, 16, NULL, 0, NULL, lg[i], NULL, &err)) die(&err);
            double t0 = now_ms();
            for (int s = 0; s < S; s++)
                if (ds_decoder_step(d[i], chosen[s], lg[i], &err)) die(&err);
            tps[i][r] = S / ((now_ms() - t0) / 1e3);
        }
        fprintf(stderr, "speed: rep %d: %.2f / %.2f / %.2f tok/s\n", r + 1, tps[0][r], tps[1][r], tps[2][r]);
    }
    double bw = bandwidth_gbs(threads);
    int k = cfg.lm.num_experts_per_tok;
    double med[3];
    for (int i = 0; i < 3; i++) med[i] = median(tps[i], reps);
    printf("\ndecode, %d threads, %d forced tokens after a 16-id prompt, median of %d reps (%s):\n", threads, S, reps,
           ds_backend_name(be));
    printf("  memory read bandwidth: %.1f GB/s (%d threads, best of 5)\n", bw, threads);
    printf("  format  tok/s   vs bf16  MB/token  GB/s read  of bandwidth\n");
    for (int i = 0; i < 3; i++) {
        double mb = token_bytes(&w[i], k) / 1e6;
        printf("  %-6s  %6.2f  %6.2fx  %8.1f  %9.1f  %10.0f%%\n", names[i], med[i], med[i] / med[0], mb,
               mb * med[i] / 1e3, 100.0 * mb * med[i] / 1e3 / bw);
    }
    // where a decode token's time goes (one more pass per format, profiled)
    printf("\nper decode token (one profiled pass of %d tokens): ms in linear / all table ops / whole step\n", S);
    for (int i = 0; i < 3; i++) {
        ds_profile *prof = NULL;
        if (ds_decoder_prefill(d[i], prompt, 16, NULL, 0, NULL, lg[i], NULL, &err)) die(&err);
        if (ds_profile_start(be, &prof, &err)) die(&err);
        double t0 = now_ms();
        for (int s = 0; s < S; s++)
            if (ds_decoder_step(d[i], chosen[s], lg[i], &err)) die(&err);
        double total = now_ms() - t0, ops = 0;
        ds_profile_op lin, op;
        ds_profile_get(prof, DS_PROF_LINEAR, &lin);
        for (int o = 0; o < DS_PROF_N_OPS; o++) { ds_profile_get(prof, o, &op); ops += op.ms; }
        printf("  %-6s  %7.1f  %7.1f  %7.1f   (%lld linear calls per token, %.1f GB/s inside linear)\n", names[i],
               lin.ms / S, ops / S, total / S, (long long)(lin.calls / S), token_bytes(&w[i], k) / (lin.ms / S) / 1e6);
        ds_profile_stop(be, prof);
    }
    for (int i = 0; i < 3; i++) { free(tps[i]); free(lg[i]); ds_decoder_free(d[i]); ds_decoder_weights_free(&w[i]); }
    for (int i = 0; i < 2; i++) { ds_decoder_quant_free(&q[i]); free(posmax[i]); }
    free(prompt); free(chosen);
    ds_backend_free(be);
    ds_ckpt_close(ck);
    return 0;
}
