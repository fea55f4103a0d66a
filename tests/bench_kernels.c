/* Kernel benchmark (not a test): ./bench_kernels [threads] [filter]
 * Prints GFLOP/s of linear, GB/s of the decode GEMV, and times of attention,
 * conv and elementwise ops at the model's sizes, for the fast CPU backend and
 * (where quick) the reference backend. */
#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/pool.h"
#include "kernels/ops.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t seed = 1;
static float frand(void) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((seed >> 40) & 0xffffff) / 16777216.0f - 0.5f;
}

static float *buf(size_t n) {
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = frand();
    return p;
}

static ds_tensor bf16_weight(int64_t N, int64_t K) {
    ds_tensor t = {0};
    t.dtype = DS_BF16; t.ndim = 2; t.shape[0] = N; t.shape[1] = K;
    ds_tensor_set_contiguous(&t);
    uint16_t *d = malloc((size_t)N * K * 2);
    for (int64_t i = 0; i < N * K; i++) d[i] = ds_f32_to_bf16(frand() * 0.1f);
    t.data = d;
    return t;
}

static const char *filter;
static int want(const char *name) { return !filter || strstr(name, filter); }

/* best of `reps` runs, after one warm-up */
#define TIME_BEST(reps, stmt) ({ stmt; double best_ = 1e30; \
    for (int r_ = 0; r_ < (reps); r_++) { double t0_ = now(); stmt; double t_ = now() - t0_; if (t_ < best_) best_ = t_; } best_; })

static void bench_linear(ds_backend *be, int M, int K, int N, int reps) {
    ds_tensor W = bf16_weight(N, K);
    float *x = buf((size_t)M * K), *y = malloc((size_t)M * N * 4);
    double t = TIME_BEST(reps, ds_op_linear(be, y, x, M, K, &W, NULL));
    double flops = 2.0 * M * K * N, bytes = 2.0 * N * K;
    printf("  linear M=%-5d K=%-5d N=%-6d bf16: %8.3f ms  %7.1f GFLOP/s  %6.1f GB/s (weights)\n",
           M, K, N, t * 1e3, flops / t * 1e-9, bytes / t * 1e-9);
    free(W.data); free(x); free(y);
}

/* Alternative measured for the record: whole weight widened once, OpenBLAS threading. */
static void bench_openblas_whole(int M, int K, int N, int threads) {
    float *w = buf((size_t)N * K), *x = buf((size_t)M * K), *y = malloc((size_t)M * N * 4);
    openblas_set_num_threads(threads);
    double t = TIME_BEST(3, cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, x, K, w, K, 0.0f, y, N));
    openblas_set_num_threads(1);
    printf("  (openblas sgemm %d threads, f32 weights pre-widened) M=%d K=%d N=%d: %8.3f ms  %7.1f GFLOP/s\n",
           threads, M, K, N, t * 1e3, 2.0 * M * K * N / t * 1e-9);
    free(w); free(x); free(y);
}

static void bench_attention(ds_backend *be, int Lq, int L, int H, int hd, int relpos, int causal, int reps) {
    int D = H * hd, row = 3 * D;
    float *qkv = buf((size_t)L * row), *out = malloc((size_t)L * D * 4);
    int g = (int)sqrt((double)L);
    float *rel_h = NULL, *rel_w = NULL, *Rh = NULL, *Rw = NULL;
    ds_attn_args a = {0};
    a.out = out; a.out_stride = D; a.q = qkv; a.k = qkv + D; a.v = qkv + 2 * D;
    a.q_stride = a.k_stride = a.v_stride = row;
    a.Lq = Lq; a.Lk = L; a.q_pos0 = L - Lq; a.n_heads = H; a.head_dim = hd; a.batch = 1;
    a.scale = 1.0f / sqrtf((float)hd); a.causal = causal;
    if (relpos) {
        Rh = buf((size_t)(2 * g - 1) * hd); Rw = buf((size_t)(2 * g - 1) * hd);
        rel_h = malloc((size_t)H * L * g * 4); rel_w = malloc((size_t)H * L * g * 4);
        double tr = TIME_BEST(reps, ds_op_relpos(be, rel_h, rel_w, a.q, row, 0, 1, H, hd, g, g, g, g, Rh, Rw));
        printf("  relpos %dx%d H=%d hd=%d: %8.3f ms\n", g, g, H, hd, tr * 1e3);
        a.rel_h = rel_h; a.rel_w = rel_w; a.kh = g; a.kw = g;
    }
    double t = TIME_BEST(reps, ds_op_attention(be, &a));
    double flops = 4.0 * Lq * (double)L * hd * H * (causal && Lq > 1 ? 0.5 : 1.0);
    printf("  attention Lq=%d Lk=%d H=%d hd=%d%s%s: %8.3f ms  %7.1f GFLOP/s\n", Lq, L, H, hd, relpos ? " relpos" : "",
           causal ? " causal" : "", t * 1e3, flops / t * 1e-9);
    free(qkv); free(out); free(rel_h); free(rel_w); free(Rh); free(Rw);
}

static void bench_conv(ds_backend *be, int H, int Cin, int Cout, int k, int stride, int pad, int reps) {
    int64_t K = (int64_t)Cin * k * k;
    ds_tensor w = bf16_weight(Cout, K);
    w.ndim = 4; w.shape[0] = Cout; w.shape[1] = Cin; w.shape[2] = k; w.shape[3] = k;
    ds_tensor_set_contiguous(&w);
    int Ho = (H + 2 * pad - k) / stride + 1;
    float *x = buf((size_t)H * H * Cin), *y = malloc((size_t)Ho * Ho * Cout * 4);
    double t = TIME_BEST(reps, ds_op_conv2d(be, y, x, H, H, Cin, &w, NULL, stride, pad));
    printf("  conv %dx%dx%d -> %d k%d s%d: %8.3f ms  %7.1f GFLOP/s\n", H, H, Cin, Cout, k, stride, t * 1e3,
           2.0 * Ho * Ho * Cout * K / t * 1e-9);
    free(w.data); free(x); free(y);
}

static void bench_elementwise(ds_backend *be, int reps) {
    size_t n = (size_t)4096 * 3072;
    float *x = buf(n);
    double t = TIME_BEST(reps, ds_op_gelu_erf(be, x, n));
    printf("  gelu_erf %zu: %8.3f ms\n", n, t * 1e3);
    for (size_t i = 0; i < n; i++) x[i] = frand();
    t = TIME_BEST(reps, ds_op_quick_gelu(be, x, n));
    printf("  quick_gelu %zu: %8.3f ms\n", n, t * 1e3);
    for (size_t i = 0; i < n; i++) x[i] = frand();
    t = TIME_BEST(reps, ds_op_silu_mul(be, x, x, x, n));
    printf("  silu_mul %zu: %8.3f ms\n", n, t * 1e3);
    ds_tensor w = bf16_weight(1, 768), b = bf16_weight(1, 768);
    w.ndim = b.ndim = 1; w.shape[0] = b.shape[0] = 768; w.stride[0] = b.stride[0] = 1;
    for (size_t i = 0; i < n; i++) x[i] = frand();
    t = TIME_BEST(reps, ds_op_layernorm(be, x, x, 4096 * 4, 768, &w, &b, 1e-6f));
    printf("  layernorm 16384x768: %8.3f ms\n", t * 1e3);
    t = TIME_BEST(reps, ds_op_softmax(be, x, 1024, 4096));
    printf("  softmax 1024x4096: %8.3f ms\n", t * 1e3);
    free(x); free(w.data); free(b.data);
}

/* Memory read ceiling for the GEMV numbers: sum a 512 MiB array on n threads. */
typedef struct { const float *p; double part[64]; } bw_job;
static void bw_task(void *ctx, int64_t i0, int64_t i1, int tid) {
    bw_job *J = ctx;
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int64_t i = i0 * 4096; i < i1 * 4096; i += 4) { s0 += J->p[i]; s1 += J->p[i + 1]; s2 += J->p[i + 2]; s3 += J->p[i + 3]; }
    J->part[tid] += s0 + s1 + s2 + s3;
}
__attribute__((target("avx512f")))
static void bw_task512(void *ctx, int64_t i0, int64_t i1, int tid) {
    bw_job *J = ctx;
    __m512 a = _mm512_setzero_ps(), b = a, c = a, d = a;
    for (int64_t i = i0 * 4096; i < i1 * 4096; i += 64) {
        a = _mm512_add_ps(a, _mm512_loadu_ps(J->p + i)); b = _mm512_add_ps(b, _mm512_loadu_ps(J->p + i + 16));
        c = _mm512_add_ps(c, _mm512_loadu_ps(J->p + i + 32)); d = _mm512_add_ps(d, _mm512_loadu_ps(J->p + i + 48));
    }
    J->part[tid] += _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a, b), _mm512_add_ps(c, d)));
}
static void bench_bandwidth(int threads) {
    size_t n = (size_t)128 << 20;
    float *p = buf(n);
    ds_pool *pool;
    if (ds_pool_new(threads, &pool, NULL) != DSOCR_OK) return;
    bw_job J = {p, {0}};
    int avx = __builtin_cpu_supports("avx512f");
    double t = TIME_BEST(3, ds_pool_for(pool, (int64_t)(n / 4096), 64, avx ? bw_task512 : bw_task, &J));
    printf("  memory read, %d threads: %.1f GB/s (ceiling for the GEMV)\n", ds_pool_threads(pool), n * 4.0 / t * 1e-9);
    ds_pool_free(pool);
    free(p);
}

static void run(ds_backend *be, int quick) {
    printf("%s\n", ds_backend_name(be));
    int reps = quick ? 1 : 5;
    if (want("linear")) {
        bench_linear(be, 4096, 768, 2304, quick ? 1 : 3);
        if (!quick) {
            bench_linear(be, 4096, 768, 768, 3);
            bench_linear(be, 4096, 3072, 768, 3);
            bench_linear(be, 257, 1024, 3072, 3);
            bench_linear(be, 100, 2048, 1280, 3);
            bench_linear(be, 16, 1280, 6848, 5);
        }
    }
    if (want("gemv")) {
        bench_bandwidth(ds_backend_threads(be));
        bench_linear(be, 1, 1280, 6848, reps);
        bench_linear(be, 1, 6848, 1280, reps);
        bench_linear(be, 1, 1280, 129280, quick ? 1 : 3);
        if (!quick) {
            bench_linear(be, 4, 1280, 6848, reps);
            bench_linear(be, 8, 1280, 6848, reps);
            bench_linear(be, 15, 1280, 6848, reps);
            bench_linear(be, 1, 1280, 896, 20);
        }
    }
    if (want("attention")) {
        if (!quick) {
            bench_attention(be, 4096, 4096, 12, 64, 1, 0, 1);
            bench_attention(be, 196, 196, 12, 64, 1, 0, 5);
            bench_attention(be, 257, 257, 16, 64, 0, 0, 5);
            bench_attention(be, 1024, 1024, 10, 128, 0, 1, 3);
            bench_attention(be, 1, 2048, 10, 128, 0, 1, 20);   /* decode step */
        } else {
            bench_attention(be, 1024, 1024, 12, 64, 1, 0, 1);
        }
    }
    if (want("conv")) {
        bench_conv(be, 1024, 3, 768, 16, 16, 0, quick ? 1 : 3);
        if (!quick) {
            bench_conv(be, 64, 256, 256, 3, 1, 1, 3);
            bench_conv(be, 64, 256, 512, 3, 2, 1, 3);
            bench_conv(be, 32, 512, 1024, 3, 2, 1, 3);
            bench_conv(be, 64, 768, 256, 1, 1, 0, 3);
        }
    }
    if (want("elementwise")) bench_elementwise(be, quick ? 1 : 3);
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 0;
    filter = argc > 2 ? argv[2] : NULL;
    dsocr_error err;
    ds_backend *cpu, *ref;
    if (ds_backend_cpu_new(threads, &cpu, &err) != DSOCR_OK || ds_backend_ref_new(threads, &ref, &err) != DSOCR_OK) {
        fprintf(stderr, "bench_kernels: %s\n", err.message);
        return 1;
    }
    run(cpu, 0);
    if (!filter || strstr(filter, "openblas")) {
        bench_openblas_whole(4096, 768, 2304, 1);
        bench_openblas_whole(4096, 768, 2304, ds_backend_threads(cpu));
    }
    if (getenv("BENCH_REF")) run(ref, 1);
    ds_backend_free(cpu);
    ds_backend_free(ref);
    return 0;
}
