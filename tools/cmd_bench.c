/* dsocr bench: speed and memory of the model on this machine, next to the machine's
 * own limits measured in the same run (docs/PERFORMANCE.md explains every number).
 *
 *   per mode:  preprocessing, DeepEncoder (whole image, real code path), prefill,
 *              decode over forced tokens, time to first token
 *   per view:  SAM, CLIP and projector ms, from the stage functions the encoder calls
 *   machine:   memory read bandwidth (streaming read), BLAS sgemm GFLOP/s
 *   ratios:    decode bytes moved per second / bandwidth, vision GFLOP/s / sgemm GFLOP/s
 *   memory:    peak and current resident set after the encode + prefill + decode runs
 *   --ops:     per-op profile of the vision, prefill and decode phases
 *
 * Runs on real weights or, by default, on a cached full-size random checkpoint made by
 * the generator (dsocr mkmodel): speed does not depend on the weight values, and forced
 * tokens keep the decode length independent of what the model would generate. */
#include <cblas.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "app/pipeline.h"
#include "cli.h"
#include "ocr/output.h"
#include "commands.h"
#include "core/pool.h"
#include "kernels/profile.h"
#include "model/quantize.h"
#include "text/prompt.h"

/* OpenBLAS's thread control (openblas_config.h is not always installed with cblas.h). */
void openblas_set_num_threads(int n);
int openblas_get_num_threads(void);

static const char *bench_help =
    "Usage: dsocr bench [-m MODEL] [options]\n"
    "\n"
    "Measures the model on this machine and, in the same run, the machine's limits:\n"
    "vision ms per view (SAM, CLIP, projector), prefill and decode tokens/s, time to\n"
    "first token, peak memory, memory read bandwidth and sgemm GFLOP/s, with the ratios\n"
    "decode bytes/s over bandwidth and vision GFLOP/s over sgemm GFLOP/s.\n"
    "  -m, --model DIR        checkpoint folder (default: a full-size random checkpoint\n"
    "                         cached in $XDG_CACHE_HOME/dsocr/random-full or\n"
    "                         ~/.cache/dsocr/random-full, generated there when missing)\n"
    "  --tokenizer-from DIR   tokenizer for a generated checkpoint (default\n"
    "                         ../shared/golden/tiny-model or ../../shared/golden/tiny-model)\n"
    "  --modes LIST           comma-separated of tiny, small, base, large, gundam, or all\n"
    "                         (default tiny,base,gundam)\n"
    "  --decode-tokens N      forced tokens decoded after each prefill (default 64)\n"
    "  --runs N               encode and prefill N times per mode, report the best (default 2:\n"
    "                         the first run also pays one-time costs, shown on their own)\n"
    "  --threads N            compute threads (default: one per physical core)\n"
    "  --json FILE            also write the results as JSON (- = stdout, table to stderr)\n"
    "  --ops                  per-op profile of the vision, prefill and decode phases\n"
    "  --bw-mb N              buffer of the bandwidth test in MiB (default 1024)\n"
    "  --sgemm-n N            matrix side of the sgemm test (default 2048)\n"
    "  --quant q8|q4          quantize the language model at load (as dsocr ocr --quant)\n"
    "  --formats LIST         also decode in each of these weight formats (comma-separated\n"
    "                         of bf16, q8, q4; bf16 first for the speed-up ratios): each\n"
    "                         gets its own copy of the decoder, and they take turns 8 tokens\n"
    "                         at a time, so the tokens/s ratios are taken in this run\n"
    "The page is a synthetic 1240x1754 (A4 at 150 dpi) image; the prompt is the markdown task.\n"
    "Example:\n"
    "  dsocr bench --modes gundam --json bench.json --ops\n"
    "  dsocr bench --modes base --formats bf16,q8,q4     (q8/q4 speed-ups vs bf16)\n";

#define PROBE_MIB 256   /* paired read probe (see run_mode): 8x the L3 of most CPUs */
#define PAGE_W 1240
#define PAGE_H 1754
#define MAX_MODES 5


/* ---- small helpers ---------------------------------------------------------------- */

static double mib(double bytes) { return bytes / (1024.0 * 1024.0); }
/* x per second in units of 1e9 (GFLOP/s, GB/s) from x per ms; 0 for an empty interval. */
static double giga_per_s(double x, double ms) { return ms > 0 ? x / 1e6 / ms : 0; }
static double ratio(double a, double b) { return b > 0 ? a / b : 0; }

/* "model name" of /proc/cpuinfo, or "unknown CPU". */
static void cpu_model(char *out, size_t n) {
    snprintf(out, n, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10)) continue;
        char *v = strchr(line, ':');
        if (!v) break;
        v++;
        while (*v == ' ' || *v == '\t') v++;
        v[strcspn(v, "\n")] = 0;
        snprintf(out, n, "%s", v);
        break;
    }
    fclose(f);
}

/* "Key:   N kB" fields of /proc/self/status in bytes, read in one pass (so that the
 * peak is never below the current value); -1 when absent. */
static void proc_memory(double *peak, double *rss, double *anon, double *file) {
    static const char *keys[4] = {"VmHWM", "VmRSS", "RssAnon", "RssFile"};
    double *vals[4] = {peak, rss, anon, file};
    for (int i = 0; i < 4; i++) *vals[i] = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f))
        for (int i = 0; i < 4; i++) {
            size_t kl = strlen(keys[i]);
            if (!strncmp(line, keys[i], kl) && line[kl] == ':') *vals[i] = strtod(line + kl + 1, NULL) * 1024.0;
        }
    fclose(f);
    if (*rss > *peak) *peak = *rss;
}

/* Total size of the *.safetensors files of a folder. */
static double checkpoint_bytes(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    double total = 0;
    struct dirent *e;
    char path[4400];
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 12 || strcmp(e->d_name + n - 12, ".safetensors")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) == 0) total += (double)st.st_size;
    }
    closedir(d);
    return total;
}

/* CPU seconds this process has used (all threads). */
static double cpu_seconds(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru)) return 0;
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* The 1-minute load average (runnable threads, ours included). */
/* CPU time share of n_threads over a wall interval, in (0, 1]; 1 when unknown. */
static double cpu_share(double cpu_s, double wall_ms, int n_threads) {
    double s = wall_ms > 0 ? cpu_s * 1e3 / (wall_ms * n_threads) : 1;
    return s > 1 ? 1 : s > 0 ? s : 1;
}

static double load_average(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

/* Resets VmHWM to the current resident set (Linux >= 4.0), so that the peak excludes
 * the bandwidth test's buffer. */
static void reset_peak_rss(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return;
    fputs("5", f);
    fclose(f);
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* mkdir -p */
static int make_dirs(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

/* ---- machine limits: memory read bandwidth ----------------------------------------
 * One plain reader serves three measurements: the 1 GiB buffer (the machine's read
 * bandwidth), the probe read after every 8 decode tokens (run_mode), and the decoder's
 * own weight pages. On these VMs the read bandwidth depends on the physical pages read
 * and on the moment: a fresh 1 GiB buffer read at 48-51 GB/s in one run and at 32 in the
 * next, once a 6.7 GB checkpoint sat in the page cache, and it moves within one run.
 * Decode cannot be faster than a plain read of the very pages it streams. */

typedef struct { const uint8_t *p; size_t n; } byte_range;

static int have_avx2;

/* Sum of n bytes read as 64-bit words (any alignment): four independent chains of
 * 256-bit loads, 128 bytes per step; the sum keeps the reads from being optimised away. */
__attribute__((target("avx2")))
static uint64_t read_avx2(const uint8_t *p, size_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        a0 = _mm256_add_epi64(a0, _mm256_loadu_si256((const __m256i *)(p + i)));
        a1 = _mm256_add_epi64(a1, _mm256_loadu_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_add_epi64(a2, _mm256_loadu_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_add_epi64(a3, _mm256_loadu_si256((const __m256i *)(p + i + 96)));
    }
    a0 = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    uint64_t lanes[4];
    _mm256_storeu_si256((__m256i *)lanes, a0);
    uint64_t s = lanes[0] + lanes[1] + lanes[2] + lanes[3];
    for (; i < n; i++) s += p[i];
    return s;
}

static uint64_t read_scalar(const uint8_t *p, size_t n) {
    uint64_t s[8] = {0}, w;
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int j = 0; j < 8; j++) {
            memcpy(&w, p + i + 8 * j, 8);
            s[j] += w;
        }
    for (; i < n; i++) s[0] += p[i];
    return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

typedef struct {
    const byte_range *r;
    int n;
    size_t skip, bytes;   /* this thread's slice of the concatenated ranges */
    uint64_t sum;
} range_job;

static void *range_thread(void *arg) {
    range_job *j = arg;
    size_t skip = j->skip, left = j->bytes;
    for (int i = 0; i < j->n && left > 0; i++) {
        if (skip >= j->r[i].n) { skip -= j->r[i].n; continue; }
        size_t take = j->r[i].n - skip < left ? j->r[i].n - skip : left;
        const uint8_t *p = j->r[i].p + skip;
        j->sum += have_avx2 ? read_avx2(p, take) : read_scalar(p, take);
        left -= take;
        skip = 0;
    }
    return NULL;
}

static int add_range(byte_range *r, int *n, int cap, const ds_tensor *t) {
    if (!t->data || *n >= cap) return 0;
    r[(*n)++] = (byte_range){t->data, (size_t)ds_dtype_bytes(t->dtype, t->shape[0] * t->stride[0])};
    return 1;
}

/* Every decoder Linear weight as byte ranges (lm_head, q/k/v/o, dense MLP, shared and
 * all routed experts): where a decode step's weight reads come from. */
typedef struct { byte_range *r; int n; size_t total; } weight_pages;

static void weight_pages_of(const ds_decoder_weights *w, weight_pages *wp) {
    int cap = 8 + w->n_layers * (8 + 3 * (w->n_experts + 2));
    memset(wp, 0, sizeof *wp);
    if (!(wp->r = malloc((size_t)cap * sizeof *wp->r))) return;
    add_range(wp->r, &wp->n, cap, &w->lm_head);
    for (int l = 0; l < w->n_layers; l++) {
        const ds_decoder_layer_weights *lw = &w->layers[l];
        const ds_tensor *ts[] = {&lw->wq, &lw->wk, &lw->wv, &lw->wo, &lw->mlp.gate, &lw->mlp.up, &lw->mlp.down,
                                 &lw->shared.gate, &lw->shared.up, &lw->shared.down};
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) add_range(wp->r, &wp->n, cap, ts[i]);
        for (int e = 0; lw->is_moe && lw->experts && e < w->n_experts; e++) {
            add_range(wp->r, &wp->n, cap, &lw->experts[e].gate);
            add_range(wp->r, &wp->n, cap, &lw->experts[e].up);
            add_range(wp->r, &wp->n, cap, &lw->experts[e].down);
        }
    }
    for (int i = 0; i < wp->n; i++) wp->total += wp->r[i].n;
}

/* One plain read of all the pages by n_threads slices, in GB/s (0 when empty). */
static double read_pages_once(const weight_pages *wp, int n_threads) {
    static uint64_t sink;
    have_avx2 = __builtin_cpu_supports("avx2");
    if (!wp->r || wp->total == 0) return 0;
    if (n_threads > 64) n_threads = 64;
    range_job jobs[64];
    pthread_t th[64];
    int started[64] = {0};
    size_t per = wp->total / (size_t)n_threads;
    double t0 = ds_now_ms();
    for (int t = 0; t < n_threads; t++) {
        jobs[t] = (range_job){wp->r, wp->n, (size_t)t * per, t == n_threads - 1 ? wp->total - (size_t)t * per : per, 0};
        if (t > 0) started[t] = pthread_create(&th[t], NULL, range_thread, &jobs[t]) == 0;
        if (t > 0 && !started[t]) range_thread(&jobs[t]);   /* no thread: read it here */
    }
    range_thread(&jobs[0]);
    for (int t = 1; t < n_threads; t++)
        if (started[t]) pthread_join(th[t], NULL);
    double gbs = (double)wp->total / ((ds_now_ms() - t0) * 1e6);
    for (int t = 0; t < n_threads; t++) sink += jobs[t].sum;   /* keeps the reads */
    return gbs;
}

/* Reads a fresh `bytes` buffer with n_threads threads (each its own slice), best of
 * `runs`, in GB/s; *share = the CPU share the best run got. The buffer is written first
 * so that page faults are not timed. */
static double measure_bandwidth(size_t bytes, int n_threads, int runs, double *share) {
    bytes &= ~(size_t)4095;
    uint8_t *buf = aligned_alloc(4096, bytes);
    if (!buf) return 0;
    memset(buf, 1, bytes);
    byte_range all = {buf, bytes};
    const weight_pages one = {&all, 1, bytes};
    double best = 0;
    *share = 1;
    for (int r = 0; r < runs; r++) {
        double c0 = cpu_seconds(), t0 = ds_now_ms();
        double gbs = read_pages_once(&one, n_threads);
        if (gbs > best) {
            best = gbs;
            *share = cpu_share(cpu_seconds() - c0, ds_now_ms() - t0, n_threads);
        }
    }
    free(buf);
    return best;
}

/* ---- machine limits: sgemm ------------------------------------------------------ */

/* C = A·B for n x n floats with n_threads BLAS threads, best of `runs`, in GFLOP/s;
 * *share = the CPU share the best run got. */
static double measure_sgemm(int n, int n_threads, int runs, double *share) {
    size_t nn = (size_t)n * n;
    float *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b), *c = malloc(nn * sizeof *c);
    double best = 0;
    *share = 1;
    if (a && b && c) {
        for (size_t i = 0; i < nn; i++) {
            a[i] = (float)((i * 7 % 13) - 6) * 0.1f;
            b[i] = (float)((i * 5 % 11) - 5) * 0.1f;
            c[i] = 0;
        }
        int saved = openblas_get_num_threads();
        openblas_set_num_threads(n_threads);
        for (int r = 0; r <= runs; r++) {   /* the first call warms up */
            double c0 = cpu_seconds(), t0 = ds_now_ms();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
            double ms = ds_now_ms() - t0;
            double gf = 2.0 * n * (double)n * n / (ms * 1e6);
            if (r > 0 && gf > best) {
                best = gf;
                *share = cpu_share(cpu_seconds() - c0, ms, n_threads);
            }
        }
        openblas_set_num_threads(saved);   /* the backend runs BLAS single-threaded per block */
    }
    free(a);
    free(b);
    free(c);
    return best;
}

/* ---- analytic cost model ---------------------------------------------------------- */

/* FLOP (2 per multiply-add) of the matrix work of one view: linear layers, convs,
 * attention (q·kᵀ and p·v) and SAM's relative-position terms, including the padding
 * tokens of the windowed blocks. Elementwise ops and norms are not counted. */
typedef struct view_flop {
    double sam, clip, proj;
} view_flop;

static int conv_out(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

static view_flop vision_flop(const ds_config *cfg, const ds_projector_weights *pw, int side) {
    view_flop f = {0, 0, 0};
    const ds_sam_config *s = &cfg->sam;
    const double C = s->width, M = s->mlp_dim, Cn = s->neck_channels;
    const double D2 = s->downsample_channels[0], D3 = s->downsample_channels[1];
    const int T = side / s->patch_size, ws = s->window_size, Tp = (T + ws - 1) / ws * ws;
    const double L = (double)T * T;
    f.sam = 2.0 * L * C * 3 * s->patch_size * s->patch_size;                    /* patch embed */
    for (int i = 0; i < s->layers; i++) {
        const int global = ds_sam_is_global(s, i);
        const double rows = global ? L : (double)Tp * Tp;                       /* padded windows */
        const double Lk = global ? L : (double)ws * ws, S = global ? T : ws;
        f.sam += 2.0 * rows * C * 3 * C        /* qkv */
               + 2.0 * rows * C * 2 * S        /* rel-pos terms, all heads */
               + 4.0 * rows * Lk * C           /* q·kᵀ and p·v */
               + 2.0 * rows * C * C            /* out proj */
               + 4.0 * L * C * M;              /* lin1 + lin2 */
    }
    const int T2 = conv_out(T, 3, 2, 1), g = conv_out(T2, 3, 2, 1);
    f.sam += 2.0 * L * C * Cn + 2.0 * L * Cn * Cn * 9                           /* neck */
           + 2.0 * T2 * T2 * D2 * Cn * 9 + 2.0 * g * g * D3 * D2 * 9;           /* net_2, net_3 */

    const ds_clip_config *c = &cfg->clip;
    const double rows = (double)g * g + 1, Cc = c->width, F = c->ffn_hidden_size;
    f.clip = c->layers * (2.0 * rows * Cc * 3 * Cc + 4.0 * rows * rows * Cc + 2.0 * rows * Cc * Cc +
                          4.0 * rows * Cc * F);

    const int go = ds_projector_out_side(&cfg->proj, g);
    for (int i = 0; i < pw->n_linear; i++)
        f.proj += 2.0 * go * go * (double)pw->w[i].shape[0] * (double)pw->w[i].shape[1];
    return f;
}

static double tensor_bytes(const ds_tensor *t) {
    if (t->data && ds_dtype_is_quant(t->dtype))   /* whole blocks per row (--quant) */
        return (double)ds_dtype_bytes(t->dtype, t->shape[0] * t->stride[0]);
    return t->data ? (double)ds_dtype_bytes(t->dtype, ds_tensor_numel(t)) : 0;   /* quantized too */
}
static double mlp_bytes(const ds_mlp_weights *m) {
    return tensor_bytes(&m->gate) + tensor_bytes(&m->up) + tensor_bytes(&m->down);
}

/* Weight bytes one decode step reads: every layer's attention and norms, the dense
 * MLP, the router, the top-k routed experts plus the shared experts of MoE layers,
 * the final norm, lm_head and one embedding row. */
static double decode_weight_bytes(const ds_lm_config *c, const ds_decoder_weights *w) {
    double b = tensor_bytes(&w->norm) + tensor_bytes(&w->lm_head);
    b += (double)ds_dtype_bytes(w->embed_tokens.dtype, w->embed_tokens.shape[1]);
    for (int l = 0; l < w->n_layers; l++) {
        const ds_decoder_layer_weights *lw = &w->layers[l];
        b += tensor_bytes(&lw->input_norm) + tensor_bytes(&lw->post_norm) + tensor_bytes(&lw->wq) +
             tensor_bytes(&lw->wk) + tensor_bytes(&lw->wv) + tensor_bytes(&lw->wo);
        if (!lw->is_moe) {
            b += mlp_bytes(&lw->mlp);
            continue;
        }
        b += tensor_bytes(&lw->router) + mlp_bytes(&lw->shared);
        if (w->n_experts > 0) b += c->num_experts_per_tok * mlp_bytes(&lw->experts[0]);
    }
    return b;
}

/* K and V bytes one step reads when attending to ctx positions: an f32 cache, or bf16
 * for the quantized decoders where the backend reads it (ds_decoder_params.kv_bf16). */
static double kv_bytes(const ds_lm_config *c, double ctx, int kv_bf16) {
    return 2.0 * c->num_hidden_layers * ctx * (double)c->num_key_value_heads * c->head_dim * (kv_bf16 ? 2 : 4);
}

/* The decoders of --quant models keep K/V in bf16 where the backend reads it so. */
static int kv_bf16_of(const dsocr_model *m, int quantized) { return quantized && ds_backend_kv_bf16(m->be); }

/* ---- the synthetic page ------------------------------------------------------------- */

/* White A4 page with dark "words" on lines: something that looks like a document. */
static dsocr_status make_page(dsocr_image **out, dsocr_error *err) {
    uint8_t *rgb = malloc((size_t)PAGE_W * PAGE_H * 3);
    if (!rgb) return ds_fail(err, DSOCR_ERR_NOMEM, "bench: out of memory for the test page");
    memset(rgb, 250, (size_t)PAGE_W * PAGE_H * 3);
    uint64_t st = 0x243f6a8885a308d3ull;
    for (int y0 = 120; y0 + 18 < PAGE_H - 120; y0 += 34) {
        for (int x0 = 110; x0 < PAGE_W - 110;) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            int len = 20 + (int)((st >> 33) % 90);
            if (x0 + len > PAGE_W - 110) break;
            for (int y = y0; y < y0 + 18; y++)
                for (int x = x0; x < x0 + len; x++) {
                    uint8_t v = (uint8_t)(30 + ((x * 13 + y * 7) & 31));
                    memset(rgb + ((size_t)y * PAGE_W + x) * 3, v, 3);
                }
            x0 += len + 12;
        }
    }
    dsocr_status s = dsocr_image_from_rgb(rgb, PAGE_W, PAGE_H, out, err);
    free(rgb);
    return s;
}

/* ---- checkpoint ----------------------------------------------------------------------- */

/* The default model folder: the cached random full-size checkpoint. */
static int default_model_dir(char *out, size_t n) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && *xdg) snprintf(out, n, "%s/dsocr/random-full", xdg);
    else if (home && *home) snprintf(out, n, "%s/.cache/dsocr/random-full", home);
    else return -1;
    return 0;
}

/* Generates the full-size random checkpoint into dir through the generator
 * (into dir.tmp first, renamed when complete, so a stopped run leaves no half model). */
static int generate_checkpoint(const char *dir, const char *tok_dir) {
    char parent[4096], tmp[4200];
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) *slash = 0;
    if (make_dirs(parent)) return cli_error("bench: cannot create %s: %s", parent, strerror(errno));
    struct statvfs vfs;
    if (statvfs(parent, &vfs) == 0 && (double)vfs.f_bavail * vfs.f_frsize < 7.0e9)
        return cli_error("bench: %s has %.1f GB free; the full-size random checkpoint needs 6.7 GB "
                         "(or give a checkpoint with -m DIR)", parent, (double)vfs.f_bavail * vfs.f_frsize / 1e9);
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", dir, (long)getpid());
    fprintf(stderr, "dsocr bench: no checkpoint at %s; generating the full-size random one (6.7 GB, once)\n", dir);
    char *args[] = {"mkmodel", "-o", tmp, "--preset", "real", "--tokenizer-from", (char *)tok_dir, NULL};
    int rc = dsocr_cmd_mkmodel(7, args);
    if (rc) return rc;
    if (rename(tmp, dir) != 0) return cli_error("bench: cannot rename %s to %s: %s", tmp, dir, strerror(errno));
    return 0;
}

static const char *find_tokenizer_dir(void) {
    static const char *cands[] = {"../shared/golden/tiny-model", "../../shared/golden/tiny-model"};
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
        char p[256];
        snprintf(p, sizeof p, "%s/tokenizer.json", cands[i]);
        if (file_exists(p)) return cands[i];
    }
    return NULL;
}

/* ---- per-op profile phases ------------------------------------------------------------ */

enum { PH_VISION, PH_PREFILL, PH_DECODE, N_PHASES };
static const char *phase_names[N_PHASES] = {"vision", "prefill", "decode"};

typedef struct phase_weight {
    char name[96];
    ds_profile_op c;
} phase_weight;

typedef struct phase_prof {
    ds_profile_op op[DS_PROF_N_OPS];
    phase_weight w[DS_PROF_MAX_WEIGHTS];   /* linear split by weight name */
    int n_w;
    double wall_ms;     /* the phase's own wall time, summed over modes and runs */
} phase_prof;

static void op_add(ds_profile_op *to, const ds_profile_op *o) {
    to->calls += o->calls;
    to->ms += o->ms;
    to->flop += o->flop;
    to->bytes += o->bytes;
}

/* Adds the counters of p to ph and zeroes them. */
static void phase_collect(ds_profile *p, phase_prof *ph, double wall_ms) {
    if (!p) return;
    for (int i = 0; i < DS_PROF_N_OPS; i++) {
        ds_profile_op o;
        ds_profile_get(p, i, &o);
        ph->op[i].name = o.name;
        op_add(&ph->op[i], &o);
    }
    for (int i = 0; i < ds_profile_n_weights(p); i++) {
        ds_profile_op o;
        ds_profile_get_weight(p, i, &o);
        int k = 0;
        while (k < ph->n_w && strcmp(ph->w[k].name, o.name)) k++;
        if (k == ph->n_w) {
            if (ph->n_w == DS_PROF_MAX_WEIGHTS) continue;
            snprintf(ph->w[k].name, sizeof ph->w[k].name, "%s", o.name);
            ph->n_w++;
        }
        op_add(&ph->w[k].c, &o);
        ph->w[k].c.name = ph->w[k].name;
    }
    ph->wall_ms += wall_ms;
    ds_profile_reset(p);
}

/* ---- one view through the encoder stages ----------------------------------------------- */

typedef struct view_stat {
    int side;
    view_flop flop;
    double sam_ms, clip_ms, fuse_ms, proj_ms;
} view_stat;

static void touch(ds_vbuf *b) {
    if (b->p) memset(b->p, 0, b->cap * sizeof(float));
}

/* One view of `side` through SAM -> CLIP -> fusion -> projector, the calls and order of
 * the DeepEncoder (model/vision.c), on its own run state whose pages are touched
 * before timing. */
static dsocr_status time_view(dsocr_model *m, const float *pixels_chw, int side, view_stat *vs, dsocr_error *err) {
    ds_backend *be = m->be;
    const ds_config *c = &m->cfg;
    const ds_vision_weights *w = &m->w.vision;
    const int g = ds_sam_out_side(&c->sam, side), N = g * g, go = ds_projector_out_side(&c->proj, g);
    const int Cs = c->sam.downsample_channels[1], Cc = c->clip.width, F = Cc + Cs;
    ds_sam_tables st = {0};
    ds_clip_tables ct = {0};
    ds_sam_state ss = {0};
    ds_clip_state cs = {0};
    ds_projector_state ps = {0};
    ds_vbuf sam_out = {0}, fused_t = {0}, fused = {0}, proj_out = {0};
    dsocr_status s;
    if ((s = ds_sam_tables_build(be, &c->sam, &w->sam, side, &st, err))) goto done;
    if ((s = ds_clip_tables_build(be, &c->clip, &w->clip, g, &ct, err))) goto done;
    if ((s = ds_sam_state_reserve(be, &c->sam, &ss, 1, side, err))) goto done;
    if ((s = ds_clip_state_reserve(be, &c->clip, &cs, 1, N, err))) goto done;
    if ((s = ds_projector_state_reserve(be, &c->proj, &ps, 1, g, err))) goto done;
    if ((s = ds_vbuf_reserve(be, &sam_out, (size_t)N * Cs, "bench sam output", err))) goto done;
    if ((s = ds_vbuf_reserve(be, &fused_t, (size_t)N * F, "bench fusion", err))) goto done;
    if ((s = ds_vbuf_reserve(be, &fused, (size_t)N * F, "bench fusion", err))) goto done;
    if ((s = ds_vbuf_reserve(be, &proj_out, (size_t)go * go * c->proj.n_embed, "bench projector", err))) goto done;
    ds_vbuf *all[] = {&ss.pix_chw, &ss.pix_hwc, &ss.x, &ss.h, &ss.win, &ss.qkv, &ss.att, &ss.rel_h, &ss.rel_w,
                      &ss.mlp, &ss.neck_a, &ss.neck_b, &ss.down2, &cs.x, &cs.h, &cs.qkv, &cs.att, &cs.mlp,
                      &ps.blocks, &ps.unfold, &ps.ha, &ps.hb, &sam_out, &fused_t, &fused, &proj_out};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) touch(all[i]);

    double t0 = ds_now_ms();
    ds_sam_forward(be, &c->sam, &w->sam, &st, &ss, pixels_chw, 1, sam_out.p);            /* [N, Cs] */
    double t1 = ds_now_ms();
    ds_clip_forward(be, &c->clip, &w->clip, &ct, &cs, sam_out.p, 1);                      /* [N+1, Cc] */
    double t2 = ds_now_ms();
    ds_op_transpose(be, fused_t.p, cs.x.p + Cc, N, Cc);                                   /* [Cc, N] */
    ds_op_transpose(be, fused_t.p + (size_t)Cc * N, sam_out.p, N, Cs);                    /* [Cs, N] */
    ds_op_transpose(be, fused.p, fused_t.p, F, N);                                        /* [N, F] */
    double t3 = ds_now_ms();
    ds_projector_forward(be, &c->proj, &w->proj, &ps, fused.p, 1, g, proj_out.p);         /* [go*go, D] */
    double t4 = ds_now_ms();
    vs->side = side;
    vs->flop = vision_flop(c, &w->proj, side);
    vs->sam_ms = t1 - t0;
    vs->clip_ms = t2 - t1;
    vs->fuse_ms = t3 - t2;
    vs->proj_ms = t4 - t3;
done:
    ds_vbuf_free(be, &sam_out);
    ds_vbuf_free(be, &fused_t);
    ds_vbuf_free(be, &fused);
    ds_vbuf_free(be, &proj_out);
    ds_projector_state_free(be, &ps);
    ds_clip_state_free(be, &cs);
    ds_sam_state_free(be, &ss);
    ds_clip_tables_free(be, &ct);
    ds_sam_tables_free(be, &st);
    return s;
}

/* ---- one mode end to end ------------------------------------------------------------------ */

typedef struct mode_run {
    dsocr_mode mode;
    ds_views views;
    ds_prompt prompt;
    int n_embeds;
    double preprocess_ms;
    double vision_gflop;        /* all views of the image */
    double encode_ms, prefill_ms, decode_ms;
    double first_encode_ms, first_prefill_ms;   /* run 1: pays page faults of fresh buffers and
                                                   weights not yet in the page cache */
    double decode_weight_bytes, decode_kv_bytes;   /* per token (KV averaged over the steps) */
    double cpu_share;           /* CPU time / (wall time x threads) over the mode's runs: < 1 when
                                   other processes took cores (or threads waited) */
    double share_vision, share_prefill, share_decode;   /* the same per phase (best run) */
    /* decode in chunks of 8 tokens, each followed by one read of a 256 MiB probe buffer
     * (the machine's read bandwidth right then): the median over chunks of (chunk's
     * bytes/s) / (that read) */
    double decode_ratio_paired, paired_read_gbs;
    int n_pairs;
} mode_run;

static dsocr_status prepare_mode(dsocr_model *m, const dsocr_image *img, mode_run *r, dsocr_error *err) {
    double t0 = ds_now_ms();
    DS_TRY(ds_preprocess(img, r->mode, 0, &r->views, err));
    r->preprocess_ms = ds_now_ms() - t0;
    char *text = NULL;
    DS_TRY(ds_task_prompt(DSOCR_TASK_MARKDOWN, NULL, &text, err));
    dsocr_status s = ds_prompt_build(m->tok, text, &r->views.n_image_tokens, 1, &r->prompt, err);
    free(text);
    DS_TRY(s);
    const ds_views *v = &r->views;
    r->n_embeds = ds_vision_n_embeds(&m->cfg, v->global_size, v->n_tiles, v->tile_size, v->grid_w, v->grid_h);
    r->vision_gflop = 0;
    view_flop g = vision_flop(&m->cfg, &m->w.vision.proj, v->global_size);
    r->vision_gflop += (g.sam + g.clip + g.proj) / 1e9;
    if (v->n_tiles > 0) {
        view_flop t = vision_flop(&m->cfg, &m->w.vision.proj, v->tile_size);
        r->vision_gflop += v->n_tiles * (t.sam + t.clip + t.proj) / 1e9;
    }
    return DSOCR_OK;
}

/* Median of v[0..n) (sorts v). */
static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median_of(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_dbl);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Encode, prefill (best of runs) and decode n_decode forced tokens. */
/* Forced decode token `step` of a vocabulary of V ids: a fixed walk (from id 1000 on
 * in a large vocabulary), so the decode length never depends on what random weights
 * would emit. The modes' decode and --formats walk the same ids. */
static int32_t forced_id(int V, int step) {
    return (int32_t)(V > 2000 ? 1000 + ((int64_t)step * 7919) % (V - 1000) : ((int64_t)step * 7919) % V);
}

static dsocr_status run_mode(dsocr_model *m, ds_decoder *dec, mode_run *r, int runs, int n_decode,
                             const weight_pages *pages, ds_profile *prof, phase_prof *ph, dsocr_error *err) {
    const int D = m->cfg.lm.hidden_size, V = ds_decoder_vocab(dec);
    const ds_views *v = &r->views;
    const int n_ids = (int)r->prompt.ids.n;
    float *embeds = malloc((size_t)r->n_embeds * D * sizeof *embeds);
    float *logits = malloc((size_t)V * sizeof *logits);
    dsocr_status s = DSOCR_OK;
    if (!embeds || !logits) { s = ds_fail(err, DSOCR_ERR_NOMEM, "bench: out of memory"); goto done; }
    if ((s = ds_vision_prepare(m->vision, v->global_size, err))) goto done;
    if (v->n_tiles > 0 && (s = ds_vision_prepare(m->vision, v->tile_size, err))) goto done;
    r->encode_ms = r->prefill_ms = 1e300;
    const double cpu0 = cpu_seconds(), wall0 = ds_now_ms();
    for (int run = 0; run < runs; run++) {
        const double c0 = cpu_seconds();
        double t0 = ds_now_ms();
        if ((s = ds_vision_encode(m->vision, v->global_pixels, v->global_size, v->tiles_pixels, v->n_tiles,
                                  v->tile_size, v->grid_w, v->grid_h, embeds, NULL, err)))
            goto done;
        double t1 = ds_now_ms();
        const double c1 = cpu_seconds();
        phase_collect(prof, &ph[PH_VISION], t1 - t0);
        if ((s = ds_decoder_prefill(dec, r->prompt.ids.data, n_ids, embeds, r->n_embeds, r->prompt.image_mask,
                                    logits, NULL, err)))
            goto done;
        double t2 = ds_now_ms();
        const double c2 = cpu_seconds();
        phase_collect(prof, &ph[PH_PREFILL], t2 - t1);
        const int nt = ds_backend_threads(m->be);
        if (run == 0) {
            r->first_encode_ms = t1 - t0;
            r->first_prefill_ms = t2 - t1;
        }
        if (t1 - t0 < r->encode_ms) {
            r->encode_ms = t1 - t0;
            r->share_vision = cpu_share(c1 - c0, t1 - t0, nt);
        }
        if (t2 - t1 < r->prefill_ms) {
            r->prefill_ms = t2 - t1;
            r->share_prefill = cpu_share(c2 - c1, t2 - t1, nt);
        }
    }

    /* forced tokens (forced_id) in chunks of 8, each followed by one timed read of the
     * probe buffer (not counted in decode_ms): on a shared VM the read bandwidth moves by
     * 1.7x within minutes, so a bandwidth measured before or after the run is no yardstick */
    enum { CHUNK = 8, MAX_PAIRS = 64 };
    double ratios[MAX_PAIRS], reads[MAX_PAIRS];
    int n_pairs = 0;
    const double wbytes = decode_weight_bytes(&m->cfg.lm, &m->w.lm);
    double c0 = cpu_seconds(), kv = 0, dec_ms = 0, read_ms = 0, chunk_ms = 0, chunk_bytes = 0;
    for (int i = 0; i < n_decode; i++) {
        double t0 = ds_now_ms();
        if ((s = ds_decoder_step(dec, forced_id(V, i), logits, err))) goto done;
        double dt = ds_now_ms() - t0, kvb = kv_bytes(&m->cfg.lm, (double)n_ids + i + 1, kv_bf16_of(m, m->quant.arena != NULL));
        dec_ms += dt;
        chunk_ms += dt;
        chunk_bytes += wbytes + kvb;
        kv += kvb;
        if (pages && (i + 1) % CHUNK == 0 && n_pairs < MAX_PAIRS) {
            double t1 = ds_now_ms(), gbs = read_pages_once(pages, ds_backend_threads(m->be));
            read_ms += ds_now_ms() - t1;
            if (gbs > 0 && chunk_ms > 0) {
                reads[n_pairs] = gbs;
                ratios[n_pairs++] = chunk_bytes / (chunk_ms * 1e6) / gbs;
            }
            chunk_ms = chunk_bytes = 0;
        }
    }
    r->decode_ms = dec_ms;
    r->n_pairs = n_pairs;
    r->decode_ratio_paired = n_pairs ? median_of(ratios, n_pairs) : 0;
    r->paired_read_gbs = n_pairs ? median_of(reads, n_pairs) : 0;
    r->share_decode = cpu_share(cpu_seconds() - c0 - read_ms / 1e3 * ds_backend_threads(m->be), r->decode_ms,
                                ds_backend_threads(m->be));
    phase_collect(prof, &ph[PH_DECODE], r->decode_ms);
    r->decode_weight_bytes = decode_weight_bytes(&m->cfg.lm, &m->w.lm);
    r->decode_kv_bytes = n_decode > 0 ? kv / n_decode : 0;
    r->cpu_share = (cpu_seconds() - cpu0) * 1e3 / ((ds_now_ms() - wall0) * ds_backend_threads(m->be));
done:
    free(embeds);
    free(logits);
    return s;
}

/* ---- decode by weight format, in one run (--formats) ------------------------------------
 * The q8/q4 speed-ups are ratios of tokens/s; on a shared VM whose read bandwidth moves
 * by 1.7x within minutes, separate runs cannot give them. Here every format gets its own
 * binding of the checkpoint's decoder (quantized as dsocr --quant would, in the layout
 * the backend reads fastest) and its own decoder, all prefilled with the same text ids;
 * then the formats take turns, 8 forced tokens each, so that they share the machine's
 * state. The ratio is the median over rounds of (bf16 ms / format ms). q8 and q4 keep
 * K/V in bf16 where the backend reads it so, as dsocr --quant does. */
enum { FMT_BF16, FMT_Q8, FMT_Q4, MAX_FORMATS };
static const char *format_names[MAX_FORMATS] = {"bf16", "q8", "q4"};

typedef struct format_run {
    int format;              /* FMT_* */
    const char *dtype;       /* the Linear weights' dtype, e.g. "Q4_0x4" */
    double tps;              /* tokens / s over all rounds */
    double vs_first;         /* median over rounds of (first format's ms / this one's) */
    double weight_bytes;     /* read per token */
    double kv_bytes;         /* K/V read per token (mean over the steps): f32, or bf16 for q8/q4 */
    double quant_ms;         /* load-time conversion */
    int rounds, tokens;
} format_run;

static int parse_formats(const char *text, int *out, int *n) {
    *n = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", text);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int f = -1;
        for (int i = 0; i < MAX_FORMATS; i++)
            if (!strcmp(tok, format_names[i])) f = i;
        if (f < 0) return cli_error("--formats: '%s' is not one of bf16, q8, q4", tok), 1;
        for (int i = 0; i < *n; i++)
            if (out[i] == f) return cli_error("--formats: %s is listed twice", tok), 1;
        out[(*n)++] = f;
    }
    if (!*n) return cli_error("--formats: give at least one of bf16, q8, q4"), 1;
    return 0;
}

static dsocr_status compare_formats(dsocr_model *m, const int *fmts, int n_fmt, int n_prompt, int n_decode,
                                    format_run *out, dsocr_error *err) {
    enum { CHUNK = 8, MAX_ROUNDS = 256 };
    ds_decoder_weights w[MAX_FORMATS];
    ds_decoder_quant q[MAX_FORMATS];
    ds_decoder *dec[MAX_FORMATS] = {0};
    memset(w, 0, sizeof w);
    memset(q, 0, sizeof q);
    const int rounds = (n_decode + CHUNK - 1) / CHUNK < MAX_ROUNDS ? (n_decode + CHUNK - 1) / CHUNK : MAX_ROUNDS;
    double *ms = calloc((size_t)rounds * n_fmt, sizeof *ms), ratios[MAX_ROUNDS];
    int32_t *ids = malloc((size_t)n_prompt * sizeof *ids);
    float *logits = malloc((size_t)m->cfg.lm.vocab_size * sizeof *logits);
    dsocr_status s = DSOCR_OK;
    int n_bound = 0;
    if (!ms || !ids || !logits) { s = ds_fail(err, DSOCR_ERR_NOMEM, "bench --formats: out of memory"); goto done; }
    const int V = m->cfg.lm.vocab_size;
    for (int i = 0; i < n_prompt; i++) ids[i] = (int32_t)(V > 2000 ? 1000 + ((int64_t)i * 104729) % (V - 1000) : i % V);
    ds_decoder_params dp = {.max_ctx = n_prompt + rounds * CHUNK + 1, .rope_bf16_inv_freq = m->rope_bf16};
    for (int k = 0; k < n_fmt; k++) {
        ds_binder *b = ds_binder_new(m->ck);
        if (!b) { s = ds_fail(err, DSOCR_ERR_NOMEM, "bench --formats: out of memory"); goto done; }
        ds_decoder_bind(b, &m->cfg, &w[k]);
        n_bound = k + 1;
        if ((s = ds_binder_finish(b, err))) goto done;
        out[k] = (format_run){.format = fmts[k]};
        if (fmts[k] != FMT_BF16) {
            fprintf(stderr, "dsocr bench: quantizing the decoder to %s ...\n", format_names[fmts[k]]);
            ds_dtype t = ds_backend_quant_dtype(m->be, fmts[k] == FMT_Q8 ? DS_Q8_0 : DS_Q4_0);
            ds_quant_plan plan = ds_quant_plan_for(t, 0);   /* the bf16 binding still reads the pages */
            if ((s = ds_decoder_quantize(&w[k], &plan, ds_backend_threads(m->be), &q[k], err))) goto done;
            out[k].quant_ms = q[k].ms;
        }
        out[k].dtype = ds_dtype_name(w[k].layers[0].wq.dtype);
        out[k].weight_bytes = decode_weight_bytes(&m->cfg.lm, &w[k]);
        dp.kv_bf16 = fmts[k] != FMT_BF16;   /* as dsocr --quant runs it */
        out[k].kv_bytes = kv_bytes(&m->cfg.lm, n_prompt + rounds * CHUNK / 2.0, kv_bf16_of(m, dp.kv_bf16));
        if ((s = ds_decoder_new(m->be, &m->cfg.lm, &w[k], &dp, &dec[k], err))) goto done;
        if ((s = ds_decoder_prefill(dec[k], ids, n_prompt, NULL, 0, NULL, logits, NULL, err))) goto done;
    }
    fprintf(stderr, "dsocr bench: decode by format, %d rounds of %d tokens ...\n", rounds, CHUNK);
    for (int r = 0; r < rounds; r++)
        for (int j = 0; j < n_fmt; j++) {
            const int k = (r + j) % n_fmt;   /* each format leads in turn */
            double t0 = ds_now_ms();
            for (int i = 0; i < CHUNK; i++)
                if ((s = ds_decoder_step(dec[k], forced_id(V, r * CHUNK + i), logits, err))) goto done;
            ms[r * n_fmt + k] = ds_now_ms() - t0;
        }
    for (int k = 0; k < n_fmt; k++) {
        double total = 0;
        for (int r = 0; r < rounds; r++) {
            total += ms[r * n_fmt + k];
            ratios[r] = ms[r * n_fmt + k] > 0 ? ms[r * n_fmt] / ms[r * n_fmt + k] : 0;
        }
        out[k].rounds = rounds;
        out[k].tokens = rounds * CHUNK;
        out[k].tps = total > 0 ? rounds * CHUNK * 1e3 / total : 0;
        out[k].vs_first = median_of(ratios, rounds);
    }
done:
    for (int k = 0; k < n_bound; k++) {
        ds_decoder_free(dec[k]);
        ds_decoder_quant_free(&q[k]);
        ds_decoder_weights_free(&w[k]);
    }
    free(ms);
    free(ids);
    free(logits);
    return s;
}

/* ---- output --------------------------------------------------------------------------------- */

typedef struct bench_out {
    char cpu[256];
    int cores, threads;
    const char *backend;
    double bw_gbs, bw_mib, sgemm_gflops;
    double wread_gbs, wread_bytes;  /* plain read of the decoder's weight pages (see measure_weight_read) */
    double bw_share, sgemm_share;   /* CPU share during the best bandwidth and sgemm runs */
    int sgemm_n;
    const char *model_dir;
    double ckpt_bytes;
    const char *weight_dtype;
    int decode_tokens, runs;
    mode_run *modes;
    int n_modes;
    view_stat *views;
    int n_views;
    double peak_rss, rss, rss_anon, rss_file;
    const char *memory_after;
    int profiled;
    phase_prof *ph;
    double load_start, load_end;   /* 1-minute load average before the runs and at the end */
    format_run formats[MAX_FORMATS];   /* --formats: decode by weight format, in this run */
    int n_formats, formats_prompt;
} bench_out;

/* The targets, checked on the last mode run (gundam by default). */
typedef struct targets {
    double decode_bw, vision_sgemm, peak_over_ckpt;
} targets;

static targets bench_targets(const bench_out *b) {
    const mode_run *r = &b->modes[b->n_modes - 1];
    const double tps = r->decode_ms > 0 ? b->decode_tokens * 1e3 / r->decode_ms : 0;
    targets t;
    t.decode_bw = b->bw_gbs > 0 ? (r->decode_weight_bytes + r->decode_kv_bytes) * tps / 1e9 / b->bw_gbs : 0;
    t.vision_sgemm = b->sgemm_gflops > 0 && r->encode_ms > 0 ? r->vision_gflop * 1e3 / r->encode_ms / b->sgemm_gflops : 0;
    t.peak_over_ckpt = b->peak_rss - b->ckpt_bytes;
    return t;
}

/* Indexes of a phase's weights by time, largest first. */
static void weights_by_time(const phase_prof *ph, int *order) {
    for (int i = 0; i < ph->n_w; i++) order[i] = i;
    for (int i = 1; i < ph->n_w; i++)
        for (int j = i; j > 0 && ph->w[order[j]].c.ms > ph->w[order[j - 1]].c.ms; j--) {
            int t = order[j]; order[j] = order[j - 1]; order[j - 1] = t;
        }
}

static double mode_decode_tps(const mode_run *r, int n) { return r->decode_ms > 0 ? n * 1e3 / r->decode_ms : 0; }

static cJSON *json_view(const view_stat *v, double sgemm) {
    cJSON *o = cJSON_CreateObject();
    const double ms = v->sam_ms + v->clip_ms + v->fuse_ms + v->proj_ms, gf = (v->flop.sam + v->flop.clip + v->flop.proj) / 1e9;
    cJSON_AddNumberToObject(o, "side", v->side);
    cJSON_AddNumberToObject(o, "sam_ms", v->sam_ms);
    cJSON_AddNumberToObject(o, "clip_ms", v->clip_ms);
    cJSON_AddNumberToObject(o, "fusion_ms", v->fuse_ms);
    cJSON_AddNumberToObject(o, "projector_ms", v->proj_ms);
    cJSON_AddNumberToObject(o, "total_ms", ms);
    cJSON_AddNumberToObject(o, "sam_gflop", v->flop.sam / 1e9);
    cJSON_AddNumberToObject(o, "clip_gflop", v->flop.clip / 1e9);
    cJSON_AddNumberToObject(o, "projector_gflop", v->flop.proj / 1e9);
    cJSON_AddNumberToObject(o, "sam_gflops", v->sam_ms > 0 ? v->flop.sam / 1e6 / v->sam_ms : 0);
    cJSON_AddNumberToObject(o, "clip_gflops", v->clip_ms > 0 ? v->flop.clip / 1e6 / v->clip_ms : 0);
    cJSON_AddNumberToObject(o, "projector_gflops", v->proj_ms > 0 ? v->flop.proj / 1e6 / v->proj_ms : 0);
    cJSON_AddNumberToObject(o, "gflops", ms > 0 ? gf * 1e3 / ms : 0);
    cJSON_AddNumberToObject(o, "ratio_sgemm", ms > 0 && sgemm > 0 ? gf * 1e3 / ms / sgemm : 0);
    return o;
}

static char *bench_json(const bench_out *b) {
    cJSON *root = cJSON_CreateObject();
    cJSON *mach = cJSON_AddObjectToObject(root, "machine");
    cJSON_AddStringToObject(mach, "cpu", b->cpu);
    cJSON_AddNumberToObject(mach, "cores", b->cores);
    cJSON_AddNumberToObject(mach, "threads", b->threads);
    cJSON_AddStringToObject(mach, "backend", b->backend);
    cJSON_AddNumberToObject(mach, "mem_read_gbs", b->bw_gbs);
    cJSON_AddNumberToObject(mach, "mem_read_buffer_mib", b->bw_mib);
    cJSON_AddNumberToObject(mach, "weight_pages_read_gbs", b->wread_gbs);
    cJSON_AddNumberToObject(mach, "weight_pages_bytes", b->wread_bytes);
    cJSON_AddNumberToObject(mach, "sgemm_gflops", b->sgemm_gflops);
    cJSON_AddNumberToObject(mach, "sgemm_n", b->sgemm_n);
    cJSON_AddNumberToObject(mach, "mem_read_cpu_share", b->bw_share);
    cJSON_AddNumberToObject(mach, "sgemm_cpu_share", b->sgemm_share);
    cJSON_AddNumberToObject(mach, "load_average_start", b->load_start);
    cJSON_AddNumberToObject(mach, "load_average_end", b->load_end);

    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "dir", b->model_dir);
    cJSON_AddNumberToObject(model, "checkpoint_bytes", b->ckpt_bytes);
    cJSON_AddStringToObject(model, "weight_dtype", b->weight_dtype);
    cJSON_AddNumberToObject(root, "decode_tokens", b->decode_tokens);
    if (b->n_formats) {   /* --formats: decode by weight format, taking turns in this run */
        cJSON *fo = cJSON_AddObjectToObject(root, "decode_by_format");
        cJSON_AddNumberToObject(fo, "prompt_ids", b->formats_prompt);
        cJSON_AddNumberToObject(fo, "rounds", b->formats[0].rounds);
        cJSON_AddNumberToObject(fo, "tokens_per_round", 8);
        cJSON_AddStringToObject(fo, "baseline", format_names[b->formats[0].format]);
        cJSON *arr = cJSON_AddArrayToObject(fo, "formats");
        for (int i = 0; i < b->n_formats; i++) {
            const format_run *r = &b->formats[i];
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "format", format_names[r->format]);
            cJSON_AddStringToObject(o, "dtype", r->dtype);
            cJSON_AddNumberToObject(o, "tokens_per_s", r->tps);
            cJSON_AddNumberToObject(o, "vs_baseline", r->vs_first);
            cJSON_AddNumberToObject(o, "weight_bytes_per_token", r->weight_bytes);
            cJSON_AddNumberToObject(o, "kv_bytes_per_token", r->kv_bytes);
            cJSON_AddNumberToObject(o, "quantize_ms", r->quant_ms);
            cJSON_AddItemToArray(arr, o);
        }
    }
    cJSON_AddNumberToObject(root, "runs", b->runs);

    cJSON *views = cJSON_AddArrayToObject(root, "views");
    for (int i = 0; i < b->n_views; i++) cJSON_AddItemToArray(views, json_view(&b->views[i], b->sgemm_gflops));

    cJSON *modes = cJSON_AddArrayToObject(root, "modes");
    for (int i = 0; i < b->n_modes; i++) {
        const mode_run *r = &b->modes[i];
        cJSON *o = cJSON_CreateObject();
        const int n_ids = (int)r->prompt.ids.n;
        cJSON_AddStringToObject(o, "mode", ds_mode_name(r->mode));
        cJSON_AddNumberToObject(o, "global_side", r->views.global_size);
        cJSON_AddNumberToObject(o, "tiles", r->views.n_tiles);
        cJSON_AddNumberToObject(o, "tile_side", r->views.n_tiles ? r->views.tile_size : 0);
        cJSON_AddNumberToObject(o, "grid_w", r->views.grid_w);
        cJSON_AddNumberToObject(o, "grid_h", r->views.grid_h);
        cJSON_AddNumberToObject(o, "image_tokens", r->n_embeds);
        cJSON_AddNumberToObject(o, "prefill_tokens", n_ids);
        cJSON_AddNumberToObject(o, "preprocess_ms", r->preprocess_ms);
        cJSON_AddNumberToObject(o, "vision_ms", r->encode_ms);
        cJSON_AddNumberToObject(o, "vision_first_run_ms", r->first_encode_ms);
        cJSON_AddNumberToObject(o, "prefill_first_run_ms", r->first_prefill_ms);
        cJSON_AddNumberToObject(o, "vision_gflop", r->vision_gflop);
        double vgf = r->encode_ms > 0 ? r->vision_gflop * 1e3 / r->encode_ms : 0;
        cJSON_AddNumberToObject(o, "vision_gflops", vgf);
        cJSON_AddNumberToObject(o, "vision_ratio_sgemm", b->sgemm_gflops > 0 ? vgf / b->sgemm_gflops : 0);
        cJSON_AddNumberToObject(o, "prefill_ms", r->prefill_ms);
        cJSON_AddNumberToObject(o, "prefill_tok_s", r->prefill_ms > 0 ? n_ids * 1e3 / r->prefill_ms : 0);
        cJSON_AddNumberToObject(o, "ttft_ms", r->preprocess_ms + r->encode_ms + r->prefill_ms);
        const double tps = mode_decode_tps(r, b->decode_tokens), bpt = r->decode_weight_bytes + r->decode_kv_bytes;
        cJSON_AddNumberToObject(o, "decode_ms", r->decode_ms);
        cJSON_AddNumberToObject(o, "decode_tok_s", tps);
        cJSON_AddNumberToObject(o, "decode_weight_bytes_per_token", r->decode_weight_bytes);
        cJSON_AddNumberToObject(o, "decode_kv_bytes_per_token", r->decode_kv_bytes);
        cJSON_AddNumberToObject(o, "decode_gbs", bpt * tps / 1e9);
        cJSON_AddNumberToObject(o, "decode_ratio_bandwidth", b->bw_gbs > 0 ? bpt * tps / 1e9 / b->bw_gbs : 0);
        cJSON_AddNumberToObject(o, "decode_ratio_paired_read", r->decode_ratio_paired);
        cJSON_AddNumberToObject(o, "decode_paired_read_gbs", r->paired_read_gbs);
        cJSON_AddNumberToObject(o, "decode_pairs", r->n_pairs);
        cJSON_AddNumberToObject(o, "cpu_share", r->cpu_share);
        cJSON_AddNumberToObject(o, "cpu_share_vision", r->share_vision);
        cJSON_AddNumberToObject(o, "cpu_share_prefill", r->share_prefill);
        cJSON_AddNumberToObject(o, "cpu_share_decode", r->share_decode);
        cJSON_AddItemToArray(modes, o);
    }

    cJSON *mem = cJSON_AddObjectToObject(root, "memory");
    cJSON_AddStringToObject(mem, "after", b->memory_after);
    cJSON_AddNumberToObject(mem, "peak_rss_bytes", b->peak_rss);
    cJSON_AddNumberToObject(mem, "rss_bytes", b->rss);
    cJSON_AddNumberToObject(mem, "rss_anon_bytes", b->rss_anon);
    cJSON_AddNumberToObject(mem, "rss_file_bytes", b->rss_file);
    cJSON_AddNumberToObject(mem, "checkpoint_bytes", b->ckpt_bytes);
    cJSON_AddNumberToObject(mem, "peak_over_checkpoint_bytes", b->peak_rss - b->ckpt_bytes);

    const targets t = bench_targets(b);
    cJSON *tg = cJSON_AddObjectToObject(root, "targets");
    cJSON_AddStringToObject(tg, "mode", ds_mode_name(b->modes[b->n_modes - 1].mode));
    cJSON_AddNumberToObject(tg, "decode_ratio_bandwidth", t.decode_bw);
    cJSON_AddBoolToObject(tg, "decode_ok", t.decode_bw >= 0.8);
    cJSON_AddNumberToObject(tg, "vision_ratio_sgemm", t.vision_sgemm);
    cJSON_AddBoolToObject(tg, "vision_ok", t.vision_sgemm >= 0.7);
    cJSON_AddNumberToObject(tg, "peak_over_checkpoint_bytes", t.peak_over_ckpt);
    cJSON_AddBoolToObject(tg, "memory_ok", t.peak_over_ckpt <= 1e9);

    if (b->profiled) {
        cJSON *prof = cJSON_AddObjectToObject(root, "profile");
        for (int p = 0; p < N_PHASES; p++) {
            const phase_prof *ph = &b->ph[p];
            cJSON *po = cJSON_AddObjectToObject(prof, phase_names[p]);
            cJSON_AddNumberToObject(po, "wall_ms", ph->wall_ms);
            cJSON *ops = cJSON_AddArrayToObject(po, "ops");
            double timed = 0;
            for (int i = 0; i < DS_PROF_N_OPS; i++) {
                const ds_profile_op *op = &ph->op[i];
                if (!op->calls) continue;
                timed += op->ms;
                cJSON *oo = cJSON_CreateObject();
                cJSON_AddStringToObject(oo, "op", op->name);
                cJSON_AddNumberToObject(oo, "calls", (double)op->calls);
                cJSON_AddNumberToObject(oo, "ms", op->ms);
                cJSON_AddNumberToObject(oo, "share", ph->wall_ms > 0 ? op->ms / ph->wall_ms : 0);
                cJSON_AddNumberToObject(oo, "gflops", op->ms > 0 ? op->flop / 1e6 / op->ms : 0);
                cJSON_AddNumberToObject(oo, "gbs", op->ms > 0 ? op->bytes / 1e6 / op->ms : 0);
                cJSON_AddItemToArray(ops, oo);
            }
            cJSON_AddNumberToObject(po, "other_ms", ph->wall_ms - timed);
            cJSON *ws = cJSON_AddArrayToObject(po, "linear_by_weight");
            int order[DS_PROF_MAX_WEIGHTS];
            weights_by_time(ph, order);
            for (int i = 0; i < ph->n_w; i++) {
                const ds_profile_op *op = &ph->w[order[i]].c;
                cJSON *oo = cJSON_CreateObject();
                cJSON_AddStringToObject(oo, "weight", ph->w[order[i]].name);
                cJSON_AddNumberToObject(oo, "calls", (double)op->calls);
                cJSON_AddNumberToObject(oo, "ms", op->ms);
                cJSON_AddNumberToObject(oo, "share", ph->wall_ms > 0 ? op->ms / ph->wall_ms : 0);
                cJSON_AddNumberToObject(oo, "gflops", op->ms > 0 ? op->flop / 1e6 / op->ms : 0);
                cJSON_AddNumberToObject(oo, "gbs", op->ms > 0 ? op->bytes / 1e6 / op->ms : 0);
                cJSON_AddItemToArray(ws, oo);
            }
        }
    }
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    return s;
}

static void print_table(FILE *f, const bench_out *b) {
    fprintf(f, "dsocr bench: %s, %d cores; backend %s\n", b->cpu, b->cores, b->backend);
    fprintf(f, "model: %s (%.2f GB of %s weights)\n", b->model_dir, b->ckpt_bytes / 1e9, b->weight_dtype);
    fprintf(f, "machine: memory read %.1f GB/s (%.0f MiB, %d threads, best of 10); sgemm %.1f GFLOP/s "
               "(%d^3, %d threads, best of 6)\n", b->bw_gbs, b->bw_mib, b->threads, b->sgemm_gflops, b->sgemm_n, b->threads);
    fprintf(f, "         read of the decoder's own weight pages %.1f GB/s (%.0f MiB, best of 3): decode cannot beat it\n\n",
            b->wread_gbs, mib(b->wread_bytes));

    fprintf(f, "vision, one view  %6s %9s %9s %9s %9s %8s %8s %7s\n", "side", "SAM ms", "CLIP ms", "proj ms",
            "total ms", "GFLOP", "GFLOP/s", "%sgemm");
    for (int i = 0; i < b->n_views; i++) {
        const view_stat *v = &b->views[i];
        const double ms = v->sam_ms + v->clip_ms + v->fuse_ms + v->proj_ms;
        const double gf = (v->flop.sam + v->flop.clip + v->flop.proj) / 1e9;
        fprintf(f, "                  %6d %9.1f %9.1f %9.1f %9.1f %8.1f %8.1f %6.1f%%\n", v->side, v->sam_ms,
                v->clip_ms, v->proj_ms, ms, gf, ratio(gf * 1e3, ms), 100.0 * ratio(ratio(gf * 1e3, ms), b->sgemm_gflops));
    }

    fprintf(f, "\n%-7s %5s %6s %7s %10s %8s %7s %8s %9s %9s %7s %8s %7s %5s\n", "mode", "views", "img", "prompt",
            "vision ms", "GFLOP/s", "%sgemm", "prefill", "TTFT ms", "decode", "MB/tok", "GB/s", "%bw", "cpu");
    fprintf(f, "%-7s %5s %6s %7s %10s %8s %7s %8s %9s %9s %7s %8s %7s\n", "", "", "tokens", "tokens", "", "", "",
            "tok/s", "", "tok/s", "", "", "");
    for (int i = 0; i < b->n_modes; i++) {
        const mode_run *r = &b->modes[i];
        const int n_ids = (int)r->prompt.ids.n;
        const double vgf = ratio(r->vision_gflop * 1e3, r->encode_ms);
        const double tps = mode_decode_tps(r, b->decode_tokens), bpt = r->decode_weight_bytes + r->decode_kv_bytes;
        char views[16];
        snprintf(views, sizeof views, "%d", 1 + r->views.n_tiles);
        fprintf(f, "%-7s %5s %6d %7d %10.0f %8.1f %6.1f%% %8.1f %9.0f %9.2f %7.0f %8.2f %6.1f%% %4.0f%%\n",
                ds_mode_name(r->mode), views, r->n_embeds, n_ids, r->encode_ms, vgf, 100.0 * ratio(vgf, b->sgemm_gflops),
                ratio(n_ids * 1e3, r->prefill_ms), r->preprocess_ms + r->encode_ms + r->prefill_ms, tps, bpt / 1e6,
                bpt * tps / 1e9, 100.0 * ratio(bpt * tps / 1e9, b->bw_gbs), 100.0 * r->cpu_share);
    }
    if (b->runs > 1) {
        fprintf(f, "best of %d runs; the first run (fresh buffers, weights maybe not in the page cache):", b->runs);
        for (int i = 0; i < b->n_modes; i++)
            fprintf(f, "%s %s vision %.0f ms, prefill %.0f ms", i ? ";" : "", ds_mode_name(b->modes[i].mode),
                    b->modes[i].first_encode_ms, b->modes[i].first_prefill_ms);
        fputc('\n', f);
    }
    fprintf(f, "\nmemory after %s: peak RSS %.0f MiB, now %.0f MiB (heap %.0f, mapped weights %.0f); "
               "peak - checkpoint = %+.0f MiB\n",
            b->memory_after, mib(b->peak_rss), mib(b->rss), mib(b->rss_anon), mib(b->rss_file),
            mib(b->peak_rss - b->ckpt_bytes));
    const targets t = bench_targets(b);
    fprintf(f, "decode vs the read bandwidth right after each 8 tokens (%d MiB probe, median):", PROBE_MIB);
    for (int i = 0; i < b->n_modes; i++) {
        const mode_run *r = &b->modes[i];
        fprintf(f, "%s %s %.1f%% of %.1f GB/s", i ? ";" : "", ds_mode_name(r->mode), 100.0 * r->decode_ratio_paired,
                r->paired_read_gbs);
    }
    fputc('\n', f);
    const mode_run *last = &b->modes[b->n_modes - 1];
    fprintf(f, "targets (%s): decode %.1f%% of the bandwidth, %.1f%% of the paired read (>= 80%%: %s); "
               "vision %.1f%% of sgemm (>= 70%%: %s); peak - checkpoint %+.2f GB (<= 1 GB: %s)\n",
            ds_mode_name(last->mode), 100 * t.decode_bw, 100 * last->decode_ratio_paired,
            t.decode_bw >= 0.8 ? "yes" : last->decode_ratio_paired >= 0.8 ? "paired only" : "no",
            100 * t.vision_sgemm, t.vision_sgemm >= 0.7 ? "yes" : "no", t.peak_over_ckpt / 1e9,
            t.peak_over_ckpt <= 1e9 ? "yes" : "no");
    if (b->n_formats) {
        const format_run *f0 = &b->formats[0];
        fprintf(f, "\ndecode by weight format, in this run (a %d-id text prompt, then the formats take turns, "
                   "8 tokens each, %d rounds):\n", b->formats_prompt, f0->rounds);
        char vs[16];
        snprintf(vs, sizeof vs, "vs %s", format_names[f0->format]);
        fprintf(f, "  %-7s %-8s %9s %10s %9s %9s %8s %12s\n", "format", "dtype", "tok/s", vs, "MB/tok", "KV MB/tok", "GB/s",
                "quantize ms");
        for (int i = 0; i < b->n_formats; i++) {
            const format_run *r = &b->formats[i];
            fprintf(f, "  %-7s %-8s %9.2f %9.2fx %9.0f %9.0f %8.2f %12.0f\n", format_names[r->format], r->dtype, r->tps,
                    r->vs_first, r->weight_bytes / 1e6, r->kv_bytes / 1e6, (r->weight_bytes + r->kv_bytes) * r->tps / 1e9,
                    r->quant_ms);
        }
        fprintf(f, "  (vs %s: the median over rounds of %s's time for 8 tokens over this format's)\n",
                format_names[f0->format], format_names[f0->format]);
        if (f0->format == FMT_BF16)
            for (int i = 1; i < b->n_formats; i++) {
                const int q8 = b->formats[i].format == FMT_Q8;
                fprintf(f, "targets: %s %.2fx bf16 (>= %s: %s)\n", format_names[b->formats[i].format], b->formats[i].vs_first,
                        q8 ? "1.7x" : "3x", b->formats[i].vs_first >= (q8 ? 1.7 : 3.0) ? "yes" : "no");
            }
    }
    double least = 1;
    for (int i = 0; i < b->n_modes; i++)
        if (b->modes[i].cpu_share < least) least = b->modes[i].cpu_share;
    fprintf(f, "load: %.2f before the runs, %.2f at the end; this process got >= %.0f%% of its %d threads' CPU time%s\n",
            b->load_start, b->load_end, 100 * least, b->threads,
            least < 0.9 ? " (other work shared the cores: timings are pessimistic)" : "");


    if (!b->profiled) return;
    for (int p = 0; p < N_PHASES; p++) {
        const phase_prof *ph = &b->ph[p];
        fprintf(f, "\nprofile: %s (%.0f ms, all modes)\n  %-12s %8s %10s %7s %9s %8s\n", phase_names[p], ph->wall_ms,
                "op", "calls", "ms", "share", "GFLOP/s", "GB/s");
        double timed = 0;
        int order[DS_PROF_N_OPS];
        for (int i = 0; i < DS_PROF_N_OPS; i++) order[i] = i;
        for (int i = 1; i < DS_PROF_N_OPS; i++)   /* by time, largest first */
            for (int j = i; j > 0 && ph->op[order[j]].ms > ph->op[order[j - 1]].ms; j--) {
                int t = order[j]; order[j] = order[j - 1]; order[j - 1] = t;
            }
        for (int k = 0; k < DS_PROF_N_OPS; k++) {
            const ds_profile_op *op = &ph->op[order[k]];
            if (!op->calls) continue;
            timed += op->ms;
            fprintf(f, "  %-12s %8lld %10.1f %6.1f%% %9.1f %8.2f\n", op->name, (long long)op->calls, op->ms,
                    100.0 * ratio(op->ms, ph->wall_ms), giga_per_s(op->flop, op->ms), giga_per_s(op->bytes, op->ms));
        }
        fprintf(f, "  %-12s %8s %10.1f %6.1f%%\n", "other", "", ph->wall_ms - timed,
                100.0 * ratio(ph->wall_ms - timed, ph->wall_ms));
        int worder[DS_PROF_MAX_WEIGHTS];
        weights_by_time(ph, worder);
        fprintf(f, "  linear by weight (top 8 of %d)\n", ph->n_w);
        for (int k = 0; k < ph->n_w && k < 8; k++) {
            const ds_profile_op *op = &ph->w[worder[k]].c;
            fprintf(f, "    %-56s %8lld %10.1f %6.1f%% %9.1f %8.2f\n", ph->w[worder[k]].name, (long long)op->calls,
                    op->ms, 100.0 * ratio(op->ms, ph->wall_ms), giga_per_s(op->flop, op->ms),
                    giga_per_s(op->bytes, op->ms));
        }
    }
}

/* ---- the command ------------------------------------------------------------------------ */

static int parse_modes(const char *text, dsocr_mode *out, int *n) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", text);
    *n = 0;
    if (!strcmp(buf, "all")) {
        for (int i = 0; i < MAX_MODES; i++) out[(*n)++] = (dsocr_mode)i;
        return 0;
    }
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int found = -1;
        for (int i = 0; i < MAX_MODES; i++)
            if (!strcmp(tok, ds_mode_name((dsocr_mode)i))) found = i;
        if (found < 0) return cli_error("--modes: '%s' is not one of tiny, small, base, large, gundam, all", tok);
        for (int i = 0; i < *n; i++)
            if (out[i] == (dsocr_mode)found) return cli_error("--modes: '%s' given twice", tok);
        out[(*n)++] = (dsocr_mode)found;
    }
    if (*n == 0) return cli_error("--modes: no mode given");
    return 0;
}

int dsocr_cmd_bench(int argc, char **argv) {
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'}, {"tokenizer-from", required_argument, 0, 'T'},
        {"modes", required_argument, 0, 'M'}, {"decode-tokens", required_argument, 0, 'd'},
        {"runs", required_argument, 0, 'r'}, {"threads", required_argument, 0, 't'},
        {"json", required_argument, 0, 'j'}, {"ops", no_argument, 0, 'O'},
        {"bw-mb", required_argument, 0, 'b'}, {"sgemm-n", required_argument, 0, 'g'},
        {"quant", required_argument, 0, 'Q'}, {"formats", required_argument, 0, 'F'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int quant = DSOCR_QUANT_NONE, formats[MAX_FORMATS], n_formats = 0;
    const char *model_dir = NULL, *tok_dir = NULL, *json_path = NULL, *modes_text = "tiny,base,gundam";
    int n_decode = 64, runs = 2, threads = 0, ops = 0, bw_mb = 1024, sgemm_n = 2048;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 'T': tok_dir = optarg; break;
        case 'M': modes_text = optarg; break;
        case 'd': if (cli_parse_int("--decode-tokens", optarg, 1, 100000, &n_decode)) return 2; break;
        case 'r': if (cli_parse_int("--runs", optarg, 1, 100, &runs)) return 2; break;
        case 't': if (cli_parse_int("--threads", optarg, 1, 1024, &threads)) return 2; break;
        case 'j': json_path = optarg; break;
        case 'O': ops = 1; break;
        case 'b': if (cli_parse_int("--bw-mb", optarg, 16, 65536, &bw_mb)) return 2; break;
        case 'g': if (cli_parse_int("--sgemm-n", optarg, 64, 16384, &sgemm_n)) return 2; break;
        case 'Q':
            if (!strcmp(optarg, "q8")) quant = DSOCR_QUANT_Q8;
            else if (!strcmp(optarg, "q4")) quant = DSOCR_QUANT_Q4;
            else if (!strcmp(optarg, "none")) quant = DSOCR_QUANT_NONE;
            else return cli_error("--quant: '%s' is not one of q8, q4, none", optarg), 2;
            break;
        case 'F': if (parse_formats(optarg, formats, &n_formats)) return 2; break;
        case 'h': fputs(bench_help, stdout); return 0;
        case ':': return cli_error("%s needs a value (see dsocr bench --help)", argv[optind - 1]), 2;
        default: return cli_error("unknown option '%s' (see dsocr bench --help)", argv[optind - 1]), 2;
        }
    }
    if (optind < argc) return cli_error("bench: unexpected argument '%s' (see dsocr bench --help)", argv[optind]), 2;
    dsocr_mode modes[MAX_MODES];
    int n_modes;
    if (parse_modes(modes_text, modes, &n_modes)) return 2;
    if (json_path && strcmp(json_path, "-")) {   /* fail now, not after minutes of measuring */
        FILE *f = fopen(json_path, "a");
        if (!f) return cli_error("bench: cannot write %s: %s", json_path, strerror(errno));
        fclose(f);
    }

    /* the checkpoint: given, or the cached random full-size one */
    char dir[4096];
    if (model_dir) snprintf(dir, sizeof dir, "%s", model_dir);
    else {
        if (default_model_dir(dir, sizeof dir)) return cli_error("bench: neither XDG_CACHE_HOME nor HOME is set; give -m DIR");
        char cfg_path[4200];
        snprintf(cfg_path, sizeof cfg_path, "%s/config.json", dir);
        if (!file_exists(cfg_path)) {
            if (!tok_dir) tok_dir = find_tokenizer_dir();
            if (!tok_dir)
                return cli_error("bench: generating %s needs a tokenizer: give --tokenizer-from DIR (a folder "
                                 "with tokenizer.json, e.g. ../shared/golden/tiny-model)", dir);
            int rc = generate_checkpoint(dir, tok_dir);
            if (rc) return rc;
        }
    }

    dsocr_error err;
    dsocr_load_params lp = dsocr_load_default_params();
    lp.n_threads = threads;
    lp.offline = 1;
    lp.quant = quant;
    dsocr_model *m = NULL;
    if (dsocr_model_load(dir, &lp, &m, &err)) return cli_fail(&err);

    bench_out out;
    memset(&out, 0, sizeof out);
    phase_prof ph[N_PHASES];
    memset(ph, 0, sizeof ph);
    mode_run runs_of[MAX_MODES];
    memset(runs_of, 0, sizeof runs_of);
    view_stat views[MAX_MODES * 2];
    int n_views = 0;
    float *view_pixels[MAX_MODES * 2] = {0};   /* one copy of a view per distinct side */
    int view_side[MAX_MODES * 2] = {0};
    dsocr_image *page = NULL;
    ds_decoder *dec = NULL;
    weight_pages pages = {0};   /* the decoder's weights: read once at the end */
    weight_pages probe = {0};   /* PROBE_MIB of anonymous memory read after every 8 decode tokens */
    byte_range probe_range = {0};
    ds_profile *prof = NULL;
    int rc = 0;
    dsocr_status s;

    if ((s = make_page(&page, &err))) goto fail;
    int max_ctx = 0;
    for (int i = 0; i < n_modes; i++) {
        runs_of[i].mode = modes[i];
        if ((s = prepare_mode(m, page, &runs_of[i], &err))) goto fail;
        int ctx = (int)runs_of[i].prompt.ids.n + n_decode;
        if (ctx > max_ctx) max_ctx = ctx;
        /* keep one view of each side for the per-stage timing */
        const ds_views *v = &runs_of[i].views;
        const int sides[2] = {v->global_size, v->n_tiles ? v->tile_size : 0};
        const float *px[2] = {v->global_pixels, v->tiles_pixels};
        for (int k = 0; k < 2; k++) {
            int seen = !sides[k];
            for (int j = 0; j < n_views; j++) seen |= view_side[j] == sides[k];
            if (seen) continue;
            size_t n = 3 * (size_t)sides[k] * sides[k];
            if (!(view_pixels[n_views] = malloc(n * sizeof(float)))) {
                s = ds_fail(&err, DSOCR_ERR_NOMEM, "bench: out of memory");
                goto fail;
            }
            memcpy(view_pixels[n_views], px[k], n * sizeof(float));
            view_side[n_views++] = sides[k];
        }
    }
    ds_decoder_params dp = {.max_ctx = max_ctx, .rope_bf16_inv_freq = m->rope_bf16, .kv_bf16 = m->quant.arena != NULL};
    if ((s = ds_decoder_new(m->be, &m->cfg.lm, &m->w.lm, &dp, &dec, &err))) goto fail;
    weight_pages_of(&m->w.lm, &pages);
    probe_range.n = (size_t)PROBE_MIB << 20;
    if ((probe_range.p = malloc(probe_range.n))) {
        memset((void *)probe_range.p, 1, probe_range.n);
        probe = (weight_pages){&probe_range, 1, probe_range.n};
    }
    if (ops && (s = ds_profile_start(m->be, &prof, &err))) goto fail;

    /* 1. the machine's limits, measured before and after the model runs, the best kept
     *    (other work on the machine lowers them; the best is what the machine can do) */
    fprintf(stderr, "dsocr bench: memory bandwidth and sgemm ...\n");
    out.threads = ds_backend_threads(m->be);
    out.bw_mib = bw_mb;
    out.sgemm_n = sgemm_n;
    out.load_start = load_average();
    out.bw_gbs = measure_bandwidth((size_t)bw_mb << 20, out.threads, 5, &out.bw_share);
    out.sgemm_gflops = measure_sgemm(sgemm_n, out.threads, 3, &out.sgemm_share);
    reset_peak_rss();

    /* 2. every mode end to end; memory is read after the last (gundam by default) */
    for (int i = 0; i < n_modes; i++) {
        fprintf(stderr, "dsocr bench: %s mode ...\n", ds_mode_name(modes[i]));
        if ((s = run_mode(m, dec, &runs_of[i], runs, n_decode, &probe, prof, ph, &err))) goto fail;
    }
    proc_memory(&out.peak_rss, &out.rss, &out.rss_anon, &out.rss_file);
    out.peak_rss -= (double)probe.total;   /* the probe is the bench's, not the model's */
    out.rss -= (double)probe.total;
    out.rss_anon -= (double)probe.total;
    out.memory_after = ds_mode_name(modes[n_modes - 1]);
    ds_profile_stop(m->be, prof);
    prof = NULL;

    /* 3. one view of each side through the encoder stages */
    fprintf(stderr, "dsocr bench: vision stages per view ...\n");
    for (int i = 0; i < n_views; i++)
        if ((s = time_view(m, view_pixels[i], view_side[i], &views[i], &err))) goto fail;

    /* 4. (--formats) decode by weight format, the formats taking turns */
    if (n_formats) {
        out.formats_prompt = (int)runs_of[n_modes - 1].prompt.ids.n;
        if ((s = compare_formats(m, formats, n_formats, out.formats_prompt, n_decode, out.formats, &err))) goto fail;
        out.n_formats = n_formats;
    }

    /* 5. the machine's limits again */
    fprintf(stderr, "dsocr bench: memory bandwidth and sgemm again ...\n");
    double bw_share, sg_share;
    double bw = measure_bandwidth((size_t)bw_mb << 20, out.threads, 5, &bw_share);
    double sg = measure_sgemm(sgemm_n, out.threads, 3, &sg_share);
    if (bw > out.bw_gbs) { out.bw_gbs = bw; out.bw_share = bw_share; }
    if (sg > out.sgemm_gflops) { out.sgemm_gflops = sg; out.sgemm_share = sg_share; }
    for (int r = 0; r < 3; r++) {   /* best of 3 */
        double g = read_pages_once(&pages, out.threads);
        if (g > out.wread_gbs) out.wread_gbs = g;
    }
    out.wread_bytes = (double)pages.total;
    out.load_end = load_average();

    cpu_model(out.cpu, sizeof out.cpu);
    out.cores = ds_physical_cores();
    out.backend = ds_backend_name(m->be);
    out.model_dir = dir;
    out.ckpt_bytes = checkpoint_bytes(dir);
    out.weight_dtype = ds_dtype_name(m->w.lm.lm_head.dtype);
    out.decode_tokens = n_decode;
    out.runs = runs;
    out.modes = runs_of;
    out.n_modes = n_modes;
    out.views = views;
    out.n_views = n_views;
    out.profiled = ops;
    out.ph = ph;

    int json_stdout = json_path && !strcmp(json_path, "-");
    print_table(json_stdout ? stderr : stdout, &out);
    if (json_path) {
        char *text = bench_json(&out);
        FILE *f = !text ? NULL : json_stdout ? stdout : fopen(json_path, "w");
        if (!f) rc = cli_error("bench: cannot write %s%s", json_path, text ? "" : " (out of memory)");
        else {
            int ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
            if (!json_stdout && fclose(f) != 0) ok = 0;
            if (!ok) rc = cli_error("bench: cannot write %s", json_path);
        }
        free(text);
    }
    goto cleanup;

fail:
    rc = cli_fail(&err);
cleanup:
    if (prof) ds_profile_stop(m->be, prof);
    for (int i = 0; i < n_modes; i++) {
        ds_views_free(&runs_of[i].views);
        ds_prompt_free(&runs_of[i].prompt);
    }
    for (int i = 0; i < n_views; i++) free(view_pixels[i]);
    ds_decoder_free(dec);
    free(pages.r);
    free((void *)probe_range.p);
    dsocr_image_free(page);
    dsocr_model_free(m);
    return rc;
}
