/* DeepSeek-MoE decoder (spec section 8): embeddings with image rows scattered in,
 * L x [RMSNorm -> MHA with RoPE -> residual, RMSNorm -> dense MLP or MoE -> residual],
 * final RMSNorm, lm_head. fp32 activations; all compute through kernels/ops.h.
 *
 * Prefill runs the prompt in chunks of up to max_batch rows (causal attention against
 * the KV cache makes chunks equivalent to one pass); decode runs one row per step.
 * MoE groups the rows of a chunk by expert (one gather per expert that was chosen at
 * least once) and runs the experts, shared one included, in groups that fit the
 * buffers: the gates and ups of a group as one batched linear, its downs as another,
 * then a weighted scatter-add. Decode runs all experts of a layer as one group, so a
 * token's ~300 small GEMVs take ~6 parallel steps per layer instead of ~25. */
#include "model/decoder.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- binding ------------------------------------------------------------ */

static int layer_is_moe(const ds_lm_config *c, int l) {
    return c->n_routed_experts > 0 && l >= c->first_k_dense_replace &&
           c->moe_layer_freq > 0 && l % c->moe_layer_freq == 0;
}

static void bind_mlp(ds_binder *b, ds_mlp_weights *m, int64_t D, int64_t I, const char *prefix) {
    m->gate = ds_bind(b, 2, (int64_t[]){I, D}, "%s.gate_proj.weight", prefix);
    m->up = ds_bind(b, 2, (int64_t[]){I, D}, "%s.up_proj.weight", prefix);
    m->down = ds_bind(b, 2, (int64_t[]){D, I}, "%s.down_proj.weight", prefix);
}

void ds_decoder_bind(ds_binder *b, const ds_config *cfg, ds_decoder_weights *w) {
    const ds_lm_config *c = &cfg->lm;
    const int64_t D = c->hidden_size, V = c->vocab_size;
    const int64_t QD = (int64_t)c->num_attention_heads * c->head_dim;
    const int64_t KVD = (int64_t)c->num_key_value_heads * c->head_dim;
    memset(w, 0, sizeof *w);
    w->n_layers = c->num_hidden_layers > 0 ? c->num_hidden_layers : 0;
    w->n_experts = c->n_routed_experts > 0 ? c->n_routed_experts : 0;

    w->embed_tokens = ds_bind(b, 2, (int64_t[]){V, D}, "model.embed_tokens.weight");
    if (w->n_layers) {
        w->layers = calloc((size_t)w->n_layers, sizeof *w->layers);
        if (!w->layers) { w->out_of_memory = 1; return; }
    }
    for (int l = 0; l < w->n_layers; l++) {
        ds_decoder_layer_weights *lw = &w->layers[l];
        char prefix[128];
        lw->input_norm = ds_bind(b, 1, (int64_t[]){D}, "model.layers.%d.input_layernorm.weight", l);
        lw->post_norm = ds_bind(b, 1, (int64_t[]){D}, "model.layers.%d.post_attention_layernorm.weight", l);
        lw->wq = ds_bind(b, 2, (int64_t[]){QD, D}, "model.layers.%d.self_attn.q_proj.weight", l);
        lw->wk = ds_bind(b, 2, (int64_t[]){KVD, D}, "model.layers.%d.self_attn.k_proj.weight", l);
        lw->wv = ds_bind(b, 2, (int64_t[]){KVD, D}, "model.layers.%d.self_attn.v_proj.weight", l);
        lw->wo = ds_bind(b, 2, (int64_t[]){D, QD}, "model.layers.%d.self_attn.o_proj.weight", l);
        lw->is_moe = layer_is_moe(c, l);
        if (!lw->is_moe) {
            snprintf(prefix, sizeof prefix, "model.layers.%d.mlp", l);
            bind_mlp(b, &lw->mlp, D, c->intermediate_size, prefix);
            continue;
        }
        lw->router = ds_bind(b, 2, (int64_t[]){w->n_experts, D}, "model.layers.%d.mlp.gate.weight", l);
        lw->experts = calloc((size_t)w->n_experts, sizeof *lw->experts);
        if (!lw->experts) { w->out_of_memory = 1; return; }
        for (int e = 0; e < w->n_experts; e++) {
            snprintf(prefix, sizeof prefix, "model.layers.%d.mlp.experts.%d", l, e);
            bind_mlp(b, &lw->experts[e], D, c->moe_intermediate_size, prefix);
        }
        if (c->n_shared_experts > 0) {
            snprintf(prefix, sizeof prefix, "model.layers.%d.mlp.shared_experts", l);
            bind_mlp(b, &lw->shared, D, (int64_t)c->moe_intermediate_size * c->n_shared_experts, prefix);
        }
    }
    w->norm = ds_bind(b, 1, (int64_t[]){D}, "model.norm.weight");
    w->lm_head = ds_bind(b, 2, (int64_t[]){V, D}, "lm_head.weight");
}

void ds_decoder_weights_free(ds_decoder_weights *w) {
    if (!w) return;
    for (int l = 0; w->layers && l < w->n_layers; l++) free(w->layers[l].experts);
    free(w->layers);
    memset(w, 0, sizeof *w);
}

/* ---- run state ---------------------------------------------------------- */

/* One SwiGLU MLP of a group, y[c, D] = down(silu(gate(x)) * up(x)) for x [c, D]:
 * the dense MLP, the shared expert (both on every row) or a routed expert (on the
 * rows that chose it). */
typedef struct {
    const ds_mlp_weights *m;
    const float *x;      /* [c, D] d->xb, or its rows gathered into d->xg */
    int c;               /* rows */
    int row0;            /* routed: first of its rows in h_rows / h_rows_w; -1: every row, weight 1 */
    float *hg, *hu;      /* [c, I] in d->hg / d->hu */
    float *y;            /* [c, D] in d->yg */
} mlp_run;

struct ds_decoder {
    ds_backend *be;
    ds_lm_config cfg;
    const ds_decoder_weights *w;
    int D, H, hd, QD, KVD, V, L, E, K;  /* dims; QD = H*hd, E experts, K chosen per token */
    int I_max;                           /* widest MLP hidden (dense, expert, shared) */
    int group_rows;                      /* rows of an expert group: max(B, K + 1) */
    int max_ctx, max_batch;
    int n_past;                          /* positions in the KV cache */
    int kv16;                            /* the cache holds bf16 (ds_decoder_params.kv_bf16) */

    /* backend memory */
    float *inv_freq;   /* [hd/2] RoPE frequencies */
    float *x;          /* [B, D] residual stream */
    float *xb;         /* [B, D] normed input of a sublayer */
    float *q;          /* [B, QD] */
    float *att;        /* [B, QD] attention output before o_proj */
    float *kn, *vn;    /* [B, KVD] new keys / values, before they go into the cache */
    float *hg, *hu;    /* [group_rows * I_max] MLP gate / up activations of a group */
    float *xg;         /* [group_rows, D] rows gathered for the experts of a group */
    float *yg;         /* [group_rows, D] sublayer output, or a group's expert outputs */
    float *router;     /* [B, E] router logits, then probabilities */
    float *logits;     /* [V] */
    float *k_cache;    /* [L, H, max_ctx, hd]: head-major, so that a decode step reads */
    float *v_cache;    /* each head's positions as one contiguous run; f32, or bf16 (kv16) */

    /* host scratch */
    float *h_probs;       /* [B, E] */
    int32_t *h_topk;      /* [B, K] chosen experts per row */
    float *h_topk_w;      /* [B, K] their weights */
    int *h_offset;        /* [E + 1] start of each expert's rows in h_rows */
    int *h_fill;          /* [E] */
    int32_t *h_rows;      /* [B*K] rows grouped by expert, ascending inside a group */
    float *h_rows_w;      /* [B*K] routing weight of each grouped row */
    mlp_run *h_group;     /* [E + 1] MLPs of the group being filled */
    ds_linear_job *h_jobs; /* [2 (E + 1)] their linears */
    float *h_hidden;      /* [L, D] trace: last-row output of each layer */
    int64_t *h_trace_idx; /* [L, K] trace: routing of the last row per MoE layer */
    float *h_trace_w;     /* [L, K] */
};

int ds_decoder_max_ctx(const ds_decoder *dec) { return dec->max_ctx; }
int ds_decoder_n_past(const ds_decoder *dec) { return dec->n_past; }
int ds_decoder_vocab(const ds_decoder *dec) { return dec->V; }

void ds_decoder_free(ds_decoder *dec) {
    if (!dec) return;
    float **bufs[] = {&dec->inv_freq, &dec->x, &dec->xb, &dec->q, &dec->att, &dec->hg, &dec->hu,
                      &dec->xg, &dec->yg, &dec->router, &dec->logits, &dec->k_cache, &dec->v_cache,
                      &dec->kn, &dec->vn};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (*bufs[i]) ds_buf_free(dec->be, *bufs[i]);
    free(dec->h_probs); free(dec->h_topk); free(dec->h_topk_w); free(dec->h_offset);
    free(dec->h_fill); free(dec->h_rows); free(dec->h_rows_w); free(dec->h_hidden);
    free(dec->h_trace_idx); free(dec->h_trace_w); free(dec->h_group); free(dec->h_jobs);
    free(dec);
}

static dsocr_status check_config(const ds_lm_config *c, const ds_decoder_weights *w, dsocr_error *err) {
    if (c->hidden_size <= 0 || c->num_hidden_layers <= 0 || c->num_attention_heads <= 0 ||
        c->head_dim <= 0 || c->vocab_size <= 0 || c->intermediate_size <= 0)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "decoder config: non-positive dimension "
                       "(hidden %d, layers %d, heads %d, head_dim %d, vocab %d, intermediate %d)",
                       c->hidden_size, c->num_hidden_layers, c->num_attention_heads, c->head_dim,
                       c->vocab_size, c->intermediate_size);
    if (c->head_dim % 2)
        return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "decoder config: odd head_dim %d (rotate-half RoPE needs pairs)", c->head_dim);
    if (c->num_key_value_heads != c->num_attention_heads)
        return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "decoder config: num_key_value_heads %d != num_attention_heads %d "
                       "(grouped-query attention is not supported)", c->num_key_value_heads, c->num_attention_heads);
    if (c->n_routed_experts > 0 && (c->num_experts_per_tok <= 0 || c->num_experts_per_tok > c->n_routed_experts ||
                                    c->moe_intermediate_size <= 0 || c->n_shared_experts < 0))
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "decoder config: num_experts_per_tok %d of %d experts, "
                       "moe_intermediate_size %d, n_shared_experts %d", c->num_experts_per_tok,
                       c->n_routed_experts, c->moe_intermediate_size, c->n_shared_experts);
    if (!w || w->out_of_memory)
        return ds_fail(err, DSOCR_ERR_NOMEM, "decoder weights: out of memory while binding");
    if (!w->layers || w->n_layers != c->num_hidden_layers || w->n_experts != (c->n_routed_experts > 0 ? c->n_routed_experts : 0))
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "decoder weights: bound for %d layers / %d experts, config has %d / %d",
                       w->n_layers, w->n_experts, c->num_hidden_layers, c->n_routed_experts);
    return DSOCR_OK;
}

static dsocr_status alloc_buf(ds_decoder *dec, float **p, size_t n, const char *what, dsocr_error *err) {
    *p = ds_buf_alloc(dec->be, n);
    if (!*p) return ds_fail(err, DSOCR_ERR_NOMEM, "decoder: cannot allocate %s (%zu floats)", what, n);
    return DSOCR_OK;
}

static dsocr_status alloc_host(void **p, size_t n, size_t size, const char *what, dsocr_error *err) {
    *p = calloc(n ? n : 1, size);
    if (!*p) return ds_fail(err, DSOCR_ERR_NOMEM, "decoder: cannot allocate %s (%zu x %zu bytes)", what, n, size);
    return DSOCR_OK;
}

static dsocr_status alloc_state(ds_decoder *d, dsocr_error *err) {
    const size_t B = (size_t)d->max_batch, E = (size_t)(d->E ? d->E : 1), K = (size_t)(d->K ? d->K : 1);
    size_t kv = (size_t)d->L * (size_t)d->max_ctx * (size_t)d->KVD;
    if (d->kv16) kv = (kv + 1) / 2;   /* floats that hold kv bf16 values */
    DS_TRY(alloc_buf(d, &d->inv_freq, (size_t)d->hd / 2, "RoPE inv_freq", err));
    DS_TRY(alloc_buf(d, &d->x, B * d->D, "residual stream", err));
    DS_TRY(alloc_buf(d, &d->xb, B * d->D, "normed activations", err));
    DS_TRY(alloc_buf(d, &d->q, B * d->QD, "queries", err));
    DS_TRY(alloc_buf(d, &d->att, B * d->QD, "attention output", err));
    DS_TRY(alloc_buf(d, &d->kn, B * d->KVD, "new keys", err));
    DS_TRY(alloc_buf(d, &d->vn, B * d->KVD, "new values", err));
    const size_t G = (size_t)d->group_rows;
    DS_TRY(alloc_buf(d, &d->hg, G * d->I_max, "MLP gate activations", err));
    DS_TRY(alloc_buf(d, &d->hu, G * d->I_max, "MLP up activations", err));
    DS_TRY(alloc_buf(d, &d->xg, G * d->D, "expert input rows", err));
    DS_TRY(alloc_buf(d, &d->yg, G * d->D, "sublayer output", err));
    DS_TRY(alloc_buf(d, &d->router, B * E, "router logits", err));
    DS_TRY(alloc_buf(d, &d->logits, (size_t)d->V, "logits", err));
    DS_TRY(alloc_buf(d, &d->k_cache, kv, "K cache", err));
    DS_TRY(alloc_buf(d, &d->v_cache, kv, "V cache", err));
    DS_TRY(alloc_host((void **)&d->h_probs, B * E, sizeof(float), "router probabilities", err));
    DS_TRY(alloc_host((void **)&d->h_topk, B * K, sizeof(int32_t), "router choices", err));
    DS_TRY(alloc_host((void **)&d->h_topk_w, B * K, sizeof(float), "router weights", err));
    DS_TRY(alloc_host((void **)&d->h_offset, E + 1, sizeof(int), "expert offsets", err));
    DS_TRY(alloc_host((void **)&d->h_fill, E, sizeof(int), "expert fill", err));
    DS_TRY(alloc_host((void **)&d->h_rows, B * K, sizeof(int32_t), "expert rows", err));
    DS_TRY(alloc_host((void **)&d->h_rows_w, B * K, sizeof(float), "expert row weights", err));
    DS_TRY(alloc_host((void **)&d->h_group, E + 1, sizeof *d->h_group, "expert group", err));
    DS_TRY(alloc_host((void **)&d->h_jobs, 2 * (E + 1), sizeof *d->h_jobs, "expert group linears", err));
    DS_TRY(alloc_host((void **)&d->h_hidden, (size_t)d->L * d->D, sizeof(float), "trace hidden", err));
    DS_TRY(alloc_host((void **)&d->h_trace_idx, (size_t)d->L * K, sizeof(int64_t), "trace routing", err));
    DS_TRY(alloc_host((void **)&d->h_trace_w, (size_t)d->L * K, sizeof(float), "trace routing weights", err));
    return DSOCR_OK;
}

/* inv_freq[i] = 1 / theta^(2i/hd) in fp32, as transformers' default rotary embedding
 * computes it; the HF CUDA path then rounds the buffer to bf16 (spec 9.2). */
static void init_rope(ds_decoder *d, int bf16) {
    float host[256];   /* head_dim <= 512 is checked in ds_decoder_new */
    int half = d->hd / 2;
    for (int i = 0; i < half; i++) {
        float inv = 1.0f / powf(d->cfg.rope_theta, (float)(2 * i) / (float)d->hd);
        host[i] = bf16 ? ds_round_bf16(inv) : inv;
    }
    ds_op_upload(d->be, d->inv_freq, host, (size_t)half);
}

dsocr_status ds_decoder_new(ds_backend *be, const ds_lm_config *cfg, const ds_decoder_weights *w,
                            const ds_decoder_params *params, ds_decoder **out, dsocr_error *err) {
    *out = NULL;
    if (!be || !cfg || !params)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "ds_decoder_new: NULL backend, config or params");
    DS_TRY(check_config(cfg, w, err));
    if (params->max_ctx <= 0 || params->max_batch < 0)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "ds_decoder_new: max_ctx %d, max_batch %d", params->max_ctx, params->max_batch);
    if (cfg->head_dim > 512)
        return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "decoder config: head_dim %d > 512", cfg->head_dim);

    ds_decoder *d = calloc(1, sizeof *d);
    if (!d) return ds_fail(err, DSOCR_ERR_NOMEM, "ds_decoder_new: out of memory");
    d->be = be;
    d->cfg = *cfg;
    d->w = w;
    d->D = cfg->hidden_size;
    d->H = cfg->num_attention_heads;
    d->hd = cfg->head_dim;
    d->QD = d->H * d->hd;
    d->KVD = cfg->num_key_value_heads * d->hd;
    d->V = cfg->vocab_size;
    d->L = cfg->num_hidden_layers;
    d->E = cfg->n_routed_experts > 0 ? cfg->n_routed_experts : 0;
    d->K = d->E ? cfg->num_experts_per_tok : 0;
    d->I_max = cfg->intermediate_size;
    if (d->E) {
        int shared = cfg->moe_intermediate_size * cfg->n_shared_experts;
        if (cfg->moe_intermediate_size > d->I_max) d->I_max = cfg->moe_intermediate_size;
        if (shared > d->I_max) d->I_max = shared;
    }
    d->max_ctx = params->max_ctx;
    d->kv16 = params->kv_bf16 && ds_backend_kv_bf16(be);
    d->max_batch = params->max_batch ? params->max_batch : 1024;
    if (d->max_batch > d->max_ctx) d->max_batch = d->max_ctx;
    d->group_rows = d->max_batch > d->K + 1 ? d->max_batch : d->K + 1;

    dsocr_status s = alloc_state(d, err);
    if (s != DSOCR_OK) { ds_decoder_free(d); return s; }
    init_rope(d, params->rope_bf16_inv_freq);
    *out = d;
    return DSOCR_OK;
}

/* ---- forward ------------------------------------------------------------ */

/* Self-attention of rows x[T] at positions pos0..pos0+T-1: the new keys and values go
 * into the cache, and the queries attend to every cached position up to their own. */
static void attention(ds_decoder *d, const ds_decoder_layer_weights *lw, int l, int T, int pos0) {
    ds_backend *be = d->be;
    const size_t head = (size_t)d->max_ctx * d->hd;                   /* one head's cache */
    float *kl = d->k_cache + (size_t)l * d->H * head;                  /* [H, max_ctx, hd] */
    float *vl = d->v_cache + (size_t)l * d->H * head;
    uint16_t *kl16 = (uint16_t *)d->k_cache + (size_t)l * d->H * head; /* the same in bf16 */
    uint16_t *vl16 = (uint16_t *)d->v_cache + (size_t)l * d->H * head;

    // qkv projections in one batch: [T, D] -> [T, QD], [T, KVD] x 2
    ds_op_rmsnorm(be, d->xb, d->x, T, d->D, &lw->input_norm, d->cfg.rms_norm_eps);
    const ds_linear_job qkv[3] = {{.y = d->q, .x = d->xb, .M = T, .K = d->D, .W = &lw->wq},
                                  {.y = d->kn, .x = d->xb, .M = T, .K = d->D, .W = &lw->wk},
                                  {.y = d->vn, .x = d->xb, .M = T, .K = d->D, .W = &lw->wv}};
    ds_op_linear_batch(be, 3, qkv);

    // rotate-half RoPE on q and the new keys, then the new rows into each head's cache
    ds_op_rope(be, d->q, d->QD, T, d->H, d->hd, pos0, d->inv_freq);
    ds_op_rope(be, d->kn, d->KVD, T, d->H, d->hd, pos0, d->inv_freq);
    for (int h = 0; h < d->H; h++) {   // [T, hd] of head h -> its cache rows pos0..
        size_t dst = h * head + (size_t)pos0 * d->hd, src = (size_t)h * d->hd;
        if (d->kv16) {
            ds_op_copy_rows_bf16(be, kl16 + dst, d->hd, d->kn + src, d->KVD, T, d->hd);
            ds_op_copy_rows_bf16(be, vl16 + dst, d->hd, d->vn + src, d->KVD, T, d->hd);
        } else {
            ds_op_copy_rows(be, kl + dst, d->hd, d->kn + src, d->KVD, T, d->hd);
            ds_op_copy_rows(be, vl + dst, d->hd, d->vn + src, d->KVD, T, d->hd);
        }
    }

    // causal softmax(q kᵀ / sqrt(hd)) v over cache positions 0..pos0+T-1
    ds_attn_args a = {0};
    a.out = d->att; a.out_stride = d->QD;
    a.q = d->q; a.q_stride = d->QD;
    a.k = kl; a.k_stride = d->hd; a.k_head_stride = (int64_t)head;
    a.v = vl; a.v_stride = d->hd; a.v_head_stride = (int64_t)head;
    if (d->kv16) { a.k16 = kl16; a.v16 = vl16; }
    a.Lq = T; a.Lk = pos0 + T; a.n_heads = d->H; a.head_dim = d->hd;
    a.batch = 1;
    a.scale = 1.0f / sqrtf((float)d->hd);
    a.causal = 1; a.q_pos0 = pos0;
    ds_op_attention(be, &a);

    // output projection and residual: x += att · Woᵀ
    ds_op_linear(be, d->yg, d->att, T, d->QD, &lw->wo, NULL);
    ds_op_add(be, d->x, d->x, d->yg, (size_t)T * d->D);
}

/* Runs the n MLPs of d->h_group and adds their outputs into x (every-row MLPs first,
 * then routed experts in id order, each row scaled by its routing weight). Gates and
 * ups are one batched linear, downs another: all independent, so the backend runs
 * them as one parallel step each. The hidden activations lie end to end from d->hg. */
static void run_group(ds_decoder *d, int n) {
    ds_backend *be = d->be;
    const mlp_run *g = d->h_group;
    ds_linear_job *jobs = d->h_jobs;
    size_t hidden = 0;
    for (int i = 0; i < n; i++) {
        jobs[2 * i] = (ds_linear_job){.y = g[i].hg, .x = g[i].x, .M = g[i].c, .K = d->D, .W = &g[i].m->gate};
        jobs[2 * i + 1] = (ds_linear_job){.y = g[i].hu, .x = g[i].x, .M = g[i].c, .K = d->D, .W = &g[i].m->up};
        hidden += (size_t)g[i].c * g[i].m->gate.shape[0];
    }
    ds_op_linear_batch(be, 2 * n, jobs);                   // [c, I] each
    ds_op_silu_mul(be, d->hg, d->hg, d->hu, hidden);
    for (int i = 0; i < n; i++)
        jobs[i] = (ds_linear_job){.y = g[i].y, .x = g[i].hg, .M = g[i].c, .K = (int)g[i].m->gate.shape[0],
                                  .W = &g[i].m->down};
    ds_op_linear_batch(be, n, jobs);                       // [c, D] each
    for (int i = 0; i < n; i++) {
        if (g[i].row0 < 0) {
            ds_op_add(be, d->x, d->x, g[i].y, (size_t)g[i].c * d->D);
            continue;
        }
        for (int r = 0; r < g[i].c; r++)
            ds_op_axpy(be, d->x + (size_t)d->h_rows[g[i].row0 + r] * d->D, d->h_rows_w[g[i].row0 + r],
                       g[i].y + (size_t)r * d->D, (size_t)d->D);
    }
}

/* Appends an MLP over c rows to the group being filled (the caller checked it fits);
 * used[0] = rows so far, used[1] = hidden floats so far. */
static void group_add(ds_decoder *d, int *n, size_t used[2], const ds_mlp_weights *m, const float *x,
                      int c, int row0) {
    d->h_group[*n] = (mlp_run){m, x, c, row0, d->hg + used[1], d->hu + used[1], d->yg + used[0] * d->D};
    used[0] += (size_t)c;
    used[1] += (size_t)c * m->gate.shape[0];
    (*n)++;
}

/* Dense MLP on xb [T, D], added into x: a group of one. */
static void dense_mlp(ds_decoder *d, const ds_mlp_weights *m, int T) {
    int n = 0;
    size_t used[2] = {0, 0};
    group_add(d, &n, used, m, d->xb, T, -1);
    run_group(d, n);
}

/* Greedy top-k of one row of router probabilities: repeated arg-max, lowest expert
 * id on exact ties. Weights are the raw probabilities (renormalised only when the
 * config says so) times routed_scaling_factor. */
static void route_row(const ds_decoder *d, const float *p, int32_t *idx, float *wgt) {
    float sum = 0.0f;
    for (int k = 0; k < d->K; k++) {
        int best = -1;
        for (int e = 0; e < d->E; e++) {
            int taken = 0;
            for (int j = 0; j < k; j++) taken |= idx[j] == e;
            if (!taken && (best < 0 || p[e] > p[best])) best = e;
        }
        idx[k] = best;
        wgt[k] = p[best];
        sum += p[best];
    }
    for (int k = 0; k < d->K; k++) {
        if (d->cfg.norm_topk_prob) wgt[k] /= sum + 1e-20f;
        wgt[k] *= d->cfg.routed_scaling_factor;
    }
}

/* Records the routing of row r for the trace, sorted by expert id. */
static void trace_route(ds_decoder *d, int moe_i, int r) {
    int64_t *ti = d->h_trace_idx + (size_t)moe_i * d->K;
    float *tw = d->h_trace_w + (size_t)moe_i * d->K;
    for (int k = 0; k < d->K; k++) {
        int64_t e = d->h_topk[(size_t)r * d->K + k];
        float wv = d->h_topk_w[(size_t)r * d->K + k];
        int j = k;
        for (; j > 0 && ti[j - 1] > e; j--) { ti[j] = ti[j - 1]; tw[j] = tw[j - 1]; }
        ti[j] = e; tw[j] = wv;
    }
}

/* MoE sublayer on xb [T, D]; adds shared(xb) + Σ_k w_k · expert_k(xb) into x. */
static void moe(ds_decoder *d, const ds_decoder_layer_weights *lw, int T, int trace_slot) {
    ds_backend *be = d->be;
    const int E = d->E, K = d->K, D = d->D;

    // router: softmax(xb · Wrᵀ) [T, E] in fp32, top-k on the host
    ds_op_linear(be, d->router, d->xb, T, D, &lw->router, NULL);
    ds_op_softmax(be, d->router, T, E);
    ds_op_download(be, d->h_probs, d->router, (size_t)T * E);
    for (int t = 0; t < T; t++)
        route_row(d, d->h_probs + (size_t)t * E, d->h_topk + (size_t)t * K, d->h_topk_w + (size_t)t * K);
    if (trace_slot >= 0) trace_route(d, trace_slot, T - 1);

    // group rows by expert (counting sort keeps rows ascending inside each group)
    memset(d->h_offset, 0, (size_t)(E + 1) * sizeof *d->h_offset);
    for (int i = 0; i < T * K; i++) d->h_offset[d->h_topk[i] + 1]++;
    for (int e = 0; e < E; e++) { d->h_offset[e + 1] += d->h_offset[e]; d->h_fill[e] = d->h_offset[e]; }
    for (int i = 0; i < T * K; i++) {
        int slot = d->h_fill[d->h_topk[i]]++;
        d->h_rows[slot] = i / K;
        d->h_rows_w[slot] = d->h_topk_w[i];
    }

    // the shared expert (every row) and the chosen experts (their rows gathered), in
    // groups that fit group_rows rows and group_rows * I_max hidden floats: decode
    // and short chunks make one group, a long prefill chunk several
    ds_tensor xb_view = {.name = "decoder activations", .dtype = DS_F32, .ndim = 2,
                         .shape = {T, D}, .data = d->xb};
    ds_tensor_set_contiguous(&xb_view);
    const size_t hidden_cap = (size_t)d->group_rows * d->I_max;
    int n = 0, gathered = 0;       /* MLPs in the group, rows gathered into xg */
    size_t used[2] = {0, 0};       /* rows of yg, floats of hg / hu */
    if (d->cfg.n_shared_experts > 0) group_add(d, &n, used, &lw->shared, d->xb, T, -1);
    for (int e = 0; e < E; e++) {
        int n0 = d->h_offset[e], c = d->h_offset[e + 1] - n0;
        if (c == 0) continue;
        if (used[0] + c > (size_t)d->group_rows || used[1] + (size_t)c * lw->experts[e].gate.shape[0] > hidden_cap) {
            run_group(d, n);
            n = gathered = 0;
            used[0] = used[1] = 0;
        }
        const float *src = d->xb;            /* every row, in order: no gather needed */
        if (c != T) {
            float *rows = d->xg + (size_t)gathered * D;
            ds_op_embed(be, rows, &xb_view, d->h_rows + n0, c);   // [c, D]
            src = rows;
            gathered += c;
        }
        group_add(d, &n, used, &lw->experts[e], src, c, n0);
    }
    if (n) run_group(d, n);
}

/* Runs rows x[T] (embeddings already in place) through every layer at positions
 * pos0.. and leaves logits of the last row in d->logits. tracing: record the last row. */
static void forward(ds_decoder *d, int T, int pos0, int tracing) {
    ds_backend *be = d->be;
    const ds_decoder_weights *w = d->w;
    int moe_i = 0;
    for (int l = 0; l < d->L; l++) {
        const ds_decoder_layer_weights *lw = &w->layers[l];
        attention(d, lw, l, T, pos0);
        ds_op_rmsnorm(be, d->xb, d->x, T, d->D, &lw->post_norm, d->cfg.rms_norm_eps);
        if (lw->is_moe) {
            moe(d, lw, T, tracing ? moe_i : -1);
            moe_i++;
        } else {
            dense_mlp(d, &lw->mlp, T);
        }
        if (tracing) ds_op_download(be, d->h_hidden + (size_t)l * d->D, d->x + (size_t)(T - 1) * d->D, (size_t)d->D);
    }
    // final norm and lm_head on the last row only: [1, D] -> [V]
    ds_op_rmsnorm(be, d->xb, d->x + (size_t)(T - 1) * d->D, 1, d->D, &w->norm, d->cfg.rms_norm_eps);
    ds_op_linear(be, d->logits, d->xb, 1, d->D, &w->lm_head, NULL);
}

static dsocr_status check_ids(const ds_decoder *d, const int32_t *ids, int T, dsocr_error *err) {
    for (int t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= d->V)
            return ds_fail(err, DSOCR_ERR_INVALID_ARG, "decoder prefill: token id %d at position %d outside the vocabulary [0, %d)",
                           (int)ids[t], t, d->V);
    return DSOCR_OK;
}

static void emit_prefill_trace(ds_decoder *d, const ds_trace *tr, const float *logits) {
    int n_moe = 0;
    for (int l = 0; l < d->L; l++) n_moe += d->w->layers[l].is_moe;
    ds_trace_tensor(tr, "prefill_last_layer_hidden", d->h_hidden, 2, (int64_t[]){d->L, d->D});
    float *fn = malloc((size_t)d->D * sizeof *fn);
    if (fn) {
        ds_op_download(d->be, fn, d->xb, (size_t)d->D);
        ds_trace_tensor(tr, "prefill_last_final_norm", fn, 1, (int64_t[]){d->D});
        free(fn);
    }
    if (n_moe) {
        ds_trace_ints(tr, "prefill_moe_topk_idx_last", d->h_trace_idx, 2, (int64_t[]){n_moe, d->K});
        ds_trace_tensor(tr, "prefill_moe_topk_weight_last", d->h_trace_w, 2, (int64_t[]){n_moe, d->K});
    }
    ds_trace_tensor(tr, "prefill_logits_last", logits, 1, (int64_t[]){d->V});
}

dsocr_status ds_decoder_prefill(ds_decoder *d, const int32_t *ids, int T,
                                const float *image_embeds, int n_image, const uint8_t *image_mask,
                                float *logits_last, const ds_trace *trace, dsocr_error *err) {
    if (!ids || T <= 0 || !logits_last)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "decoder prefill: %d prompt tokens (ids %s, logits %s)",
                       T, ids ? "set" : "NULL", logits_last ? "set" : "NULL");
    if (T > d->max_ctx)
        return ds_fail(err, DSOCR_ERR_LIMIT, "decoder prefill: prompt of %d tokens exceeds the context of %d", T, d->max_ctx);
    DS_TRY(check_ids(d, ids, T, err));
    int n_mask = 0;
    for (int t = 0; image_mask && t < T; t++) n_mask += image_mask[t] != 0;
    if (n_mask != n_image || (n_image > 0 && !image_embeds) || n_image < 0)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "decoder prefill: %d image positions in the mask but %d image embeddings%s",
                       n_mask, n_image, n_image > 0 && !image_embeds ? " (NULL)" : "");

    d->n_past = 0;
    int img = 0;
    for (int c0 = 0; c0 < T; c0 += d->max_batch) {
        int n = T - c0 < d->max_batch ? T - c0 : d->max_batch;
        // input embeddings [n, D]; image placeholder rows replaced in order
        ds_op_embed(d->be, d->x, &d->w->embed_tokens, ids + c0, n);
        for (int t = 0; image_mask && t < n; t++)
            if (image_mask[c0 + t])
                ds_op_upload(d->be, d->x + (size_t)t * d->D, image_embeds + (size_t)img++ * d->D, (size_t)d->D);
        int last = c0 + n == T;
        forward(d, n, c0, last && trace);
        d->n_past = c0 + n;
    }
    ds_op_download(d->be, logits_last, d->logits, (size_t)d->V);
    if (trace) emit_prefill_trace(d, trace, logits_last);
    return DSOCR_OK;
}

dsocr_status ds_decoder_step(ds_decoder *d, int32_t id, float *logits, dsocr_error *err) {
    if (!logits) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "decoder step: NULL logits");
    if (id < 0 || id >= d->V)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "decoder step: token id %d outside the vocabulary [0, %d)", (int)id, d->V);
    if (d->n_past >= d->max_ctx)
        return ds_fail(err, DSOCR_ERR_LIMIT, "decoder step: KV cache full (%d positions)", d->max_ctx);
    ds_op_embed(d->be, d->x, &d->w->embed_tokens, &id, 1);
    forward(d, 1, d->n_past, 0);
    d->n_past++;
    ds_op_download(d->be, logits, d->logits, (size_t)d->V);
    return DSOCR_OK;
}
