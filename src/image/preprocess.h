/* DeepSeek-OCR image preprocessing (spec 6.2-6.8): the global view, the tiles,
 * the tile grid and the number of <image> placeholder tokens, bit-exact with the
 * reference (Pillow BICUBIC, ImageOps.pad, dynamic_preprocess, ToTensor+Normalize). */
#ifndef DS_PREPROCESS_H
#define DS_PREPROCESS_H

#include <stdint.h>

#include "dsocr.h"
#include "core/status.h"

#define DS_TILE_SIZE 640         /* tile side and the "no tiles" threshold */
#define DS_PAD_COLOR 127         /* int(0.5 * 255) */
#define DS_MIN_CROPS 2
#define DS_MAX_CROPS_HF 9        /* upstream HF default */
#define DS_MAX_CROPS_VLLM 6      /* vLLM's MAX_CROPS */

/* (base_size, image_size, crop_mode) of a mode (spec 6.2). */
typedef struct ds_mode_info {
    int base_size;    /* global view side in crop mode */
    int image_size;   /* single-view side without crops; tile side with crops */
    int crop_mode;
} ds_mode_info;

dsocr_status ds_mode_info_get(dsocr_mode mode, ds_mode_info *out, dsocr_error *err);

/* dynamic_preprocess's grid choice for a W x H image, tiles of `tile` px (spec 6.5):
 * candidates (i, j) with min_num <= i*j <= max_num in ascending product order; the
 * closest aspect ratio wins, an exact tie goes to the later one when
 * W*H > 0.5 * tile^2 * i*j. Does NOT apply the <= 640 x 640 rule. */
void ds_best_grid(int width, int height, int min_num, int max_num, int tile, int *grid_w, int *grid_h);

/* Placeholder tokens for one image (spec 6.3): g(g+1) + 1 [+ q*h * (q*w + 1) if tiled]. */
int ds_image_token_count(const ds_mode_info *mi, int grid_w, int grid_h);

/* ImageOps.pad(im, (S, S), BICUBIC, color=(127,127,127)) into dst [S, S, 3]. */
dsocr_status ds_pad_square(const uint8_t *src, int w, int h, int S, uint8_t *dst, dsocr_error *err);

/* bf16(((p / 255.0f) - 0.5f) / 0.5f) for p = 0..255, stored as float. */
float ds_pixel_value(uint8_t p);

/* u8 HWC [S, S, 3] -> normalised float CHW [3, S, S]. */
void ds_normalize_chw(const uint8_t *hwc, int S, float *chw);

/* Everything the vision encoder needs for one image. */
typedef struct ds_views {
    int global_size;          /* S: 512, 640, 1024 or 1280 */
    uint8_t *global_rgb;      /* [S, S, 3] uint8 */
    float *global_pixels;     /* [3, S, S] normalised */
    int tile_size;            /* 640 */
    int n_tiles;              /* grid_w * grid_h when tiled, else 0 */
    uint8_t *tiles_rgb;       /* [n_tiles, 640, 640, 3] uint8, row-major tile order */
    float *tiles_pixels;      /* [n_tiles, 3, 640, 640] normalised */
    int grid_w, grid_h;       /* images_spatial_crop; 1 x 1 when not tiled */
    int n_image_tokens;       /* placeholder run length for this image */
} ds_views;

/* The HF-path views for `mode`; max_crops <= 0 means 9 (HF). */
dsocr_status ds_preprocess(const dsocr_image *img, dsocr_mode mode, int max_crops, ds_views *out,
                           dsocr_error *err);
void ds_views_free(ds_views *v);

#endif
