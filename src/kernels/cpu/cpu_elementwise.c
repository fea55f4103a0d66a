/* Vectorised (AVX-512) normalisations, softmax and activations. Entries stay on the
 * reference kernels on CPUs without AVX-512; aarch64 has its own (cpu_elementwise_neon.c). */
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/cpu_math.h"

#define ELT_GRAIN 16384

static inline __mmask16 tail_mask(int64_t left) {
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}

/* ---- activations ------------------------------------------------------------------ */

typedef struct { float *y; const float *a, *b; } elt_job;

/* 0.5 x (1 + erf(x/√2)) = 0.5 x erfc(-x/√2); erfc of a negative argument is 2 - erfc(|.|) */
__attribute__((target("avx512f")))
static void gelu_task(void *ctx, int64_t i0, int64_t i1, int tid) {
    (void)tid;
    elt_job *J = ctx;
    const __m512 half = _mm512_set1_ps(0.5f), two = _mm512_set1_ps(2.0f), rs2 = _mm512_set1_ps(0.70710678118654752f);
    for (int64_t i = i0; i < i1; i += 16) {
        __mmask16 m = tail_mask(i1 - i);
        __m512 x = _mm512_maskz_loadu_ps(m, J->y + i);
        __m512 z = _mm512_mul_ps(x, rs2);
        __m512 c = ds_erfc512_pos(_mm512_abs_ps(z));                  /* erfc(|z|) */
        __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ);
        c = _mm512_mask_sub_ps(c, pos, two, c);                        /* erfc(-z) */
        _mm512_mask_storeu_ps(J->y + i, m, _mm512_mul_ps(_mm512_mul_ps(half, x), c));
    }
}

/* y = x · sigmoid(k x) = x / (1 + exp(-k x)) */
__attribute__((target("avx512f"), always_inline))
static inline __m512 x_sigmoid(__m512 x, __m512 k) {
    __m512 e = ds_exp512(_mm512_mul_ps(x, _mm512_sub_ps(_mm512_setzero_ps(), k)));
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

__attribute__((target("avx512f")))
static void quick_gelu_task(void *ctx, int64_t i0, int64_t i1, int tid) {
    (void)tid;
    elt_job *J = ctx;
    const __m512 k = _mm512_set1_ps(1.702f);
    for (int64_t i = i0; i < i1; i += 16) {
        __mmask16 m = tail_mask(i1 - i);
        _mm512_mask_storeu_ps(J->y + i, m, x_sigmoid(_mm512_maskz_loadu_ps(m, J->y + i), k));
    }
}

__attribute__((target("avx512f")))
static void silu_task(void *ctx, int64_t i0, int64_t i1, int tid) {
    (void)tid;
    elt_job *J = ctx;
    const __m512 k = _mm512_set1_ps(1.0f);
    for (int64_t i = i0; i < i1; i += 16) {
        __mmask16 m = tail_mask(i1 - i);
        _mm512_mask_storeu_ps(J->y + i, m, x_sigmoid(_mm512_maskz_loadu_ps(m, J->y + i), k));
    }
}

__attribute__((target("avx512f")))
static void silu_mul_task(void *ctx, int64_t i0, int64_t i1, int tid) {
    (void)tid;
    elt_job *J = ctx;
    const __m512 k = _mm512_set1_ps(1.0f);
    for (int64_t i = i0; i < i1; i += 16) {
        __mmask16 m = tail_mask(i1 - i);
        __m512 g = x_sigmoid(_mm512_maskz_loadu_ps(m, J->a + i), k);
        _mm512_mask_storeu_ps(J->y + i, m, _mm512_mul_ps(g, _mm512_maskz_loadu_ps(m, J->b + i)));
    }
}

void ds_cpu_gelu_erf(ds_backend *be, float *x, size_t n) {
    elt_job J = {x, NULL, NULL};
    ds_pool_for(be->pool, (int64_t)n, ELT_GRAIN, gelu_task, &J);
}
void ds_cpu_quick_gelu(ds_backend *be, float *x, size_t n) {
    elt_job J = {x, NULL, NULL};
    ds_pool_for(be->pool, (int64_t)n, ELT_GRAIN, quick_gelu_task, &J);
}
void ds_cpu_silu(ds_backend *be, float *x, size_t n) {
    elt_job J = {x, NULL, NULL};
    ds_pool_for(be->pool, (int64_t)n, ELT_GRAIN, silu_task, &J);
}
void ds_cpu_silu_mul(ds_backend *be, float *y, const float *gate, const float *up, size_t n) {
    elt_job J = {y, gate, up};
    ds_pool_for(be->pool, (int64_t)n, ELT_GRAIN, silu_mul_task, &J);
}

/* ---- row-wise ---------------------------------------------------------------------- */

typedef struct {
    ds_backend *be;
    float *y; const float *x;
    int dim;
    const ds_tensor *w, *b;
    float eps;
} norm_job;

__attribute__((target("avx512f")))
static float sum_avx512(const float *x, int n) {
    __m512 acc = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(tail_mask(n - i), x + i));
    return _mm512_reduce_add_ps(acc);
}

/* Σ (x - c)² */
__attribute__((target("avx512f")))
static float sumsq_avx512(const float *x, int n, float c) {
    __m512 acc = _mm512_setzero_ps(), vc = _mm512_set1_ps(c);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), vc);
        acc = _mm512_fmadd_ps(d, d, acc);
    }
    return _mm512_reduce_add_ps(acc);
}

/* w and b widened once per task into the scratch (1 and 0 when absent) */
static void load_affine(const norm_job *J, float *wf, float *bf) {
    if (J->w) ds_cpu_row_to_f32(J->w, 0, J->dim, wf);
    else for (int i = 0; i < J->dim; i++) wf[i] = 1.0f;
    if (bf) {
        if (J->b) ds_cpu_row_to_f32(J->b, 0, J->dim, bf);
        else for (int i = 0; i < J->dim; i++) bf[i] = 0.0f;
    }
}

__attribute__((target("avx512f")))
static void layernorm_task(void *ctx, int64_t r0, int64_t r1, int tid) {
    norm_job *J = ctx;
    int dim = J->dim;
    float *wf = ds_scratch(J->be, tid), *bf = wf + dim;
    load_affine(J, wf, bf);
    for (int64_t r = r0; r < r1; r++) {
        const float *x = J->x + (size_t)r * dim;
        float *y = J->y + (size_t)r * dim;
        float mean = sum_avx512(x, dim) / dim;
        float var = sumsq_avx512(x, dim, mean) / dim;
        __m512 vmean = _mm512_set1_ps(mean), vinv = _mm512_set1_ps(1.0f / sqrtf(var + J->eps));
        for (int i = 0; i < dim; i += 16) {
            __mmask16 m = tail_mask(dim - i);
            __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vmean), vinv);
            v = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(m, wf + i), _mm512_maskz_loadu_ps(m, bf + i));
            _mm512_mask_storeu_ps(y + i, m, v);
        }
    }
}

__attribute__((target("avx512f")))
static void rmsnorm_task(void *ctx, int64_t r0, int64_t r1, int tid) {
    norm_job *J = ctx;
    int dim = J->dim;
    float *wf = ds_scratch(J->be, tid);
    load_affine(J, wf, NULL);
    for (int64_t r = r0; r < r1; r++) {
        const float *x = J->x + (size_t)r * dim;
        float *y = J->y + (size_t)r * dim;
        __m512 vinv = _mm512_set1_ps(1.0f / sqrtf(sumsq_avx512(x, dim, 0.0f) / dim + J->eps));
        for (int i = 0; i < dim; i += 16) {
            __mmask16 m = tail_mask(dim - i);
            __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vinv);
            _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, wf + i), v));
        }
    }
}

__attribute__((target("avx512f")))
static void softmax_task(void *ctx, int64_t r0, int64_t r1, int tid) {
    (void)tid;
    norm_job *J = ctx;
    int n = J->dim;
    for (int64_t r = r0; r < r1; r++) {
        float *x = J->y + (size_t)r * n;
        __m512 vmax = _mm512_set1_ps(-INFINITY);
        for (int i = 0; i < n; i += 16) {
            __mmask16 m = tail_mask(n - i);
            vmax = _mm512_mask_max_ps(vmax, m, vmax, _mm512_maskz_loadu_ps(m, x + i));
        }
        float mx = _mm512_reduce_max_ps(vmax);
        if (mx == -INFINITY) {  /* every entry masked: zeros, not NaN */
            for (int i = 0; i < n; i++) x[i] = 0.0f;
            continue;
        }
        __m512 acc = _mm512_setzero_ps();
        vmax = _mm512_set1_ps(mx);
        for (int i = 0; i < n; i += 16) {
            __mmask16 m = tail_mask(n - i);
            __m512 e = _mm512_maskz_mov_ps(m, ds_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vmax)));
            _mm512_mask_storeu_ps(x + i, m, e);
            acc = _mm512_add_ps(acc, e);
        }
        __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(acc));
        for (int i = 0; i < n; i += 16) {
            __mmask16 m = tail_mask(n - i);
            _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
        }
    }
}

void ds_cpu_layernorm(ds_backend *be, float *y, const float *x, int rows, int dim,
                      const ds_tensor *w, const ds_tensor *b, float eps) {
    norm_job J = {be, y, x, dim, w, b, eps};
    ds_pool_for(be->pool, rows, 1 + 16384 / (dim + 1), layernorm_task, &J);
}

void ds_cpu_rmsnorm(ds_backend *be, float *y, const float *x, int rows, int dim,
                    const ds_tensor *w, float eps) {
    norm_job J = {be, y, x, dim, w, NULL, eps};
    ds_pool_for(be->pool, rows, 1 + 16384 / (dim + 1), rmsnorm_task, &J);
}

void ds_cpu_softmax(ds_backend *be, float *x, int rows, int n) {
    norm_job J = {be, x, x, n, NULL, NULL, 0};
    ds_pool_for(be->pool, rows, 1 + 16384 / (n + 1), softmax_task, &J);
}

#else
/* ISO C forbids an empty translation unit */
typedef int ds_cpu_elementwise_unused;
#endif
