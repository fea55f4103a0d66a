/* NEON (aarch64) normalisations, softmax and activations: the twins of the AVX-512
 * ones in cpu_elementwise.c. Tails shorter than a vector go through a 4-float
 * buffer so that every element gets exactly the same math. */
#if defined(__aarch64__)
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/cpu_math_neon.h"

#define ELT_GRAIN 16384

typedef struct { float *y; const float *a, *b; } elt_job;

/* ---- activations ------------------------------------------------------------------ */

/* 0.5 x (1 + erf(x/√2)) = 0.5 x erfc(-x/√2); erfc of a negative argument is 2 - erfc(|.|) */
static inline float32x4_t gelu4(float32x4_t x, float32x4_t unused) {
    (void)unused;
    float32x4_t c = ds_erfc_pos_neon(vabsq_f32(vmulq_f32(x, vdupq_n_f32(0.70710678118654752f))));
    c = vbslq_f32(vcgtq_f32(x, vdupq_n_f32(0.0f)), vsubq_f32(vdupq_n_f32(2.0f), c), c);
    return vmulq_f32(vmulq_f32(vdupq_n_f32(0.5f), x), c);
}

/* x · sigmoid(k x) = x / (1 + exp(-k x)) */
static inline float32x4_t x_sigmoid4(float32x4_t x, float32x4_t k) {
    float32x4_t e = ds_exp_neon(vmulq_f32(x, vnegq_f32(k)));
    return vdivq_f32(x, vaddq_f32(vdupq_n_f32(1.0f), e));
}

/* y[i0..i1) = f(y, k) in place, tail through a buffer */
#define UNARY_TASK(name, fn, kval) \
static void name(void *ctx, int64_t i0, int64_t i1, int tid) { \
    (void)tid; \
    float *y = ((elt_job *)ctx)->y; \
    const float32x4_t k = vdupq_n_f32(kval); \
    int64_t i = i0; \
    for (; i + 4 <= i1; i += 4) vst1q_f32(y + i, fn(vld1q_f32(y + i), k)); \
    if (i < i1) { \
        float t[4] = {0}; \
        memcpy(t, y + i, (size_t)(i1 - i) * sizeof(float)); \
        vst1q_f32(t, fn(vld1q_f32(t), k)); \
        memcpy(y + i, t, (size_t)(i1 - i) * sizeof(float)); \
    } \
}
UNARY_TASK(gelu_task, gelu4, 0.0f)
UNARY_TASK(quick_gelu_task, x_sigmoid4, 1.702f)
UNARY_TASK(silu_task, x_sigmoid4, 1.0f)

static void silu_mul_task(void *ctx, int64_t i0, int64_t i1, int tid) {
    (void)tid;
    elt_job *J = ctx;
    const float32x4_t one = vdupq_n_f32(1.0f);
    int64_t i = i0;
    for (; i + 4 <= i1; i += 4)
        vst1q_f32(J->y + i, vmulq_f32(x_sigmoid4(vld1q_f32(J->a + i), one), vld1q_f32(J->b + i)));
    if (i < i1) {
        size_t n = (size_t)(i1 - i) * sizeof(float);
        float g[4] = {0}, u[4] = {0};
        memcpy(g, J->a + i, n);
        memcpy(u, J->b + i, n);
        vst1q_f32(g, vmulq_f32(x_sigmoid4(vld1q_f32(g), one), vld1q_f32(u)));
        memcpy(J->y + i, g, n);
    }
}

void ds_neon_gelu_erf(ds_backend *be, float *x, size_t n) {
    elt_job J = {x, NULL, NULL};
    ds_pool_for(be->pool, (int64_t)n, ELT_GRAIN, gelu_task, &J);
}
void ds_neon_quick_gelu(ds_backend *be, float *x, size_t n) {
    elt_job J = {x, NULL, NULL};
    ds_pool_for(be->pool, (int64_t)n, ELT_GRAIN, quick_gelu_task, &J);
}
void ds_neon_silu(ds_backend *be, float *x, size_t n) {
    elt_job J = {x, NULL, NULL};
    ds_pool_for(be->pool, (int64_t)n, ELT_GRAIN, silu_task, &J);
}
void ds_neon_silu_mul(ds_backend *be, float *y, const float *gate, const float *up, size_t n) {
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

/* Σ (x - c)^p for p = 1 (sum) or 2 (squares) */
static float sum_pow(const float *x, int n, float c, int squares) {
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = acc0, vc = vdupq_n_f32(c);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t d0 = vsubq_f32(vld1q_f32(x + i), vc), d1 = vsubq_f32(vld1q_f32(x + i + 4), vc);
        if (squares) { acc0 = vfmaq_f32(acc0, d0, d0); acc1 = vfmaq_f32(acc1, d1, d1); }
        else { acc0 = vaddq_f32(acc0, d0); acc1 = vaddq_f32(acc1, d1); }
    }
    float s = vaddvq_f32(vaddq_f32(acc0, acc1));
    for (; i < n; i++) s += squares ? (x[i] - c) * (x[i] - c) : x[i] - c;
    return s;
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

static void layernorm_task(void *ctx, int64_t r0, int64_t r1, int tid) {
    norm_job *J = ctx;
    int dim = J->dim;
    float *wf = ds_scratch(J->be, tid), *bf = wf + dim;
    load_affine(J, wf, bf);
    for (int64_t r = r0; r < r1; r++) {
        const float *x = J->x + (size_t)r * dim;
        float *y = J->y + (size_t)r * dim;
        float mean = sum_pow(x, dim, 0.0f, 0) / dim;
        float var = sum_pow(x, dim, mean, 1) / dim;
        float inv = 1.0f / sqrtf(var + J->eps);
        float32x4_t vmean = vdupq_n_f32(mean), vinv = vdupq_n_f32(inv);
        int i = 0;
        for (; i + 4 <= dim; i += 4) {
            float32x4_t v = vmulq_f32(vsubq_f32(vld1q_f32(x + i), vmean), vinv);
            vst1q_f32(y + i, vfmaq_f32(vld1q_f32(bf + i), v, vld1q_f32(wf + i)));
        }
        for (; i < dim; i++) y[i] = fmaf((x[i] - mean) * inv, wf[i], bf[i]);
    }
}

static void rmsnorm_task(void *ctx, int64_t r0, int64_t r1, int tid) {
    norm_job *J = ctx;
    int dim = J->dim;
    float *wf = ds_scratch(J->be, tid);
    load_affine(J, wf, NULL);
    for (int64_t r = r0; r < r1; r++) {
        const float *x = J->x + (size_t)r * dim;
        float *y = J->y + (size_t)r * dim;
        float inv = 1.0f / sqrtf(sum_pow(x, dim, 0.0f, 1) / dim + J->eps);
        float32x4_t vinv = vdupq_n_f32(inv);
        int i = 0;
        for (; i + 4 <= dim; i += 4)
            vst1q_f32(y + i, vmulq_f32(vld1q_f32(wf + i), vmulq_f32(vld1q_f32(x + i), vinv)));
        for (; i < dim; i++) y[i] = wf[i] * (x[i] * inv);
    }
}

/* s[0..n) = exp(s - mx) in place; returns the sum. Also used by the flash attention. */
float ds_neon_exp_row(float *s, int n, float mx) {
    float32x4_t vmx = vdupq_n_f32(mx), acc = vdupq_n_f32(0.0f);
    int j = 0;
    for (; j + 4 <= n; j += 4) {
        float32x4_t e = ds_exp_neon(vsubq_f32(vld1q_f32(s + j), vmx));
        vst1q_f32(s + j, e);
        acc = vaddq_f32(acc, e);
    }
    float sum = vaddvq_f32(acc);
    if (j < n) {
        float t[4] = {0};
        memcpy(t, s + j, (size_t)(n - j) * sizeof(float));
        vst1q_f32(t, ds_exp_neon(vsubq_f32(vld1q_f32(t), vmx)));
        memcpy(s + j, t, (size_t)(n - j) * sizeof(float));
        for (int i = 0; i < n - j; i++) sum += t[i];
    }
    return sum;
}

static void softmax_task(void *ctx, int64_t r0, int64_t r1, int tid) {
    (void)tid;
    norm_job *J = ctx;
    int n = J->dim;
    for (int64_t r = r0; r < r1; r++) {
        float *x = J->y + (size_t)r * n;
        float32x4_t vmax = vdupq_n_f32(-INFINITY);
        int i = 0;
        for (; i + 4 <= n; i += 4) vmax = vmaxq_f32(vmax, vld1q_f32(x + i));
        float mx = vmaxvq_f32(vmax);
        for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
        if (mx == -INFINITY) {  /* every entry masked: zeros, not NaN */
            for (i = 0; i < n; i++) x[i] = 0.0f;
            continue;
        }
        float32x4_t inv = vdupq_n_f32(1.0f / ds_neon_exp_row(x, n, mx));
        for (i = 0; i + 4 <= n; i += 4) vst1q_f32(x + i, vmulq_f32(vld1q_f32(x + i), inv));
        for (; i < n; i++) x[i] *= vgetq_lane_f32(inv, 0);
    }
}

void ds_neon_layernorm(ds_backend *be, float *y, const float *x, int rows, int dim,
                       const ds_tensor *w, const ds_tensor *b, float eps) {
    norm_job J = {be, y, x, dim, w, b, eps};
    ds_pool_for(be->pool, rows, 1 + 16384 / (dim + 1), layernorm_task, &J);
}

void ds_neon_rmsnorm(ds_backend *be, float *y, const float *x, int rows, int dim,
                     const ds_tensor *w, float eps) {
    norm_job J = {be, y, x, dim, w, NULL, eps};
    ds_pool_for(be->pool, rows, 1 + 16384 / (dim + 1), rmsnorm_task, &J);
}

void ds_neon_softmax(ds_backend *be, float *x, int rows, int n) {
    norm_job J = {be, x, x, n, NULL, NULL, 0};
    ds_pool_for(be->pool, rows, 1 + 16384 / (n + 1), softmax_task, &J);
}

#else
/* ISO C forbids an empty translation unit */
typedef int ds_cpu_elementwise_neon_unused;
#endif
