/* SAM ViT-B image encoder of the DeepEncoder (spec 7.1): patch embedding, absolute
 * position, windowed / global attention blocks with decomposed relative positions,
 * neck and the two stride-2 compressor convs (net_2, net_3).
 *
 * A batch of B views of one side S is encoded at once (the tiles of an image);
 * the output is B token maps [g*g, C_out] in HWC order, g = ceil(ceil(S/patch/2)/2),
 * C_out = downsample_channels[1]. All dims come from ds_sam_config. */
#ifndef DS_SAM_H
#define DS_SAM_H

#include "core/status.h"
#include "core/tensor.h"
#include "io/checkpoint.h"
#include "io/config.h"
#include "kernels/ops.h"
#include "model/vision_buf.h"

#define DS_SAM_MAX_BLOCKS 48

/* C = width, hd = width / heads, P = img_size / patch_size (pos grid, 64),
 * M = mlp_dim, Cn = neck_channels, D2, D3 = downsample_channels. */
typedef struct ds_sam_block {
    ds_tensor norm1_w, norm1_b;   /* [C] */
    ds_tensor qkv_w;              /* [3C, C], rows [q | k | v], each head-major */
    ds_tensor qkv_b;              /* [3C] */
    ds_tensor proj_w;             /* [C, C] */
    ds_tensor proj_b;             /* [C] */
    ds_tensor rel_pos_h;          /* [2*window-1, hd] windowed; [2P-1, hd] global blocks */
    ds_tensor rel_pos_w;          /* same */
    ds_tensor norm2_w, norm2_b;   /* [C] */
    ds_tensor lin1_w;             /* [M, C] */
    ds_tensor lin1_b;             /* [M] */
    ds_tensor lin2_w;             /* [C, M] */
    ds_tensor lin2_b;             /* [C] */
} ds_sam_block;

typedef struct ds_sam_weights {
    ds_tensor patch_w;            /* [C, 3, patch, patch] */
    ds_tensor patch_b;            /* [C] */
    ds_tensor pos_embed;          /* [1, P, P, C] (row, col, channel) */
    ds_sam_block blocks[DS_SAM_MAX_BLOCKS];   /* [layers] used */
    ds_tensor neck0_w;            /* [Cn, C, 1, 1] conv, no bias */
    ds_tensor neck1_w, neck1_b;   /* [Cn] LayerNorm2d */
    ds_tensor neck2_w;            /* [Cn, Cn, 3, 3] conv pad 1, no bias */
    ds_tensor neck3_w, neck3_b;   /* [Cn] LayerNorm2d */
    ds_tensor net2_w;             /* [D2, Cn, 3, 3] conv stride 2 pad 1, no bias */
    ds_tensor net3_w;             /* [D3, D2, 3, 3] conv stride 2 pad 1, no bias */
} ds_sam_weights;

/* Binds every model.sam_model.* tensor (problems are collected by the binder). */
void ds_sam_bind(ds_binder *b, const ds_sam_config *c, ds_sam_weights *w);

/* Checks the dims this implementation relies on (block count, heads dividing width). */
dsocr_status ds_sam_check_config(const ds_sam_config *c, dsocr_error *err);
/* Checks that a view side is usable (multiple of the patch size, sane size). */
dsocr_status ds_sam_check_side(const ds_sam_config *c, int side, dsocr_error *err);
int ds_sam_is_global(const ds_sam_config *c, int block);
/* Side of the output token map for a view of `side` pixels (16 for 1024). */
int ds_sam_out_side(const ds_sam_config *c, int side);

/* Tables that depend on the view side, built once per side (spec 7.1 steps 2 and 4). */
typedef struct ds_sam_tables {
    int side, T;                           /* view side in pixels, T = side / patch */
    float *pos;                            /* [T*T, C] backend: pos_embed (bicubic-aa resized if T != P) */
    float *rel_h[DS_SAM_MAX_BLOCKS];       /* [2S-1, hd] backend, S = window (windowed) or T (global), */
    float *rel_w[DS_SAM_MAX_BLOCKS];       /*   linearly resized when the stored length differs */
} ds_sam_tables;

dsocr_status ds_sam_tables_build(ds_backend *be, const ds_sam_config *c, const ds_sam_weights *w,
                                 int side, ds_sam_tables *t, dsocr_error *err);
void ds_sam_tables_free(ds_backend *be, ds_sam_tables *t);

/* Run state: activation buffers, grown to the largest (batch, side) reserved. */
typedef struct ds_sam_state {
    ds_vbuf pix_chw, pix_hwc;   /* [3*S*S] one view: uploaded CHW pixels, HWC copy */
    ds_vbuf x;                  /* [B*T*T, C] residual stream */
    ds_vbuf h;                  /* [B*T*T, C] normed input / block outputs */
    ds_vbuf win;                /* [B*nwin*win*win, C] windowed (padded) tokens */
    ds_vbuf qkv;                /* [B*L, 3C], L = padded or full token count */
    ds_vbuf att;                /* [B*L, C] attention output */
    ds_vbuf rel_h, rel_w;       /* [B*nwin][heads][L][S] decomposed rel-pos terms */
    ds_vbuf mlp;                /* [B*T*T, M] */
    ds_vbuf neck_a, neck_b;     /* [B*T*T, Cn] */
    ds_vbuf down2;              /* [B*(T/2)^2, D2] net_2 output */
} ds_sam_state;

dsocr_status ds_sam_state_reserve(ds_backend *be, const ds_sam_config *c, ds_sam_state *s,
                                  int batch, int side, dsocr_error *err);
void ds_sam_state_free(ds_backend *be, ds_sam_state *s);

/* pixels_chw: host [B, 3, S, S] normalised pixels; t built for S; s reserved for (B, S).
 * out: backend [B, g*g, D3] (HWC token maps, what CLIP and the fusion consume). */
void ds_sam_forward(ds_backend *be, const ds_sam_config *c, const ds_sam_weights *w,
                    const ds_sam_tables *t, ds_sam_state *s, const float *pixels_chw,
                    int batch, float *out);

#endif
