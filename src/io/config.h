/* config.json of a DeepSeek-OCR checkpoint (real HF schema, spec 2.1).
 * Keys the real file omits take upstream's code defaults; the two extra keys of the
 * golden tiny model (sam neck_channels, clip ffn_hidden_size) default to the real dims. */
#ifndef DS_CONFIG_H
#define DS_CONFIG_H

#include <stddef.h>

#include "core/status.h"

#define DS_MAX_GLOBAL_ATTN 32

typedef struct ds_lm_config {
    int vocab_size;              /* 129280 */
    int hidden_size;             /* 1280 */
    int num_hidden_layers;       /* 12 */
    int num_attention_heads;     /* 10 */
    int num_key_value_heads;     /* 10 */
    int head_dim;                /* hidden / heads = 128 */
    int intermediate_size;       /* 6848, dense MLP of layers < first_k_dense_replace */
    int moe_intermediate_size;   /* 896 per routed expert */
    int n_routed_experts;        /* 64; 0 = no MoE */
    int n_shared_experts;        /* 2 */
    int num_experts_per_tok;     /* 6 */
    int first_k_dense_replace;   /* 1 */
    int moe_layer_freq;          /* 1 */
    int norm_topk_prob;          /* 0 */
    float routed_scaling_factor; /* 1.0 */
    float rms_norm_eps;          /* 1e-6 */
    float rope_theta;            /* 10000 */
    int max_position_embeddings; /* 8192 */
    int bos_token_id, eos_token_id; /* 0, 1 */
} ds_lm_config;

typedef struct ds_sam_config {
    int width;                   /* 768 */
    int heads;                   /* 12 */
    int layers;                  /* 12 */
    int global_attn_indexes[DS_MAX_GLOBAL_ATTN]; /* {2,5,8,11} */
    int n_global_attn;
    int downsample_channels[2];  /* {512, 1024}: net_2, net_3 outputs */
    int neck_channels;           /* 256 */
    int patch_size;              /* 16 */
    int window_size;             /* 14 */
    int img_size;                /* 1024: pos_embed covers img_size/patch = 64 per side */
    int mlp_dim;                 /* 4 * width */
    float ln_eps;                /* 1e-6 */
} ds_sam_config;

typedef struct ds_clip_config {
    int width;                   /* 1024 */
    int heads;                   /* 16 */
    int layers;                  /* 24 */
    int ffn_hidden_size;         /* 4096 */
    int patch_size;              /* 14 */
    int image_size;              /* 224: (224/14)^2 + 1 = 257 positions */
    float ln_eps;                /* 1e-5 */
} ds_clip_config;

typedef struct ds_projector_config {
    char type[64];               /* "linear" (real), "downsample_mlp_gelu", ... */
    int input_dim;               /* 2048 */
    int n_embed;                 /* 1280 */
    int downsample_ratio;        /* for downsample_* types; 2 */
    int depth;                   /* 2 */
    float mlp_ratio;             /* 1 */
} ds_projector_config;

typedef struct ds_config {
    ds_lm_config lm;
    ds_sam_config sam;
    ds_clip_config clip;
    ds_projector_config proj;
} ds_config;

/* Reads and validates (positive dims, heads dividing widths, indexes in range ...).
 * Every absent key keeps its ds_config_default() value (the real model's); LM keys
 * are read from the top level, else from language_config (top level wins when both
 * differ, as in HF). Errors name the file and the key path: DSOCR_ERR_FORMAT for
 * malformed values, DSOCR_ERR_LIMIT for absurd sizes, DSOCR_ERR_UNSUPPORTED for
 * settings dsocr does not implement (use_mla, rope_scaling, non-softmax router ...). */
dsocr_status ds_config_load(const char *path, ds_config *cfg, dsocr_error *err);
/* Same from memory; `name` is used in messages. */
dsocr_status ds_config_parse(const char *json, size_t len, const char *name,
                             ds_config *cfg, dsocr_error *err);
/* The real DeepSeek-OCR config (what the published config.json yields). */
void ds_config_default(ds_config *cfg);

#endif
