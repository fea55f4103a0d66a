/* Fast CPU kernels (run-time dispatch on CPU features). Each has a reference twin
 * in kernels/ref and is tested against it. */
#ifndef DS_KERNELS_CPU_H
#define DS_KERNELS_CPU_H

#include "kernels/backend.h"

/* CPU features, probed once by ds_kernels_cpu. */
extern int ds_cpu_has_avx512;     /* avx512f + avx512bw + avx512vl */

/* dst[n] = f32(row of a weight), vectorised where the CPU allows. */
void ds_cpu_row_to_f32(const ds_tensor *W, int64_t row, int64_t n, float *dst);

void ds_cpu_linear(ds_backend *be, float *y, const float *x, int M, int K,
                   const ds_tensor *W, const ds_tensor *b, int64_t n0, int64_t n1);
void ds_cpu_conv2d(ds_backend *be, float *y, const float *x, int H, int W, int Cin,
                   const ds_tensor *w, const ds_tensor *b, int stride, int pad);
void ds_cpu_attention(ds_backend *be, const ds_attn_args *a);
void ds_cpu_relpos(ds_backend *be, float *rel_h, float *rel_w, const float *q, int q_stride,
                   int64_t q_batch_stride, int batch, int n_heads, int head_dim,
                   int qh, int qw, int kh, int kw, const float *Rh, const float *Rw);
void ds_cpu_layernorm(ds_backend *be, float *y, const float *x, int rows, int dim,
                      const ds_tensor *w, const ds_tensor *b, float eps);
void ds_cpu_rmsnorm(ds_backend *be, float *y, const float *x, int rows, int dim,
                    const ds_tensor *w, float eps);
void ds_cpu_softmax(ds_backend *be, float *x, int rows, int n);
void ds_cpu_gelu_erf(ds_backend *be, float *x, size_t n);
void ds_cpu_quick_gelu(ds_backend *be, float *x, size_t n);
void ds_cpu_silu(ds_backend *be, float *x, size_t n);
void ds_cpu_silu_mul(ds_backend *be, float *y, const float *gate, const float *up, size_t n);

#endif
