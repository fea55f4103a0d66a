/* The memory guard: estimates (see memory.h) and the check against the limit. */
#include "app/memory.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "model/projector.h"
#include "model/sam.h"

#define MIB (1024.0 * 1024.0)
#define GIB (1024.0 * 1024.0 * 1024.0)
#define VIEW_BUFFERS 27   /* activation buffers of one (side, batch), counted below */

/* Fixed allowance: tokenizer tables (~50 MiB for 129k tokens), thread pool stacks,
 * libpng/libjpeg/mupdf state, allocator slack. */
#define OVERHEAD_BYTES (96ull * 1024 * 1024)

void ds_mem_mode_views(dsocr_mode mode, int max_crops, int *global_side, int *tile_side, int *max_tiles) {
    static const int side[] = {512, 640, 1024, 1280, 1024};
    int m = mode >= DSOCR_MODE_TINY && mode <= DSOCR_MODE_GUNDAM ? (int)mode : (int)DSOCR_MODE_GUNDAM;
    *global_side = side[m];
    *tile_side = m == DSOCR_MODE_GUNDAM ? 640 : 0;
    *max_tiles = m == DSOCR_MODE_GUNDAM ? (max_crops > 0 ? max_crops : 9) : 0;
}

/* Floats of every vision buffer for `batch` views of `side` pixels, in the order of
 * sam.c / clip.c / projector.c / vision.c reserve(). */
static void view_buffers(const ds_config *c, int side, int batch, double out[VIEW_BUFFERS]) {
    const ds_sam_config *s = &c->sam;
    const double B = batch, C = s->width, H = s->heads, win = s->window_size;
    const double T = side / s->patch_size, L = T * T;
    const double Tp = ceil(T / win) * win, Lpad = Tp * Tp, Lmax = Lpad > L ? Lpad : L;
    const double rel_win = B * H * Lpad * win, rel_glob = B * H * L * T;
    const double T2 = floor((T - 1) / 2) + 1;   /* net_2: 3x3 stride 2 pad 1 */
    int k = 0;
    /* SAM */
    out[k++] = 3.0 * side * side;                /* pixels CHW */
    out[k++] = 3.0 * side * side;                /* pixels HWC */
    out[k++] = B * L * C;                        /* residual */
    out[k++] = B * L * C;                        /* hidden */
    out[k++] = B * Lpad * C;                     /* windows */
    out[k++] = B * Lmax * 3 * C;                 /* qkv */
    out[k++] = B * Lmax * C;                     /* attention */
    out[k++] = rel_win > rel_glob ? rel_win : rel_glob;   /* rel-pos h */
    out[k++] = rel_win > rel_glob ? rel_win : rel_glob;   /* rel-pos w */
    out[k++] = B * L * s->mlp_dim;               /* mlp */
    out[k++] = B * L * s->neck_channels;         /* neck a */
    out[k++] = B * L * s->neck_channels;         /* neck b */
    out[k++] = B * T2 * T2 * s->downsample_channels[0];   /* net_2 */
    /* CLIP over the SAM grid plus a class token */
    const double g = ds_sam_out_side(s, side), N = g * g, rows = B * (N + 1), Cc = c->clip.width;
    out[k++] = rows * Cc;                        /* residual */
    out[k++] = rows * Cc;                        /* hidden */
    out[k++] = rows * 3 * Cc;                    /* qkv */
    out[k++] = rows * Cc;                        /* attention */
    out[k++] = rows * c->clip.ffn_hidden_size;   /* mlp */
    /* projector (only the downsample types have their own buffers) */
    const double go = ds_projector_out_side(&c->proj, (int)g), F = c->proj.input_dim;
    const int downsample = strncmp(c->proj.type, "downsample", 10) == 0;
    const double r = c->proj.downsample_ratio, feat = F * r * r, R = c->proj.n_embed * c->proj.mlp_ratio;
    out[k++] = downsample ? go * go * feat : 0;      /* blocks */
    out[k++] = downsample ? B * go * go * feat : 0;  /* unfold */
    out[k++] = downsample ? B * go * go * R : 0;     /* hidden a */
    out[k++] = downsample ? B * go * go * R : 0;     /* hidden b */
    /* fusion and output */
    out[k++] = B * N * s->downsample_channels[1];    /* sam output */
    out[k++] = N * F;                                /* fusion, transposed */
    out[k++] = B * N * F;                            /* fusion */
    out[k++] = B * go * go * c->proj.n_embed;        /* projector output */
    /* position tables of this side: SAM [T*T, C] and rel-pos, CLIP [(N+1), Cc] */
    out[k++] = L * C + (N + 1) * Cc + (double)s->layers * 2 * (2 * T - 1) * (C / (H > 0 ? H : 1));
}

uint64_t ds_mem_vision_bytes(const ds_config *cfg, const ds_mem_view *views, int n_views) {
    double largest[VIEW_BUFFERS] = {0}, tables = 0;
    for (int v = 0; v < n_views; v++) {
        if (views[v].side <= 0 || views[v].batch <= 0) continue;
        double b[VIEW_BUFFERS];
        view_buffers(cfg, views[v].side, views[v].batch, b);
        for (int i = 0; i < VIEW_BUFFERS - 1; i++)
            if (b[i] > largest[i]) largest[i] = b[i];
        int seen = 0;   /* tables are built once per distinct side */
        for (int u = 0; u < v; u++) seen |= views[u].side == views[v].side && views[u].batch > 0;
        if (!seen) tables += b[VIEW_BUFFERS - 1];
    }
    double floats = tables;
    for (int i = 0; i < VIEW_BUFFERS - 1; i++) floats += largest[i];
    return (uint64_t)(floats * 4.0);
}

uint64_t ds_mem_decoder_bytes(const ds_lm_config *lm, int ctx, uint64_t *kv_bytes) {
    if (kv_bytes) *kv_bytes = 0;
    if (ctx <= 0) return 0;
    const double D = lm->hidden_size, hd = lm->head_dim, QD = (double)lm->num_attention_heads * hd;
    const double KVD = (double)lm->num_key_value_heads * hd, V = lm->vocab_size, L = lm->num_hidden_layers;
    const double E = lm->n_routed_experts > 0 ? lm->n_routed_experts : 1;
    const double K = lm->n_routed_experts > 0 ? lm->num_experts_per_tok : 1;
    double I = lm->intermediate_size;
    if (lm->n_routed_experts > 0) {
        double shared = (double)lm->moe_intermediate_size * lm->n_shared_experts;
        if (lm->moe_intermediate_size > I) I = lm->moe_intermediate_size;
        if (shared > I) I = shared;
    }
    const double B = ctx < 1024 ? ctx : 1024;   /* rows per prefill chunk */
    const double kv = 2.0 * L * ctx * KVD * 4.0;
    double act = 4.0 * (4 * B * D + 2 * B * QD + 2 * B * KVD + 2 * B * I + B * E + V + hd / 2);   /* decoder.c alloc_state */
    act += 4.0 * (B * E + 4 * B * K + 2 * E + L * D + 2 * L * K);                  /* host routing, trace */
    act += V * (4 + 4 + 1) + (double)(ctx + 1) * 4;                                 /* generator: logits, banned, ids */
    act += V * (8 + 4 + 4 + 4);                                                     /* sampler: candidates, scratch, ids, probs */
    if (kv_bytes) *kv_bytes = (uint64_t)kv;
    return (uint64_t)(kv + act);
}

void ds_mem_estimate_request(const ds_config *cfg, uint64_t weight_bytes, int global_side, int tile_side,
                             int n_tiles, int ctx, ds_mem_estimate *e) {
    memset(e, 0, sizeof *e);
    e->weights = weight_bytes;
    /* ds_vision_new reserves a 1024 global view and 9 tiles of 640 at load */
    const ds_mem_view views[] = {{1024, 1}, {640, 9}, {global_side, 1}, {tile_side, n_tiles}};
    e->vision = ds_mem_vision_bytes(cfg, views, 4);
    uint64_t dec = ds_mem_decoder_bytes(&cfg->lm, ctx, &e->kv_cache);
    e->decoder = dec - e->kv_cache;
    if (global_side > 0) {
        /* views: u8 HWC + f32 CHW; embeddings [n_embeds, D] */
        double px = (double)global_side * global_side * 3 * 5 + (double)n_tiles * tile_side * tile_side * 3 * 5;
        double tok_g = ds_projector_out_side(&cfg->proj, ds_sam_out_side(&cfg->sam, global_side));
        double tok_t = tile_side > 0 ? ds_projector_out_side(&cfg->proj, ds_sam_out_side(&cfg->sam, tile_side)) : 0;
        double n_embeds = tok_g * (tok_g + 1) + 1 + n_tiles * tok_t * (tok_t + 1);
        e->inputs = (uint64_t)(px + n_embeds * cfg->lm.hidden_size * 4.0);
    }
    e->overhead = OVERHEAD_BYTES;
    e->total = e->weights + e->vision + e->kv_cache + e->decoder + e->inputs + e->overhead;
}

uint64_t ds_mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kb = 0;
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) found = sscanf(line, "MemAvailable: %llu kB", &kb) == 1;
    fclose(f);
    return found ? (uint64_t)kb * 1024 : 0;
}

int ds_mem_parse_size(const char *text, uint64_t *out) {
    if (!text || !*text || isspace((unsigned char)*text) || *text == '-' || *text == '+') return -1;
    errno = 0;
    char *end;
    double v = strtod(text, &end);
    if (errno || end == text || !(v > 0)) return -1;
    double unit = 1;
    switch (tolower((unsigned char)*end)) {
    case 0: break;
    case 'k': unit = 1024.0; end++; break;
    case 'm': unit = MIB; end++; break;
    case 'g': unit = GIB; end++; break;
    case 't': unit = GIB * 1024.0; end++; break;
    default: return -1;
    }
    if (unit > 1 && (*end == 'i' || *end == 'I')) end++;   /* "GiB", "Gi" */
    if (unit > 1 && (*end == 'b' || *end == 'B')) end++;   /* "GB" */
    if (*end) return -1;
    double bytes = v * unit;
    if (bytes < 1 || bytes >= 1.8e19) return -1;
    *out = (uint64_t)bytes;
    return 0;
}

void ds_mem_format(uint64_t bytes, char *buf, size_t size) {
    if (bytes >= (uint64_t)GIB) snprintf(buf, size, "%.2f GiB", bytes / GIB);
    else if (bytes >= (uint64_t)MIB) snprintf(buf, size, "%.0f MiB", bytes / MIB);
    else if (bytes >= 1024) snprintf(buf, size, "%.1f KiB", bytes / 1024.0);
    else snprintf(buf, size, "%llu bytes", (unsigned long long)bytes);
}

dsocr_status ds_mem_check(const ds_mem_estimate *e, uint64_t max_memory, uint64_t held, const char *what,
                          const char *advice, dsocr_error *err) {
    if (max_memory == UINT64_MAX) return DSOCR_OK;
    uint64_t limit = max_memory;
    const char *limit_name = "the --max-memory limit";
    if (limit == 0) {
        uint64_t avail = ds_mem_available();
        if (avail == 0) return DSOCR_OK;   /* no /proc/meminfo: nothing to compare with */
        limit = avail + held;
        limit_name = "available memory (MemAvailable)";
    }
    if (e->total <= limit) return DSOCR_OK;
    char total[32], lim[32], w[32], v[32], kv[32], act[32];
    ds_mem_format(e->total, total, sizeof total);
    ds_mem_format(limit, lim, sizeof lim);
    ds_mem_format(e->weights, w, sizeof w);
    ds_mem_format(e->vision + e->inputs, v, sizeof v);
    ds_mem_format(e->kv_cache, kv, sizeof kv);
    ds_mem_format(e->decoder + e->overhead, act, sizeof act);
    return ds_fail(err, DSOCR_ERR_LIMIT,
                   "%s needs about %s (weights %s, vision %s, KV cache %s, other %s), over %s of %s; %s",
                   what, total, w, v, kv, act, limit_name, lim, advice);
}
