/* Reference linear and conv2d: one weight row at a time widened to f32, dot
 * products accumulated in double (four partial sums to keep the loop short). */
#include <math.h>

#include "kernels/ref/ref.h"

static double dot_f64(const float *a, const float *b, int64_t n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += (double)a[i] * b[i];
        s1 += (double)a[i + 1] * b[i + 1];
        s2 += (double)a[i + 2] * b[i + 2];
        s3 += (double)a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += (double)a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

/* ---- linear ---------------------------------------------------------------- */

typedef struct {
    ds_backend *be;
    float *y; const float *x;
    int M, K;
    const ds_tensor *W, *b;
    int64_t n0, N;          /* output columns n0 .. n0+N of W */
} linear_job;

/* items = output columns (weight rows) */
static void linear_task(void *ctx, int64_t j0, int64_t j1, int tid) {
    linear_job *L = ctx;
    float *wrow = ds_scratch(L->be, tid);          /* [K] */
    for (int64_t j = j0; j < j1; j++) {
        int64_t n = L->n0 + j;
        double bias = L->b ? ds_tensor_get_f32(L->b, n) : 0.0;
        if ((size_t)L->K > DS_SCRATCH_FLOATS) {   /* row longer than the scratch: element by element */
            for (int m = 0; m < L->M; m++) {
                double s = 0;
                for (int k = 0; k < L->K; k++)
                    s += (double)L->x[(size_t)m * L->K + k] * ds_tensor_get_f32(L->W, n * L->W->stride[0] + k);
                L->y[(size_t)m * L->N + j] = (float)(s + bias);
            }
            continue;
        }
        ds_w_row_f32(L->W, n, L->K, wrow);
        for (int m = 0; m < L->M; m++)
            L->y[(size_t)m * L->N + j] = (float)(dot_f64(L->x + (size_t)m * L->K, wrow, L->K) + bias);
    }
}

void ds_ref_linear(ds_backend *be, float *y, const float *x, int M, int K,
                   const ds_tensor *W, const ds_tensor *b, int64_t n0, int64_t n1) {
    if (M <= 0 || n1 <= n0) return;
    linear_job L = {be, y, x, M, K, W, b, n0, n1 - n0};
    int64_t grain = 1 + 4096 / ((int64_t)M * K + 1);
    ds_pool_for(be->pool, L.N, grain, linear_task, &L);
}

void ds_ref_linear_batch(ds_backend *be, int n, const ds_linear_job *jobs) {
    for (int i = 0; i < n; i++) {
        const ds_linear_job *J = &jobs[i];
        be->k.linear(be, J->y, J->x, J->M, J->K, J->W, J->b, J->n0, ds_job_n1(J));
    }
}

/* ---- conv2d ---------------------------------------------------------------- */

typedef struct {
    ds_backend *be;
    float *y; const float *x;
    int H, W, Cin, Cout, kh, kw, stride, pad, Ho, Wo;
    const ds_tensor *w, *b;
} conv_job;

/* items = output channels: the weight row of one channel is widened once, then
 * swept over every output pixel. */
static void conv_task(void *ctx, int64_t c0, int64_t c1, int tid) {
    conv_job *C = ctx;
    float *wrow = ds_scratch(C->be, tid);          /* [Cin, kh, kw] */
    int64_t taps = (int64_t)C->Cin * C->kh * C->kw;
    for (int64_t co = c0; co < c1; co++) {
        ds_w_row_f32(C->w, co, taps, wrow);
        double bias = C->b ? ds_tensor_get_f32(C->b, co) : 0.0;
        for (int oy = 0; oy < C->Ho; oy++)
            for (int ox = 0; ox < C->Wo; ox++) {
                double acc = bias;
                for (int ky = 0; ky < C->kh; ky++) {
                    int iy = oy * C->stride - C->pad + ky;
                    if (iy < 0 || iy >= C->H) continue;
                    for (int kx = 0; kx < C->kw; kx++) {
                        int ix = ox * C->stride - C->pad + kx;
                        if (ix < 0 || ix >= C->W) continue;
                        const float *px = C->x + ((size_t)iy * C->W + ix) * C->Cin;
                        const float *wk = wrow + (size_t)ky * C->kw + kx;   /* stride kh*kw over ci */
                        for (int ci = 0; ci < C->Cin; ci++)
                            acc += (double)px[ci] * wk[(size_t)ci * C->kh * C->kw];
                    }
                }
                C->y[((size_t)oy * C->Wo + ox) * C->Cout + co] = (float)acc;
            }
    }
}

void ds_ref_conv2d(ds_backend *be, float *y, const float *x, int H, int W, int Cin,
                   const ds_tensor *w, const ds_tensor *b, int stride, int pad) {
    conv_job C = {be, y, x, H, W, Cin, (int)w->shape[0], (int)w->shape[2], (int)w->shape[3],
                  stride, pad, 0, 0, w, b};
    C.Ho = (H + 2 * pad - C.kh) / stride + 1;
    C.Wo = (W + 2 * pad - C.kw) / stride + 1;
    if (C.Ho <= 0 || C.Wo <= 0) return;
    ds_pool_for(be->pool, C.Cout, 1, conv_task, &C);
}
