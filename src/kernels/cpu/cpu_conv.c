/* Fast conv2d as GEMM: 1x1 stride-1 convolutions are a linear over the pixels as they
 * are; others gather patches (im2col, chunks of output rows) into a buffer laid out as
 * the weight's rows [Cin, kh, kw], then run the fast linear on them. */
#include <string.h>

#include "kernels/cpu/cpu.h"
#include "kernels/ref/ref.h"

#define IM2COL_MAX_FLOATS ((size_t)8 << 20)   /* 32 MiB of patches per chunk */

typedef struct {
    float *A; const float *x;
    int H, W, Cin, kh, kw, stride, pad, Wo, oy0;
} im2col_job;

/* items = output pixels of the chunk; A[p][(ci·kh + ky)·kw + kx] */
static void im2col_task(void *ctx, int64_t p0, int64_t p1, int tid) {
    (void)tid;
    im2col_job *J = ctx;
    int taps = J->Cin * J->kh * J->kw, kk = J->kh * J->kw;
    for (int64_t p = p0; p < p1; p++) {
        int oy = J->oy0 + (int)(p / J->Wo), ox = (int)(p % J->Wo);
        float *a = J->A + (size_t)p * taps;
        for (int ky = 0; ky < J->kh; ky++) {
            int iy = oy * J->stride - J->pad + ky;
            for (int kx = 0; kx < J->kw; kx++) {
                int ix = ox * J->stride - J->pad + kx;
                float *dst = a + ky * J->kw + kx;
                if (iy < 0 || iy >= J->H || ix < 0 || ix >= J->W) {
                    for (int ci = 0; ci < J->Cin; ci++) dst[(size_t)ci * kk] = 0.0f;
                    continue;
                }
                const float *src = J->x + ((size_t)iy * J->W + ix) * J->Cin;
                if (kk == 1) memcpy(dst, src, (size_t)J->Cin * sizeof(float));
                else for (int ci = 0; ci < J->Cin; ci++) dst[(size_t)ci * kk] = src[ci];
            }
        }
    }
}

void ds_cpu_conv2d(ds_backend *be, float *y, const float *x, int H, int W, int Cin,
                   const ds_tensor *w, const ds_tensor *b, int stride, int pad) {
    int Cout = (int)w->shape[0], kh = (int)w->shape[2], kw = (int)w->shape[3];
    int Ho = (H + 2 * pad - kh) / stride + 1, Wo = (W + 2 * pad - kw) / stride + 1;
    if (Ho <= 0 || Wo <= 0) return;
    int taps = Cin * kh * kw;
    ds_tensor w2 = *w;          /* the weight as a Linear [Cout, Cin·kh·kw] */
    w2.ndim = 2;
    w2.shape[1] = taps;
    w2.stride[1] = 1;
    if (kh == 1 && kw == 1 && stride == 1 && pad == 0) {
        ds_cpu_linear(be, y, x, H * W, Cin, &w2, b, 0, Cout);
        return;
    }
    int rows = (int)(IM2COL_MAX_FLOATS / ((size_t)Wo * taps));
    if (rows < 1) rows = 1;
    if (rows > Ho) rows = Ho;
    float *A = ds_backend_work(be, DS_WORK_IM2COL, (size_t)rows * Wo * taps);
    if (!A) {   /* ops cannot fail: the reference needs no buffer */
        ds_ref_conv2d(be, y, x, H, W, Cin, w, b, stride, pad);
        return;
    }
    for (int oy0 = 0; oy0 < Ho; oy0 += rows) {
        int n_rows = Ho - oy0 < rows ? Ho - oy0 : rows;
        im2col_job J = {A, x, H, W, Cin, kh, kw, stride, pad, Wo, oy0};
        int64_t n_pix = (int64_t)n_rows * Wo;
        ds_pool_for(be->pool, n_pix, 16, im2col_task, &J);
        ds_cpu_linear(be, y + (size_t)oy0 * Wo * Cout, A, (int)n_pix, taps, &w2, b, 0, Cout);
    }
}
