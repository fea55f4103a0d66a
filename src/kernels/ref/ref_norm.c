/* Reference normalisations, softmax and activations (double internally). */
#include <math.h>

#include "kernels/ref/ref.h"

/* ---- row-wise ops ---------------------------------------------------------- */

typedef struct {
    float *y; const float *x;
    int dim;
    const ds_tensor *w, *b;
    float eps;
} norm_job;

static void layernorm_task(void *ctx, int64_t r0, int64_t r1, int tid) {
    (void)tid;
    norm_job *J = ctx;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = J->x + (size_t)r * J->dim;
        float *y = J->y + (size_t)r * J->dim;
        double mean = 0, var = 0;
        for (int i = 0; i < J->dim; i++) mean += x[i];
        mean /= J->dim;
        for (int i = 0; i < J->dim; i++) var += (x[i] - mean) * (x[i] - mean);
        var /= J->dim;
        double inv = 1.0 / sqrt(var + J->eps);
        for (int i = 0; i < J->dim; i++) {
            double w = J->w ? ds_tensor_get_f32(J->w, i) : 1.0;
            y[i] = (float)((x[i] - mean) * inv * w + ds_vec_get(J->b, i));
        }
    }
}

void ds_ref_layernorm(ds_backend *be, float *y, const float *x, int rows, int dim,
                      const ds_tensor *w, const ds_tensor *b, float eps) {
    norm_job J = {y, x, dim, w, b, eps};
    ds_pool_for(be->pool, rows, 1 + 16384 / (dim + 1), layernorm_task, &J);
}

static void rmsnorm_task(void *ctx, int64_t r0, int64_t r1, int tid) {
    (void)tid;
    norm_job *J = ctx;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = J->x + (size_t)r * J->dim;
        float *y = J->y + (size_t)r * J->dim;
        double ss = 0;
        for (int i = 0; i < J->dim; i++) ss += (double)x[i] * x[i];
        double inv = 1.0 / sqrt(ss / J->dim + J->eps);
        for (int i = 0; i < J->dim; i++) {
            double w = J->w ? ds_tensor_get_f32(J->w, i) : 1.0;
            y[i] = (float)(w * (x[i] * inv));
        }
    }
}

void ds_ref_rmsnorm(ds_backend *be, float *y, const float *x, int rows, int dim,
                    const ds_tensor *w, float eps) {
    norm_job J = {y, x, dim, w, NULL, eps};
    ds_pool_for(be->pool, rows, 1 + 16384 / (dim + 1), rmsnorm_task, &J);
}

static void softmax_task(void *ctx, int64_t r0, int64_t r1, int tid) {
    (void)tid;
    norm_job *J = ctx;
    for (int64_t r = r0; r < r1; r++) {
        float *x = J->y + (size_t)r * J->dim;
        float mx = -INFINITY;
        for (int i = 0; i < J->dim; i++) if (x[i] > mx) mx = x[i];
        if (mx == -INFINITY) { /* every entry masked: define the row as zeros, not NaN */
            for (int i = 0; i < J->dim; i++) x[i] = 0.0f;
            continue;
        }
        double sum = 0;
        for (int i = 0; i < J->dim; i++) sum += exp((double)x[i] - mx);
        for (int i = 0; i < J->dim; i++) x[i] = (float)(exp((double)x[i] - mx) / sum);
    }
}

void ds_ref_softmax(ds_backend *be, float *x, int rows, int n) {
    norm_job J = {x, x, n, NULL, NULL, 0};
    ds_pool_for(be->pool, rows, 1 + 16384 / (n + 1), softmax_task, &J);
}

/* ---- elementwise ----------------------------------------------------------- */

typedef struct { float *y; const float *a, *b; } elt_job;

static void gelu_task(void *ctx, int64_t i0, int64_t i1, int tid) {
    (void)tid;
    elt_job *J = ctx;
    for (int64_t i = i0; i < i1; i++) { double v = J->y[i]; J->y[i] = (float)(0.5 * v * (1.0 + erf(v * M_SQRT1_2))); }
}
static void quick_gelu_task(void *ctx, int64_t i0, int64_t i1, int tid) {
    (void)tid;
    elt_job *J = ctx;
    for (int64_t i = i0; i < i1; i++) { double v = J->y[i]; J->y[i] = (float)(v / (1.0 + exp(-1.702 * v))); }
}
static void silu_task(void *ctx, int64_t i0, int64_t i1, int tid) {
    (void)tid;
    elt_job *J = ctx;
    for (int64_t i = i0; i < i1; i++) { double v = J->y[i]; J->y[i] = (float)(v / (1.0 + exp(-v))); }
}
static void silu_mul_task(void *ctx, int64_t i0, int64_t i1, int tid) {
    (void)tid;
    elt_job *J = ctx;
    for (int64_t i = i0; i < i1; i++) { double g = J->a[i]; J->y[i] = (float)(g / (1.0 + exp(-g)) * J->b[i]); }
}

#define ELT_GRAIN 16384

void ds_ref_gelu_erf(ds_backend *be, float *x, size_t n) {
    elt_job J = {x, NULL, NULL};
    ds_pool_for(be->pool, (int64_t)n, ELT_GRAIN, gelu_task, &J);
}
void ds_ref_quick_gelu(ds_backend *be, float *x, size_t n) {
    elt_job J = {x, NULL, NULL};
    ds_pool_for(be->pool, (int64_t)n, ELT_GRAIN, quick_gelu_task, &J);
}
void ds_ref_silu(ds_backend *be, float *x, size_t n) {
    elt_job J = {x, NULL, NULL};
    ds_pool_for(be->pool, (int64_t)n, ELT_GRAIN, silu_task, &J);
}
void ds_ref_silu_mul(ds_backend *be, float *y, const float *gate, const float *up, size_t n) {
    elt_job J = {y, gate, up};
    ds_pool_for(be->pool, (int64_t)n, ELT_GRAIN, silu_mul_task, &J);
}
