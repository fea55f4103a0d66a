/* config.json reader (real HF schema, spec section 2.1).
 *
 * Every value starts at the real DeepSeek-OCR setting (ds_config_default) and is
 * overridden by the key when present. Language-model keys are read from the top
 * level first (as the HF class does), then from language_config. Each value is
 * range-checked as it is read, so every error names the file and the key path. */
#include "io/config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CFG_MAX_FILE (16u * 1000u * 1000u)
#define CFG_MAX_DIM (1 << 20)       /* widths, MLP sizes: the real largest is 6848 */
#define CFG_MAX_COUNT 4096          /* layers, heads, experts */
#define CFG_MAX_VOCAB (1 << 24)
#define CFG_MAX_POSITIONS (1 << 24)

void ds_config_default(ds_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    ds_lm_config *lm = &cfg->lm;
    lm->vocab_size = 129280;
    lm->hidden_size = 1280;
    lm->num_hidden_layers = 12;
    lm->num_attention_heads = 10;
    lm->num_key_value_heads = 10;
    lm->head_dim = 128;
    lm->intermediate_size = 6848;
    lm->moe_intermediate_size = 896;
    lm->n_routed_experts = 64;
    lm->n_shared_experts = 2;
    lm->num_experts_per_tok = 6;
    lm->first_k_dense_replace = 1;
    lm->moe_layer_freq = 1;
    lm->norm_topk_prob = 0;
    lm->routed_scaling_factor = 1.0f;
    lm->rms_norm_eps = 1e-6f;
    lm->rope_theta = 10000.0f;
    lm->max_position_embeddings = 8192;
    lm->bos_token_id = 0;
    lm->eos_token_id = 1;

    ds_sam_config *sam = &cfg->sam;
    sam->width = 768;
    sam->heads = 12;
    sam->layers = 12;
    static const int global[] = {2, 5, 8, 11};
    sam->n_global_attn = 4;
    memcpy(sam->global_attn_indexes, global, sizeof global);
    sam->downsample_channels[0] = 512;
    sam->downsample_channels[1] = 1024;
    sam->neck_channels = 256;
    sam->patch_size = 16;
    sam->window_size = 14;
    sam->img_size = 1024;
    sam->mlp_dim = 4 * 768;
    sam->ln_eps = 1e-6f;

    ds_clip_config *clip = &cfg->clip;
    clip->width = 1024;
    clip->heads = 16;
    clip->layers = 24;
    clip->ffn_hidden_size = 4096;
    clip->patch_size = 14;
    clip->image_size = 224;
    clip->ln_eps = 1e-5f;

    ds_projector_config *proj = &cfg->proj;
    snprintf(proj->type, sizeof proj->type, "linear");
    proj->input_dim = 2048;
    proj->n_embed = 1280;
    proj->downsample_ratio = 2;
    proj->depth = 2;
    proj->mlp_ratio = 1.0f;
}

/* ---- typed key readers ---------------------------------------------------- */

typedef struct cfg_ctx {
    const char *file;
    dsocr_error *err;
} cfg_ctx;

/* "prefix.key" (or "key") into buf */
static const char *key_path(char *buf, size_t n, const char *prefix, const char *key) {
    snprintf(buf, n, "%s%s%s", prefix ? prefix : "", prefix && prefix[0] ? "." : "", key);
    return buf;
}

/* Reads an integer in [min, max] if the key is present (null counts as absent).
 * Below min is malformed; above max is over dsocr's sanity limit. */
static dsocr_status read_int(cfg_ctx *c, const cJSON *obj, const char *prefix, const char *key, int min, int max,
                             int *out) {
    const cJSON *j = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (!j || cJSON_IsNull(j)) return DSOCR_OK;
    char path[256];
    key_path(path, sizeof path, prefix, key);
    if (!cJSON_IsNumber(j) || j->valuedouble != floor(j->valuedouble) || fabs(j->valuedouble) > 2e9)
        return ds_fail(c->err, DSOCR_ERR_FORMAT, "%s: key %s: expected an integer", c->file, path);
    double v = j->valuedouble;
    if (v < min)
        return ds_fail(c->err, DSOCR_ERR_FORMAT, "%s: key %s = %.0f: must be at least %d", c->file, path, v, min);
    if (v > max)
        return ds_fail(c->err, DSOCR_ERR_LIMIT, "%s: key %s = %.0f: over the limit of %d", c->file, path, v, max);
    *out = (int)v;
    return DSOCR_OK;
}

/* A finite number in (min_excl, max]. */
static dsocr_status read_float(cfg_ctx *c, const cJSON *obj, const char *prefix, const char *key, double min_excl,
                               double max, float *out) {
    const cJSON *j = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (!j || cJSON_IsNull(j)) return DSOCR_OK;
    char path[256];
    key_path(path, sizeof path, prefix, key);
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble))
        return ds_fail(c->err, DSOCR_ERR_FORMAT, "%s: key %s: expected a number", c->file, path);
    double v = j->valuedouble;
    if (!(v > min_excl) || v > max)
        return ds_fail(c->err, DSOCR_ERR_FORMAT, "%s: key %s = %g: must be in (%g, %g]", c->file, path, v, min_excl, max);
    *out = (float)v;
    return DSOCR_OK;
}

static dsocr_status read_bool(cfg_ctx *c, const cJSON *obj, const char *prefix, const char *key, int *out) {
    const cJSON *j = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (!j || cJSON_IsNull(j)) return DSOCR_OK;
    char path[256];
    if (!cJSON_IsBool(j))
        return ds_fail(c->err, DSOCR_ERR_FORMAT, "%s: key %s: expected true or false", c->file,
                       key_path(path, sizeof path, prefix, key));
    *out = cJSON_IsTrue(j);
    return DSOCR_OK;
}

/* A string key that dsocr supports only with one value (absent = that value). */
static dsocr_status require_string(cfg_ctx *c, const cJSON *obj, const char *prefix, const char *key,
                                   const char *supported) {
    const cJSON *j = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (!j || cJSON_IsNull(j)) return DSOCR_OK;
    char path[256];
    key_path(path, sizeof path, prefix, key);
    if (!cJSON_IsString(j) || !j->valuestring)
        return ds_fail(c->err, DSOCR_ERR_FORMAT, "%s: key %s: expected a string", c->file, path);
    if (strcmp(j->valuestring, supported))
        return ds_fail(c->err, DSOCR_ERR_UNSUPPORTED, "%s: key %s = \"%.64s\" is not supported (only \"%s\")", c->file,
                       path, j->valuestring, supported);
    return DSOCR_OK;
}

/* A boolean that dsocr supports only as false (absent = false). */
static dsocr_status require_false(cfg_ctx *c, const cJSON *obj, const char *prefix, const char *key) {
    int v = 0;
    DS_TRY(read_bool(c, obj, prefix, key, &v));
    char path[256];
    if (v)
        return ds_fail(c->err, DSOCR_ERR_UNSUPPORTED, "%s: key %s = true is not supported", c->file,
                       key_path(path, sizeof path, prefix, key));
    return DSOCR_OK;
}

/* An object-valued key; absent or null gives NULL. */
static dsocr_status get_object(cfg_ctx *c, const cJSON *obj, const char *prefix, const char *key, const cJSON **out) {
    const cJSON *j = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    *out = NULL;
    if (!j || cJSON_IsNull(j)) return DSOCR_OK;
    char path[256];
    if (!cJSON_IsObject(j))
        return ds_fail(c->err, DSOCR_ERR_FORMAT, "%s: key %s: expected an object", c->file,
                       key_path(path, sizeof path, prefix, key));
    *out = j;
    return DSOCR_OK;
}

/* An array of integers in [min, max]; *n receives the count (at most cap). */
static dsocr_status read_int_array(cfg_ctx *c, const cJSON *obj, const char *prefix, const char *key, int min,
                                   int max, int *out, int cap, int *n) {
    const cJSON *j = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (!j || cJSON_IsNull(j)) return DSOCR_OK;
    char path[256];
    key_path(path, sizeof path, prefix, key);
    if (!cJSON_IsArray(j)) return ds_fail(c->err, DSOCR_ERR_FORMAT, "%s: key %s: expected an array", c->file, path);
    int count = cJSON_GetArraySize(j);
    if (count > cap)
        return ds_fail(c->err, DSOCR_ERR_LIMIT, "%s: key %s: %d entries, at most %d supported", c->file, path, count, cap);
    int i = 0;
    for (const cJSON *x = j->child; x; x = x->next, i++) {
        if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble))
            return ds_fail(c->err, DSOCR_ERR_FORMAT, "%s: key %s[%d]: expected an integer", c->file, path, i);
        if (x->valuedouble < min || x->valuedouble > max)
            return ds_fail(c->err, x->valuedouble < min ? DSOCR_ERR_FORMAT : DSOCR_ERR_LIMIT,
                           "%s: key %s[%d] = %.0f: must be in [%d, %d]", c->file, path, i, x->valuedouble, min, max);
        out[i] = (int)x->valuedouble;
    }
    *n = count;
    return DSOCR_OK;
}

/* ---- the language model: top level first, then language_config ------------ */

typedef struct lm_src {
    const cJSON *top, *lang;
} lm_src;

/* The object that holds `key`, and its prefix for messages. */
static const cJSON *lm_where(const lm_src *s, const char *key, const char **prefix) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(s->top, key);
    if (j && !cJSON_IsNull(j)) { *prefix = ""; return s->top; }
    *prefix = "language_config";
    return s->lang;
}

static dsocr_status lm_int(cfg_ctx *c, const lm_src *s, const char *key, int min, int max, int *out) {
    const char *prefix;
    const cJSON *obj = lm_where(s, key, &prefix);
    return read_int(c, obj, prefix, key, min, max, out);
}

static dsocr_status lm_float(cfg_ctx *c, const lm_src *s, const char *key, double min_excl, double max, float *out) {
    const char *prefix;
    const cJSON *obj = lm_where(s, key, &prefix);
    return read_float(c, obj, prefix, key, min_excl, max, out);
}

static dsocr_status lm_bool(cfg_ctx *c, const lm_src *s, const char *key, int *out) {
    const char *prefix;
    const cJSON *obj = lm_where(s, key, &prefix);
    return read_bool(c, obj, prefix, key, out);
}

static dsocr_status lm_string(cfg_ctx *c, const lm_src *s, const char *key, const char *supported) {
    const char *prefix;
    const cJSON *obj = lm_where(s, key, &prefix);
    return require_string(c, obj, prefix, key, supported);
}

static dsocr_status lm_false(cfg_ctx *c, const lm_src *s, const char *key) {
    const char *prefix;
    const cJSON *obj = lm_where(s, key, &prefix);
    return require_false(c, obj, prefix, key);
}

static dsocr_status parse_lm(cfg_ctx *c, const lm_src *s, ds_lm_config *lm) {
    DS_TRY(lm_int(c, s, "vocab_size", 1, CFG_MAX_VOCAB, &lm->vocab_size));
    DS_TRY(lm_int(c, s, "hidden_size", 1, CFG_MAX_DIM, &lm->hidden_size));
    DS_TRY(lm_int(c, s, "num_hidden_layers", 1, CFG_MAX_COUNT, &lm->num_hidden_layers));
    DS_TRY(lm_int(c, s, "num_attention_heads", 1, CFG_MAX_COUNT, &lm->num_attention_heads));
    /* HF: num_key_value_heads defaults to num_attention_heads */
    lm->num_key_value_heads = lm->num_attention_heads;
    DS_TRY(lm_int(c, s, "num_key_value_heads", 1, CFG_MAX_COUNT, &lm->num_key_value_heads));
    DS_TRY(lm_int(c, s, "intermediate_size", 1, CFG_MAX_DIM, &lm->intermediate_size));
    DS_TRY(lm_int(c, s, "moe_intermediate_size", 1, CFG_MAX_DIM, &lm->moe_intermediate_size));
    /* n_routed_experts: null means no MoE at all (every layer dense) */
    const char *prefix;
    const cJSON *obj = lm_where(s, "n_routed_experts", &prefix);
    const cJSON *nre = obj ? cJSON_GetObjectItemCaseSensitive(obj, "n_routed_experts") : NULL;
    if (nre && cJSON_IsNull(nre)) lm->n_routed_experts = 0;
    DS_TRY(lm_int(c, s, "n_routed_experts", 0, CFG_MAX_COUNT, &lm->n_routed_experts));
    DS_TRY(lm_int(c, s, "n_shared_experts", 0, CFG_MAX_COUNT, &lm->n_shared_experts));
    DS_TRY(lm_int(c, s, "num_experts_per_tok", 1, CFG_MAX_COUNT, &lm->num_experts_per_tok));
    DS_TRY(lm_int(c, s, "first_k_dense_replace", 0, CFG_MAX_COUNT, &lm->first_k_dense_replace));
    DS_TRY(lm_int(c, s, "moe_layer_freq", 1, CFG_MAX_COUNT, &lm->moe_layer_freq));
    DS_TRY(lm_bool(c, s, "norm_topk_prob", &lm->norm_topk_prob));
    DS_TRY(lm_float(c, s, "routed_scaling_factor", 0.0, 1e6, &lm->routed_scaling_factor));
    DS_TRY(lm_float(c, s, "rms_norm_eps", 0.0, 1.0, &lm->rms_norm_eps));
    DS_TRY(lm_float(c, s, "rope_theta", 0.0, 1e12, &lm->rope_theta));
    DS_TRY(lm_int(c, s, "max_position_embeddings", 1, CFG_MAX_POSITIONS, &lm->max_position_embeddings));
    DS_TRY(lm_int(c, s, "bos_token_id", 0, CFG_MAX_VOCAB, &lm->bos_token_id));
    DS_TRY(lm_int(c, s, "eos_token_id", 0, CFG_MAX_VOCAB, &lm->eos_token_id));

    /* what dsocr implements: MHA decoder, softmax greedy router, SiLU, plain RoPE */
    DS_TRY(lm_false(c, s, "use_mla"));
    DS_TRY(lm_string(c, s, "topk_method", "greedy"));
    DS_TRY(lm_string(c, s, "scoring_func", "softmax"));
    DS_TRY(lm_string(c, s, "hidden_act", "silu"));
    DS_TRY(lm_false(c, s, "attention_bias"));
    DS_TRY(lm_false(c, s, "tie_word_embeddings"));
    obj = lm_where(s, "rope_scaling", &prefix);
    const cJSON *rs = obj ? cJSON_GetObjectItemCaseSensitive(obj, "rope_scaling") : NULL;
    if (rs && !cJSON_IsNull(rs))
        return ds_fail(c->err, DSOCR_ERR_UNSUPPORTED, "%s: key %s%srope_scaling: only null (no RoPE scaling) is supported",
                       c->file, prefix, prefix[0] ? "." : "");
    return DSOCR_OK;
}

/* ---- vision and projector ---------------------------------------------------- */

#define SAM_PREFIX "vision_config.width.sam_vit_b"
#define CLIP_PREFIX "vision_config.width.clip-l-14-224"

static dsocr_status parse_vision(cfg_ctx *c, const cJSON *root, ds_config *cfg) {
    const cJSON *vision, *width, *sam, *clip;
    DS_TRY(get_object(c, root, "", "vision_config", &vision));
    DS_TRY(get_object(c, vision, "vision_config", "width", &width));
    DS_TRY(get_object(c, width, "vision_config.width", "sam_vit_b", &sam));
    DS_TRY(get_object(c, width, "vision_config.width", "clip-l-14-224", &clip));

    ds_sam_config *s = &cfg->sam;
    DS_TRY(read_int(c, sam, SAM_PREFIX, "width", 1, CFG_MAX_DIM, &s->width));
    DS_TRY(read_int(c, sam, SAM_PREFIX, "heads", 1, CFG_MAX_COUNT, &s->heads));
    DS_TRY(read_int(c, sam, SAM_PREFIX, "layers", 1, CFG_MAX_COUNT, &s->layers));
    DS_TRY(read_int_array(c, sam, SAM_PREFIX, "global_attn_indexes", 0, CFG_MAX_COUNT, s->global_attn_indexes,
                          DS_MAX_GLOBAL_ATTN, &s->n_global_attn));
    int n_down = 2;
    DS_TRY(read_int_array(c, sam, SAM_PREFIX, "downsample_channels", 1, CFG_MAX_DIM, s->downsample_channels, 2,
                          &n_down));
    if (n_down != 2)
        return ds_fail(c->err, DSOCR_ERR_FORMAT, "%s: key " SAM_PREFIX ".downsample_channels: expected 2 entries, got %d",
                       c->file, n_down);
    DS_TRY(read_int(c, sam, SAM_PREFIX, "neck_channels", 1, CFG_MAX_DIM, &s->neck_channels));
    s->mlp_dim = 4 * s->width; /* hard-coded mlp_ratio 4.0 upstream (vision_config.mlp_ratio is unused) */

    ds_clip_config *v = &cfg->clip;
    DS_TRY(read_int(c, clip, CLIP_PREFIX, "width", 1, CFG_MAX_DIM, &v->width));
    DS_TRY(read_int(c, clip, CLIP_PREFIX, "heads", 1, CFG_MAX_COUNT, &v->heads));
    DS_TRY(read_int(c, clip, CLIP_PREFIX, "layers", 1, CFG_MAX_COUNT, &v->layers));
    DS_TRY(read_int(c, clip, CLIP_PREFIX, "patch_size", 1, 1024, &v->patch_size));
    DS_TRY(read_int(c, clip, CLIP_PREFIX, "image_size", 1, 16384, &v->image_size));
    DS_TRY(read_int(c, clip, CLIP_PREFIX, "ffn_hidden_size", 1, CFG_MAX_DIM, &v->ffn_hidden_size));
    return DSOCR_OK;
}

static dsocr_status parse_projector(cfg_ctx *c, const cJSON *root, ds_projector_config *p) {
    const cJSON *proj;
    DS_TRY(get_object(c, root, "", "projector_config", &proj));
    if (!proj) return DSOCR_OK;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(proj, "projector_type");
    if (type && !cJSON_IsNull(type)) {
        static const char *known[] = {"identity", "linear", "mlp_gelu", "downsample_mlp_gelu",
                                      "normlayer_downsample_mlp_gelu", "low_high_hybrid_split_mlp_gelu",
                                      "hybrid_split_feature_mlp_gelu", "low_high_split_mlp_gelu"};
        if (!cJSON_IsString(type) || !type->valuestring)
            return ds_fail(c->err, DSOCR_ERR_FORMAT, "%s: key projector_config.projector_type: expected a string", c->file);
        int ok = 0;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) ok |= !strcmp(type->valuestring, known[i]);
        if (!ok)
            return ds_fail(c->err, DSOCR_ERR_UNSUPPORTED, "%s: key projector_config.projector_type = \"%.64s\" is not supported",
                           c->file, type->valuestring);
        snprintf(p->type, sizeof p->type, "%s", type->valuestring);
    }
    DS_TRY(read_int(c, proj, "projector_config", "input_dim", 1, CFG_MAX_DIM, &p->input_dim));
    DS_TRY(read_int(c, proj, "projector_config", "n_embed", 1, CFG_MAX_DIM, &p->n_embed));
    DS_TRY(read_int(c, proj, "projector_config", "downsample_ratio", 1, 64, &p->downsample_ratio));
    DS_TRY(read_int(c, proj, "projector_config", "depth", 1, 64, &p->depth));
    DS_TRY(read_float(c, proj, "projector_config", "mlp_ratio", 0.0, 64.0, &p->mlp_ratio));
    return DSOCR_OK;
}

/* ---- consistency checks ------------------------------------------------------ */

static dsocr_status validate(cfg_ctx *c, ds_config *cfg) {
    ds_lm_config *lm = &cfg->lm;
    const char *f = c->file;
    if (lm->hidden_size % lm->num_attention_heads)
        return ds_fail(c->err, DSOCR_ERR_FORMAT, "%s: key num_attention_heads = %d does not divide hidden_size = %d", f,
                       lm->num_attention_heads, lm->hidden_size);
    lm->head_dim = lm->hidden_size / lm->num_attention_heads;
    if (lm->head_dim % 2)
        return ds_fail(c->err, DSOCR_ERR_FORMAT, "%s: keys hidden_size / num_attention_heads: head_dim %d is odd (RoPE needs pairs)",
                       f, lm->head_dim);
    if (lm->num_attention_heads % lm->num_key_value_heads)
        return ds_fail(c->err, DSOCR_ERR_FORMAT, "%s: key num_key_value_heads = %d does not divide num_attention_heads = %d",
                       f, lm->num_key_value_heads, lm->num_attention_heads);
    if (lm->n_routed_experts > 0 && lm->num_experts_per_tok > lm->n_routed_experts)
        return ds_fail(c->err, DSOCR_ERR_FORMAT, "%s: key num_experts_per_tok = %d exceeds n_routed_experts = %d", f,
                       lm->num_experts_per_tok, lm->n_routed_experts);
    if (lm->bos_token_id >= lm->vocab_size || lm->eos_token_id >= lm->vocab_size)
        return ds_fail(c->err, DSOCR_ERR_FORMAT, "%s: key %s = %d is outside vocab_size = %d", f,
                       lm->bos_token_id >= lm->vocab_size ? "bos_token_id" : "eos_token_id",
                       lm->bos_token_id >= lm->vocab_size ? lm->bos_token_id : lm->eos_token_id, lm->vocab_size);

    ds_sam_config *s = &cfg->sam;
    if (s->width % s->heads)
        return ds_fail(c->err, DSOCR_ERR_FORMAT, "%s: key " SAM_PREFIX ".heads = %d does not divide width = %d", f,
                       s->heads, s->width);
    for (int i = 0; i < s->n_global_attn; i++) {
        if (s->global_attn_indexes[i] >= s->layers)
            return ds_fail(c->err, DSOCR_ERR_FORMAT, "%s: key " SAM_PREFIX ".global_attn_indexes[%d] = %d: not below layers = %d",
                           f, i, s->global_attn_indexes[i], s->layers);
        if (i > 0 && s->global_attn_indexes[i] <= s->global_attn_indexes[i - 1])
            return ds_fail(c->err, DSOCR_ERR_FORMAT, "%s: key " SAM_PREFIX ".global_attn_indexes: not strictly increasing", f);
    }
    ds_clip_config *v = &cfg->clip;
    if (v->width % v->heads)
        return ds_fail(c->err, DSOCR_ERR_FORMAT, "%s: key " CLIP_PREFIX ".heads = %d does not divide width = %d", f,
                       v->heads, v->width);
    if (v->image_size % v->patch_size)
        return ds_fail(c->err, DSOCR_ERR_FORMAT, "%s: key " CLIP_PREFIX ".patch_size = %d does not divide image_size = %d",
                       f, v->patch_size, v->image_size);

    ds_projector_config *p = &cfg->proj;
    /* the projector maps concat(CLIP features, SAM net_3 features) to LM embeddings */
    if (!strcmp(p->type, "linear") && p->input_dim != v->width + s->downsample_channels[1])
        return ds_fail(c->err, DSOCR_ERR_FORMAT,
                       "%s: key projector_config.input_dim = %d, but CLIP width %d + SAM downsample_channels[1] %d = %d", f,
                       p->input_dim, v->width, s->downsample_channels[1], v->width + s->downsample_channels[1]);
    if (p->n_embed != lm->hidden_size)
        return ds_fail(c->err, DSOCR_ERR_FORMAT, "%s: key projector_config.n_embed = %d differs from hidden_size = %d", f,
                       p->n_embed, lm->hidden_size);
    return DSOCR_OK;
}

/* ---- entry points ---------------------------------------------------------- */

dsocr_status ds_config_parse(const char *json, size_t len, const char *name, ds_config *cfg, dsocr_error *err) {
    if (!cfg || (!json && len)) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "ds_config_parse: NULL argument");
    cfg_ctx c = {name ? name : "config.json", err};
    ds_config_default(cfg);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json ? json : "", len, &end, 0);
    if (!root) {
        size_t at = end && end >= json && end <= json + len ? (size_t)(end - json) : 0;
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: not valid JSON (error near byte offset %zu)", c.file, at);
    }
    dsocr_status s = DSOCR_OK;
    for (const char *q = end; q && q < json + len; q++)
        if (*q != ' ' && *q != '\t' && *q != '\n' && *q != '\r' && *q != 0) {
            cJSON_Delete(root);
            return ds_fail(err, DSOCR_ERR_FORMAT, "%s: trailing garbage at byte offset %zu", c.file, (size_t)(q - json));
        }
    if (!cJSON_IsObject(root)) {
        s = ds_fail(err, DSOCR_ERR_FORMAT, "%s: top level is not a JSON object", c.file);
    } else {
        lm_src src = {root, NULL};
        s = get_object(&c, root, "", "language_config", &src.lang);
        if (s == DSOCR_OK) s = parse_lm(&c, &src, &cfg->lm);
        if (s == DSOCR_OK) s = parse_vision(&c, root, cfg);
        if (s == DSOCR_OK) s = parse_projector(&c, root, &cfg->proj);
        if (s == DSOCR_OK) s = validate(&c, cfg);
    }
    cJSON_Delete(root);
    return s;
}

dsocr_status ds_config_load(const char *path, ds_config *cfg, dsocr_error *err) {
    if (!path || !cfg) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "ds_config_load: NULL argument");
    FILE *fp = fopen(path, "rb");
    if (!fp) return ds_fail(err, DSOCR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    long size = -1;
    if (fseek(fp, 0, SEEK_END) == 0) size = ftell(fp);
    if (size < 0 || fseek(fp, 0, SEEK_SET) != 0) {
        fclose(fp);
        return ds_fail(err, DSOCR_ERR_IO, "%s: cannot read", path);
    }
    if ((unsigned long)size > CFG_MAX_FILE) {
        fclose(fp);
        return ds_fail(err, DSOCR_ERR_LIMIT, "%s: %ld bytes is too large for a config", path, size);
    }
    char *buf = malloc((size_t)size + 1);
    if (!buf) { fclose(fp); return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", path); }
    size_t got = fread(buf, 1, (size_t)size, fp);
    fclose(fp);
    if (got != (size_t)size) { free(buf); return ds_fail(err, DSOCR_ERR_IO, "%s: short read", path); }
    buf[size] = 0;
    dsocr_status s = ds_config_parse(buf, (size_t)size, path, cfg, err);
    free(buf);
    return s;
}
