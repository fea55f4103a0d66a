/* Vision encoder unit tests: tensor binding (names, shapes, counts for the real and the
 * tiny config), the per-size position tables (antialiased bicubic and linear resizing,
 * against double-precision references of spec 7.5), the downsample_mlp_gelu projector
 * against a direct F.unfold reference, token counts (spec 6.3) and argument errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#include "io/checkpoint.h"
#include "io/config.h"
#include "kernels/ops.h"
#include "model/vision.h"

static ds_vision_weights W;   /* large (fixed block arrays): keep off the stack */

static int starts(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }
static int is_vision_name(const char *n) {
    return starts(n, "model.sam_model.") || starts(n, "model.vision_model.") || starts(n, "model.projector.") ||
           !strcmp(n, "model.image_newline") || !strcmp(n, "model.view_seperator");
}

/* ---- binding ----------------------------------------------------------------- */

static int find_recorded(const ds_binder *b, const char *name, int64_t shape[DS_MAX_DIMS]) {
    for (int i = 0; i < ds_binder_count(b); i++)
        if (!strcmp(ds_binder_name(b, i), name)) return ds_binder_shape(b, i, shape);
    return -1;
}

static void test_bind_real_config(void) {
    ds_config cfg;
    ds_config_default(&cfg);
    ds_binder *b = ds_binder_new_recorder();
    ds_vision_bind(b, &cfg, &W);
    CHECK_EQ_INT(ds_binder_problems(b), 0);
    int sam = 0, clip = 0, other = 0;
    for (int i = 0; i < ds_binder_count(b); i++) {
        const char *n = ds_binder_name(b, i);
        if (starts(n, "model.sam_model.")) sam++;
        else if (starts(n, "model.vision_model.")) clip++;
        else other++;
        CHECK_MSG(is_vision_name(n), "%s", n);
    }
    /* spec 3.4: SAM 179, CLIP 293, projector + vectors 4 */
    CHECK_EQ_INT(sam, 179);
    CHECK_EQ_INT(clip, 293);
    CHECK_EQ_INT(other, 4);
    int64_t s[DS_MAX_DIMS];
    CHECK_EQ_INT(find_recorded(b, "model.sam_model.blocks.2.attn.rel_pos_h", s), 2);
    CHECK(s[0] == 127 && s[1] == 64);
    CHECK_EQ_INT(find_recorded(b, "model.sam_model.blocks.0.attn.rel_pos_w", s), 2);
    CHECK(s[0] == 27 && s[1] == 64);
    CHECK_EQ_INT(find_recorded(b, "model.sam_model.pos_embed", s), 4);
    CHECK(s[0] == 1 && s[1] == 64 && s[2] == 64 && s[3] == 768);
    CHECK_EQ_INT(find_recorded(b, "model.sam_model.net_3.weight", s), 4);
    CHECK(s[0] == 1024 && s[1] == 512 && s[2] == 3 && s[3] == 3);
    CHECK_EQ_INT(find_recorded(b, "model.vision_model.embeddings.patch_embedding.weight", s), 4);
    CHECK(s[0] == 1024 && s[1] == 3 && s[2] == 14 && s[3] == 14);
    CHECK_EQ_INT(find_recorded(b, "model.vision_model.embeddings.position_embedding.weight", s), 2);
    CHECK(s[0] == 257 && s[1] == 1024);
    CHECK_EQ_INT(find_recorded(b, "model.vision_model.transformer.layers.23.mlp.fc1.weight", s), 2);
    CHECK(s[0] == 4096 && s[1] == 1024);
    CHECK_EQ_INT(find_recorded(b, "model.projector.layers.weight", s), 2);
    CHECK(s[0] == 1280 && s[1] == 2048);
    CHECK_EQ_INT(find_recorded(b, "model.view_seperator", s), 1);
    CHECK(s[0] == 1280);
    ds_binder_free(b);
}

/* The tiny checkpoint: every vision tensor is bound, nothing else is. */
static void test_bind_tiny(const ds_checkpoint *ck, const ds_config *cfg) {
    ds_binder *b = ds_binder_new(ck);
    ds_vision_bind(b, cfg, &W);
    CHECK_EQ_INT(ds_binder_problems(b), 0);
    int unused_vision = 0, unused = ds_binder_unused_count(b);
    for (int k = 0; k < unused; k++) {
        const char *n = ds_binder_unused_name(b, k);
        if (is_vision_name(n)) { unused_vision++; fprintf(stderr, "unbound vision tensor %s\n", n); }
    }
    CHECK_EQ_INT(unused_vision, 0);
    CHECK(unused > 0);   /* the LM tensors */
    dsocr_error err;
    CHECK_MSG(ds_binder_finish(b, &err) == DSOCR_OK, "%s", err.message);
}

/* ---- position tables ------------------------------------------------------------ */

static double cubic(double t) {   /* a = -0.5 (spec 6.7) */
    const double a = -0.5;
    t = fabs(t);
    if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
    if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
    return 0;
}

/* Antialiased bicubic taps of output o (spec 7.5); returns the tap count. */
static int aa_taps(int in, int out, int o, int *lo, double *w) {
    const double scale = (double)in / out, support = scale >= 1 ? 2 * scale : 2, inv = scale >= 1 ? 1 / scale : 1;
    const double c = scale * (o + 0.5);
    int xmin = (int)(c - support + 0.5), xmax = (int)(c + support + 0.5);
    if (xmin < 0) xmin = 0;
    if (xmax > in) xmax = in;
    double sum = 0;
    for (int j = 0; j < xmax - xmin; j++) sum += w[j] = cubic((j + xmin - c + 0.5) * inv);
    if (sum != 0)
        for (int j = 0; j < xmax - xmin; j++) w[j] /= sum;
    *lo = xmin;
    return xmax - xmin;
}

/* in [n, n, C] -> out [m, m, C], double. */
static void ref_bicubic_aa(double *out, const float *in, int n, int C, int m) {
    double wy[64], wx[64];
    for (int oy = 0; oy < m; oy++) {
        int y0, x0;
        const int ny = aa_taps(n, m, oy, &y0, wy);
        for (int ox = 0; ox < m; ox++) {
            const int nx = aa_taps(n, m, ox, &x0, wx);
            for (int c = 0; c < C; c++) {
                double acc = 0;
                for (int j = 0; j < ny; j++)
                    for (int i = 0; i < nx; i++) acc += wy[j] * wx[i] * in[((size_t)(y0 + j) * n + x0 + i) * C + c];
                out[((size_t)oy * m + ox) * C + c] = acc;
            }
        }
    }
}

/* Max |a - ref| relative to max |ref|. */
static double rel_err(const float *a, const double *ref, size_t n) {
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabs(a[i] - ref[i]) > d) d = fabs(a[i] - ref[i]);
        if (fabs(ref[i]) > m) m = fabs(ref[i]);
    }
    return m > 0 ? d / m : d;
}

static float *to_host(const ds_tensor *t) {
    const int64_t n = ds_tensor_numel(t);
    float *y = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) y[i] = ds_tensor_get_f32(t, i);
    return y;
}

static void test_sam_tables(ds_backend *be, const ds_config *cfg, int side) {
    const ds_sam_config *c = &cfg->sam;
    const int C = c->width, hd = C / c->heads, P = c->img_size / c->patch_size, T = side / c->patch_size;
    ds_sam_tables t;
    dsocr_error err;
    CHECK_MSG(ds_sam_tables_build(be, c, &W.sam, side, &t, &err) == DSOCR_OK, "%s", err.message);
    CHECK_EQ_INT(t.T, T);

    /* absolute position: stored grid at T == P, else antialiased bicubic P -> T */
    float *pos = to_host(&W.sam.pos_embed), *got = malloc((size_t)T * T * C * sizeof(float));
    double *ref = malloc((size_t)T * T * C * sizeof(double));
    ds_op_download(be, got, t.pos, (size_t)T * T * C);
    ref_bicubic_aa(ref, pos, P, C, T);
    const double e = rel_err(got, ref, (size_t)T * T * C);
    CHECK_MSG(e < 2e-6, "side %d: pos table rel err %.3g", side, e);
    if (T == P) CHECK(!memcmp(got, pos, (size_t)T * T * C * sizeof(float)));

    /* relative positions: windowed tables as stored; global ones linear-resized to 2T-1 */
    for (int i = 0; i < c->layers; i++) {
        const int glob = ds_sam_is_global(c, i), n_out = glob ? 2 * T - 1 : 2 * c->window_size - 1;
        for (int axis = 0; axis < 2; axis++) {
            const ds_tensor *src = axis ? &W.sam.blocks[i].rel_pos_w : &W.sam.blocks[i].rel_pos_h;
            const int n_in = (int)src->shape[0];
            float *tab = to_host(src), *g2 = malloc((size_t)n_out * hd * sizeof(float));
            double *r2 = malloc((size_t)n_out * hd * sizeof(double));
            ds_op_download(be, g2, axis ? t.rel_w[i] : t.rel_h[i], (size_t)n_out * hd);
            /* source index and weight in fp32, as PyTorch computes them (spec 7.5) */
            const float scale = (float)n_in / (float)n_out;
            for (int o = 0; o < n_out; o++) {
                float s = scale * ((float)o + 0.5f) - 0.5f;
                if (s < 0) s = 0;
                int i0 = (int)floorf(s), i1 = i0 + 1 < n_in ? i0 + 1 : n_in - 1;
                const double lam = (double)(s - (float)i0);
                for (int d = 0; d < hd; d++)
                    r2[(size_t)o * hd + d] = (1 - lam) * tab[(size_t)i0 * hd + d] + lam * tab[(size_t)i1 * hd + d];
            }
            const double er = rel_err(g2, r2, (size_t)n_out * hd);
            CHECK_MSG(er < 1e-6, "side %d block %d axis %d: rel-pos rel err %.3g", side, i, axis, er);
            if (n_in == n_out) CHECK(!memcmp(g2, tab, (size_t)n_out * hd * sizeof(float)));
            free(tab);
            free(g2);
            free(r2);
        }
    }
    free(pos);
    free(got);
    free(ref);
    ds_sam_tables_free(be, &t);
}

static void test_clip_tables(ds_backend *be, const ds_config *cfg, int g) {
    const ds_clip_config *c = &cfg->clip;
    const int C = c->width, G = c->image_size / c->patch_size;
    ds_clip_tables t;
    dsocr_error err;
    CHECK_MSG(ds_clip_tables_build(be, c, &W.clip, g, &t, &err) == DSOCR_OK, "%s", err.message);
    float *pos = to_host(&W.clip.position_embedding), *cls = to_host(&W.clip.class_embedding);
    for (int i = 0; i < C; i++) CHECK(t.cls_row[i] == cls[i] + pos[i]);
    float *got = malloc((size_t)g * g * C * sizeof(float));
    double *ref = malloc((size_t)g * g * C * sizeof(double));
    ds_op_download(be, got, t.pos, (size_t)g * g * C);
    ref_bicubic_aa(ref, pos + C, G, C, g);
    const double e = rel_err(got, ref, (size_t)g * g * C);
    CHECK_MSG(e < 2e-6, "clip grid %d: pos rel err %.3g", g, e);
    free(pos);
    free(cls);
    free(got);
    free(ref);
    ds_clip_tables_free(be, &t);
}

/* ---- downsample_mlp_gelu projector -------------------------------------------- */

static ds_tensor f32_tensor(float *data, int64_t rows, int64_t cols) {
    ds_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = DS_F32;
    t.ndim = cols ? 2 : 1;
    t.shape[0] = rows;
    t.shape[1] = cols;
    ds_tensor_set_contiguous(&t);
    t.data = data;
    return t;
}

static double gelu(double x) { return 0.5 * x * (1 + erf(x / sqrt(2.0))); }

static void test_projector_downsample(ds_backend *be, int g, int k, int depth) {
    ds_projector_config pc;
    memset(&pc, 0, sizeof pc);
    strcpy(pc.type, "downsample_mlp_gelu");
    pc.input_dim = 6;
    pc.n_embed = 4;
    pc.downsample_ratio = k;
    pc.depth = depth;
    pc.mlp_ratio = 2;
    const int B = 2, I = pc.input_dim, R = 8, n = 4, go = (g + k - 1) / k, L = go * go, feat = I * k * k;
    CHECK_EQ_INT(ds_projector_out_side(&pc, g), go);
    dsocr_error err;
    CHECK(ds_projector_check_config(&pc, &err) == DSOCR_OK);

    /* names and shapes come from the same bind code */
    static ds_projector_weights pw;
    ds_binder *rec = ds_binder_new_recorder();
    ds_projector_bind(rec, &pc, &pw);
    const int nl = depth > 2 ? depth : 2;
    CHECK_EQ_INT(ds_binder_count(rec), 2 * nl);
    int64_t s[DS_MAX_DIMS];
    char name[64];
    snprintf(name, sizeof name, "model.projector.layers.%d.weight", 2 * (nl - 1));
    CHECK_EQ_INT(find_recorded(rec, name, s), 2);
    CHECK(s[0] == n && s[1] == R);
    CHECK_EQ_INT(find_recorded(rec, "model.projector.layers.0.weight", s), 2);
    CHECK(s[0] == R && s[1] == feat);
    ds_binder_free(rec);

    /* random f32 weights in place of the recorded views */
    uint64_t rng = 1234 + (uint64_t)g * 7 + (uint64_t)depth;
    float *wd[DS_PROJ_MAX_LINEARS], *bd[DS_PROJ_MAX_LINEARS];
    for (int i = 0; i < nl; i++) {
        const int in = i == 0 ? feat : R, out = i == nl - 1 ? n : R;
        wd[i] = malloc((size_t)out * in * sizeof(float));
        bd[i] = malloc((size_t)out * sizeof(float));
        for (int j = 0; j < out * in; j++) wd[i][j] = (float)(tu_rand_normal(&rng) / sqrt((double)in));
        for (int j = 0; j < out; j++) bd[i][j] = (float)(0.1 * tu_rand_normal(&rng));
        pw.w[i] = f32_tensor(wd[i], out, in);
        pw.b[i] = f32_tensor(bd[i], out, 0);
    }
    pw.n_linear = nl;

    const size_t nx = (size_t)B * g * g * I, ny = (size_t)B * L * n;
    float *hx = malloc(nx * sizeof(float)), *hy = malloc(ny * sizeof(float));
    for (size_t i = 0; i < nx; i++) hx[i] = (float)tu_rand_normal(&rng);
    float *x = ds_buf_alloc(be, nx), *y = ds_buf_alloc(be, ny);
    ds_op_upload(be, x, hx, nx);
    ds_projector_state st = {0};
    CHECK(ds_projector_state_reserve(be, &pc, &st, B, g, &err) == DSOCR_OK);
    ds_projector_forward(be, &pc, &pw, &st, x, B, g, y);
    ds_op_download(be, hy, y, ny);

    /* reference: F.unfold(kernel = stride = k) on the zero-padded [I, gp, gp] map,
     * feature c*k*k + dy*k + dx, blocks row-major; then the MLP in double */
    double *ref = malloc(ny * sizeof(double)), f[512], h[64], h2[64];
    for (int b = 0; b < B; b++)
        for (int by = 0; by < go; by++)
            for (int bx = 0; bx < go; bx++) {
                for (int c = 0; c < I; c++)
                    for (int dy = 0; dy < k; dy++)
                        for (int dx = 0; dx < k; dx++) {
                            const int yy = by * k + dy, xx = bx * k + dx;
                            f[c * k * k + dy * k + dx] =
                                (yy < g && xx < g) ? hx[(((size_t)b * g + yy) * g + xx) * I + c] : 0.0;
                        }
                const double *in = f;
                int in_dim = feat;
                for (int i = 0; i < nl; i++) {
                    const int out = i == nl - 1 ? n : R;
                    double *o = (i & 1) ? h2 : h;
                    for (int r = 0; r < out; r++) {
                        double acc = bd[i][r];
                        for (int j = 0; j < in_dim; j++) acc += (double)wd[i][(size_t)r * in_dim + j] * in[j];
                        o[r] = i < nl - 1 ? gelu(acc) : acc;
                    }
                    in = o;
                    in_dim = out;
                }
                for (int r = 0; r < n; r++) ref[(((size_t)b * L) + by * go + bx) * n + r] = in[r];
            }
    const double e = rel_err(hy, ref, ny);
    CHECK_MSG(e < 1e-5, "downsample projector g=%d k=%d depth=%d: rel err %.3g", g, k, depth, e);

    for (int i = 0; i < nl; i++) { free(wd[i]); free(bd[i]); }
    free(hx); free(hy); free(ref);
    ds_buf_free(be, x);
    ds_buf_free(be, y);
    ds_projector_state_free(be, &st);
}

/* ---- counts and errors ------------------------------------------------------------ */

static void test_counts(void) {
    ds_config cfg;
    ds_config_default(&cfg);
    CHECK_EQ_INT(ds_vision_n_embeds(&cfg, 512, 0, 0, 1, 1), 73);
    CHECK_EQ_INT(ds_vision_n_embeds(&cfg, 640, 0, 0, 1, 1), 111);
    CHECK_EQ_INT(ds_vision_n_embeds(&cfg, 1024, 0, 0, 1, 1), 273);
    CHECK_EQ_INT(ds_vision_n_embeds(&cfg, 1280, 0, 0, 1, 1), 421);
    /* gundam grids of spec 6.3 (w x h) */
    static const int grids[][3] = {{1, 2, 493}, {2, 1, 483}, {2, 2, 693}, {3, 2, 893}, {2, 3, 903},
                                   {4, 2, 1093}, {3, 3, 1203}, {1, 9, 1263}, {9, 1, 1183}};
    for (size_t i = 0; i < sizeof grids / sizeof grids[0]; i++)
        CHECK_EQ_INT(ds_vision_n_embeds(&cfg, 1024, grids[i][0] * grids[i][1], 640, grids[i][0], grids[i][1]),
                     grids[i][2]);
    /* Gundam-M: 421 + 16*h*(16*w+1) */
    CHECK_EQ_INT(ds_vision_n_embeds(&cfg, 1280, 2, 1024, 2, 1), 421 + 16 * 33);
    CHECK_EQ_INT(ds_vision_grid_side(&cfg, 1024), 16);
    CHECK_EQ_INT(ds_vision_grid_side(&cfg, 640), 10);
}

static void test_errors(ds_backend *be, const ds_config *tiny) {
    dsocr_error err;
    ds_vision *v = NULL;
    ds_config bad = *tiny;
    strcpy(bad.proj.type, "low_high_hybrid_split_mlp_gelu");
    CHECK_EQ_INT(ds_vision_new(be, &bad, &W, NULL, &v, &err), DSOCR_ERR_UNSUPPORTED);
    CHECK(v == NULL && strstr(err.message, "low_high_hybrid_split_mlp_gelu"));
    bad = *tiny;
    bad.proj.input_dim += 1;
    CHECK_EQ_INT(ds_vision_new(be, &bad, &W, NULL, &v, &err), DSOCR_ERR_FORMAT);

    /* no buffers reserved up front: the first encode allocates */
    ds_vision_params p = {0, 0, 0, 0};
    CHECK_MSG(ds_vision_new(be, tiny, &W, &p, &v, &err) == DSOCR_OK, "%s", err.message);
    float px[3 * 32 * 32] = {0}, out[16];
    CHECK_EQ_INT(ds_vision_encode(v, px, 1000, NULL, 0, 0, 1, 1, out, NULL, &err), DSOCR_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "1000") != NULL);
    CHECK_EQ_INT(ds_vision_encode(v, NULL, 512, NULL, 0, 0, 1, 1, out, NULL, &err), DSOCR_ERR_INVALID_ARG);
    CHECK_EQ_INT(ds_vision_encode(v, px, 512, px, 3, 640, 2, 2, out, NULL, &err), DSOCR_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "2x2") != NULL);
    CHECK_EQ_INT(ds_vision_encode(v, px, 512, NULL, 2, 640, 2, 1, out, NULL, &err), DSOCR_ERR_INVALID_ARG);
    CHECK_EQ_INT(ds_vision_encode(v, px, 99999, NULL, 0, 0, 1, 1, out, NULL, &err), DSOCR_ERR_INVALID_ARG);
    CHECK_EQ_INT(ds_vision_encode(v, px, 1 << 20, NULL, 0, 0, 1, 1, out, NULL, &err), DSOCR_ERR_LIMIT);

    /* a small view (32 px: 2x2 patches, 1x1 output) runs end to end */
    float *emb = malloc((size_t)ds_vision_n_embeds(tiny, 32, 0, 0, 1, 1) * tiny->proj.n_embed * sizeof(float));
    for (int i = 0; i < 3 * 32 * 32; i++) px[i] = (float)((i % 17) - 8) / 8.0f;
    CHECK_EQ_INT(ds_vision_n_embeds(tiny, 32, 0, 0, 1, 1), 3);
    CHECK_MSG(ds_vision_encode(v, px, 32, NULL, 0, 0, 1, 1, emb, NULL, &err) == DSOCR_OK, "%s", err.message);
    int finite = 1;
    for (int i = 0; i < 3 * tiny->proj.n_embed; i++) finite &= isfinite(emb[i]);
    CHECK(finite);
    CHECK(emb[2 * tiny->proj.n_embed] == ds_tensor_get_f32(&W.view_seperator, 0));
    CHECK(emb[1 * tiny->proj.n_embed] == ds_tensor_get_f32(&W.image_newline, 0));
    free(emb);
    ds_vision_free(v);
}


/* Tiles encoded in chunks (max_batch 4 over 6 tiles) land in the local mosaic exactly
 * where the same tile encoded alone puts its rows: tile (r, c) row y -> mosaic row
 * r*q + y, columns c*q..; a newline closes every mosaic row; then the global rows. */
static void test_tile_layout(ds_backend *be, const ds_config *cfg) {
    const int gw = 3, gh = 2, nt = gw * gh, ts = 128, gs = 64, D = cfg->proj.n_embed;
    const int q = ds_vision_grid_side(cfg, ts), g = ds_vision_grid_side(cfg, gs);
    CHECK_EQ_INT(q, 2);
    CHECK_EQ_INT(g, 1);
    dsocr_error err;
    ds_vision *v = NULL;
    ds_vision_params p = {gs, ts, nt, 4};
    CHECK_MSG(ds_vision_new(be, cfg, &W, &p, &v, &err) == DSOCR_OK, "%s", err.message);
    if (!v) return;
    uint64_t rng = 99;
    const size_t tpx = (size_t)3 * ts * ts;
    float *tiles = malloc(nt * tpx * sizeof(float)), *global = malloc((size_t)3 * gs * gs * sizeof(float));
    for (size_t i = 0; i < nt * tpx; i++) tiles[i] = ds_round_bf16((float)(2 * tu_rand_uniform(&rng) - 1));
    for (int i = 0; i < 3 * gs * gs; i++) global[i] = ds_round_bf16((float)(2 * tu_rand_uniform(&rng) - 1));
    const int N = ds_vision_n_embeds(cfg, gs, nt, ts, gw, gh), n1 = ds_vision_n_embeds(cfg, ts, 0, 0, 1, 1);
    CHECK_EQ_INT(N, (q * gh) * (q * gw + 1) + g * (g + 1) + 1);
    float *all = malloc((size_t)N * D * sizeof(float)), *one = malloc((size_t)n1 * D * sizeof(float));
    float *glob = malloc((size_t)(g * (g + 1) + 1) * D * sizeof(float));
    CHECK_MSG(ds_vision_encode(v, global, gs, tiles, nt, ts, gw, gh, all, NULL, &err) == DSOCR_OK, "%s", err.message);
    CHECK(ds_vision_encode(v, global, gs, NULL, 0, 0, 1, 1, glob, NULL, &err) == DSOCR_OK);
    const int mw = q * gw + 1;
    double worst = 0, ref_max = 0;
    for (int t = 0; t < nt; t++) {
        CHECK(ds_vision_encode(v, tiles + t * tpx, ts, NULL, 0, 0, 1, 1, one, NULL, &err) == DSOCR_OK);
        const int r = t / gw, c = t % gw;
        for (int y = 0; y < q; y++)
            for (int x = 0; x < q; x++)
                for (int d = 0; d < D; d++) {
                    const float a = all[((size_t)(r * q + y) * mw + c * q + x) * D + d];
                    const float b = one[((size_t)y * (q + 1) + x) * D + d];
                    if (fabs(a - b) > worst) worst = fabs(a - b);
                    if (fabs(b) > ref_max) ref_max = fabs(b);
                }
    }
    CHECK_MSG(worst <= 1e-5 * ref_max, "mosaic vs single-tile encode: max diff %.3g (max %.3g)", worst, ref_max);
    for (int row = 0; row < q * gh; row++)
        CHECK(all[((size_t)row * mw + mw - 1) * D] == ds_tensor_get_f32(&W.image_newline, 0));
    /* the global part follows the mosaic unchanged (same code path as a lone view) */
    const size_t n_local = (size_t)q * gh * mw;
    CHECK(!memcmp(all + n_local * D, glob, (size_t)(g * (g + 1) + 1) * D * sizeof(float)));
    free(tiles); free(global); free(all); free(one); free(glob);
    ds_vision_free(v);
}

int main(void) {
    test_bind_real_config();
    test_counts();

    dsocr_error err;
    ds_config cfg;
    ds_checkpoint *ck = NULL;
    ds_backend *be = NULL;
    if (ds_config_load(tu_golden("tiny-model/config.json"), &cfg, &err) != DSOCR_OK ||
        ds_ckpt_open(tu_golden("tiny-model"), &ck, &err) != DSOCR_OK ||
        ds_backend_cpu_new(0, &be, &err) != DSOCR_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    test_bind_tiny(ck, &cfg);

    /* 512 / 640 downsample the 64x64 SAM grid, 1280 upsamples it; 1024 uses it as stored */
    const int sides[] = {512, 640, 1024, 1280};
    for (int i = 0; i < 4; i++) {
        test_sam_tables(be, &cfg, sides[i]);
        test_clip_tables(be, &cfg, sides[i] / 64);
    }

    test_projector_downsample(be, 4, 2, 2);
    test_projector_downsample(be, 5, 2, 3);   /* odd grid: zero padding */
    test_projector_downsample(be, 7, 3, 1);   /* depth 1 still has two Linears */

    test_errors(be, &cfg);
    test_tile_layout(be, &cfg);

    ds_backend_free(be);
    ds_ckpt_close(ck);
    return tu_done("test_vision_units");
}
