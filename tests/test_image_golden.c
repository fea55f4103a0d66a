/* Preprocessing against the golden fixtures: for every image x mode, the uint8
 * global view and tiles must equal the PNGs written by the upstream code (0
 * differing bytes), the grid and token count must match cases.json, and the
 * normalised floats must equal global_pixels_f32 bit for bit. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "image/preprocess.h"
#include "test_util.h"

static dsocr_mode mode_from_name(const char *s) {
    if (!strcmp(s, "tiny")) return DSOCR_MODE_TINY;
    if (!strcmp(s, "small")) return DSOCR_MODE_SMALL;
    if (!strcmp(s, "base")) return DSOCR_MODE_BASE;
    if (!strcmp(s, "large")) return DSOCR_MODE_LARGE;
    return DSOCR_MODE_GUNDAM;
}

/* Number of differing bytes between a view and a golden PNG (-1: size mismatch / unreadable). */
static long compare_png(const char *rel, const uint8_t *rgb, int S) {
    dsocr_image *ref;
    dsocr_error err;
    if (dsocr_image_load_file(tu_golden(rel), 0, &ref, &err) != DSOCR_OK) {
        fprintf(stderr, "cannot read %s: %s\n", rel, err.message);
        return -1;
    }
    long diff = -1;
    if (ref->width == S && ref->height == S) {
        diff = 0;
        for (size_t i = 0; i < (size_t)S * S * 3; i++) diff += ref->rgb[i] != rgb[i];
    } else {
        fprintf(stderr, "%s is %dx%d, view is %dx%d\n", rel, ref->width, ref->height, S, S);
    }
    dsocr_image_free(ref);
    return diff;
}

/* Minimal safetensors reader: finds one F32 tensor's bytes. */
static const uint8_t *st_tensor(const char *buf, size_t size, const char *name, size_t *nbytes) {
    if (size < 8) return NULL;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | (uint8_t)buf[i];
    if (hlen > size - 8) return NULL;
    cJSON *h = cJSON_ParseWithLength(buf + 8, (size_t)hlen);
    const uint8_t *p = NULL;
    cJSON *t = cJSON_GetObjectItemCaseSensitive(h, name);
    cJSON *off = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype");
    if (cJSON_IsArray(off) && cJSON_GetArraySize(off) == 2 && cJSON_IsString(dt) && !strcmp(dt->valuestring, "F32")) {
        size_t b = (size_t)cJSON_GetArrayItem(off, 0)->valuedouble, e = (size_t)cJSON_GetArrayItem(off, 1)->valuedouble;
        if (b <= e && e <= size - 8 - hlen) {
            p = (const uint8_t *)buf + 8 + hlen + b;
            *nbytes = e - b;
        }
    }
    cJSON_Delete(h);
    return p;
}

static void check_float_pixels(const char *stem, const char *mode) {
    char rel[512];
    snprintf(rel, sizeof rel, "cases/%s__%s.safetensors", stem, mode);
    size_t size;
    char *buf = tu_read_file(tu_golden(rel), &size);
    CHECK_MSG(buf != NULL, "%s", rel);
    if (!buf) return;
    size_t nbytes = 0;
    const uint8_t *ref = st_tensor(buf, size, "global_pixels_f32", &nbytes);
    CHECK_MSG(ref != NULL, "%s: global_pixels_f32", rel);
    snprintf(rel, sizeof rel, "images/%s.png", stem);
    dsocr_image *img;
    dsocr_error err;
    ds_views v;
    if (ref && dsocr_image_load_file(tu_golden(rel), 0, &img, &err) == DSOCR_OK) {
        if (ds_preprocess(img, mode_from_name(mode), 0, &v, &err) == DSOCR_OK) {
            size_t n = (size_t)3 * v.global_size * v.global_size;
            CHECK_EQ_INT(nbytes, n * 4);
            if (nbytes == n * 4) {
                size_t diff = 0;
                for (size_t i = 0; i < n; i++) diff += memcmp(ref + 4 * i, v.global_pixels + i, 4) != 0;
                CHECK_MSG(diff == 0, "%s %s: %zu of %zu normalised values differ", stem, mode, diff, n);
            }
            ds_views_free(&v);
        }
        dsocr_image_free(img);
    }
    free(buf);
}

int main(void) {
    size_t size;
    char *json = tu_read_file(tu_golden("cases/cases.json"), &size);
    CHECK(json != NULL);
    cJSON *root = cJSON_Parse(json);
    cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "cases");
    CHECK_EQ_INT(cJSON_GetArraySize(cases), 25);
    int n_cases = 0;
    cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const char *image = cJSON_GetObjectItemCaseSensitive(c, "image")->valuestring;
        const char *mode = cJSON_GetObjectItemCaseSensitive(c, "mode")->valuestring;
        const char *grid = cJSON_GetObjectItemCaseSensitive(c, "crop_grid_w_h")->valuestring;
        int n_tokens = cJSON_GetObjectItemCaseSensitive(c, "n_image_tokens")->valueint;
        int n_crops = cJSON_GetObjectItemCaseSensitive(c, "n_crops")->valueint;
        int gw = 0, gh = 0;
        CHECK(sscanf(grid, "[%d, %d]", &gw, &gh) == 2);
        char stem[256], rel[512];
        snprintf(stem, sizeof stem, "%.*s", (int)(strlen(image) - 4), image);
        snprintf(rel, sizeof rel, "images/%s", image);

        dsocr_image *img;
        dsocr_error err;
        dsocr_status s = dsocr_image_load_file(tu_golden(rel), 0, &img, &err);
        CHECK_MSG(s == DSOCR_OK, "%s: %s", rel, err.message);
        if (s != DSOCR_OK) continue;
        ds_views v;
        s = ds_preprocess(img, mode_from_name(mode), 0, &v, &err);
        CHECK_MSG(s == DSOCR_OK, "%s %s: %s", image, mode, err.message);
        if (s == DSOCR_OK) {
            CHECK_MSG(v.grid_w == gw && v.grid_h == gh, "%s %s: grid %dx%d, expected %dx%d", image, mode, v.grid_w,
                      v.grid_h, gw, gh);
            CHECK_MSG(v.n_image_tokens == n_tokens, "%s %s: %d tokens, expected %d", image, mode, v.n_image_tokens,
                      n_tokens);
            CHECK_EQ_INT(v.n_tiles, n_crops);
            /* gundam's global view is the base one (ImageOps.pad to 1024 in both). */
            snprintf(rel, sizeof rel, "cases/%s__%s.global.png", stem, strcmp(mode, "gundam") ? mode : "base");
            long diff = compare_png(rel, v.global_rgb, v.global_size);
            CHECK_MSG(diff == 0, "%s: %ld differing bytes", rel, diff);
            for (int k = 0; k < v.n_tiles; k++) {
                snprintf(rel, sizeof rel, "cases/%s__gundam.crop%02d.png", stem, k);
                diff = compare_png(rel, v.tiles_rgb + (size_t)k * 640 * 640 * 3, 640);
                CHECK_MSG(diff == 0, "%s: %ld differing bytes", rel, diff);
            }
            /* The floats are the LUT of the uint8 views. */
            size_t bad = 0, np = (size_t)v.global_size * v.global_size;
            for (size_t i = 0; i < np; i++)
                for (int ch = 0; ch < 3; ch++)
                    bad += v.global_pixels[ch * np + i] != ds_pixel_value(v.global_rgb[3 * i + ch]);
            CHECK_EQ_INT(bad, 0);
            printf("%-28s %-6s grid %dx%d tokens %4d tiles %d: views identical\n", image, mode, v.grid_w, v.grid_h,
                   v.n_image_tokens, v.n_tiles);
            n_cases++;
            ds_views_free(&v);
        }
        dsocr_image_free(img);
    }
    CHECK_EQ_INT(n_cases, 25);
    cJSON_Delete(root);
    free(json);

    check_float_pixels("small_text_300x200", "tiny");
    check_float_pixels("small_text_300x200", "small");
    return tu_done("test_image_golden");
}
