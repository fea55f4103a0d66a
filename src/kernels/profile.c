/* Per-op timing: the backend's kernel table is swapped for wrappers that time the
 * original kernels. Counters are touched only by the thread that started the
 * profile and only at the outermost op (a kernel calling another is counted once). */
#include "kernels/profile.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/backend.h"

typedef struct weight_slot {
    char name[96];
    ds_profile_op c;
} weight_slot;

struct ds_profile {
    ds_kernels orig;                 /* the kernels being timed */
    ds_profile_op op[DS_PROF_N_OPS];
    weight_slot w[DS_PROF_MAX_WEIGHTS];
    int n_w;
    pthread_t owner;
    int depth;
};

static const char *op_names[DS_PROF_N_OPS] = {
    "linear", "conv2d", "layernorm", "rmsnorm", "softmax", "gelu_erf", "quick_gelu",
    "silu", "silu_mul", "attention", "relpos", "rope",
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Returns the start time, or -1 when this call is not counted (nested, other thread). */
static double enter(ds_profile *p) {
    if (!pthread_equal(pthread_self(), p->owner)) return -1;
    if (p->depth++ > 0) return -1;
    return now_ms();
}

static void leave(ds_profile *p, int i, double t0, double flop, double bytes) {
    if (t0 < 0) {
        if (pthread_equal(pthread_self(), p->owner)) p->depth--;
        return;
    }
    p->depth--;
    ds_profile_op *o = &p->op[i];
    o->calls++;
    o->ms += now_ms() - t0;
    o->flop += flop;
    o->bytes += bytes;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* The weight's name with every all-digit path component (layer, block, expert index)
 * replaced by '#': one entry per kind of weight ("lin1" and "fc2" stay apart). */
static void weight_key(const ds_tensor *W, char *key, size_t n) {
    const char *s = W->name ? W->name : "(unnamed)", *start = s;
    size_t k = 0;
    while (*s && k + 1 < n) {
        const char *e = s;
        while (is_digit(*e)) e++;
        if (e > s && (s == start || s[-1] == '.') && (*e == '.' || !*e)) {
            key[k++] = '#';
            s = e;
        } else {
            key[k++] = *s++;
        }
    }
    key[k] = 0;
}

static void count_weight(ds_profile *p, const ds_tensor *W, double ms, double flop, double bytes) {
    char key[96];
    weight_key(W, key, sizeof key);
    int i = 0;
    while (i < p->n_w && strcmp(p->w[i].name, key)) i++;
    if (i == p->n_w) {
        if (p->n_w == DS_PROF_MAX_WEIGHTS) {   /* full: the last slot collects the rest */
            i = DS_PROF_MAX_WEIGHTS - 1;
            snprintf(p->w[i].name, sizeof p->w[i].name, "(other weights)");
        } else {
            snprintf(p->w[i].name, sizeof p->w[i].name, "%s", key);
            p->n_w++;
        }
    }
    ds_profile_op *c = &p->w[i].c;
    c->name = p->w[i].name;
    c->calls++;
    c->ms += ms;
    c->flop += flop;
    c->bytes += bytes;
}

/* ---- wrappers, one per table entry --------------------------------------------- */

static void prof_linear(ds_backend *be, float *y, const float *x, int M, int K,
                        const ds_tensor *W, const ds_tensor *b, int64_t n0, int64_t n1) {
    ds_profile *p = be->profile;
    double t = enter(p);
    p->orig.linear(be, y, x, M, K, W, b, n0, n1);
    const double N = (double)(n1 - n0), flop = 2.0 * M * K * N;
    const double bytes = (double)ds_dtype_bytes(W->dtype, (n1 - n0) * (int64_t)K);
    if (t >= 0) count_weight(p, W, now_ms() - t, flop, bytes);
    leave(p, DS_PROF_LINEAR, t, flop, bytes);
}

/* A batch is one call; its time is shared among its weights by bytes. */
static void prof_linear_batch(ds_backend *be, int n, const ds_linear_job *jobs) {
    ds_profile *p = be->profile;
    double t = enter(p);
    p->orig.linear_batch(be, n, jobs);
    double ms = t >= 0 ? now_ms() - t : 0, flop = 0, bytes = 0;
    for (int i = 0; i < n; i++) {
        const ds_linear_job *J = &jobs[i];
        const int64_t N = ds_job_n1(J) - J->n0;
        flop += 2.0 * J->M * J->K * (double)N;
        bytes += (double)ds_dtype_bytes(J->W->dtype, N * (int64_t)J->K);
    }
    for (int i = 0; t >= 0 && i < n; i++) {
        const ds_linear_job *J = &jobs[i];
        const int64_t N = ds_job_n1(J) - J->n0;
        const double b = (double)ds_dtype_bytes(J->W->dtype, N * (int64_t)J->K);
        count_weight(p, J->W, bytes > 0 ? ms * b / bytes : ms / n, 2.0 * J->M * J->K * (double)N, b);
    }
    leave(p, DS_PROF_LINEAR, t, flop, bytes);
}

static void prof_conv2d(ds_backend *be, float *y, const float *x, int H, int W, int Cin,
                        const ds_tensor *w, const ds_tensor *b, int stride, int pad) {
    ds_profile *p = be->profile;
    double t = enter(p);
    p->orig.conv2d(be, y, x, H, W, Cin, w, b, stride, pad);
    const int64_t Cout = w->shape[0], kh = w->shape[2], kw = w->shape[3];
    const double Ho = (double)((H + 2 * pad - kh) / stride + 1), Wo = (double)((W + 2 * pad - kw) / stride + 1);
    leave(p, DS_PROF_CONV2D, t, 2.0 * Ho * Wo * (double)(Cout * Cin * kh * kw),
          (double)ds_dtype_bytes(w->dtype, ds_tensor_numel(w)));
}

static void prof_layernorm(ds_backend *be, float *y, const float *x, int rows, int dim,
                           const ds_tensor *w, const ds_tensor *b, float eps) {
    ds_profile *p = be->profile;
    double t = enter(p);
    p->orig.layernorm(be, y, x, rows, dim, w, b, eps);
    leave(p, DS_PROF_LAYERNORM, t, 0, 0);
}

static void prof_rmsnorm(ds_backend *be, float *y, const float *x, int rows, int dim,
                         const ds_tensor *w, float eps) {
    ds_profile *p = be->profile;
    double t = enter(p);
    p->orig.rmsnorm(be, y, x, rows, dim, w, eps);
    leave(p, DS_PROF_RMSNORM, t, 0, 0);
}

static void prof_softmax(ds_backend *be, float *x, int rows, int n) {
    ds_profile *p = be->profile;
    double t = enter(p);
    p->orig.softmax(be, x, rows, n);
    leave(p, DS_PROF_SOFTMAX, t, 0, 0);
}

#define PROF_UNARY(fn, slot)                                            \
    static void prof_##fn(ds_backend *be, float *x, size_t n) {         \
        ds_profile *p = be->profile;                                    \
        double t = enter(p);                                            \
        p->orig.fn(be, x, n);                                           \
        leave(p, slot, t, 0, 0);                                        \
    }
PROF_UNARY(gelu_erf, DS_PROF_GELU_ERF)
PROF_UNARY(quick_gelu, DS_PROF_QUICK_GELU)
PROF_UNARY(silu, DS_PROF_SILU)

static void prof_silu_mul(ds_backend *be, float *y, const float *gate, const float *up, size_t n) {
    ds_profile *p = be->profile;
    double t = enter(p);
    p->orig.silu_mul(be, y, gate, up, n);
    leave(p, DS_PROF_SILU_MUL, t, 0, 0);
}

/* q·kᵀ and p·v over the keys each query sees (all, or up to its position when causal). */
static double attention_pairs(const ds_attn_args *a) {
    if (!a->causal) return (double)a->Lq * a->Lk;
    double pairs = 0;
    for (int i = 0; i < a->Lq; i++) {
        int seen = a->q_pos0 + i + 1;
        pairs += seen < a->Lk ? (seen > 0 ? seen : 0) : a->Lk;
    }
    return pairs;
}

static void prof_attention(ds_backend *be, const ds_attn_args *a) {
    ds_profile *p = be->profile;
    double t = enter(p);
    p->orig.attention(be, a);
    const double B = a->batch > 0 ? a->batch : 1, hdim = (double)a->n_heads * a->head_dim;
    leave(p, DS_PROF_ATTENTION, t, 4.0 * B * attention_pairs(a) * hdim, 2.0 * B * a->Lk * hdim * sizeof(float));
}

/* The bf16-KV kernel: counted as attention when it ran (2 bytes per key and value). */
static int prof_attention_kv16(ds_backend *be, const ds_attn_args *a) {
    ds_profile *p = be->profile;
    double t = enter(p);
    int ran = p->orig.attention_kv16(be, a);
    const double B = a->batch > 0 ? a->batch : 1, hdim = (double)a->n_heads * a->head_dim;
    if (ran) leave(p, DS_PROF_ATTENTION, t, 4.0 * B * attention_pairs(a) * hdim, 2.0 * B * a->Lk * hdim * sizeof(uint16_t));
    else if (pthread_equal(pthread_self(), p->owner)) p->depth--;   /* nothing ran: the widening path's attention counts itself */
    return ran;
}

static void prof_relpos(ds_backend *be, float *rel_h, float *rel_w, const float *q, int q_stride,
                        int64_t q_batch_stride, int batch, int n_heads, int head_dim,
                        int qh, int qw, int kh, int kw, const float *Rh, const float *Rw) {
    ds_profile *p = be->profile;
    double t = enter(p);
    p->orig.relpos(be, rel_h, rel_w, q, q_stride, q_batch_stride, batch, n_heads, head_dim, qh, qw, kh, kw, Rh, Rw);
    leave(p, DS_PROF_RELPOS, t, 2.0 * batch * n_heads * (double)qh * qw * head_dim * (kh + kw), 0);
}

static void prof_rope(ds_backend *be, float *x, int x_stride, int L, int n_heads, int head_dim,
                      int pos0, const float *inv_freq) {
    ds_profile *p = be->profile;
    double t = enter(p);
    p->orig.rope(be, x, x_stride, L, n_heads, head_dim, pos0, inv_freq);
    leave(p, DS_PROF_ROPE, t, 0, 0);
}

/* ---- start / stop ------------------------------------------------------------- */

dsocr_status ds_profile_start(ds_backend *be, ds_profile **out, dsocr_error *err) {
    *out = NULL;
    if (be->profile) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "profile: the backend is already profiled");
    ds_profile *p = calloc(1, sizeof *p);
    if (!p) return ds_fail(err, DSOCR_ERR_NOMEM, "profile: out of memory");
    p->orig = be->k;
    p->owner = pthread_self();
    ds_profile_reset(p);
    be->profile = p;
    ds_kernels *k = &be->k;
    k->linear = prof_linear;
    k->linear_batch = prof_linear_batch;
    k->conv2d = prof_conv2d;
    k->layernorm = prof_layernorm;
    k->rmsnorm = prof_rmsnorm;
    k->softmax = prof_softmax;
    k->gelu_erf = prof_gelu_erf;
    k->quick_gelu = prof_quick_gelu;
    k->silu = prof_silu;
    k->silu_mul = prof_silu_mul;
    k->attention = prof_attention;
    if (k->attention_kv16) k->attention_kv16 = prof_attention_kv16;
    k->relpos = prof_relpos;
    k->rope = prof_rope;
    *out = p;
    return DSOCR_OK;
}

void ds_profile_stop(ds_backend *be, ds_profile *p) {
    if (!p) return;
    if (be && be->profile == p) {
        be->k = p->orig;
        be->profile = NULL;
    }
    free(p);
}

void ds_profile_reset(ds_profile *p) {
    memset(p->op, 0, sizeof p->op);
    memset(p->w, 0, sizeof p->w);
    p->n_w = 0;
    for (int i = 0; i < DS_PROF_N_OPS; i++) p->op[i].name = op_names[i];
}

void ds_profile_get(const ds_profile *p, int i, ds_profile_op *out) {
    if (i < 0 || i >= DS_PROF_N_OPS) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = p->op[i];
}

int ds_profile_n_weights(const ds_profile *p) { return p->n_w; }

void ds_profile_get_weight(const ds_profile *p, int i, ds_profile_op *out) {
    if (i < 0 || i >= p->n_w) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = p->w[i].c;
}
