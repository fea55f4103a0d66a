/* Vision projector (spec 7.3 linear, 7.4 downsample_mlp_gelu). */
#include "model/projector.h"

#include <math.h>
#include <string.h>

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

ds_proj_type ds_projector_type(const ds_projector_config *c) {
    if (!strcmp(c->type, "linear")) return DS_PROJ_LINEAR;
    if (!strcmp(c->type, "downsample_mlp_gelu")) return DS_PROJ_DOWNSAMPLE_MLP_GELU;
    return DS_PROJ_UNSUPPORTED;
}

/* MLP width R = n_embed * mlp_ratio (upstream multiplies ints; 0 if not integral). */
static int hidden_width(const ds_projector_config *c) {
    double r = (double)c->n_embed * c->mlp_ratio;
    return (r >= 1.0 && r == floor(r) && r < 1e9) ? (int)r : 0;
}

/* Upstream quirk: depth 1 still gives two Linears. */
static int n_linears(const ds_projector_config *c) { return c->depth > 2 ? c->depth : 2; }

void ds_projector_bind(ds_binder *b, const ds_projector_config *c, ds_projector_weights *w) {
    const int64_t I = c->input_dim, n = c->n_embed;
    w->n_linear = 0;
    switch (ds_projector_type(c)) {
    case DS_PROJ_LINEAR:
        w->n_linear = 1;
        w->w[0] = ds_bind(b, 2, SHAPE(n, I), "model.projector.layers.weight");
        w->b[0] = ds_bind(b, 1, SHAPE(n), "model.projector.layers.bias");
        break;
    case DS_PROJ_DOWNSAMPLE_MLP_GELU: {
        /* nn.Sequential(Linear, GELU, Linear, ...): Linears sit at even indexes */
        const int64_t k = c->downsample_ratio, R = hidden_width(c);
        const int nl = n_linears(c) < DS_PROJ_MAX_LINEARS ? n_linears(c) : DS_PROJ_MAX_LINEARS;
        w->n_linear = nl;
        for (int i = 0; i < nl; i++) {
            const int64_t in = i == 0 ? I * k * k : R, out = i == nl - 1 ? n : R;
            w->w[i] = ds_bind(b, 2, SHAPE(out, in), "model.projector.layers.%d.weight", 2 * i);
            w->b[i] = ds_bind(b, 1, SHAPE(out), "model.projector.layers.%d.bias", 2 * i);
        }
        break;
    }
    default:
        break;   /* reported by ds_projector_check_config */
    }
}

dsocr_status ds_projector_check_config(const ds_projector_config *c, dsocr_error *err) {
    const ds_proj_type t = ds_projector_type(c);
    if (t == DS_PROJ_UNSUPPORTED)
        return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "projector: projector_type \"%s\" is not supported "
                       "(linear, downsample_mlp_gelu)", c->type);
    if (c->input_dim <= 0 || c->n_embed <= 0)
        return ds_fail(err, DSOCR_ERR_FORMAT, "projector: input_dim %d / n_embed %d must be positive",
                       c->input_dim, c->n_embed);
    if (t == DS_PROJ_DOWNSAMPLE_MLP_GELU) {
        if (c->downsample_ratio < 1 || c->downsample_ratio > 16)
            return ds_fail(err, DSOCR_ERR_FORMAT, "projector: downsample_ratio %d (expected 1..16)", c->downsample_ratio);
        if (!hidden_width(c))
            return ds_fail(err, DSOCR_ERR_FORMAT, "projector: n_embed %d x mlp_ratio %g is not a positive integer",
                           c->n_embed, (double)c->mlp_ratio);
        if (n_linears(c) > DS_PROJ_MAX_LINEARS)
            return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "projector: depth %d (at most %d)", c->depth, DS_PROJ_MAX_LINEARS);
    }
    return DSOCR_OK;
}

int ds_projector_out_side(const ds_projector_config *c, int g) {
    if (ds_projector_type(c) != DS_PROJ_DOWNSAMPLE_MLP_GELU) return g;
    return (g + c->downsample_ratio - 1) / c->downsample_ratio;
}

dsocr_status ds_projector_state_reserve(ds_backend *be, const ds_projector_config *c, ds_projector_state *s,
                                        int batch, int g, dsocr_error *err) {
    if (ds_projector_type(c) != DS_PROJ_DOWNSAMPLE_MLP_GELU) return DSOCR_OK;
    const size_t k = (size_t)c->downsample_ratio, go = (size_t)ds_projector_out_side(c, g);
    const size_t L = go * go, feat = (size_t)c->input_dim * k * k, R = (size_t)hidden_width(c);
    DS_TRY(ds_vbuf_reserve(be, &s->blocks, L * feat, "projector blocks", err));
    DS_TRY(ds_vbuf_reserve(be, &s->unfold, (size_t)batch * L * feat, "projector unfold", err));
    DS_TRY(ds_vbuf_reserve(be, &s->ha, (size_t)batch * L * R, "projector hidden", err));
    DS_TRY(ds_vbuf_reserve(be, &s->hb, (size_t)batch * L * R, "projector hidden", err));
    return DSOCR_OK;
}

void ds_projector_state_free(ds_backend *be, ds_projector_state *s) {
    ds_vbuf_free(be, &s->blocks);
    ds_vbuf_free(be, &s->unfold);
    ds_vbuf_free(be, &s->ha);
    ds_vbuf_free(be, &s->hb);
}

void ds_projector_forward(ds_backend *be, const ds_projector_config *c, const ds_projector_weights *w,
                          ds_projector_state *s, const float *x, int B, int g, float *y) {
    const int I = c->input_dim;
    if (ds_projector_type(c) == DS_PROJ_LINEAR) {
        ds_op_linear(be, y, x, B * g * g, I, &w->w[0], &w->b[0]);   /* [B*g*g, n] */
        return;
    }

    /* unfold with stride = kernel as reshape/transpose: window partition of the HWC map
     * gives [L, k*k, I] (zero pad bottom/right); transposing each block to [I, k*k]
     * yields the channel-major feature order c*k*k + dy*k + dx */
    const int k = c->downsample_ratio, kk = k * k, go = ds_projector_out_side(c, g), L = go * go;
    const int feat = I * kk, R = hidden_width(c), rows = B * L;
    for (int b = 0; b < B; b++) {
        ds_op_window_partition(be, s->blocks.p, x + (size_t)b * g * g * I, g, g, I, k);
        for (int j = 0; j < L; j++)
            ds_op_transpose(be, s->unfold.p + ((size_t)b * L + j) * feat, s->blocks.p + (size_t)j * feat, kk, I);
    }

    /* Linear(I*k*k -> R), then ([GELU, Linear(R -> R)])*, GELU, Linear(R -> n) */
    float *cur = s->ha.p, *nxt = s->hb.p;
    ds_op_linear(be, cur, s->unfold.p, rows, feat, &w->w[0], &w->b[0]);
    for (int i = 1; i < w->n_linear; i++) {
        ds_op_gelu_erf(be, cur, (size_t)rows * R);
        float *dst = i == w->n_linear - 1 ? y : nxt;
        ds_op_linear(be, dst, cur, rows, R, &w->w[i], &w->b[i]);
        nxt = cur;
        cur = dst;
    }
}
