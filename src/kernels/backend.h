/* Inside the CPU backend: the backend struct, the kernel table that selects a
 * reference or fast kernel per op, per-thread scratch and weight-reading helpers.
 * Model code never includes this; it sees only ops.h. */
#ifndef DS_KERNELS_BACKEND_H
#define DS_KERNELS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "core/pool.h"
#include "core/quant.h"
#include "core/tensor.h"
#include "kernels/ops.h"

/* One entry per op that has more than one implementation. */
typedef struct ds_kernels {
    /* y[M, n1-n0] = x[M, K] · W[n0:n1, :]ᵀ (+ b[n0:n1]) */
    void (*linear)(ds_backend *be, float *y, const float *x, int M, int K,
                   const ds_tensor *W, const ds_tensor *b, int64_t n0, int64_t n1);
    void (*linear_batch)(ds_backend *be, int n, const ds_linear_job *jobs);
    void (*conv2d)(ds_backend *be, float *y, const float *x, int H, int W, int Cin,
                   const ds_tensor *w, const ds_tensor *b, int stride, int pad);
    void (*layernorm)(ds_backend *be, float *y, const float *x, int rows, int dim,
                      const ds_tensor *w, const ds_tensor *b, float eps);
    void (*rmsnorm)(ds_backend *be, float *y, const float *x, int rows, int dim,
                    const ds_tensor *w, float eps);
    void (*softmax)(ds_backend *be, float *x, int rows, int n);
    void (*gelu_erf)(ds_backend *be, float *x, size_t n);
    void (*quick_gelu)(ds_backend *be, float *x, size_t n);
    void (*silu)(ds_backend *be, float *x, size_t n);
    void (*silu_mul)(ds_backend *be, float *y, const float *gate, const float *up, size_t n);
    void (*attention)(ds_backend *be, const ds_attn_args *a);
    void (*relpos)(ds_backend *be, float *rel_h, float *rel_w, const float *q, int q_stride,
                   int64_t q_batch_stride, int batch, int n_heads, int head_dim,
                   int qh, int qw, int kh, int kw, const float *Rh, const float *Rw);
    void (*rope)(ds_backend *be, float *x, int x_stride, int L, int n_heads, int head_dim,
                 int pos0, const float *inv_freq);
    int quant_x4;   /* the linear reads Q4_0X4 faster than Q4_0 (core/quant.h) */
    /* Attention over bf16 keys and values (ds_attn_args.k16) where the backend has a
     * kernel for the case; returns 0 when it has not, and ds_op_attention widens them. */
    int (*attention_kv16)(ds_backend *be, const ds_attn_args *a);
} ds_kernels;

/* Shared work buffers, one per use so that nested ops never share one: conv2d's
 * patches feed the linear, which widens its weights into the other; attention widens
 * a bf16 KV cache into the third. */
enum { DS_WORK_IM2COL, DS_WORK_WEIGHTS, DS_WORK_KV, DS_WORK_SLOTS };

/* Per-thread scratch, allocated once with the backend so that ops never allocate
 * (ops cannot fail). Kernels size their blocks to fit. */
#define DS_SCRATCH_FLOATS ((size_t)2 << 20)   /* 8 MiB per thread */

struct ds_backend {
    ds_pool *pool;
    int n_threads;
    ds_kernels k;
    char name[96];
    float **scratch;          /* [n_threads][DS_SCRATCH_FLOATS], 64-byte aligned */
    float *work[DS_WORK_SLOTS];   /* shared buffers of large ops, grown on demand */
    size_t work_floats[DS_WORK_SLOTS];
    struct ds_profile *profile; /* per-op timing (kernels/profile.h); NULL = off */
};

static inline float *ds_scratch(ds_backend *be, int tid) { return be->scratch[tid]; }

/* be->work[slot] with room for n floats (kept for the next call: fresh pages are
 * slow), or NULL when it cannot grow; the caller then takes a path that needs no
 * buffer. */
float *ds_backend_work(ds_backend *be, int slot, size_t n);

/* Fills k with the scalar reference kernels (kernels/ref). */
void ds_kernels_ref(ds_kernels *k);
/* Replaces entries of k with the fastest kernels this CPU supports (kernels/cpu);
 * returns a label for ds_backend_name, e.g. "avx512-vnni". */
const char *ds_kernels_cpu(ds_kernels *k);

/* ---- weight access (weights are used in place, any float dtype) ----------- */

/* Row `row` of a weight whose outer dim has stride W->stride[0] (elements) and whose
 * inner n elements are contiguous, as f32 into dst[n]. Quantized weights: the row's
 * first block (stride[0] is a whole number of blocks); not for Q4_0X4, whose rows are
 * interleaved (core/quant.h). */
static inline const void *ds_w_row_ptr(const ds_tensor *W, int64_t row) {
    return (const char *)W->data + ds_dtype_bytes(W->dtype, row * W->stride[0]);
}
static inline void ds_w_row_f32(const ds_tensor *W, int64_t row, int64_t n, float *dst) {
    const void *src = ds_w_row_ptr(W, row);
    switch (W->dtype) {
    case DS_BF16: { const uint16_t *s = src; for (int64_t i = 0; i < n; i++) dst[i] = ds_bf16_to_f32(s[i]); break; }
    case DS_F16: { const uint16_t *s = src; for (int64_t i = 0; i < n; i++) dst[i] = ds_f16_to_f32(s[i]); break; }
    case DS_F32: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case DS_Q8_0: case DS_Q4_0: case DS_Q4_0X4: ds_dequantize_w_row(W, row, n, dst); break;
    default: for (int64_t i = 0; i < n; i++) dst[i] = 0.0f; break;
    }
}
/* End of a batch job's row range (n0 = n1 = 0: every row of W). */
static inline int64_t ds_job_n1(const ds_linear_job *J) {
    return J->n0 == 0 && J->n1 == 0 ? J->W->shape[0] : J->n1;
}

/* Element i of a 1-D vector (bias, norm weight); 0 when v is NULL. */
static inline float ds_vec_get(const ds_tensor *v, int64_t i) { return v ? ds_tensor_get_f32(v, i) : 0.0f; }

#endif
