/* Fast CPU kernels (run-time dispatch on CPU features). Each has a reference twin
 * in kernels/ref and is tested against it. */
#ifndef DS_KERNELS_CPU_H
#define DS_KERNELS_CPU_H

#include "kernels/backend.h"

/* CPU features, probed once by ds_kernels_cpu. */
extern int ds_cpu_has_avx512;     /* avx512f + avx512bw + avx512vl */
extern int ds_cpu_has_avx512vnni; /* and avx512_vnni (vpdpbusd): the x4 quantized layouts */
extern int ds_cpu_has_avx2;       /* avx2 + fma + f16c (used where AVX-512 is absent) */
/* aarch64 (getauxval): NEON is baseline there; the extensions are reported in the
 * backend name and are for int8 kernels (SDOT/UDOT) and bf16 x bf16 products. */
extern int ds_cpu_has_neon;
extern int ds_cpu_has_dotprod;    /* HWCAP_ASIMDDP */
extern int ds_cpu_has_bf16;       /* HWCAP2_BF16 */

/* dst[n] = f32(row of a weight), vectorised where the CPU allows. */
void ds_cpu_row_to_f32(const ds_tensor *W, int64_t row, int64_t n, float *dst);

/* Vectorised row dequantizer of Q8_0 / Q4_0 weights (cpu_quant.c). */
void ds_cpu_dequant_row(const ds_tensor *W, int64_t row, int64_t n, float *dst);

/* ---- decode GEMV (small M): one linear, or a batch of them in one pool job ----------
 * Below DS_GEMV_MAX_M activation rows a GEMV that streams each weight row once beats
 * packing the weights for sgemm (measured with tests/bench_kernels.c). A job the GEMV
 * takes (ds_cpu_gemv_ok: bf16, Q8_0 and Q4_0 on AVX-512 or AVX2) runs on a thread in two steps:
 * prep lays x out for the row kernel in that thread's scratch, rows computes y rows
 * [r0, r1) (relative to n0). Each output row is the same for any split into ranges. */
#define DS_GEMV_MAX_M 16
/* Software prefetch of the multi-row GEMV kernels (bf16 and quantized): the same columns
 * GEMV_PF_GROUPS groups of rows ahead, with this hint; compile-time knobs for A/B runs. */
#ifndef GEMV_PF_GROUPS
#define GEMV_PF_GROUPS 1
#endif
#ifndef GEMV_PF_HINT
#define GEMV_PF_HINT _MM_HINT_T0
#endif
int ds_cpu_gemv_ok(const ds_linear_job *J);
void ds_cpu_linear_batch(ds_backend *be, int n, const ds_linear_job *jobs);
#if defined(__x86_64__)
void ds_cpu_bf16_gemv_prep(const ds_linear_job *J, float *buf);      /* M * (K/32*32) floats */
void ds_cpu_bf16_gemv_rows(const ds_linear_job *J, const float *buf, int64_t r0, int64_t r1);
void ds_cpu_bf16_gemv_rows_avx2(const ds_linear_job *J, const float *buf, int64_t r0, int64_t r1);
void ds_avx2_bf16_to_f32(const uint16_t *src, int64_t n, float *dst);
size_t ds_cpu_quant_gemv_prep_floats(const ds_linear_job *J);
void ds_cpu_quant_gemv_prep(const ds_linear_job *J, float *buf);
void ds_cpu_quant_gemv_rows(const ds_linear_job *J, const float *buf, int64_t r0, int64_t r1);
#endif

void ds_cpu_linear(ds_backend *be, float *y, const float *x, int M, int K,
                   const ds_tensor *W, const ds_tensor *b, int64_t n0, int64_t n1);
void ds_cpu_conv2d(ds_backend *be, float *y, const float *x, int H, int W, int Cin,
                   const ds_tensor *w, const ds_tensor *b, int stride, int pad);
void ds_cpu_attention(ds_backend *be, const ds_attn_args *a);
int ds_cpu_attention_kv16(ds_backend *be, const ds_attn_args *a);   /* bf16 K/V: 1 when it ran */
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

/* ---- f32 GEMM (cpu_gemm.c) ----------------------------------------------------------
 * C[M, N] = alpha · A[M, K] · op(B) + beta · C, row-major, single-threaded (callers
 * parallelise over blocks); op(B) = Bᵀ with B [N, K] when trans_b, else B [K, N].
 * beta = 0 never reads C. ds_cpu_sgemm is cblas_sgemm, or with -DDSOCR_NO_BLAS the
 * blocked GEMM, which is always built (and tested) as ds_cpu_sgemm_blocked. */
void ds_cpu_sgemm(int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc);
void ds_cpu_sgemm_blocked(int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                          const float *B, int ldb, float beta, float *C, int ldc);
#define DS_GEMM_MR 8    /* register tile of the micro-kernel: rows of A */
#define DS_GEMM_NR 12   /* columns of op(B) */

/* ---- NEON kernels (aarch64 only; kernels/cpu/cpu_*_neon.c) -------------------------- */
#if defined(__aarch64__)
void ds_neon_gemm_tile(int kc, const float *Ap, const float *Bp, float *C, int ldc, float alpha, float beta);
void ds_neon_bf16_to_f32(const uint16_t *src, int64_t n, float *dst);
void ds_neon_f16_to_f32(const uint16_t *src, int64_t n, float *dst);
void ds_neon_gemv_bf16(ds_backend *be, float *y, const float *x, int M, int K,
                       const ds_tensor *W, const ds_tensor *b, int64_t n0, int64_t n1);
float ds_neon_exp_row(float *s, int n, float mx);   /* s = exp(s - mx) in place; returns Σ */
void ds_neon_layernorm(ds_backend *be, float *y, const float *x, int rows, int dim,
                       const ds_tensor *w, const ds_tensor *b, float eps);
void ds_neon_rmsnorm(ds_backend *be, float *y, const float *x, int rows, int dim,
                     const ds_tensor *w, float eps);
void ds_neon_softmax(ds_backend *be, float *x, int rows, int n);
void ds_neon_gelu_erf(ds_backend *be, float *x, size_t n);
void ds_neon_quick_gelu(ds_backend *be, float *x, size_t n);
void ds_neon_silu(ds_backend *be, float *x, size_t n);
void ds_neon_silu_mul(ds_backend *be, float *y, const float *gate, const float *up, size_t n);
#endif

#endif
