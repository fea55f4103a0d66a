/* DeepSeek-OCR preprocessing, HF path (modeling_deepseekocr.py infer()):
 *   tiny/small:  resize to image_size^2 (stretch), then pad (a no-op copy)
 *   base/large:  ImageOps.pad to image_size^2 (aspect kept, grey 127 bars)
 *   gundam:      ImageOps.pad to 1024^2 + tiles when W > 640 or H > 640:
 *                resize to (640 w_t, 640 h_t) (stretch) and cut row-major. */
#include "image/preprocess.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "image/resize.h"

dsocr_status ds_mode_info_get(dsocr_mode mode, ds_mode_info *out, dsocr_error *err) {
    switch (mode) {
    case DSOCR_MODE_TINY: *out = (ds_mode_info){512, 512, 0}; return DSOCR_OK;
    case DSOCR_MODE_SMALL: *out = (ds_mode_info){640, 640, 0}; return DSOCR_OK;
    case DSOCR_MODE_BASE: *out = (ds_mode_info){1024, 1024, 0}; return DSOCR_OK;
    case DSOCR_MODE_LARGE: *out = (ds_mode_info){1280, 1280, 0}; return DSOCR_OK;
    case DSOCR_MODE_GUNDAM: *out = (ds_mode_info){1024, 640, 1}; return DSOCR_OK;
    }
    return ds_fail(err, DSOCR_ERR_INVALID_ARG, "unknown mode %d", (int)mode);
}

void ds_best_grid(int width, int height, int min_num, int max_num, int tile, int *grid_w, int *grid_h) {
    double ar = (double)width / height;
    double area = (double)width * height;
    double best_diff = INFINITY;
    int bw = 1, bh = 1;
    /* Ascending product; the order inside an equal-product group never matters (spec 6.5). */
    for (int prod = min_num; prod <= max_num; prod++) {
        for (int i = 1; i <= prod; i++) {
            if (prod % i) continue;
            int j = prod / i;
            double d = fabs(ar - (double)i / j);
            if (d < best_diff) {
                best_diff = d;
                bw = i;
                bh = j;
            } else if (d == best_diff && area > 0.5 * tile * tile * i * j) {
                bw = i;
                bh = j;
            }
        }
    }
    *grid_w = bw;
    *grid_h = bh;
}

int ds_image_token_count(const ds_mode_info *mi, int grid_w, int grid_h) {
    int side = mi->crop_mode ? mi->base_size : mi->image_size;
    int g = (side / 16 + 3) / 4;                  /* ceil((side // 16) / 4) */
    int n = g * (g + 1) + 1;
    if (mi->crop_mode && (grid_w > 1 || grid_h > 1)) {
        int q = (mi->image_size / 16 + 3) / 4;
        n += (q * grid_h) * (q * grid_w + 1);
    }
    return n;
}

dsocr_status ds_pad_square(const uint8_t *src, int w, int h, int S, uint8_t *dst, dsocr_error *err) {
    /* ImageOps.contain: compare W/H with S/S = 1.0 as floats; round() is half-to-even
     * (rint in the default rounding mode). */
    double im_ratio = (double)w / h;
    int nw = S, nh = S;
    if (im_ratio > 1.0) nh = (int)rint((double)h / w * S);
    else if (im_ratio < 1.0) nw = (int)rint((double)w / h * S);
    /* Pillow would raise on a zero side; an image that thin keeps one row or column. */
    if (nw < 1) nw = 1;
    if (nh < 1) nh = 1;
    if (nw == S && nh == S) return ds_resize_bicubic(src, w, h, dst, S, S, err);
    uint8_t *rs = malloc((size_t)nw * nh * 3);
    if (!rs) return ds_fail(err, DSOCR_ERR_NOMEM, "pad %dx%d -> %d: out of memory", w, h, S);
    dsocr_status s = ds_resize_bicubic(src, w, h, rs, nw, nh, err);
    if (s != DSOCR_OK) {
        free(rs);
        return s;
    }
    memset(dst, DS_PAD_COLOR, (size_t)S * S * 3);
    int x0 = (int)rint((S - nw) * 0.5), y0 = (int)rint((S - nh) * 0.5);
    for (int y = 0; y < nh; y++)
        memcpy(dst + ((size_t)(y0 + y) * S + x0) * 3, rs + (size_t)y * nw * 3, (size_t)nw * 3);
    free(rs);
    return DSOCR_OK;
}

float ds_pixel_value(uint8_t p) {
    /* fp32 exactly as ToTensor + Normalize(0.5, 0.5), then the model's bf16 cast. */
    float v = ((float)p / 255.0f - 0.5f) / 0.5f;
    uint32_t u;
    memcpy(&u, &v, 4);
    u += 0x7fffu + ((u >> 16) & 1u);              /* round to nearest even (no NaN here) */
    u &= 0xffff0000u;
    memcpy(&v, &u, 4);
    return v;
}

void ds_normalize_chw(const uint8_t *hwc, int S, float *chw) {
    float lut[256];
    for (int p = 0; p < 256; p++) lut[p] = ds_pixel_value((uint8_t)p);
    size_t plane = (size_t)S * S;
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++) chw[c * plane + i] = lut[hwc[3 * i + c]];
}

void ds_views_free(ds_views *v) {
    if (!v) return;
    free(v->global_rgb);
    free(v->global_pixels);
    free(v->tiles_rgb);
    free(v->tiles_pixels);
    memset(v, 0, sizeof *v);
}

/* Resize to (640 gw, 640 gh), cut row-major into 640 x 640 tiles, normalise each. */
static dsocr_status make_tiles(const dsocr_image *img, ds_views *v, dsocr_error *err) {
    int T = DS_TILE_SIZE, n = v->grid_w * v->grid_h;
    int RW = T * v->grid_w, RH = T * v->grid_h;
    size_t tile_px = (size_t)T * T;
    uint8_t *big = malloc((size_t)RW * RH * 3);
    v->tiles_rgb = malloc(tile_px * 3 * n);
    v->tiles_pixels = malloc(sizeof(float) * tile_px * 3 * n);
    if (!big || !v->tiles_rgb || !v->tiles_pixels) {
        free(big);
        return ds_fail(err, DSOCR_ERR_NOMEM, "out of memory for %d tiles", n);
    }
    dsocr_status s = ds_resize_bicubic(img->rgb, img->width, img->height, big, RW, RH, err);
    if (s != DSOCR_OK) {
        free(big);
        return s;
    }
    for (int k = 0; k < n; k++) {
        int x0 = (k % v->grid_w) * T, y0 = (k / v->grid_w) * T;
        uint8_t *t = v->tiles_rgb + tile_px * 3 * k;
        for (int y = 0; y < T; y++)
            memcpy(t + (size_t)y * T * 3, big + ((size_t)(y0 + y) * RW + x0) * 3, (size_t)T * 3);
        ds_normalize_chw(t, T, v->tiles_pixels + tile_px * 3 * k);
    }
    free(big);
    v->n_tiles = n;
    return DSOCR_OK;
}

static dsocr_status preprocess_into(const dsocr_image *img, const ds_mode_info *mi, int max_crops, ds_views *v,
                                    dsocr_error *err) {
    int W = img->width, H = img->height;
    int S = mi->crop_mode ? mi->base_size : mi->image_size;
    v->global_size = S;
    v->tile_size = DS_TILE_SIZE;
    v->grid_w = v->grid_h = 1;
    v->global_rgb = malloc((size_t)S * S * 3);
    v->global_pixels = malloc(sizeof(float) * (size_t)S * S * 3);
    if (!v->global_rgb || !v->global_pixels)
        return ds_fail(err, DSOCR_ERR_NOMEM, "out of memory for a %dx%d view", S, S);
    if (!mi->crop_mode && mi->image_size <= DS_TILE_SIZE) {
        /* Stretch to a square; the following ImageOps.pad is a copy. */
        DS_TRY(ds_resize_bicubic(img->rgb, W, H, v->global_rgb, S, S, err));
    } else {
        DS_TRY(ds_pad_square(img->rgb, W, H, S, v->global_rgb, err));
    }
    ds_normalize_chw(v->global_rgb, S, v->global_pixels);
    if (mi->crop_mode && (W > DS_TILE_SIZE || H > DS_TILE_SIZE)) {
        ds_best_grid(W, H, DS_MIN_CROPS, max_crops, DS_TILE_SIZE, &v->grid_w, &v->grid_h);
        DS_TRY(make_tiles(img, v, err));
    }
    v->n_image_tokens = ds_image_token_count(mi, v->grid_w, v->grid_h);
    return DSOCR_OK;
}

dsocr_status ds_preprocess(const dsocr_image *img, dsocr_mode mode, int max_crops, ds_views *out,
                           dsocr_error *err) {
    memset(out, 0, sizeof *out);
    if (!img || !img->rgb) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "preprocess: no image");
    if (max_crops <= 0) max_crops = DS_MAX_CROPS_HF;
    if (max_crops < DS_MIN_CROPS)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "max_crops %d is below the minimum of %d tiles", max_crops,
                       DS_MIN_CROPS);
    if (max_crops > 81) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "max_crops %d is above 81", max_crops);
    ds_mode_info mi;
    DS_TRY(ds_mode_info_get(mode, &mi, err));
    dsocr_status s = preprocess_into(img, &mi, max_crops, out, err);
    if (s != DSOCR_OK) ds_views_free(out);
    return s;
}
