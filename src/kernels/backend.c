/* The CPU backend: creation, activation buffers, and every ds_op_* entry point.
 * Ops with several implementations go through the kernel table (reference or fast,
 * chosen at creation); the simple data-movement ops live here. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kernels/backend.h"
#include "kernels/ref/ref.h"

/* ---- backend ------------------------------------------------------------------ */

void ds_kernels_ref(ds_kernels *k) {
    k->linear = ds_ref_linear;
    k->linear_batch = ds_ref_linear_batch;
    k->conv2d = ds_ref_conv2d;
    k->layernorm = ds_ref_layernorm;
    k->rmsnorm = ds_ref_rmsnorm;
    k->softmax = ds_ref_softmax;
    k->gelu_erf = ds_ref_gelu_erf;
    k->quick_gelu = ds_ref_quick_gelu;
    k->silu = ds_ref_silu;
    k->silu_mul = ds_ref_silu_mul;
    k->attention = ds_ref_attention;
    k->relpos = ds_ref_relpos;
    k->rope = ds_ref_rope;
    k->quant_x4 = 0;
    k->attention_kv16 = NULL;
}

static dsocr_status backend_new(int n_threads, int fast, ds_backend **out, dsocr_error *err) {
    *out = NULL;
    ds_backend *be = calloc(1, sizeof *be);
    if (!be) return ds_fail(err, DSOCR_ERR_NOMEM, "cpu backend: out of memory");
    dsocr_status st = ds_pool_new(n_threads, &be->pool, err);
    if (st != DSOCR_OK) { free(be); return st; }
    be->n_threads = ds_pool_threads(be->pool);
    be->scratch = calloc((size_t)be->n_threads, sizeof *be->scratch);
    if (!be->scratch) { ds_backend_free(be); return ds_fail(err, DSOCR_ERR_NOMEM, "cpu backend: out of memory"); }
    for (int t = 0; t < be->n_threads; t++) {
        be->scratch[t] = aligned_alloc(64, DS_SCRATCH_FLOATS * sizeof(float));
        if (!be->scratch[t]) {
            ds_backend_free(be);
            return ds_fail(err, DSOCR_ERR_NOMEM, "cpu backend: cannot allocate %zu MiB of scratch for thread %d",
                           DS_SCRATCH_FLOATS * sizeof(float) >> 20, t);
        }
    }
    ds_kernels_ref(&be->k);
    const char *label = fast ? ds_kernels_cpu(&be->k) : "scalar";
    snprintf(be->name, sizeof be->name, "%s (%s, %d thread%s)", fast ? "cpu" : "cpu-ref", label,
             be->n_threads, be->n_threads == 1 ? "" : "s");
    *out = be;
    return DSOCR_OK;
}

dsocr_status ds_backend_cpu_new(int n_threads, ds_backend **out, dsocr_error *err) {
    return backend_new(n_threads, 1, out, err);
}

dsocr_status ds_backend_ref_new(int n_threads, ds_backend **out, dsocr_error *err) {
    return backend_new(n_threads, 0, out, err);
}

ds_dtype ds_backend_quant_dtype(const ds_backend *be, ds_dtype t) {
    return be->k.quant_x4 && t == DS_Q4_0 ? DS_Q4_0X4 : t;
}

float *ds_backend_work(ds_backend *be, int slot, size_t n) {
    if (n <= be->work_floats[slot]) return be->work[slot];
    if (n > SIZE_MAX / sizeof(float) - 64) return NULL;
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) & ~(size_t)63);
    if (!p) return NULL;
    free(be->work[slot]);
    be->work[slot] = p;
    be->work_floats[slot] = n;
    return p;
}

void ds_backend_free(ds_backend *be) {
    if (!be) return;
    for (int i = 0; i < DS_WORK_SLOTS; i++) free(be->work[i]);
    ds_pool_free(be->pool);
    if (be->scratch)
        for (int t = 0; t < be->n_threads; t++) free(be->scratch[t]);
    free(be->scratch);
    free(be);
}

int ds_backend_threads(const ds_backend *be) { return be->n_threads; }
const char *ds_backend_name(const ds_backend *be) { return be->name; }

/* Buffers of 2 MiB or more are 2 MiB-aligned and advised to transparent huge pages
 * before their first touch: the KV cache is read whole by every decode step, one run
 * per head, and on 4 KiB pages each TLB miss is a two-level page walk in a VM (decode
 * attention over 900 positions: 22 -> 30 GB/s in a harness of the op). Advisory:
 * without THP these are plain pages. A buffer used only in part (the KV cache before the context grows) then holds
 * up to 2 MiB per touched run, within what the memory guard already counts for it. */
#define HUGE_BYTES ((size_t)2 << 20)

float *ds_buf_alloc(ds_backend *be, size_t n_floats) {
    (void)be;
    if (n_floats > SIZE_MAX / sizeof(float) - HUGE_BYTES) return NULL;
    size_t bytes = (n_floats * sizeof(float) + 63) & ~(size_t)63;
    if (bytes < HUGE_BYTES) return aligned_alloc(64, bytes ? bytes : 64);
    bytes = (bytes + HUGE_BYTES - 1) & ~(HUGE_BYTES - 1);
    float *p = aligned_alloc(HUGE_BYTES, bytes);
    if (p) madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}

void ds_buf_free(ds_backend *be, float *p) { (void)be; free(p); }

/* ---- table-dispatched ops ------------------------------------------------------ */

void ds_op_linear(ds_backend *be, float *y, const float *x, int M, int K,
                  const ds_tensor *W, const ds_tensor *b) {
    be->k.linear(be, y, x, M, K, W, b, 0, W->shape[0]);
}

void ds_op_linear_rows(ds_backend *be, float *y, const float *x, int M, int K,
                       const ds_tensor *W, const ds_tensor *b, int64_t n0, int64_t n1) {
    be->k.linear(be, y, x, M, K, W, b, n0, n1);
}

void ds_op_linear_batch(ds_backend *be, int n, const ds_linear_job *jobs) {
    if (n > 0) be->k.linear_batch(be, n, jobs);
}

void ds_op_conv2d(ds_backend *be, float *y, const float *x, int H, int W, int Cin,
                  const ds_tensor *w, const ds_tensor *b, int stride, int pad) {
    be->k.conv2d(be, y, x, H, W, Cin, w, b, stride, pad);
}

void ds_op_layernorm(ds_backend *be, float *y, const float *x, int rows, int dim,
                     const ds_tensor *w, const ds_tensor *b, float eps) {
    be->k.layernorm(be, y, x, rows, dim, w, b, eps);
}

void ds_op_rmsnorm(ds_backend *be, float *y, const float *x, int rows, int dim,
                   const ds_tensor *w, float eps) {
    be->k.rmsnorm(be, y, x, rows, dim, w, eps);
}

void ds_op_softmax(ds_backend *be, float *x, int rows, int n) { be->k.softmax(be, x, rows, n); }
void ds_op_gelu_erf(ds_backend *be, float *x, size_t n) { be->k.gelu_erf(be, x, n); }
void ds_op_quick_gelu(ds_backend *be, float *x, size_t n) { be->k.quick_gelu(be, x, n); }
void ds_op_silu(ds_backend *be, float *x, size_t n) { be->k.silu(be, x, n); }
void ds_op_silu_mul(ds_backend *be, float *y, const float *gate, const float *up, size_t n) {
    be->k.silu_mul(be, y, gate, up, n);
}

int ds_backend_kv_bf16(const ds_backend *be) { return be->k.attention_kv16 != NULL; }

/* Keys or values [n_heads][Lk][head_dim] from bf16 with the given strides into f32. */
static void widen_kv(float *dst, const uint16_t *src, int64_t head_stride, int stride, int n_heads, int Lk, int hd) {
    for (int h = 0; h < n_heads; h++)
        for (int j = 0; j < Lk; j++) {
            const uint16_t *s = src + h * head_stride + (int64_t)j * stride;
            float *d = dst + ((size_t)h * Lk + j) * hd;
            for (int i = 0; i < hd; i++) d[i] = ds_bf16_to_f32(s[i]);
        }
}

void ds_op_attention(ds_backend *be, const ds_attn_args *a) {
    if (a->Lq <= 0 || a->n_heads <= 0 || a->head_dim <= 0) return;
    if (!a->k16) {
        be->k.attention(be, a);
        return;
    }
    if (be->k.attention_kv16 && be->k.attention_kv16(be, a)) return;
    /* bf16 keys and values, no kernel for the case (prefill, other CPUs): widen them
     * problem by problem and run the f32 attention on each */
    const int B = a->batch > 0 ? a->batch : 1, Lk = a->Lk, hd = a->head_dim, H = a->n_heads;
    const size_t n = (size_t)H * Lk * hd;
    float *kv = ds_backend_work(be, DS_WORK_KV, 2 * n);
    for (int bi = 0; bi < B; bi++) {
        ds_attn_args w = *a;
        w.batch = 1;
        w.q = a->q + bi * a->q_batch_stride;
        w.out = a->out + bi * a->out_batch_stride;
        if (!kv) {   /* no room to widen (ops cannot fail): zeros, as for nothing visible */
            for (int i = 0; i < a->Lq; i++) memset(w.out + (size_t)i * a->out_stride, 0, (size_t)H * hd * sizeof(float));
            continue;
        }
        widen_kv(kv, a->k16 + bi * a->k_batch_stride, a->k_head_stride ? a->k_head_stride : hd, a->k_stride, H, Lk, hd);
        widen_kv(kv + n, a->v16 + bi * a->v_batch_stride, a->v_head_stride ? a->v_head_stride : hd, a->v_stride, H, Lk, hd);
        w.k16 = w.v16 = NULL;
        w.k = kv; w.v = kv + n;
        w.k_stride = w.v_stride = hd;
        w.k_head_stride = w.v_head_stride = (int64_t)Lk * hd;
        w.q_batch_stride = w.k_batch_stride = w.v_batch_stride = w.out_batch_stride = 0;
        if (a->rel_h) {   /* [batch][n_heads][Lq][kh] and [..][kw] */
            w.rel_h = a->rel_h + (size_t)bi * H * a->Lq * a->kh;
            w.rel_w = a->rel_w + (size_t)bi * H * a->Lq * a->kw;
        }
        be->k.attention(be, &w);
    }
}

void ds_op_relpos(ds_backend *be, float *rel_h, float *rel_w, const float *q, int q_stride,
                  int64_t q_batch_stride, int batch, int n_heads, int head_dim,
                  int qh, int qw, int kh, int kw, const float *Rh, const float *Rw) {
    be->k.relpos(be, rel_h, rel_w, q, q_stride, q_batch_stride, batch, n_heads, head_dim,
                 qh, qw, kh, kw, Rh, Rw);
}

void ds_op_rope(ds_backend *be, float *x, int x_stride, int L, int n_heads, int head_dim,
                int pos0, const float *inv_freq) {
    be->k.rope(be, x, x_stride, L, n_heads, head_dim, pos0, inv_freq);
}

/* ---- elementwise ------------------------------------------------------------------ */

typedef struct { float *y; const float *a, *b; float alpha; } vec_job;

static void add_task(void *ctx, int64_t i0, int64_t i1, int tid) {
    (void)tid;
    vec_job *J = ctx;
    for (int64_t i = i0; i < i1; i++) J->y[i] = J->a[i] + J->b[i];
}
static void axpy_task(void *ctx, int64_t i0, int64_t i1, int tid) {
    (void)tid;
    vec_job *J = ctx;
    for (int64_t i = i0; i < i1; i++) J->y[i] += J->alpha * J->a[i];
}

#define VEC_GRAIN 32768

void ds_op_add(ds_backend *be, float *y, const float *a, const float *b, size_t n) {
    vec_job J = {y, a, b, 0};
    ds_pool_for(be->pool, (int64_t)n, VEC_GRAIN, add_task, &J);
}

void ds_op_axpy(ds_backend *be, float *y, float alpha, const float *x, size_t n) {
    vec_job J = {y, x, NULL, alpha};
    ds_pool_for(be->pool, (int64_t)n, VEC_GRAIN, axpy_task, &J);
}

void ds_op_add_row_vec(ds_backend *be, float *y, int rows, int dim, const ds_tensor *b) {
    (void)be;
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < dim; i++) y[(size_t)r * dim + i] += ds_tensor_get_f32(b, i);
}

/* ---- data movement ------------------------------------------------------------------ */

void ds_op_copy_rows(ds_backend *be, float *y, int64_t y_stride, const float *x, int64_t x_stride, int rows, int cols) {
    (void)be;
    for (int r = 0; r < rows; r++) memcpy(y + r * y_stride, x + r * x_stride, (size_t)cols * sizeof(float));
}

void ds_op_copy_rows_bf16(ds_backend *be, uint16_t *y, int64_t y_stride, const float *x, int64_t x_stride, int rows,
                          int cols) {
    (void)be;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) y[r * y_stride + c] = ds_f32_to_bf16(x[r * x_stride + c]);
}

void ds_op_transpose(ds_backend *be, float *y, const float *x, int rows, int cols) {
    (void)be;
    enum { T = 32 };   /* tiles keep both sides in cache */
    for (int r0 = 0; r0 < rows; r0 += T)
        for (int c0 = 0; c0 < cols; c0 += T)
            for (int r = r0; r < rows && r < r0 + T; r++)
                for (int c = c0; c < cols && c < c0 + T; c++)
                    y[(size_t)c * rows + r] = x[(size_t)r * cols + c];
}

void ds_op_embed(ds_backend *be, float *y, const ds_tensor *table, const int32_t *ids, int n) {
    (void)be;
    int64_t D = table->shape[table->ndim - 1];
    for (int i = 0; i < n; i++) ds_w_row_f32(table, ids[i], D, y + (size_t)i * D);
}

void ds_op_tensor_to_f32(ds_backend *be, float *y, const ds_tensor *t) {
    (void)be;
    int64_t n = ds_tensor_numel(t);
    if (ds_tensor_is_contiguous(t)) {
        for (int64_t i = 0; i < n; i++) y[i] = ds_tensor_get_f32(t, i);
        return;
    }
    /* strided view: walk the index in row-major order */
    int64_t idx[DS_MAX_DIMS] = {0};
    for (int64_t i = 0; i < n; i++) {
        int64_t off = 0;
        for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
        y[i] = ds_tensor_get_f32(t, off);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
}

void ds_op_upload(ds_backend *be, float *dst, const float *host_src, size_t n) {
    (void)be;
    if (n) memmove(dst, host_src, n * sizeof(float));
}

void ds_op_download(ds_backend *be, float *host_dst, const float *src, size_t n) {
    (void)be;
    if (n) memmove(host_dst, src, n * sizeof(float));
}

void ds_op_window_partition(ds_backend *be, float *y, const float *x, int H, int W, int C, int win) {
    (void)be;
    int nwy = (H + win - 1) / win, nwx = (W + win - 1) / win;
    for (int wy = 0; wy < nwy; wy++)
        for (int wx = 0; wx < nwx; wx++)
            for (int ty = 0; ty < win; ty++)
                for (int tx = 0; tx < win; tx++) {
                    int iy = wy * win + ty, ix = wx * win + tx;
                    float *dst = y + (((size_t)(wy * nwx + wx) * win + ty) * win + tx) * C;
                    if (iy < H && ix < W) memcpy(dst, x + ((size_t)iy * W + ix) * C, (size_t)C * sizeof(float));
                    else memset(dst, 0, (size_t)C * sizeof(float));
                }
}

void ds_op_window_merge(ds_backend *be, float *y, const float *x, int H, int W, int C, int win) {
    (void)be;
    int nwx = (W + win - 1) / win;
    for (int iy = 0; iy < H; iy++)
        for (int ix = 0; ix < W; ix++) {
            int wy = iy / win, wx = ix / win, ty = iy % win, tx = ix % win;
            const float *src = x + (((size_t)(wy * nwx + wx) * win + ty) * win + tx) * C;
            memcpy(y + ((size_t)iy * W + ix) * C, src, (size_t)C * sizeof(float));
        }
}
