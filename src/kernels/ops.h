/* The op interface: every computation the model does goes through these calls.
 * Model code includes only this header and never sees which backend runs the op
 * (CPU now; CUDA and Metal later implement the same calls), as ggml keeps its
 * backends behind one interface.
 *
 * Conventions
 * - Activations are float32 arrays in backend memory (host memory on the CPU
 *   backend), row-major; "[M, K]" means M rows of K floats.
 * - Weights are ds_tensor views of the checkpoint, BF16, F16 or F32, used in place
 *   (never widened as a whole). A Linear weight is [N, K] (PyTorch [out, in]).
 * - Images and feature maps are HWC: [H*W, C], one token per pixel, row-major.
 * - Ops do not fail: shapes are validated once at load time. They may use all the
 *   backend's threads.
 */
#ifndef DS_OPS_H
#define DS_OPS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "core/tensor.h"

typedef struct ds_backend ds_backend;

/* ---- backend ------------------------------------------------------------ */

/* n_threads <= 0: one per physical core. */
dsocr_status ds_backend_cpu_new(int n_threads, ds_backend **out, dsocr_error *err);
/* The same backend running only the plain scalar reference kernels (double sums):
 * slow; for tests that check fast kernels and model stages against it. */
dsocr_status ds_backend_ref_new(int n_threads, ds_backend **out, dsocr_error *err);
void ds_backend_free(ds_backend *be);
int ds_backend_threads(const ds_backend *be);
const char *ds_backend_name(const ds_backend *be);   /* e.g. "cpu (avx512-vnni, 2 threads)" */
/* The layout of weights quantized to t (Q8_0 / Q4_0) that this backend's linear runs
 * fastest: t, or for Q4_0 on AVX512-VNNI Q4_0X4 (rows interleaved in fours, core/quant.h). */
ds_dtype ds_backend_quant_dtype(const ds_backend *be, ds_dtype t);
/* 1 when this backend's one-query attention reads a bf16 KV cache directly
 * (ds_attn_args.k16), so that such a cache halves a decode step's K/V bytes; other
 * backends take bf16 keys and values too, widened to f32 first (slower than f32). */
int ds_backend_kv_bf16(const ds_backend *be);

/* Activation buffers. Allocate once per model/request and reuse: first touch of
 * fresh pages is slow on these machines. Returns NULL on failure. 64-byte aligned. */
float *ds_buf_alloc(ds_backend *be, size_t n_floats);
void ds_buf_free(ds_backend *be, float *p);

/* ---- linear algebra ----------------------------------------------------- */

/* y[M, N] = x[M, K] · W[N, K]ᵀ (+ b[N]). W BF16/F16/F32, b NULL or [N] any float dtype. */
void ds_op_linear(ds_backend *be, float *y, const float *x, int M, int K,
                  const ds_tensor *W, const ds_tensor *b);

/* Same over a row range of W: y[M, n1-n0] = x · W[n0:n1, :]ᵀ (+ b[n0:n1]).
 * Used to split fused qkv weights and to slice experts without copying. */
void ds_op_linear_rows(ds_backend *be, float *y, const float *x, int M, int K,
                       const ds_tensor *W, const ds_tensor *b, int64_t n0, int64_t n1);

/* One linear of a batch: y[M, n1-n0] = x[M, K] · W[n0:n1, :]ᵀ (+ b[n0:n1]);
 * n0 = n1 = 0 means every row of W. */
typedef struct ds_linear_job {
    float *y; const float *x;
    int M, K;
    const ds_tensor *W, *b;
    int64_t n0, n1;
} ds_linear_job;

/* Runs n independent linears as one parallel step (decode: q/k/v together, the
 * gate and up of every chosen expert together): each y must not overlap any other
 * job's y or x. Results are those of ds_op_linear_rows on each job. */
void ds_op_linear_batch(ds_backend *be, int n, const ds_linear_job *jobs);

/* 2-D convolution over an HWC map: x [H*W, Cin] -> y [Ho*Wo, Cout],
 * W [Cout, Cin, kh, kw] (PyTorch layout), b NULL or [Cout]; zero padding `pad` on
 * every side; Ho = (H + 2 pad - kh) / stride + 1. */
void ds_op_conv2d(ds_backend *be, float *y, const float *x, int H, int W, int Cin,
                  const ds_tensor *w, const ds_tensor *b, int stride, int pad);

/* ---- normalisation and activations -------------------------------------- */

/* y[r] = (x[r] - mean) / sqrt(var + eps) * w + b over the last dim (biased var). y may alias x. */
void ds_op_layernorm(ds_backend *be, float *y, const float *x, int rows, int dim,
                     const ds_tensor *w, const ds_tensor *b, float eps);
/* y[r] = w * x[r] / sqrt(mean(x[r]^2) + eps). y may alias x. */
void ds_op_rmsnorm(ds_backend *be, float *y, const float *x, int rows, int dim,
                   const ds_tensor *w, float eps);
/* In place, row-wise, numerically stable (max subtracted). -inf entries give 0. */
void ds_op_softmax(ds_backend *be, float *x, int rows, int n);

void ds_op_gelu_erf(ds_backend *be, float *x, size_t n);     /* 0.5 x (1 + erf(x/√2)) */
void ds_op_quick_gelu(ds_backend *be, float *x, size_t n);   /* x · sigmoid(1.702 x) */
void ds_op_silu(ds_backend *be, float *x, size_t n);         /* x · sigmoid(x) */
/* y = silu(gate) * up, elementwise; y may alias gate or up. */
void ds_op_silu_mul(ds_backend *be, float *y, const float *gate, const float *up, size_t n);

/* y = a + b (y may alias a or b). */
void ds_op_add(ds_backend *be, float *y, const float *a, const float *b, size_t n);
/* y += alpha * x. */
void ds_op_axpy(ds_backend *be, float *y, float alpha, const float *x, size_t n);
/* y[r, :] += b[:] for each of rows rows; b any float dtype [dim]. */
void ds_op_add_row_vec(ds_backend *be, float *y, int rows, int dim, const ds_tensor *b);

/* ---- data movement ------------------------------------------------------ */

/* y[r * y_stride + c] = x[r * x_stride + c] for r < rows, c < cols (a strided block
 * copy, e.g. one head's new keys into the head-major KV cache). */
void ds_op_copy_rows(ds_backend *be, float *y, int64_t y_stride, const float *x, int64_t x_stride, int rows, int cols);
/* The same into bf16, rounded to nearest even. */
void ds_op_copy_rows_bf16(ds_backend *be, uint16_t *y, int64_t y_stride, const float *x, int64_t x_stride, int rows,
                          int cols);
/* y[c, r] = x[r, c]; x is [rows, cols]. */
void ds_op_transpose(ds_backend *be, float *y, const float *x, int rows, int cols);
/* y[i, :] = f32(table[ids[i], :]); table [V, D] any float dtype. */
void ds_op_embed(ds_backend *be, float *y, const ds_tensor *table, const int32_t *ids, int n);
/* y = f32 copy of a whole (small) tensor, e.g. a bias or a position table. */
void ds_op_tensor_to_f32(ds_backend *be, float *y, const ds_tensor *t);
/* Upload host floats to backend memory (memcpy on CPU), and back. */
void ds_op_upload(ds_backend *be, float *dst, const float *host_src, size_t n);
void ds_op_download(ds_backend *be, float *host_dst, const float *src, size_t n);

/* Windowed attention layout (SAM). x [H*W, C] is zero-padded bottom/right to
 * Hp x Wp (multiples of win) and cut into (Hp/win)*(Wp/win) windows, row-major
 * window order: y [nwin, win*win, C]. */
void ds_op_window_partition(ds_backend *be, float *y, const float *x, int H, int W, int C, int win);
/* Inverse: y [H*W, C] from windows x [nwin, win*win, C], dropping the padding. */
void ds_op_window_merge(ds_backend *be, float *y, const float *x, int H, int W, int C, int win);

/* ---- attention ---------------------------------------------------------- */

typedef struct ds_attn_args {
    float *out; int out_stride;           /* [Lq, n_heads*head_dim] rows, stride in floats */
    const float *q; int q_stride;          /* [Lq, n_heads*head_dim] (head h at cols h*head_dim) */
    const float *k; int k_stride;          /* [Lk, n_heads*head_dim] */
    const float *v; int v_stride;          /* [Lk, n_heads*head_dim] */
    int Lq, Lk, n_heads, head_dim;
    int batch;                             /* independent problems (e.g. SAM windows); 0 = 1 */
    int64_t q_batch_stride, k_batch_stride, v_batch_stride, out_batch_stride; /* floats */
    float scale;                           /* applied to q·k only */
    int causal;                            /* query i sees keys j <= q_pos0 + i */
    int q_pos0;
    /* Optional decomposed relative-position bias (SAM): the keys form a kh x kw grid and
     * bias(h, i, ky*kw + kx) = rel_h[h][i][ky] + rel_w[h][i][kx];
     * rel_h [batch][n_heads][Lq][kh], rel_w [batch][n_heads][Lq][kw]. NULL = none. */
    const float *rel_h, *rel_w;
    int kh, kw;
    /* Floats from head h to head h+1 in k / v; 0 = head_dim (heads side by side in a
     * row). The decoder's cache is head-major, [n_heads][positions][head_dim], so that
     * a decode step reads each head's keys as one contiguous run. */
    int64_t k_head_stride, v_head_stride;
    /* Keys and values stored as bf16 (the quantized decoders' KV cache): when non-NULL
     * these replace k and v, with the same strides in elements. */
    const uint16_t *k16, *v16;
} ds_attn_args;

/* Attention over a fused qkv buffer, as SAM and CLIP produce it: each of `batch`
 * problems holds L rows of [q | k | v] (C = n_heads * head_dim floats each) and writes
 * L rows of C floats; scale 1/sqrt(head_dim), no mask, no bias (callers add those). */
static inline ds_attn_args ds_attn_fused_qkv(float *out, const float *qkv, int L, int n_heads,
                                             int head_dim, int batch) {
    const int C = n_heads * head_dim;
    ds_attn_args a = {0};
    a.out = out;              a.out_stride = C;
    a.q = qkv;                a.q_stride = 3 * C;
    a.k = qkv + C;            a.k_stride = 3 * C;
    a.v = qkv + 2 * C;        a.v_stride = 3 * C;
    a.Lq = L;  a.Lk = L;  a.n_heads = n_heads;  a.head_dim = head_dim;
    a.batch = batch;
    a.q_batch_stride = a.k_batch_stride = a.v_batch_stride = (int64_t)L * 3 * C;
    a.out_batch_stride = (int64_t)L * C;
    a.scale = 1.0f / sqrtf((float)head_dim);
    return a;
}

/* out = softmax(scale · q kᵀ + bias [+ causal mask]) v, per head. */
void ds_op_attention(ds_backend *be, const ds_attn_args *a);

/* SAM decomposed relative positions for a qh x qw query grid and kh x kw key grid:
 *   rel_h[b][h][i][ky] = Σ_d q[b][i][h*hd + d] · Rh[qy - ky + kh - 1][d]
 *   rel_w[b][h][i][kx] = Σ_d q[b][i][h*hd + d] · Rw[qx - kx + kw - 1][d]
 * with i = qy*qw + qx; Rh [qh+kh-1, hd], Rw [qw+kw-1, hd] f32. q unscaled. */
void ds_op_relpos(ds_backend *be, float *rel_h, float *rel_w, const float *q, int q_stride,
                  int64_t q_batch_stride, int batch, int n_heads, int head_dim,
                  int qh, int qw, int kh, int kw, const float *Rh, const float *Rw);

/* Rotate-half RoPE in place on x [L, n_heads*head_dim] (row stride x_stride floats):
 * position of row i is pos0 + i; angle = pos * inv_freq[j], j < head_dim/2; pairs (j, j+hd/2). */
void ds_op_rope(ds_backend *be, float *x, int x_stride, int L, int n_heads, int head_dim,
                int pos0, const float *inv_freq);

/* ---- host-side helpers (setup time, not per token) ---------------------- */

/* PyTorch F.interpolate(bicubic, antialias=True, align_corners=False) of an HWC map
 * in [in_h, in_w, C] -> out [out_h, out_w, C], a = -0.5, fp32 (spec 7.5). */
void ds_interp_bicubic_aa(float *out, const float *in, int in_h, int in_w, int C,
                          int out_h, int out_w);
/* PyTorch F.interpolate(linear, align_corners=False) along rows of a table
 * in [n_in, C] -> out [n_out, C] (spec 7.5). */
void ds_interp_linear(float *out, const float *in, int n_in, int C, int n_out);

#endif
