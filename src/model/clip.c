/* CLIP-L body fed with SAM features (spec 7.2). */
#include "model/clip.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

/* ---- binding ------------------------------------------------------------- */

void ds_clip_bind(ds_binder *b, const ds_clip_config *c, ds_clip_weights *w) {
    const int64_t C = c->width, F = c->ffn_hidden_size, p = c->patch_size;
    const int64_t G = c->patch_size > 0 ? c->image_size / c->patch_size : 0;
    const int n_layers = c->layers < DS_CLIP_MAX_LAYERS ? c->layers : DS_CLIP_MAX_LAYERS;

    w->class_embedding = ds_bind(b, 1, SHAPE(C), "model.vision_model.embeddings.class_embedding");
    /* never used in the forward (SAM tokens are the patch embeddings), but part of the
     * checkpoint: binding it keeps the tensor list complete for checks and generators */
    w->patch_embedding = ds_bind(b, 4, SHAPE(C, 3, p, p), "model.vision_model.embeddings.patch_embedding.weight");
    w->position_embedding = ds_bind(b, 2, SHAPE(G * G + 1, C), "model.vision_model.embeddings.position_embedding.weight");
    w->pre_ln_w = ds_bind(b, 1, SHAPE(C), "model.vision_model.pre_layrnorm.weight");
    w->pre_ln_b = ds_bind(b, 1, SHAPE(C), "model.vision_model.pre_layrnorm.bias");
    for (int i = 0; i < n_layers; i++) {
        ds_clip_layer *l = &w->layers[i];
#define P "model.vision_model.transformer.layers.%d."
        l->ln1_w = ds_bind(b, 1, SHAPE(C), P "layer_norm1.weight", i);
        l->ln1_b = ds_bind(b, 1, SHAPE(C), P "layer_norm1.bias", i);
        l->qkv_w = ds_bind(b, 2, SHAPE(3 * C, C), P "self_attn.qkv_proj.weight", i);
        l->qkv_b = ds_bind(b, 1, SHAPE(3 * C), P "self_attn.qkv_proj.bias", i);
        l->out_w = ds_bind(b, 2, SHAPE(C, C), P "self_attn.out_proj.weight", i);
        l->out_b = ds_bind(b, 1, SHAPE(C), P "self_attn.out_proj.bias", i);
        l->ln2_w = ds_bind(b, 1, SHAPE(C), P "layer_norm2.weight", i);
        l->ln2_b = ds_bind(b, 1, SHAPE(C), P "layer_norm2.bias", i);
        l->fc1_w = ds_bind(b, 2, SHAPE(F, C), P "mlp.fc1.weight", i);
        l->fc1_b = ds_bind(b, 1, SHAPE(F), P "mlp.fc1.bias", i);
        l->fc2_w = ds_bind(b, 2, SHAPE(C, F), P "mlp.fc2.weight", i);
        l->fc2_b = ds_bind(b, 1, SHAPE(C), P "mlp.fc2.bias", i);
#undef P
    }
}

dsocr_status ds_clip_check_config(const ds_clip_config *c, dsocr_error *err) {
    if (c->layers < 1 || c->layers > DS_CLIP_MAX_LAYERS)
        return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "clip: %d layers (supported 1..%d)", c->layers, DS_CLIP_MAX_LAYERS);
    if (c->width <= 0 || c->heads <= 0 || c->width % c->heads)
        return ds_fail(err, DSOCR_ERR_FORMAT, "clip: width %d not divisible into %d heads", c->width, c->heads);
    if (c->ffn_hidden_size <= 0 || c->patch_size <= 0 || c->image_size < c->patch_size)
        return ds_fail(err, DSOCR_ERR_FORMAT, "clip: non-positive dimension in config (ffn %d, patch %d, image_size %d)",
                       c->ffn_hidden_size, c->patch_size, c->image_size);
    return DSOCR_OK;
}

/* ---- per-grid tables ----------------------------------------------------- */

dsocr_status ds_clip_tables_build(ds_backend *be, const ds_clip_config *c, const ds_clip_weights *w,
                                  int g, ds_clip_tables *t, dsocr_error *err) {
    memset(t, 0, sizeof *t);
    const int C = c->width, G = c->image_size / c->patch_size;
    const size_t n_grid = (size_t)G * G * C, n_out = (size_t)g * g * C;
    t->g = g;
    float *grid = malloc(n_grid * sizeof(float));
    float *resized = malloc(n_out * sizeof(float));
    t->cls_row = malloc((size_t)C * sizeof(float));
    t->pos = ds_buf_alloc(be, n_out);
    if (!grid || !resized || !t->cls_row || !t->pos) {
        free(grid);
        free(resized);
        ds_clip_tables_free(be, t);
        return ds_fail(err, DSOCR_ERR_NOMEM, "clip: cannot allocate the %dx%d position table", g, g);
    }
    /* CLS position is kept; the class token is folded in here once */
    for (int i = 0; i < C; i++)
        t->cls_row[i] = ds_tensor_get_f32(&w->class_embedding, i) + ds_tensor_get_f32(&w->position_embedding, i);
    /* grid rows 1.. as [G, G, C] -> [g, g, C], antialiased bicubic when g != G */
    for (size_t i = 0; i < n_grid; i++) grid[i] = ds_tensor_get_f32(&w->position_embedding, (int64_t)(C + i));
    if (g != G) ds_interp_bicubic_aa(resized, grid, G, G, C, g, g);
    ds_op_upload(be, t->pos, g != G ? resized : grid, n_out);
    free(grid);
    free(resized);
    return DSOCR_OK;
}

void ds_clip_tables_free(ds_backend *be, ds_clip_tables *t) {
    if (t->pos) ds_buf_free(be, t->pos);
    free(t->cls_row);
    memset(t, 0, sizeof *t);
}

/* ---- run state ----------------------------------------------------------- */

dsocr_status ds_clip_state_reserve(ds_backend *be, const ds_clip_config *c, ds_clip_state *s,
                                   int batch, int n_tokens, dsocr_error *err) {
    const size_t rows = (size_t)batch * (n_tokens + 1), C = (size_t)c->width;
    DS_TRY(ds_vbuf_reserve(be, &s->x, rows * C, "clip residual", err));
    DS_TRY(ds_vbuf_reserve(be, &s->h, rows * C, "clip hidden", err));
    DS_TRY(ds_vbuf_reserve(be, &s->qkv, rows * 3 * C, "clip qkv", err));
    DS_TRY(ds_vbuf_reserve(be, &s->att, rows * C, "clip attention", err));
    DS_TRY(ds_vbuf_reserve(be, &s->mlp, rows * (size_t)c->ffn_hidden_size, "clip mlp", err));
    return DSOCR_OK;
}

void ds_clip_state_free(ds_backend *be, ds_clip_state *s) {
    ds_vbuf_free(be, &s->x);
    ds_vbuf_free(be, &s->h);
    ds_vbuf_free(be, &s->qkv);
    ds_vbuf_free(be, &s->att);
    ds_vbuf_free(be, &s->mlp);
}

/* ---- forward ------------------------------------------------------------- */

void ds_clip_forward(ds_backend *be, const ds_clip_config *c, const ds_clip_weights *w,
                     const ds_clip_tables *t, ds_clip_state *s, const float *tokens, int B) {
    const int C = c->width, H = c->heads, hd = C / H, F = c->ffn_hidden_size;
    const int N = t->g * t->g, L = N + 1, rows = B * L;
    const size_t RC = (size_t)rows * C;

    /* embeddings: x[b] = [class + pos0 ; tokens[b] + pos] */
    for (int b = 0; b < B; b++) {
        float *xb = s->x.p + (size_t)b * L * C;
        ds_op_upload(be, xb, t->cls_row, (size_t)C);
        ds_op_add(be, xb + C, tokens + (size_t)b * N * C, t->pos, (size_t)N * C);
    }

    /* pre_layrnorm */
    ds_op_layernorm(be, s->x.p, s->x.p, rows, C, &w->pre_ln_w, &w->pre_ln_b, c->ln_eps);

    for (int i = 0; i < c->layers; i++) {
        const ds_clip_layer *l = &w->layers[i];

        /* attention: x += out_proj(MHA(LN1(x))), bidirectional, per view */
        ds_op_layernorm(be, s->h.p, s->x.p, rows, C, &l->ln1_w, &l->ln1_b, c->ln_eps);
        ds_op_linear(be, s->qkv.p, s->h.p, rows, C, &l->qkv_w, &l->qkv_b);   /* [rows, 3C] */
        ds_attn_args a = ds_attn_fused_qkv(s->att.p, s->qkv.p, L, H, hd, B);
        ds_op_attention(be, &a);
        ds_op_linear(be, s->h.p, s->att.p, rows, C, &l->out_w, &l->out_b);
        ds_op_add(be, s->x.p, s->x.p, s->h.p, RC);

        /* mlp: x += fc2(quick_gelu(fc1(LN2(x)))) */
        ds_op_layernorm(be, s->h.p, s->x.p, rows, C, &l->ln2_w, &l->ln2_b, c->ln_eps);
        ds_op_linear(be, s->mlp.p, s->h.p, rows, C, &l->fc1_w, &l->fc1_b);
        ds_op_quick_gelu(be, s->mlp.p, (size_t)rows * F);
        ds_op_linear(be, s->h.p, s->mlp.p, rows, F, &l->fc2_w, &l->fc2_b);
        ds_op_add(be, s->x.p, s->x.p, s->h.p, RC);
    }
    /* no post-layernorm */
}
