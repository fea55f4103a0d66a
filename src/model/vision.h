/* The DeepEncoder (vision half of DeepSeek-OCR, spec 7 and 6.4): SAM -> CLIP ->
 * [CLIP | SAM] fusion -> projector, over the global view and the batch of tiles,
 * then the image-embedding layout:
 *   local mosaic rows (tiles stitched into one grid, image_newline after each row),
 *   global rows (image_newline after each), view_seperator.
 *
 *   ds_vision_weights w;                     // usually inside the model struct
 *   ds_binder *b = ds_binder_new(ck);
 *   ds_vision_bind(b, &cfg, &w);  ...other parts...;  ds_binder_finish(b, err);
 *   ds_vision *v;  ds_vision_new(be, &cfg, &w, NULL, &v, err);
 *   ds_vision_encode(v, global, 1024, tiles, n, 640, gw, gh, embeds, NULL, err);
 *
 * Compute is fp32 through kernels/ops.h; weights stay in the checkpoint's dtype.
 * The ds_vision owns position tables (built once per view size) and activation
 * buffers (allocated once, grown to the largest request, reused). */
#ifndef DS_VISION_H
#define DS_VISION_H

#include "core/status.h"
#include "core/tensor.h"
#include "io/checkpoint.h"
#include "io/config.h"
#include "kernels/ops.h"
#include "model/clip.h"
#include "model/projector.h"
#include "model/sam.h"
#include "model/trace.h"

/* D = projector n_embed (the LM width). */
typedef struct ds_vision_weights {
    ds_sam_weights sam;           /* model.sam_model.* */
    ds_clip_weights clip;         /* model.vision_model.* */
    ds_projector_weights proj;    /* model.projector.* */
    ds_tensor image_newline;      /* [D] */
    ds_tensor view_seperator;     /* [D] (sic, checkpoint spelling) */
} ds_vision_weights;

/* Binds every tensor of the vision half with its config-derived shape; problems are
 * collected by the binder (the caller calls ds_binder_finish). */
void ds_vision_bind(ds_binder *b, const ds_config *cfg, ds_vision_weights *w);

typedef struct ds_vision_params {
    int max_global_side;   /* buffers are reserved up front for these; larger requests */
    int max_tile_side;     /* grow them later (once). Defaults 1024, 640, 9 */
    int max_tiles;
    int max_batch;         /* tiles encoded together per SAM/CLIP pass; 0 = all tiles of
                              the image (real model, 9 tiles of 640: about 600 MB) */
} ds_vision_params;

ds_vision_params ds_vision_default_params(void);

typedef struct ds_vision ds_vision;

/* cfg and w must outlive the ds_vision (w points into the mapped checkpoint).
 * params NULL = defaults. Fails on unsupported configs (projector type, dims). */
dsocr_status ds_vision_new(ds_backend *be, const ds_config *cfg, const ds_vision_weights *w,
                           const ds_vision_params *params, ds_vision **out, dsocr_error *err);
void ds_vision_free(ds_vision *v);

/* Builds the position tables for a view side now (otherwise done on first use). */
dsocr_status ds_vision_prepare(ds_vision *v, int side, dsocr_error *err);

/* Tokens per row of one view after the projector (16 for a 1024 view, 10 for 640). */
int ds_vision_grid_side(const ds_config *cfg, int side);
/* Number of image embeddings (= placeholder tokens) for a global view plus n_tiles
 * tiles in a grid_w x grid_h grid (n_tiles 0: no local part). Spec 6.3. */
int ds_vision_n_embeds(const ds_config *cfg, int global_side, int n_tiles, int tile_side,
                       int grid_w, int grid_h);

/* Encodes one image (one call at a time per ds_vision: the buffers are shared).
 *   global_chw:  host [3, global_side, global_side] normalised pixels (bf16-rounded values)
 *   tiles_chw:   host [n_tiles, 3, tile_side, tile_side], tiles in row-major grid order,
 *                n_tiles = grid_w * grid_h, or 0 (tiles_chw may be NULL) for no tiles
 *   image_embeds: host [N, D], N = ds_vision_n_embeds(...)
 *   trace:       optional; reports sam_global, clip_global, proj_global, sam_crops,
 *                clip_crops, proj_crops, image_embeds in the golden layouts. */
dsocr_status ds_vision_encode(ds_vision *v, const float *global_chw, int global_side,
                              const float *tiles_chw, int n_tiles, int tile_side,
                              int grid_w, int grid_h, float *image_embeds,
                              const ds_trace *trace, dsocr_error *err);

/* Writes the image embeddings over the placeholder run(s) of a prompt, in order:
 * x backend [n_ids, D] (the token embeddings), ids [n_ids]; every position with
 * ids[i] == image_token_id receives the next row of embeds (host [n_embeds, D]).
 * Fails if the placeholder count differs from n_embeds. */
dsocr_status ds_vision_scatter(ds_backend *be, float *x, const int32_t *ids, int n_ids,
                               int32_t image_token_id, const float *embeds, int n_embeds,
                               int D, dsocr_error *err);

#endif
