/* SAM ViT-B forward (spec 7.1), reading top to bottom as the spec's pseudo-code. */
#include "model/sam.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DS_SAM_MAX_SIDE 4096   /* pixels; the model uses 512..1280 */
#define LN2D_EPS 1e-6f         /* upstream LayerNorm2d default, independent of the block eps */

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

/* ---- binding ------------------------------------------------------------- */

int ds_sam_is_global(const ds_sam_config *c, int block) {
    for (int i = 0; i < c->n_global_attn; i++)
        if (c->global_attn_indexes[i] == block) return 1;
    return 0;
}

void ds_sam_bind(ds_binder *b, const ds_sam_config *c, ds_sam_weights *w) {
    const int64_t C = c->width, hd = c->heads > 0 ? c->width / c->heads : 0;
    const int64_t p = c->patch_size, P = c->patch_size > 0 ? c->img_size / c->patch_size : 0;
    const int64_t M = c->mlp_dim, Cn = c->neck_channels;
    const int64_t D2 = c->downsample_channels[0], D3 = c->downsample_channels[1];
    const int n_blocks = c->layers < DS_SAM_MAX_BLOCKS ? c->layers : DS_SAM_MAX_BLOCKS;

    w->patch_w = ds_bind(b, 4, SHAPE(C, 3, p, p), "model.sam_model.patch_embed.proj.weight");
    w->patch_b = ds_bind(b, 1, SHAPE(C), "model.sam_model.patch_embed.proj.bias");
    w->pos_embed = ds_bind(b, 4, SHAPE(1, P, P, C), "model.sam_model.pos_embed");
    for (int i = 0; i < n_blocks; i++) {
        ds_sam_block *k = &w->blocks[i];
        /* global blocks cover the whole P x P grid, windowed ones a window */
        const int64_t n_rel = ds_sam_is_global(c, i) ? 2 * P - 1 : 2 * (int64_t)c->window_size - 1;
        k->norm1_w = ds_bind(b, 1, SHAPE(C), "model.sam_model.blocks.%d.norm1.weight", i);
        k->norm1_b = ds_bind(b, 1, SHAPE(C), "model.sam_model.blocks.%d.norm1.bias", i);
        k->qkv_w = ds_bind(b, 2, SHAPE(3 * C, C), "model.sam_model.blocks.%d.attn.qkv.weight", i);
        k->qkv_b = ds_bind(b, 1, SHAPE(3 * C), "model.sam_model.blocks.%d.attn.qkv.bias", i);
        k->proj_w = ds_bind(b, 2, SHAPE(C, C), "model.sam_model.blocks.%d.attn.proj.weight", i);
        k->proj_b = ds_bind(b, 1, SHAPE(C), "model.sam_model.blocks.%d.attn.proj.bias", i);
        k->rel_pos_h = ds_bind(b, 2, SHAPE(n_rel, hd), "model.sam_model.blocks.%d.attn.rel_pos_h", i);
        k->rel_pos_w = ds_bind(b, 2, SHAPE(n_rel, hd), "model.sam_model.blocks.%d.attn.rel_pos_w", i);
        k->norm2_w = ds_bind(b, 1, SHAPE(C), "model.sam_model.blocks.%d.norm2.weight", i);
        k->norm2_b = ds_bind(b, 1, SHAPE(C), "model.sam_model.blocks.%d.norm2.bias", i);
        k->lin1_w = ds_bind(b, 2, SHAPE(M, C), "model.sam_model.blocks.%d.mlp.lin1.weight", i);
        k->lin1_b = ds_bind(b, 1, SHAPE(M), "model.sam_model.blocks.%d.mlp.lin1.bias", i);
        k->lin2_w = ds_bind(b, 2, SHAPE(C, M), "model.sam_model.blocks.%d.mlp.lin2.weight", i);
        k->lin2_b = ds_bind(b, 1, SHAPE(C), "model.sam_model.blocks.%d.mlp.lin2.bias", i);
    }
    w->neck0_w = ds_bind(b, 4, SHAPE(Cn, C, 1, 1), "model.sam_model.neck.0.weight");
    w->neck1_w = ds_bind(b, 1, SHAPE(Cn), "model.sam_model.neck.1.weight");
    w->neck1_b = ds_bind(b, 1, SHAPE(Cn), "model.sam_model.neck.1.bias");
    w->neck2_w = ds_bind(b, 4, SHAPE(Cn, Cn, 3, 3), "model.sam_model.neck.2.weight");
    w->neck3_w = ds_bind(b, 1, SHAPE(Cn), "model.sam_model.neck.3.weight");
    w->neck3_b = ds_bind(b, 1, SHAPE(Cn), "model.sam_model.neck.3.bias");
    w->net2_w = ds_bind(b, 4, SHAPE(D2, Cn, 3, 3), "model.sam_model.net_2.weight");
    w->net3_w = ds_bind(b, 4, SHAPE(D3, D2, 3, 3), "model.sam_model.net_3.weight");
}

dsocr_status ds_sam_check_config(const ds_sam_config *c, dsocr_error *err) {
    if (c->layers < 1 || c->layers > DS_SAM_MAX_BLOCKS)
        return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "sam: %d layers (supported 1..%d)", c->layers, DS_SAM_MAX_BLOCKS);
    if (c->width <= 0 || c->heads <= 0 || c->width % c->heads)
        return ds_fail(err, DSOCR_ERR_FORMAT, "sam: width %d not divisible into %d heads", c->width, c->heads);
    if (c->patch_size <= 0 || c->window_size <= 0 || c->img_size < c->patch_size || c->mlp_dim <= 0 ||
        c->neck_channels <= 0 || c->downsample_channels[0] <= 0 || c->downsample_channels[1] <= 0)
        return ds_fail(err, DSOCR_ERR_FORMAT, "sam: non-positive dimension in config "
                       "(patch %d, window %d, img_size %d, mlp %d, neck %d, downsample %d/%d)",
                       c->patch_size, c->window_size, c->img_size, c->mlp_dim, c->neck_channels,
                       c->downsample_channels[0], c->downsample_channels[1]);
    return DSOCR_OK;
}

dsocr_status ds_sam_check_side(const ds_sam_config *c, int side, dsocr_error *err) {
    if (side <= 0 || side % c->patch_size)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "vision: view side %d px is not a positive multiple "
                       "of the SAM patch size %d", side, c->patch_size);
    if (side > DS_SAM_MAX_SIDE)
        return ds_fail(err, DSOCR_ERR_LIMIT, "vision: view side %d px exceeds %d", side, DS_SAM_MAX_SIDE);
    return DSOCR_OK;
}

/* Stride-2, pad-1, 3x3 conv output side. */
static int down2(int n) { return (n + 2 - 3) / 2 + 1; }

int ds_sam_out_side(const ds_sam_config *c, int side) {
    return down2(down2(side / c->patch_size));
}

/* ---- per-size tables ----------------------------------------------------- */

/* Whole contiguous tensor as host f32 (malloc'd); NULL on failure. */
static float *host_f32(const ds_tensor *t) {
    int64_t n = ds_tensor_numel(t);
    float *y = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (y)
        for (int64_t i = 0; i < n; i++) y[i] = ds_tensor_get_f32(t, i);
    return y;
}

/* Uploads n host floats into a fresh backend buffer (*dst); frees src. */
static dsocr_status upload_new(ds_backend *be, float **dst, float *src, size_t n, const char *what,
                               dsocr_error *err) {
    *dst = src ? ds_buf_alloc(be, n) : NULL;
    if (*dst) ds_op_upload(be, *dst, src, n);
    free(src);
    if (!*dst) return ds_fail(err, DSOCR_ERR_NOMEM, "sam: cannot allocate %s table (%zu floats)", what, n);
    return DSOCR_OK;
}

dsocr_status ds_sam_tables_build(ds_backend *be, const ds_sam_config *c, const ds_sam_weights *w,
                                 int side, ds_sam_tables *t, dsocr_error *err) {
    memset(t, 0, sizeof *t);
    const int C = c->width, hd = c->width / c->heads, P = c->img_size / c->patch_size;
    const int T = side / c->patch_size;
    t->side = side;
    t->T = T;

    /* absolute position: [P, P, C] -> [T, T, C], antialiased bicubic when T != P */
    float *pos = host_f32(&w->pos_embed);
    if (pos && T != P) {
        float *rs = malloc((size_t)T * T * C * sizeof(float));
        if (rs) ds_interp_bicubic_aa(rs, pos, P, P, C, T, T);
        free(pos);
        pos = rs;
    }
    dsocr_status st = upload_new(be, &t->pos, pos, (size_t)T * T * C, "position", err);

    /* relative positions: 2S-1 entries, linearly resized from the stored length */
    for (int i = 0; i < c->layers && st == DSOCR_OK; i++) {
        const int S = ds_sam_is_global(c, i) ? T : c->window_size;
        const int n_out = 2 * S - 1;
        for (int axis = 0; axis < 2 && st == DSOCR_OK; axis++) {
            const ds_tensor *src = axis ? &w->blocks[i].rel_pos_w : &w->blocks[i].rel_pos_h;
            const int n_in = (int)src->shape[0];
            float *tab = host_f32(src);
            if (tab && n_in != n_out) {
                float *rs = malloc((size_t)n_out * hd * sizeof(float));
                if (rs) ds_interp_linear(rs, tab, n_in, hd, n_out);
                free(tab);
                tab = rs;
            }
            st = upload_new(be, axis ? &t->rel_w[i] : &t->rel_h[i], tab, (size_t)n_out * hd, "rel-pos", err);
        }
    }
    if (st != DSOCR_OK) ds_sam_tables_free(be, t);
    return st;
}

void ds_sam_tables_free(ds_backend *be, ds_sam_tables *t) {
    if (t->pos) ds_buf_free(be, t->pos);
    for (int i = 0; i < DS_SAM_MAX_BLOCKS; i++) {
        if (t->rel_h[i]) ds_buf_free(be, t->rel_h[i]);
        if (t->rel_w[i]) ds_buf_free(be, t->rel_w[i]);
    }
    memset(t, 0, sizeof *t);
}

/* ---- run state ----------------------------------------------------------- */

/* Window geometry of a T x T grid: padded side and window count. */
static int padded_side(int T, int win) { return (T + win - 1) / win * win; }

dsocr_status ds_sam_state_reserve(ds_backend *be, const ds_sam_config *c, ds_sam_state *s,
                                  int batch, int side, dsocr_error *err) {
    const size_t B = (size_t)batch, C = (size_t)c->width, H = (size_t)c->heads;
    const size_t T = (size_t)(side / c->patch_size), win = (size_t)c->window_size;
    const size_t L = T * T, Tp = (size_t)padded_side((int)T, (int)win), Lpad = Tp * Tp;
    const size_t Lmax = Lpad > L ? Lpad : L;
    /* rel-pos terms: windowed [B*nwin][H][win*win][win] = B*H*Lpad*win; global B*H*L*T */
    const size_t rel_win = B * H * Lpad * win, rel_glob = B * H * L * T;
    const size_t rel = rel_win > rel_glob ? rel_win : rel_glob;
    const size_t T2 = (size_t)down2((int)T);
    DS_TRY(ds_vbuf_reserve(be, &s->pix_chw, 3 * (size_t)side * side, "sam pixels", err));
    DS_TRY(ds_vbuf_reserve(be, &s->pix_hwc, 3 * (size_t)side * side, "sam pixels", err));
    DS_TRY(ds_vbuf_reserve(be, &s->x, B * L * C, "sam residual", err));
    DS_TRY(ds_vbuf_reserve(be, &s->h, B * L * C, "sam hidden", err));
    DS_TRY(ds_vbuf_reserve(be, &s->win, B * Lpad * C, "sam windows", err));
    DS_TRY(ds_vbuf_reserve(be, &s->qkv, B * Lmax * 3 * C, "sam qkv", err));
    DS_TRY(ds_vbuf_reserve(be, &s->att, B * Lmax * C, "sam attention", err));
    DS_TRY(ds_vbuf_reserve(be, &s->rel_h, rel, "sam rel-pos", err));
    DS_TRY(ds_vbuf_reserve(be, &s->rel_w, rel, "sam rel-pos", err));
    DS_TRY(ds_vbuf_reserve(be, &s->mlp, B * L * (size_t)c->mlp_dim, "sam mlp", err));
    DS_TRY(ds_vbuf_reserve(be, &s->neck_a, B * L * (size_t)c->neck_channels, "sam neck", err));
    DS_TRY(ds_vbuf_reserve(be, &s->neck_b, B * L * (size_t)c->neck_channels, "sam neck", err));
    DS_TRY(ds_vbuf_reserve(be, &s->down2, B * T2 * T2 * (size_t)c->downsample_channels[0], "sam net_2", err));
    return DSOCR_OK;
}

void ds_sam_state_free(ds_backend *be, ds_sam_state *s) {
    ds_vbuf *all[] = {&s->pix_chw, &s->pix_hwc, &s->x, &s->h, &s->win, &s->qkv, &s->att,
                      &s->rel_h, &s->rel_w, &s->mlp, &s->neck_a, &s->neck_b, &s->down2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) ds_vbuf_free(be, all[i]);
}

/* ---- forward ------------------------------------------------------------- */

/* One transformer block over B maps of T x T tokens, residual stream s->x [B*T*T, C]. */
static void sam_block(ds_backend *be, const ds_sam_config *c, const ds_sam_block *k,
                      const float *Rh, const float *Rw, int is_global, ds_sam_state *s, int B, int T) {
    const int C = c->width, H = c->heads, hd = C / H, ws = c->window_size;
    const int L = T * T, Tp = padded_side(T, ws), Lpad = Tp * Tp;
    const size_t BLC = (size_t)B * L * C;

    /* attention norm: h = LN1(x) */
    ds_op_layernorm(be, s->h.p, s->x.p, B * L, C, &k->norm1_w, &k->norm1_b, c->ln_eps);

    /* attention problems: B whole maps (global) or B * nwin windows of ws x ws,
     * zero-padded after LN1 so the pad tokens are exact zeros (unmasked keys) */
    const float *in = s->h.p;
    int n_prob = B, Lq = L, S = T;
    if (!is_global) {
        for (int b = 0; b < B; b++)
            ds_op_window_partition(be, s->win.p + (size_t)b * Lpad * C, s->h.p + (size_t)b * L * C, T, T, C, ws);
        in = s->win.p;
        n_prob = B * (Lpad / (ws * ws));
        Lq = ws * ws;
        S = ws;
    }
    const int rows = n_prob * Lq;

    /* qkv: [rows, 3C] = [q | k | v], head-major within each */
    ds_op_linear(be, s->qkv.p, in, rows, C, &k->qkv_w, &k->qkv_b);

    /* decomposed relative positions from the unscaled q: rel_h/rel_w [n_prob][H][Lq][S] */
    ds_op_relpos(be, s->rel_h.p, s->rel_w.p, s->qkv.p, 3 * C, (int64_t)Lq * 3 * C, n_prob, H, hd,
                 S, S, S, S, Rh, Rw);

    /* out = softmax(q kᵀ / sqrt(hd) + rel bias) v: [rows, C] */
    ds_attn_args a = ds_attn_fused_qkv(s->att.p, s->qkv.p, Lq, H, hd, n_prob);
    a.rel_h = s->rel_h.p;  a.rel_w = s->rel_w.p;  a.kh = S;  a.kw = S;
    ds_op_attention(be, &a);

    /* output projection, windows merged back (padding dropped): h [B*L, C] */
    if (is_global) {
        ds_op_linear(be, s->h.p, s->att.p, rows, C, &k->proj_w, &k->proj_b);
    } else {
        ds_op_linear(be, s->win.p, s->att.p, rows, C, &k->proj_w, &k->proj_b);
        for (int b = 0; b < B; b++)
            ds_op_window_merge(be, s->h.p + (size_t)b * L * C, s->win.p + (size_t)b * Lpad * C, T, T, C, ws);
    }

    /* residual */
    ds_op_add(be, s->x.p, s->x.p, s->h.p, BLC);

    /* mlp: x += lin2(gelu_erf(lin1(LN2(x)))) */
    ds_op_layernorm(be, s->h.p, s->x.p, B * L, C, &k->norm2_w, &k->norm2_b, c->ln_eps);
    ds_op_linear(be, s->mlp.p, s->h.p, B * L, C, &k->lin1_w, &k->lin1_b);
    ds_op_gelu_erf(be, s->mlp.p, (size_t)B * L * c->mlp_dim);
    ds_op_linear(be, s->h.p, s->mlp.p, B * L, c->mlp_dim, &k->lin2_w, &k->lin2_b);
    ds_op_add(be, s->x.p, s->x.p, s->h.p, BLC);
}

void ds_sam_forward(ds_backend *be, const ds_sam_config *c, const ds_sam_weights *w,
                    const ds_sam_tables *t, ds_sam_state *s, const float *pixels_chw,
                    int B, float *out) {
    const int C = c->width, S = t->side, T = t->T, L = T * T;
    const int Cn = c->neck_channels, D2 = c->downsample_channels[0], D3 = c->downsample_channels[1];
    const size_t npix = 3 * (size_t)S * S;

    /* patch embedding + absolute position, per view: x[b] [L, C] */
    for (int b = 0; b < B; b++) {
        float *xb = s->x.p + (size_t)b * L * C;
        ds_op_upload(be, s->pix_chw.p, pixels_chw + (size_t)b * npix, npix);
        ds_op_transpose(be, s->pix_hwc.p, s->pix_chw.p, 3, S * S);       /* CHW -> HWC [S*S, 3] */
        ds_op_conv2d(be, xb, s->pix_hwc.p, S, S, 3, &w->patch_w, &w->patch_b, c->patch_size, 0);
        ds_op_add(be, xb, xb, t->pos, (size_t)L * C);
    }

    /* transformer blocks */
    for (int i = 0; i < c->layers; i++)
        sam_block(be, c, &w->blocks[i], t->rel_h[i], t->rel_w[i], ds_sam_is_global(c, i), s, B, T);

    /* neck: conv1x1 -> LayerNorm2d -> conv3x3 -> LayerNorm2d (LN2d = LN over channels, HWC rows) */
    for (int b = 0; b < B; b++)
        ds_op_conv2d(be, s->neck_a.p + (size_t)b * L * Cn, s->x.p + (size_t)b * L * C, T, T, C,
                     &w->neck0_w, NULL, 1, 0);
    ds_op_layernorm(be, s->neck_a.p, s->neck_a.p, B * L, Cn, &w->neck1_w, &w->neck1_b, LN2D_EPS);
    for (int b = 0; b < B; b++)
        ds_op_conv2d(be, s->neck_b.p + (size_t)b * L * Cn, s->neck_a.p + (size_t)b * L * Cn, T, T, Cn,
                     &w->neck2_w, NULL, 1, 1);
    ds_op_layernorm(be, s->neck_b.p, s->neck_b.p, B * L, Cn, &w->neck3_w, &w->neck3_b, LN2D_EPS);

    /* compressor: net_2, net_3 (3x3 stride 2 pad 1, no norm or activation between) */
    const int T2 = down2(T), g = down2(T2);
    for (int b = 0; b < B; b++) {
        float *d2 = s->down2.p + (size_t)b * T2 * T2 * D2;
        ds_op_conv2d(be, d2, s->neck_b.p + (size_t)b * L * Cn, T, T, Cn, &w->net2_w, NULL, 2, 1);
        ds_op_conv2d(be, out + (size_t)b * g * g * D3, d2, T2, T2, D2, &w->net3_w, NULL, 2, 1);
    }
}
