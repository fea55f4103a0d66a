/* DeepEncoder orchestration: per-view SAM -> CLIP -> fusion -> projector, the
 * tile batch, and the image-embedding layout (spec 6.4, 7). */
#include "model/vision.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DS_VISION_MAX_SIZES 8     /* distinct view sides cached (the modes use 4) */
#define DS_VISION_MAX_TILES 64

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

/* ---- binding ------------------------------------------------------------- */

void ds_vision_bind(ds_binder *b, const ds_config *cfg, ds_vision_weights *w) {
    const int64_t D = cfg->proj.n_embed;
    ds_sam_bind(b, &cfg->sam, &w->sam);
    ds_clip_bind(b, &cfg->clip, &w->clip);
    ds_projector_bind(b, &cfg->proj, &w->proj);
    w->image_newline = ds_bind(b, 1, SHAPE(D), "model.image_newline");
    w->view_seperator = ds_bind(b, 1, SHAPE(D), "model.view_seperator");
}

/* ---- context --------------------------------------------------------------- */

/* Tables of one view side. */
typedef struct vision_size {
    int side;
    ds_sam_tables sam;
    ds_clip_tables clip;
} vision_size;

struct ds_vision {
    ds_backend *be;
    const ds_config *cfg;
    const ds_vision_weights *w;
    ds_vision_params params;

    vision_size sizes[DS_VISION_MAX_SIZES];
    int n_sizes;

    /* run state */
    ds_sam_state sam;
    ds_clip_state clip;
    ds_projector_state proj;
    ds_vbuf sam_out;     /* [B*N, Cs] SAM tokens (HWC), N = g*g */
    ds_vbuf fused_t;     /* [Cc+Cs, N] one view, transposed concat (also trace scratch) */
    ds_vbuf fused;       /* [B*N, Cc+Cs] = [CLIP | SAM] */
    ds_vbuf proj_out;    /* [B*No, D] */
    float *newline;      /* [D] host */
    float *separator;    /* [D] host */
};

ds_vision_params ds_vision_default_params(void) {
    ds_vision_params p = {1024, 640, 9, 0};
    return p;
}

int ds_vision_grid_side(const ds_config *cfg, int side) {
    return ds_projector_out_side(&cfg->proj, ds_sam_out_side(&cfg->sam, side));
}

int ds_vision_n_embeds(const ds_config *cfg, int global_side, int n_tiles, int tile_side,
                       int grid_w, int grid_h) {
    const int g = ds_vision_grid_side(cfg, global_side);
    int n = g * (g + 1) + 1;                       /* global rows + newlines, separator */
    if (n_tiles > 0) {
        const int q = ds_vision_grid_side(cfg, tile_side);
        n += (q * grid_h) * (q * grid_w + 1);      /* mosaic rows + newlines */
    }
    return n;
}

static dsocr_status check_config(const ds_config *cfg, dsocr_error *err) {
    DS_TRY(ds_sam_check_config(&cfg->sam, err));
    DS_TRY(ds_clip_check_config(&cfg->clip, err));
    DS_TRY(ds_projector_check_config(&cfg->proj, err));
    const int Cs = cfg->sam.downsample_channels[1], Cc = cfg->clip.width;
    if (Cs != Cc)
        return ds_fail(err, DSOCR_ERR_FORMAT, "vision: SAM output channels %d (downsample_channels[1]) "
                       "must equal the CLIP width %d (SAM tokens are CLIP's patch embeddings)", Cs, Cc);
    if (cfg->proj.input_dim != Cc + Cs)
        return ds_fail(err, DSOCR_ERR_FORMAT, "vision: projector input_dim %d must equal CLIP width + SAM "
                       "channels = %d", cfg->proj.input_dim, Cc + Cs);
    return DSOCR_OK;
}

static vision_size *find_size(ds_vision *v, int side) {
    for (int i = 0; i < v->n_sizes; i++)
        if (v->sizes[i].side == side) return &v->sizes[i];
    return NULL;
}

dsocr_status ds_vision_prepare(ds_vision *v, int side, dsocr_error *err) {
    DS_TRY(ds_sam_check_side(&v->cfg->sam, side, err));
    if (find_size(v, side)) return DSOCR_OK;
    if (v->n_sizes == DS_VISION_MAX_SIZES)
        return ds_fail(err, DSOCR_ERR_LIMIT, "vision: more than %d distinct view sizes (adding %d px)",
                       DS_VISION_MAX_SIZES, side);
    vision_size *s = &v->sizes[v->n_sizes];
    memset(s, 0, sizeof *s);
    s->side = side;
    DS_TRY(ds_sam_tables_build(v->be, &v->cfg->sam, &v->w->sam, side, &s->sam, err));
    dsocr_status st = ds_clip_tables_build(v->be, &v->cfg->clip, &v->w->clip,
                                           ds_sam_out_side(&v->cfg->sam, side), &s->clip, err);
    if (st != DSOCR_OK) {
        ds_sam_tables_free(v->be, &s->sam);
        return st;
    }
    v->n_sizes++;
    return DSOCR_OK;
}

/* Grows every buffer to hold `batch` views of `side` pixels. */
static dsocr_status reserve(ds_vision *v, int batch, int side, dsocr_error *err) {
    const ds_config *c = v->cfg;
    const int g = ds_sam_out_side(&c->sam, side), go = ds_projector_out_side(&c->proj, g);
    const size_t N = (size_t)g * g, Cs = (size_t)c->sam.downsample_channels[1], F = (size_t)c->proj.input_dim;
    DS_TRY(ds_sam_state_reserve(v->be, &c->sam, &v->sam, batch, side, err));
    DS_TRY(ds_clip_state_reserve(v->be, &c->clip, &v->clip, batch, (int)N, err));
    DS_TRY(ds_projector_state_reserve(v->be, &c->proj, &v->proj, batch, g, err));
    DS_TRY(ds_vbuf_reserve(v->be, &v->sam_out, (size_t)batch * N * Cs, "sam output", err));
    DS_TRY(ds_vbuf_reserve(v->be, &v->fused_t, N * F, "fusion", err));
    DS_TRY(ds_vbuf_reserve(v->be, &v->fused, (size_t)batch * N * F, "fusion", err));
    DS_TRY(ds_vbuf_reserve(v->be, &v->proj_out, (size_t)batch * go * go * (size_t)c->proj.n_embed,
                           "projector output", err));
    return DSOCR_OK;
}

static float *host_vector(const ds_tensor *t) {
    const int64_t n = ds_tensor_numel(t);
    float *y = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (y)
        for (int64_t i = 0; i < n; i++) y[i] = ds_tensor_get_f32(t, i);
    return y;
}

dsocr_status ds_vision_new(ds_backend *be, const ds_config *cfg, const ds_vision_weights *w,
                           const ds_vision_params *params, ds_vision **out, dsocr_error *err) {
    *out = NULL;
    DS_TRY(check_config(cfg, err));
    ds_vision *v = calloc(1, sizeof *v);
    if (!v) return ds_fail(err, DSOCR_ERR_NOMEM, "vision: cannot allocate the context");
    v->be = be;
    v->cfg = cfg;
    v->w = w;
    v->params = params ? *params : ds_vision_default_params();
    if (v->params.max_tiles < 0) v->params.max_tiles = 0;
    if (v->params.max_batch < 0) v->params.max_batch = 0;
    /* tiles reserved up front: one batch of min(max_batch, max_tiles) */
    const int reserve_batch = v->params.max_batch > 0 && v->params.max_batch < v->params.max_tiles
                                  ? v->params.max_batch : v->params.max_tiles;

    dsocr_status st = DSOCR_OK;
    v->newline = host_vector(&w->image_newline);
    v->separator = host_vector(&w->view_seperator);
    if (!v->newline || !v->separator) st = ds_fail(err, DSOCR_ERR_NOMEM, "vision: cannot allocate layout vectors");
    if (st == DSOCR_OK && v->params.max_global_side > 0) {
        st = ds_vision_prepare(v, v->params.max_global_side, err);
        if (st == DSOCR_OK) st = reserve(v, 1, v->params.max_global_side, err);
    }
    if (st == DSOCR_OK && v->params.max_tile_side > 0 && v->params.max_tiles > 0) {
        st = ds_vision_prepare(v, v->params.max_tile_side, err);
        if (st == DSOCR_OK) st = reserve(v, reserve_batch, v->params.max_tile_side, err);
    }
    if (st != DSOCR_OK) {
        ds_vision_free(v);
        return st;
    }
    *out = v;
    return DSOCR_OK;
}

void ds_vision_free(ds_vision *v) {
    if (!v) return;
    for (int i = 0; i < v->n_sizes; i++) {
        ds_sam_tables_free(v->be, &v->sizes[i].sam);
        ds_clip_tables_free(v->be, &v->sizes[i].clip);
    }
    ds_sam_state_free(v->be, &v->sam);
    ds_clip_state_free(v->be, &v->clip);
    ds_projector_state_free(v->be, &v->proj);
    ds_vbuf_free(v->be, &v->sam_out);
    ds_vbuf_free(v->be, &v->fused_t);
    ds_vbuf_free(v->be, &v->fused);
    ds_vbuf_free(v->be, &v->proj_out);
    free(v->newline);
    free(v->separator);
    free(v);
}

/* ---- one batch of views ---------------------------------------------------- */

/* Host copies of the per-view intermediates, in the golden layouts, for tracing. */
typedef struct view_trace {
    float *sam;    /* [n, Cs, g, g] */
    float *clip;   /* [n, 1+g*g, Cc] */
    float *proj;   /* [n, go*go, D] */
} view_trace;

/* Encodes B views of one side: result in v->proj_out [B, go*go, D].
 * tr (optional) receives views first..first+B-1. */
static void encode_views(ds_vision *v, const vision_size *sz, const float *pixels_chw, int B,
                         view_trace *tr, int first) {
    ds_backend *be = v->be;
    const ds_config *c = v->cfg;
    const int g = sz->clip.g, N = g * g, go = ds_projector_out_side(&c->proj, g);
    const int Cs = c->sam.downsample_channels[1], Cc = c->clip.width, F = Cc + Cs, D = c->proj.n_embed;

    /* SAM: [B, N, Cs] */
    ds_sam_forward(be, &c->sam, &v->w->sam, &sz->sam, &v->sam, pixels_chw, B, v->sam_out.p);

    /* CLIP on the SAM tokens: clip.x [B, N+1, Cc], CLS first */
    ds_clip_forward(be, &c->clip, &v->w->clip, &sz->clip, &v->clip, v->sam_out.p, B);

    /* fusion [CLIP (CLS dropped) | SAM] -> [B, N, F], by stacking the transposed halves */
    for (int b = 0; b < B; b++) {
        const float *clip_b = v->clip.x.p + ((size_t)b * (N + 1) + 1) * Cc;
        const float *sam_b = v->sam_out.p + (size_t)b * N * Cs;
        ds_op_transpose(be, v->fused_t.p, clip_b, N, Cc);                       /* [Cc, N] */
        ds_op_transpose(be, v->fused_t.p + (size_t)Cc * N, sam_b, N, Cs);       /* [Cs, N] */
        ds_op_transpose(be, v->fused.p + (size_t)b * N * F, v->fused_t.p, F, N); /* [N, F] */
    }

    /* projector: [B, go*go, D] */
    ds_projector_forward(be, &c->proj, &v->w->proj, &v->proj, v->fused.p, B, g, v->proj_out.p);

    if (tr) {
        for (int b = 0; b < B; b++) {
            const size_t i = (size_t)(first + b);
            /* sam as [Cs, g, g] (channel-major) */
            ds_op_transpose(be, v->fused_t.p, v->sam_out.p + (size_t)b * N * Cs, N, Cs);
            ds_op_download(be, tr->sam + i * N * Cs, v->fused_t.p, (size_t)N * Cs);
            ds_op_download(be, tr->clip + i * (N + 1) * Cc, v->clip.x.p + (size_t)b * (N + 1) * Cc,
                           (size_t)(N + 1) * Cc);
            ds_op_download(be, tr->proj + i * go * go * D, v->proj_out.p + (size_t)b * go * go * D,
                           (size_t)go * go * D);
        }
    }
}

static dsocr_status trace_alloc(view_trace *t, int n, int g, int go, const ds_config *c, dsocr_error *err) {
    const size_t N = (size_t)g * g;
    t->sam = malloc((size_t)n * N * c->sam.downsample_channels[1] * sizeof(float));
    t->clip = malloc((size_t)n * (N + 1) * c->clip.width * sizeof(float));
    t->proj = malloc((size_t)n * go * go * c->proj.n_embed * sizeof(float));
    if (!t->sam || !t->clip || !t->proj)
        return ds_fail(err, DSOCR_ERR_NOMEM, "vision: cannot allocate trace buffers");
    return DSOCR_OK;
}

static void trace_emit(const ds_trace *trace, const view_trace *t, const char *suffix, int n, int g, int go,
                       const ds_config *c) {
    char name[32];
    snprintf(name, sizeof name, "sam_%s", suffix);
    ds_trace_tensor(trace, name, t->sam, 4, SHAPE(n, c->sam.downsample_channels[1], g, g));
    snprintf(name, sizeof name, "clip_%s", suffix);
    ds_trace_tensor(trace, name, t->clip, 3, SHAPE(n, (int64_t)g * g + 1, c->clip.width));
    snprintf(name, sizeof name, "proj_%s", suffix);
    ds_trace_tensor(trace, name, t->proj, 3, SHAPE(n, (int64_t)go * go, c->proj.n_embed));
}

static void trace_free(view_trace *t) {
    free(t->sam);
    free(t->clip);
    free(t->proj);
    memset(t, 0, sizeof *t);
}

/* ---- encode ---------------------------------------------------------------- */

dsocr_status ds_vision_encode(ds_vision *v, const float *global_chw, int global_side,
                              const float *tiles_chw, int n_tiles, int tile_side,
                              int grid_w, int grid_h, float *image_embeds,
                              const ds_trace *trace, dsocr_error *err) {
    if (!v || !global_chw || !image_embeds)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "vision: NULL %s",
                       !v ? "context" : !global_chw ? "global view pixels" : "output buffer");
    if (n_tiles < 0 || n_tiles > DS_VISION_MAX_TILES)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "vision: %d tiles (0..%d)", n_tiles, DS_VISION_MAX_TILES);
    if (n_tiles > 0 && (!tiles_chw || grid_w < 1 || grid_h < 1 || grid_w > n_tiles || grid_h > n_tiles ||
                        grid_w * grid_h != n_tiles))
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "vision: %d tiles do not fill a %dx%d grid%s",
                       n_tiles, grid_w, grid_h, tiles_chw ? "" : " (tile pixels NULL)");

    const ds_config *c = v->cfg;
    const int D = c->proj.n_embed;
    const int batch = v->params.max_batch > 0 && v->params.max_batch < n_tiles ? v->params.max_batch : n_tiles;
    DS_TRY(ds_vision_prepare(v, global_side, err));
    DS_TRY(reserve(v, 1, global_side, err));
    if (n_tiles > 0) {
        DS_TRY(ds_vision_prepare(v, tile_side, err));
        DS_TRY(reserve(v, batch, tile_side, err));
    }

    const int g = ds_vision_grid_side(c, global_side);
    const int q = n_tiles > 0 ? ds_vision_grid_side(c, tile_side) : 0;
    const int mosaic_w = q * grid_w + 1;                       /* tokens per mosaic row incl. newline */
    const size_t n_local = n_tiles > 0 ? (size_t)q * grid_h * mosaic_w : 0;
    const size_t n_total = (size_t)ds_vision_n_embeds(c, global_side, n_tiles, tile_side, grid_w, grid_h);
    const int traced = trace && trace->on_tensor;
    view_trace tr = {0};
    dsocr_status st = DSOCR_OK;

    /* local mosaic: tile (r, c) row y lands on mosaic row r*q + y, columns c*q .. c*q+q-1 */
    if (n_tiles > 0) {
        const vision_size *sz = find_size(v, tile_side);
        const int gs = sz->clip.g;
        if (traced && (st = trace_alloc(&tr, n_tiles, gs, q, c, err)) != DSOCR_OK) goto done;
        const size_t tile_px = 3 * (size_t)tile_side * tile_side;
        for (int t0 = 0; t0 < n_tiles; t0 += batch) {
            const int B = n_tiles - t0 < batch ? n_tiles - t0 : batch;
            encode_views(v, sz, tiles_chw + (size_t)t0 * tile_px, B, traced ? &tr : NULL, t0);
            for (int b = 0; b < B; b++) {
                const int t = t0 + b, r = t / grid_w, col = t % grid_w;
                for (int y = 0; y < q; y++) {
                    float *dst = image_embeds + ((size_t)(r * q + y) * mosaic_w + (size_t)col * q) * D;
                    ds_op_download(v->be, dst, v->proj_out.p + ((size_t)b * q * q + (size_t)y * q) * D, (size_t)q * D);
                }
            }
        }
        for (int row = 0; row < q * grid_h; row++)
            memcpy(image_embeds + ((size_t)row * mosaic_w + mosaic_w - 1) * D, v->newline, (size_t)D * sizeof(float));
        if (traced) trace_emit(trace, &tr, "crops", n_tiles, gs, q, c);
        trace_free(&tr);
    }

    /* global view: g rows of g tokens, each followed by image_newline */
    {
        const vision_size *sz = find_size(v, global_side);
        const int gs = sz->clip.g;
        if (traced && (st = trace_alloc(&tr, 1, gs, g, c, err)) != DSOCR_OK) goto done;
        encode_views(v, sz, global_chw, 1, traced ? &tr : NULL, 0);
        float *base = image_embeds + n_local * D;
        for (int y = 0; y < g; y++) {
            ds_op_download(v->be, base + (size_t)y * (g + 1) * D, v->proj_out.p + (size_t)y * g * D, (size_t)g * D);
            memcpy(base + ((size_t)y * (g + 1) + g) * D, v->newline, (size_t)D * sizeof(float));
        }
        if (traced) trace_emit(trace, &tr, "global", 1, gs, g, c);
        trace_free(&tr);
    }

    /* view separator */
    memcpy(image_embeds + (n_total - 1) * D, v->separator, (size_t)D * sizeof(float));
    ds_trace_tensor(trace, "image_embeds", image_embeds, 2, SHAPE((int64_t)n_total, D));

done:
    trace_free(&tr);
    return st;
}

/* ---- placement into the prompt --------------------------------------------- */

dsocr_status ds_vision_scatter(ds_backend *be, float *x, const int32_t *ids, int n_ids,
                               int32_t image_token_id, const float *embeds, int n_embeds,
                               int D, dsocr_error *err) {
    int n_ph = 0;
    for (int i = 0; i < n_ids; i++) n_ph += ids[i] == image_token_id;
    if (n_ph != n_embeds)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "vision: prompt has %d image placeholders (id %d) "
                       "but the image gives %d embeddings", n_ph, (int)image_token_id, n_embeds);
    int next = 0;
    for (int i = 0; i < n_ids;) {
        if (ids[i] != image_token_id) { i++; continue; }
        int j = i;
        while (j < n_ids && ids[j] == image_token_id) j++;   /* one run of placeholders */
        ds_op_upload(be, x + (size_t)i * D, embeds + (size_t)next * D, (size_t)(j - i) * D);
        next += j - i;
        i = j;
    }
    return DSOCR_OK;
}
