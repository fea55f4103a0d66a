/* Scalar reference kernels: plain loops, double accumulation, threaded over
 * independent outputs only. The fast kernels in kernels/cpu are tested against these. */
#ifndef DS_KERNELS_REF_H
#define DS_KERNELS_REF_H

#include "kernels/backend.h"

void ds_ref_linear(ds_backend *be, float *y, const float *x, int M, int K,
                   const ds_tensor *W, const ds_tensor *b, int64_t n0, int64_t n1);
/* One ds_ref_linear per job, in order (through the kernel table's linear). */
void ds_ref_linear_batch(ds_backend *be, int n, const ds_linear_job *jobs);
void ds_ref_conv2d(ds_backend *be, float *y, const float *x, int H, int W, int Cin,
                   const ds_tensor *w, const ds_tensor *b, int stride, int pad);
void ds_ref_layernorm(ds_backend *be, float *y, const float *x, int rows, int dim,
                      const ds_tensor *w, const ds_tensor *b, float eps);
void ds_ref_rmsnorm(ds_backend *be, float *y, const float *x, int rows, int dim,
                    const ds_tensor *w, float eps);
void ds_ref_softmax(ds_backend *be, float *x, int rows, int n);
void ds_ref_gelu_erf(ds_backend *be, float *x, size_t n);
void ds_ref_quick_gelu(ds_backend *be, float *x, size_t n);
void ds_ref_silu(ds_backend *be, float *x, size_t n);
void ds_ref_silu_mul(ds_backend *be, float *y, const float *gate, const float *up, size_t n);
void ds_ref_attention(ds_backend *be, const ds_attn_args *a);
void ds_ref_relpos(ds_backend *be, float *rel_h, float *rel_w, const float *q, int q_stride,
                   int64_t q_batch_stride, int batch, int n_heads, int head_dim,
                   int qh, int qw, int kh, int kw, const float *Rh, const float *Rw);
void ds_ref_rope(ds_backend *be, float *x, int x_stride, int L, int n_heads, int head_dim,
                 int pos0, const float *inv_freq);

#endif
