/* Public image API: load from file or memory (format found by magic bytes),
 * wrap RGB pixels, accessors. */
#include "image/image.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

dsocr_status ds_image_check_size(const char *name, int64_t width, int64_t height,
                                 uint64_t max_pixels, dsocr_error *err) {
    if (!max_pixels) max_pixels = DS_IMAGE_DEFAULT_MAX_PIXELS;
    if (width <= 0 || height <= 0)
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: invalid image size %lldx%lld", name,
                       (long long)width, (long long)height);
    if (width > DS_IMAGE_MAX_SIDE || height > DS_IMAGE_MAX_SIDE)
        return ds_fail(err, DSOCR_ERR_LIMIT, "%s: image size %lldx%lld exceeds the maximum side of %d pixels",
                       name, (long long)width, (long long)height, DS_IMAGE_MAX_SIDE);
    uint64_t n = (uint64_t)width * (uint64_t)height;
    if (n > max_pixels)
        return ds_fail(err, DSOCR_ERR_LIMIT, "%s: image size %lldx%lld (%llu pixels) exceeds the limit of %llu pixels",
                       name, (long long)width, (long long)height, (unsigned long long)n,
                       (unsigned long long)max_pixels);
    return DSOCR_OK;
}

dsocr_status ds_image_alloc(int width, int height, dsocr_image **out, dsocr_error *err) {
    *out = NULL;
    if (width <= 0 || height <= 0 || width > DS_IMAGE_MAX_SIDE || height > DS_IMAGE_MAX_SIDE)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "invalid image size %dx%d", width, height);
    dsocr_image *img = calloc(1, sizeof *img);
    size_t n = (size_t)width * (size_t)height * 3;
    uint8_t *rgb = malloc(n);
    if (!img || !rgb) {
        free(img);
        free(rgb);
        return ds_fail(err, DSOCR_ERR_NOMEM, "out of memory for a %dx%d image (%zu bytes)", width, height, n);
    }
    img->width = width;
    img->height = height;
    img->rgb = rgb;
    *out = img;
    return DSOCR_OK;
}

/* ---- format detection ------------------------------------------------------ */

static int has_prefix(const uint8_t *d, size_t n, const void *magic, size_t m) {
    return n >= m && memcmp(d, magic, m) == 0;
}

static ds_image_decoder find_decoder(const uint8_t *d, size_t n, const char **format) {
    if (has_prefix(d, n, "\x89PNG\r\n\x1a\n", 8)) { *format = "PNG"; return ds_decode_png; }
    if (has_prefix(d, n, "\xff\xd8\xff", 3)) { *format = "JPEG"; return ds_decode_jpeg; }
    if (n >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WEBP", 4)) { *format = "WebP"; return ds_decode_webp; }
    if (has_prefix(d, n, "BM", 2)) { *format = "BMP"; return ds_decode_bmp; }
    if (has_prefix(d, n, "GIF87a", 6) || has_prefix(d, n, "GIF89a", 6)) { *format = "GIF"; return ds_decode_gif; }
    if (has_prefix(d, n, "II*\0", 4) || has_prefix(d, n, "MM\0*", 4)) { *format = "TIFF"; return ds_decode_tiff; }
    *format = NULL;
    return NULL;
}

/* ---- public API -------------------------------------------------------------- */

dsocr_status dsocr_image_load_memory(const void *data, size_t size, const char *name,
                                     uint64_t max_pixels, dsocr_image **out, dsocr_error *err) {
    if (!name) name = "<memory>";
    if (!out) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "%s: no output pointer", name);
    *out = NULL;
    if (!data && size) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "%s: NULL data", name);
    if (size == 0) return ds_fail(err, DSOCR_ERR_FORMAT, "%s: empty file", name);
    const uint8_t *d = data;
    const char *format;
    ds_image_decoder decode = find_decoder(d, size, &format);
    if (!decode) {
        char hex[3 * 8 + 1] = "";
        for (size_t i = 0; i < size && i < 8; i++) snprintf(hex + 3 * i, 4, "%02x ", d[i]);
        return ds_fail(err, DSOCR_ERR_UNSUPPORTED,
                       "%s: not a PNG, JPEG, WebP, BMP, GIF or TIFF image (first bytes: %s)", name, hex);
    }
    dsocr_image *img = NULL;
    int orientation = 0;
    DS_TRY(decode(d, size, name, max_pixels, &img, &orientation, err));
    dsocr_status s = ds_image_orient(&img, orientation, err);
    if (s != DSOCR_OK) {
        dsocr_image_free(img);
        if (err) ds_wrap(err, "%s: ", name);
        return s;
    }
    *out = img;
    return DSOCR_OK;
}

dsocr_status dsocr_image_load_file(const char *path, uint64_t max_pixels,
                                   dsocr_image **out, dsocr_error *err) {
    if (!out) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    if (!path) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "NULL image path");
    FILE *f = fopen(path, "rb");
    if (!f) return ds_fail(err, DSOCR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t *buf = NULL;
    size_t size = 0, cap = 0;
    for (;;) {
        if (size == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory reading the file", path);
            }
            buf = nb;
        }
        size_t got = fread(buf + size, 1, cap - size, f);
        size += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return ds_fail(err, DSOCR_ERR_IO, "%s: read error", path);
    }
    dsocr_status s = dsocr_image_load_memory(buf, size, path, max_pixels, out, err);
    free(buf);
    return s;
}

dsocr_status dsocr_image_from_rgb(const uint8_t *rgb, int width, int height,
                                  dsocr_image **out, dsocr_error *err) {
    if (!out) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    if (!rgb) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "NULL pixels");
    DS_TRY(ds_image_check_size("<rgb pixels>", width, height, 0, err));
    DS_TRY(ds_image_alloc(width, height, out, err));
    memcpy((*out)->rgb, rgb, (size_t)width * (size_t)height * 3);
    return DSOCR_OK;
}

int dsocr_image_width(const dsocr_image *img) { return img ? img->width : 0; }
int dsocr_image_height(const dsocr_image *img) { return img ? img->height : 0; }
const uint8_t *dsocr_image_pixels(const dsocr_image *img) { return img ? img->rgb : NULL; }

void dsocr_image_free(dsocr_image *img) {
    if (!img) return;
    free(img->rgb);
    free(img);
}
