/* Image preprocessing (src/image/preprocess.c, resize.c) on decoded images of any
 * shape. Every input drives the geometry pieces at small sizes (cheap):
 * ds_best_grid, ds_image_token_count, ds_resize_bicubic and ds_pad_square; one input
 * in 4096 (by a hash of the input, so the fuzzer cannot make every run slow) also
 * runs the whole ds_preprocess in its mode, whose views are at least 512 x 512.
 *
 * Input: mode, max_crops, w, h (one byte each, sides 1..64), then the destination
 * sides for resize/pad (one byte each, 1..32), then pixels (repeated to fill the image). */
#include "fuzz_util.h"
#include "image/image.h"
#include "image/preprocess.h"
#include "image/resize.h"

static void fill(uint8_t *dst, size_t n, const uint8_t *src, size_t m) {
    for (size_t i = 0; i < n; i++) dst[i] = m ? src[i % m] : (uint8_t)i;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint32_t hash = 2166136261u;
    for (size_t i = 0; i < size; i++) hash = (hash ^ data[i]) * 16777619u;
    fuzz_reader r = {data, size};
    dsocr_mode mode = (dsocr_mode)(fuzz_u8(&r) % 6);   /* 5 = invalid */
    int max_crops = (int)(fuzz_u8(&r) % 84) - 1;        /* -1..82: the limits and past them */
    int w = (int)fuzz_u8(&r) % 64 + 1, h = (int)fuzz_u8(&r) % 64 + 1;
    int dw = (int)fuzz_u8(&r) % 32 + 1, dh = (int)fuzz_u8(&r) % 32 + 1;
    dsocr_error err;

    /* Grid choice and token count on any size, including the extremes. */
    int gw = 0, gh = 0;
    int big_w = (int)(fuzz_u32(&r) % DS_IMAGE_MAX_SIDE) + 1, big_h = (int)(hash % DS_IMAGE_MAX_SIDE) + 1;
    int mc = max_crops < DS_MIN_CROPS ? DS_MIN_CROPS : max_crops > 81 ? 81 : max_crops;
    ds_best_grid(big_w, big_h, DS_MIN_CROPS, mc, DS_TILE_SIZE, &gw, &gh);
    FUZZ_CHECK(gw >= 1 && gh >= 1 && gw * gh <= mc);
    ds_mode_info mi;
    dsocr_status s = ds_mode_info_get(mode, &mi, &err);
    fuzz_check_error(s, &err);
    if (s == DSOCR_OK) FUZZ_CHECK(ds_image_token_count(&mi, gw, gh) > 0);

    dsocr_image *img = NULL;
    if (ds_image_alloc(w, h, &img, &err) != DSOCR_OK) abort();
    fill(img->rgb, (size_t)w * h * 3, r.p, r.n);

    /* Resize and pad at small sizes. */
    uint8_t *dst = malloc((size_t)dw * dh * 3);
    if (!dst) abort();
    s = ds_resize_bicubic(img->rgb, w, h, dst, dw, dh, &err);
    fuzz_check_error(s, &err);
    free(dst);
    int S = dw;
    uint8_t *sq = malloc((size_t)S * S * 3);
    if (!sq) abort();
    s = ds_pad_square(img->rgb, w, h, S, sq, &err);
    fuzz_check_error(s, &err);
    free(sq);

    /* The whole preprocessing, rarely. A side may be stretched past 640 (x 12), so
     * that tiles are made too. */
    if (hash % 4096 == 0) {
        if (hash & 4096) {
            dsocr_image *big = NULL;
            int W = (hash & 8192) ? w * 12 : w, H = (hash & 8192) ? h : h * 12;
            if (ds_image_alloc(W, H, &big, &err) != DSOCR_OK) abort();
            fill(big->rgb, (size_t)W * H * 3, r.p, r.n);
            dsocr_image_free(img);
            img = big;
        }
        ds_views v;
        s = ds_preprocess(img, mode, max_crops, &v, &err);
        fuzz_check_error(s, &err);
        if (s == DSOCR_OK) {
            FUZZ_CHECK(v.global_rgb && v.global_pixels && v.n_image_tokens > 0);
            FUZZ_CHECK(v.n_tiles == 0 || v.n_tiles == v.grid_w * v.grid_h);
            if (v.n_tiles) {
                size_t last = (size_t)v.n_tiles * DS_TILE_SIZE * DS_TILE_SIZE * 3 - 1;
                volatile uint8_t sink = v.tiles_rgb[last];
                volatile float fsink = v.tiles_pixels[last];
                (void)sink;
                (void)fsink;
            }
        }
        ds_views_free(&v);
    }
    dsocr_image_free(img);
    return 0;
}
