/* Preprocessing rules that the golden set does not reach: grid selection tie
 * branches, the 640 threshold, token counts per mode and grid, the pixel LUT,
 * ImageOps.pad offsets with half-to-even rounding, resize invariants. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "image/preprocess.h"
#include "image/resize.h"
#include "test_util.h"

static void check_grid(int w, int h, int max_num, int ew, int eh) {
    int gw, gh;
    ds_best_grid(w, h, DS_MIN_CROPS, max_num, DS_TILE_SIZE, &gw, &gh);
    CHECK_MSG(gw == ew && gh == eh, "%dx%d max %d: got %dx%d, expected %dx%d", w, h, max_num, gw, gh, ew, eh);
}

static void test_grids(void) {
    /* Examples from spec 6.5. */
    check_grid(1190, 1684, 9, 2, 3);
    check_grid(1684, 1190, 9, 3, 2);
    check_grid(1000, 1000, 9, 2, 2);
    check_grid(1500, 1500, 9, 3, 3);
    check_grid(1500, 1500, 6, 2, 2);
    check_grid(2000, 1000, 9, 4, 2);
    check_grid(2000, 1000, 6, 2, 1);
    check_grid(641, 300, 9, 2, 1);
    /* Square: (2,2) and (3,3) tie exactly; (3,3) wins when W*H > 0.5*640^2*9 = 1,843,200.
     * 1357^2 = 1,841,449 and 1358^2 = 1,844,164. */
    check_grid(1357, 1357, 9, 2, 2);
    check_grid(1358, 1358, 9, 3, 3);
    check_grid(1358, 1358, 6, 2, 2);
    check_grid(5000, 5000, 6, 2, 2);
    /* 2:1: (2,1) and (4,2) tie; (4,2) when W*H > 0.5*640^2*8 = 1,638,400.
     * 1810x905 = 1,638,050; 1812x906 = 1,641,672. */
    check_grid(1810, 905, 9, 2, 1);
    check_grid(1812, 906, 9, 4, 2);
    check_grid(1812, 906, 6, 2, 1);
    check_grid(905, 1810, 9, 1, 2);
    check_grid(906, 1812, 9, 2, 4);
    /* Ratio 1.25 sits exactly between 1 and 1.5: (2,2) [prod 4], then (3,2) when
     * W*H > 1,228,800 [prod 6], then (3,3) when W*H > 1,843,200 [prod 9].
     * 1235x988 = 1,220,180; 1240x992 = 1,230,080; 1515x1212 = 1,836,180; 1520x1216 = 1,848,320. */
    check_grid(1235, 988, 9, 2, 2);
    check_grid(1240, 992, 9, 3, 2);
    check_grid(1515, 1212, 9, 3, 2);
    check_grid(1520, 1216, 9, 3, 3);
    check_grid(1520, 1216, 6, 3, 2);
    /* Extreme strips pick the longest grid allowed. */
    check_grid(10000, 100, 9, 9, 1);
    check_grid(100, 10000, 6, 1, 6);
}

static void test_tokens(void) {
    static const int expected[5] = {73, 111, 273, 421, 273};
    for (int m = 0; m < 5; m++) {
        ds_mode_info mi;
        CHECK(ds_mode_info_get((dsocr_mode)m, &mi, NULL) == DSOCR_OK);
        CHECK_EQ_INT(ds_image_token_count(&mi, 1, 1), expected[m]);
    }
    /* Gundam table of spec 6.3: 273 + 10 h (10 w + 1). */
    ds_mode_info g;
    ds_mode_info_get(DSOCR_MODE_GUNDAM, &g, NULL);
    static const int table[][3] = {{1, 2, 493}, {2, 1, 483}, {2, 2, 693}, {1, 3, 603}, {3, 1, 583}, {3, 2, 893},
                                   {2, 3, 903}, {1, 4, 713}, {4, 1, 683}, {1, 5, 823}, {5, 1, 783}, {1, 6, 933},
                                   {6, 1, 883}, {1, 7, 1043}, {7, 1, 983}, {2, 4, 1113}, {4, 2, 1093},
                                   {1, 8, 1153}, {8, 1, 1083}, {3, 3, 1203}, {1, 9, 1263}, {9, 1, 1183}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        CHECK_EQ_INT(ds_image_token_count(&g, table[i][0], table[i][1]), table[i][2]);
    ds_mode_info bad;
    dsocr_error err;
    CHECK(ds_mode_info_get((dsocr_mode)17, &bad, &err) == DSOCR_ERR_INVALID_ARG);
}

static void test_lut(void) {
    /* Values quoted in spec 6.8 (bf16 of ((p/255) - 0.5) / 0.5). */
    CHECK(ds_pixel_value(0) == -1.0f);
    CHECK(ds_pixel_value(1) == -0.9921875f);
    CHECK(ds_pixel_value(127) == -0.003936767578125f);
    CHECK(ds_pixel_value(128) == 0.003936767578125f);
    CHECK(ds_pixel_value(254) == 0.9921875f);
    CHECK(ds_pixel_value(255) == 1.0f);
    int increasing = 1;
    for (int p = 1; p < 256; p++) increasing &= ds_pixel_value((uint8_t)p) > ds_pixel_value((uint8_t)(p - 1));
    CHECK(increasing);   /* all 256 distinct */
}

static dsocr_image *solid(int w, int h, uint8_t r, uint8_t g, uint8_t b) {
    dsocr_image *img;
    if (ds_image_alloc(w, h, &img, NULL) != DSOCR_OK) return NULL;
    for (size_t i = 0; i < (size_t)w * h; i++) {
        img->rgb[3 * i] = r;
        img->rgb[3 * i + 1] = g;
        img->rgb[3 * i + 2] = b;
    }
    return img;
}

/* First and last column/row that is not pad grey along the middle row/column. */
static void content_box(const uint8_t *v, int S, int *x0, int *x1, int *y0, int *y1) {
    *x0 = *y0 = S;
    *x1 = *y1 = -1;
    for (int i = 0; i < S; i++) {
        const uint8_t *ph = v + ((size_t)(S / 2) * S + i) * 3, *pv = v + ((size_t)i * S + S / 2) * 3;
        if (ph[0] != DS_PAD_COLOR) { if (i < *x0) *x0 = i; *x1 = i; }
        if (pv[0] != DS_PAD_COLOR) { if (i < *y0) *y0 = i; *y1 = i; }
    }
}

static void check_pad(int w, int h, int S, int ex0, int ex1, int ey0, int ey1) {
    dsocr_image *img = solid(w, h, 10, 20, 30);
    uint8_t *v = malloc((size_t)S * S * 3);
    CHECK(ds_pad_square(img->rgb, w, h, S, v, NULL) == DSOCR_OK);
    int x0, x1, y0, y1;
    content_box(v, S, &x0, &x1, &y0, &y1);
    CHECK_MSG(x0 == ex0 && x1 == ex1 && y0 == ey0 && y1 == ey1, "pad %dx%d -> %d: content x %d..%d y %d..%d", w, h, S,
              x0, x1, y0, y1);
    /* A solid image stays solid through BICUBIC (weights sum to 1). */
    const uint8_t *c = v + ((size_t)(S / 2) * S + S / 2) * 3;
    CHECK(c[0] == 10 && c[1] == 20 && c[2] == 30);
    CHECK(v[0] == 127 || (ex0 == 0 && ey0 == 0));
    free(v);
    dsocr_image_free(img);
}

static void test_pad(void) {
    /* 850x1100 -> 1024: width round(791.27) = 791, offset (1024-791)/2 = 116.5 -> 116 (half to even). */
    check_pad(850, 1100, 1024, 116, 116 + 791 - 1, 0, 1023);
    /* -> 1280: width round(989.09) = 989, offset 145.5 -> 146. */
    check_pad(850, 1100, 1280, 146, 146 + 989 - 1, 0, 1279);
    /* 1300x1250 -> 1024: height 985, offset 19.5 -> 20; -> 1280: height 1231, offset 24.5 -> 24. */
    check_pad(1300, 1250, 1024, 0, 1023, 20, 20 + 985 - 1);
    check_pad(1300, 1250, 1280, 0, 1279, 24, 24 + 1231 - 1);
    /* Small images are upscaled: 300x200 -> 1024x683 at y = round(170.5) = 170. */
    check_pad(300, 200, 1024, 0, 1023, 170, 170 + 683 - 1);
    /* Square: plain resize, no bars. */
    check_pad(700, 700, 1024, 0, 1023, 0, 1023);
}

static void test_resize(void) {
    /* Same size: an exact copy (Image.resize returns self.copy()). */
    uint64_t seed = 7;
    uint8_t src[5 * 4 * 3], dst[5 * 4 * 3];
    for (size_t i = 0; i < sizeof src; i++) src[i] = (uint8_t)tu_rand_u64(&seed);
    CHECK(ds_resize_bicubic(src, 5, 4, dst, 5, 4, NULL) == DSOCR_OK);
    CHECK(memcmp(src, dst, sizeof src) == 0);
    /* Width-only and height-only changes run one pass; a uniform row stays uniform. */
    uint8_t row[8 * 3], out[3 * 3];
    memset(row, 200, sizeof row);
    CHECK(ds_resize_bicubic(row, 8, 1, out, 3, 1, NULL) == DSOCR_OK);
    CHECK(out[0] == 200 && out[4] == 200 && out[8] == 200);
    /* A black/white step overshoots under bicubic and is clipped to 0..255, never wraps. */
    uint8_t step[4 * 3] = {0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255};
    uint8_t up[16 * 3];
    CHECK(ds_resize_bicubic(step, 4, 1, up, 16, 1, NULL) == DSOCR_OK);
    CHECK(up[0] == 0 && up[15 * 3] == 255);
    int monotone = 1;
    for (int x = 1; x < 16; x++) monotone &= up[3 * x] >= up[3 * (x - 1)] || up[3 * x] == 0;
    CHECK(monotone);
    dsocr_error err;
    CHECK(ds_resize_bicubic(src, 5, 4, dst, 0, 4, &err) == DSOCR_ERR_INVALID_ARG);
}

/* The <= 640 x 640 rule is on the original size, both sides, inclusive. */
static void check_tiles(int w, int h, int max_crops, int ew, int eh) {
    dsocr_image *img = solid(w, h, 50, 60, 70);
    ds_views v;
    dsocr_error err;
    CHECK(ds_preprocess(img, DSOCR_MODE_GUNDAM, max_crops, &v, &err) == DSOCR_OK);
    CHECK_MSG(v.grid_w == ew && v.grid_h == eh, "%dx%d: grid %dx%d", w, h, v.grid_w, v.grid_h);
    int tiled = ew * eh > 1;
    CHECK_EQ_INT(v.n_tiles, tiled ? ew * eh : 0);
    CHECK_EQ_INT(v.global_size, 1024);
    ds_mode_info mi;
    ds_mode_info_get(DSOCR_MODE_GUNDAM, &mi, NULL);
    CHECK_EQ_INT(v.n_image_tokens, ds_image_token_count(&mi, ew, eh));
    if (tiled) {
        /* The last tile's last pixel: solid colour survives the stretch. */
        const uint8_t *t = v.tiles_rgb + ((size_t)v.n_tiles * 640 * 640 - 1) * 3;
        CHECK(t[0] == 50 && t[1] == 60 && t[2] == 70);
        CHECK(v.tiles_pixels[0] == ds_pixel_value(50));
        CHECK(v.tiles_pixels[(size_t)v.n_tiles * 3 * 640 * 640 - 1] == ds_pixel_value(70));
    } else {
        CHECK(v.tiles_rgb == NULL && v.tiles_pixels == NULL);
    }
    ds_views_free(&v);
    dsocr_image_free(img);
}

static void test_threshold(void) {
    check_tiles(640, 640, 0, 1, 1);
    check_tiles(640, 100, 0, 1, 1);
    check_tiles(641, 640, 0, 2, 2);   /* ratio ~1: (2,2) */
    check_tiles(640, 641, 0, 2, 2);
    check_tiles(641, 300, 0, 2, 1);
    check_tiles(300, 641, 0, 1, 2);
    check_tiles(1500, 1500, 6, 2, 2); /* vLLM's max 6 */
    check_tiles(1500, 1500, 9, 3, 3);
    /* Pad grey normalises to -0.0039, not 0: a 2000x500 banner's top bar. */
    dsocr_image *img = solid(2000, 500, 0, 0, 0);
    ds_views v;
    CHECK(ds_preprocess(img, DSOCR_MODE_BASE, 0, &v, NULL) == DSOCR_OK);
    CHECK(v.global_pixels[0] == -0.003936767578125f);
    CHECK(v.n_tiles == 0 && v.grid_w == 1 && v.n_image_tokens == 273);
    ds_views_free(&v);
    /* Tiny/small stretch: no grey anywhere. */
    CHECK(ds_preprocess(img, DSOCR_MODE_TINY, 0, &v, NULL) == DSOCR_OK);
    CHECK(v.global_size == 512 && v.global_rgb[0] == 0 && v.global_pixels[0] == -1.0f);
    ds_views_free(&v);
    dsocr_error err;
    CHECK(ds_preprocess(img, DSOCR_MODE_GUNDAM, 1, &v, &err) == DSOCR_ERR_INVALID_ARG);
    CHECK(ds_preprocess(NULL, DSOCR_MODE_GUNDAM, 0, &v, &err) == DSOCR_ERR_INVALID_ARG);
    dsocr_image_free(img);
}

int main(void) {
    test_grids();
    test_tokens();
    test_lut();
    test_pad();
    test_resize();
    test_threshold();
    return tu_done("test_image_preprocess");
}
