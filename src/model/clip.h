/* CLIP-L body of the DeepEncoder (spec 7.2), fed with SAM's output tokens instead of
 * its own patch conv: class token + position, pre_layrnorm, pre-LN blocks with
 * quick_gelu, no post-LN. The caller drops the CLS row. All dims from ds_clip_config. */
#ifndef DS_CLIP_H
#define DS_CLIP_H

#include "core/status.h"
#include "core/tensor.h"
#include "io/checkpoint.h"
#include "io/config.h"
#include "kernels/ops.h"
#include "model/vision_buf.h"

#define DS_CLIP_MAX_LAYERS 48

/* C = width, F = ffn_hidden_size, G = image_size / patch_size (pos grid, 16),
 * n_pos = G*G + 1 (257). */
typedef struct ds_clip_layer {
    ds_tensor ln1_w, ln1_b;       /* [C] layer_norm1 */
    ds_tensor qkv_w;              /* [3C, C], rows [q | k | v], each head-major */
    ds_tensor qkv_b;              /* [3C] */
    ds_tensor out_w;              /* [C, C] */
    ds_tensor out_b;              /* [C] */
    ds_tensor ln2_w, ln2_b;       /* [C] layer_norm2 */
    ds_tensor fc1_w;              /* [F, C] */
    ds_tensor fc1_b;              /* [F] */
    ds_tensor fc2_w;              /* [C, F] */
    ds_tensor fc2_b;              /* [C] */
} ds_clip_layer;

typedef struct ds_clip_weights {
    ds_tensor class_embedding;    /* [C] */
    ds_tensor patch_embedding;    /* [C, 3, patch, patch]: in the checkpoint but never used
                                     (SAM's tokens replace it); bound so the checkpoint is
                                     complete and the generator sees it */
    ds_tensor position_embedding; /* [n_pos, C], row 0 = CLS, rows 1.. = G x G grid row-major */
    ds_tensor pre_ln_w, pre_ln_b; /* [C] pre_layrnorm (sic) */
    ds_clip_layer layers[DS_CLIP_MAX_LAYERS];  /* [layers] used */
} ds_clip_weights;

void ds_clip_bind(ds_binder *b, const ds_clip_config *c, ds_clip_weights *w);
dsocr_status ds_clip_check_config(const ds_clip_config *c, dsocr_error *err);

/* Position table for a g x g token grid, built once per grid. */
typedef struct ds_clip_tables {
    int g;
    float *pos;        /* [g*g, C] backend: grid rows of position_embedding (bicubic-aa resized if g != G) */
    float *cls_row;    /* [C] host: class_embedding + position row 0 */
} ds_clip_tables;

dsocr_status ds_clip_tables_build(ds_backend *be, const ds_clip_config *c, const ds_clip_weights *w,
                                  int g, ds_clip_tables *t, dsocr_error *err);
void ds_clip_tables_free(ds_backend *be, ds_clip_tables *t);

typedef struct ds_clip_state {
    ds_vbuf x;      /* [B*(N+1), C] residual stream = the output (CLS row first per view) */
    ds_vbuf h;      /* [B*(N+1), C] */
    ds_vbuf qkv;    /* [B*(N+1), 3C] */
    ds_vbuf att;    /* [B*(N+1), C] */
    ds_vbuf mlp;    /* [B*(N+1), F] */
} ds_clip_state;

dsocr_status ds_clip_state_reserve(ds_backend *be, const ds_clip_config *c, ds_clip_state *s,
                                   int batch, int n_tokens, dsocr_error *err);
void ds_clip_state_free(ds_backend *be, ds_clip_state *s);

/* tokens: backend [B, N, C] (SAM output, N = g*g). Result in s->x: [B, N+1, C]. */
void ds_clip_forward(ds_backend *be, const ds_clip_config *c, const ds_clip_weights *w,
                     const ds_clip_tables *t, ds_clip_state *s, const float *tokens, int batch);

#endif
