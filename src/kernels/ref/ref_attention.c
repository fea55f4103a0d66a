/* Reference attention (one query row at a time, full score row, double sums),
 * SAM decomposed relative positions, rotate-half RoPE. */
#include <math.h>

#include "kernels/ref/ref.h"

/* ---- attention --------------------------------------------------------------- */

typedef struct { ds_backend *be; const ds_attn_args *a; } attn_job;

/* items = (batch, head, query row) */
static void attn_task(void *ctx, int64_t t0, int64_t t1, int tid) {
    attn_job *J = ctx;
    const ds_attn_args *a = J->a;
    double *score = (double *)ds_scratch(J->be, tid);   /* [Lk] */
    int hd = a->head_dim;
    const size_t kh_stride = a->k_head_stride ? (size_t)a->k_head_stride : (size_t)hd;
    const size_t vh_stride = a->v_head_stride ? (size_t)a->v_head_stride : (size_t)hd;
    for (int64_t t = t0; t < t1; t++) {
        int i = (int)(t % a->Lq);
        int h = (int)(t / a->Lq % a->n_heads);
        int64_t bi = t / a->Lq / a->n_heads;
        const float *q = a->q + bi * a->q_batch_stride + (size_t)i * a->q_stride + (size_t)h * hd;
        float *o = a->out + bi * a->out_batch_stride + (size_t)i * a->out_stride + (size_t)h * hd;
        int n_keys = a->Lk;
        if (a->causal) {
            int64_t last = (int64_t)a->q_pos0 + i;            /* keys 0..last visible */
            n_keys = last + 1 < a->Lk ? (int)(last + 1 < 0 ? 0 : last + 1) : a->Lk;
        }
        if (n_keys == 0) { for (int d = 0; d < hd; d++) o[d] = 0.0f; continue; }
        const float *rh = NULL, *rw = NULL;
        if (a->rel_h) {
            size_t row = ((size_t)bi * a->n_heads + h) * a->Lq + i;
            rh = a->rel_h + row * a->kh;
            rw = a->rel_w + row * a->kw;
        }
        double mx = -INFINITY;
        for (int j = 0; j < n_keys; j++) {
            const float *k = a->k + bi * a->k_batch_stride + (size_t)j * a->k_stride + (size_t)h * kh_stride;
            double s = 0;
            for (int d = 0; d < hd; d++) s += (double)q[d] * k[d];
            s *= a->scale;
            if (rh) s += (double)rh[j / a->kw] + rw[j % a->kw];
            score[j] = s;
            if (s > mx) mx = s;
        }
        double sum = 0;
        for (int j = 0; j < n_keys; j++) { score[j] = exp(score[j] - mx); sum += score[j]; }
        for (int d = 0; d < hd; d++) {
            double acc = 0;
            for (int j = 0; j < n_keys; j++)
                acc += score[j] * a->v[bi * a->v_batch_stride + (size_t)j * a->v_stride + (size_t)h * vh_stride + d];
            o[d] = (float)(acc / sum);
        }
    }
}

void ds_ref_attention(ds_backend *be, const ds_attn_args *a) {
    int batch = a->batch > 0 ? a->batch : 1;
    attn_job J = {be, a};
    ds_pool_for(be->pool, (int64_t)batch * a->n_heads * a->Lq, 1, attn_task, &J);
}

/* ---- decomposed relative positions ------------------------------------------ */

typedef struct {
    float *rel_h, *rel_w; const float *q;
    int q_stride; int64_t q_batch_stride;
    int n_heads, hd, qh, qw, kh, kw;
    const float *Rh, *Rw;
} relpos_job;

/* items = (batch, head, query) */
static void relpos_task(void *ctx, int64_t t0, int64_t t1, int tid) {
    (void)tid;
    relpos_job *J = ctx;
    int Lq = J->qh * J->qw;
    for (int64_t t = t0; t < t1; t++) {
        int i = (int)(t % Lq), h = (int)(t / Lq % J->n_heads);
        int64_t bi = t / Lq / J->n_heads;
        int qy = i / J->qw, qx = i % J->qw;
        const float *q = J->q + bi * J->q_batch_stride + (size_t)i * J->q_stride + (size_t)h * J->hd;
        for (int ky = 0; ky < J->kh; ky++) {
            const float *r = J->Rh + (size_t)(qy - ky + J->kh - 1) * J->hd;
            double s = 0;
            for (int d = 0; d < J->hd; d++) s += (double)q[d] * r[d];
            J->rel_h[t * J->kh + ky] = (float)s;
        }
        for (int kx = 0; kx < J->kw; kx++) {
            const float *r = J->Rw + (size_t)(qx - kx + J->kw - 1) * J->hd;
            double s = 0;
            for (int d = 0; d < J->hd; d++) s += (double)q[d] * r[d];
            J->rel_w[t * J->kw + kx] = (float)s;
        }
    }
}

void ds_ref_relpos(ds_backend *be, float *rel_h, float *rel_w, const float *q, int q_stride,
                   int64_t q_batch_stride, int batch, int n_heads, int head_dim,
                   int qh, int qw, int kh, int kw, const float *Rh, const float *Rw) {
    if (batch <= 0) batch = 1;
    relpos_job J = {rel_h, rel_w, q, q_stride, q_batch_stride, n_heads, head_dim, qh, qw, kh, kw, Rh, Rw};
    ds_pool_for(be->pool, (int64_t)batch * n_heads * qh * qw, 8, relpos_task, &J);
}

/* ---- rope ------------------------------------------------------------------------ */

void ds_ref_rope(ds_backend *be, float *x, int x_stride, int L, int n_heads, int head_dim,
                 int pos0, const float *inv_freq) {
    (void)be;
    int half = head_dim / 2;
    for (int i = 0; i < L; i++) {
        float pos = (float)(pos0 + i);
        for (int j = 0; j < half; j++) {
            float angle = pos * inv_freq[j];            /* fp32, as the HF rotary table */
            double c = cos((double)angle), s = sin((double)angle);
            for (int h = 0; h < n_heads; h++) {
                float *v = x + (size_t)i * x_stride + (size_t)h * head_dim;
                double a = v[j], b = v[j + half];
                v[j] = (float)(a * c - b * s);
                v[j + half] = (float)(b * c + a * s);
            }
        }
    }
}
