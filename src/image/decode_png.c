/* PNG via libpng, reproducing Pillow's PngImagePlugin + convert("RGB"):
 *   gray 1 bit       -> mode "1": 0 / 255
 *   gray 2 / 4 bit   -> "L;2" / "L;4": value * 0x55 / * 0x11
 *   gray 16 bit      -> mode "I;16" (old Pillow: "I"); convert("RGB") CLIPS: v > 255 -> 255
 *   gray+alpha       -> "LA" (16 bit: high byte); alpha dropped
 *   RGB / RGBA 16    -> "RGB;16B" / "RGBA;16B": the high byte of each sample
 *   palette          -> "P": palette lookup; indices beyond the PLTE entries read
 *                       Pillow's default palette ramp (i, i, i); tRNS ignored
 *   tRNS, gAMA, sRGB, iCCP: ignored (Pillow applies none of them)
 * libpng runs with no transforms except de-interlacing; the conversion is ours. */
#include "image/image.h"

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

typedef struct png_state {
    const uint8_t *data;
    size_t size, pos;
    const char *name;
    uint64_t max_pixels;
    dsocr_error *err;
    dsocr_status status;          /* set when we fail for our own reasons */
    char libpng_msg[256];
    png_structp png;
    png_infop info;
    uint8_t *raw;                 /* de-interlaced rows, or one row */
    dsocr_image *img;
    int orientation;
} png_state;

static void png_read_mem(png_structp png, png_bytep out, size_t n) {
    png_state *st = png_get_io_ptr(png);
    if (n > st->size - st->pos) png_error(png, "unexpected end of file (truncated)");
    memcpy(out, st->data + st->pos, n);
    st->pos += n;
}

static void png_on_error(png_structp png, png_const_charp msg) {
    png_state *st = png_get_error_ptr(png);
    snprintf(st->libpng_msg, sizeof st->libpng_msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

/* Converts one decoded row to RGB. */
static void png_row_to_rgb(const uint8_t *in, uint8_t *out, int width, int bit_depth, int color_type,
                           const uint8_t pal[256][3]) {
    for (int x = 0; x < width; x++, out += 3) {
        int v;
        switch (color_type) {
        case PNG_COLOR_TYPE_GRAY:
            if (bit_depth == 16) {
                v = in[2 * x] ? 255 : in[2 * x + 1];     /* Pillow I;16 -> RGB clips */
            } else if (bit_depth == 8) {
                v = in[x];
            } else {
                int per = 8 / bit_depth, shift = 8 - bit_depth * (x % per + 1);
                int s = (in[x / per] >> shift) & ((1 << bit_depth) - 1);
                v = bit_depth == 1 ? (s ? 255 : 0) : bit_depth == 2 ? s * 0x55 : s * 0x11;
            }
            out[0] = out[1] = out[2] = (uint8_t)v;
            break;
        case PNG_COLOR_TYPE_GRAY_ALPHA:
            out[0] = out[1] = out[2] = bit_depth == 16 ? in[4 * x] : in[2 * x];
            break;
        case PNG_COLOR_TYPE_RGB:
        case PNG_COLOR_TYPE_RGB_ALPHA: {
            int ch = color_type == PNG_COLOR_TYPE_RGB ? 3 : 4, bps = bit_depth / 8;
            const uint8_t *p = in + (size_t)x * ch * bps;
            out[0] = p[0];
            out[1] = p[bps];
            out[2] = p[2 * bps];
            break;
        }
        default: { /* palette */
            int per = 8 / bit_depth, shift = 8 - bit_depth * (x % per + 1);
            int idx = bit_depth == 8 ? in[x] : (in[x / per] >> shift) & ((1 << bit_depth) - 1);
            memcpy(out, pal[idx], 3);
            break;
        }
        }
    }
}

/* Everything that can longjmp lives here; state changed after setjmp lives in *st. */
static int png_decode_guarded(png_state *st) {
    if (setjmp(png_jmpbuf(st->png))) return -1;
    png_structp png = st->png;
    png_infop info = st->info;
    png_set_read_fn(png, st, png_read_mem);
    png_set_user_limits(png, 0x7fffffffu, 0x7fffffffu);  /* our own limit decides */
    png_read_info(png, info);

    png_uint_32 w, h;
    int bit_depth, color_type, interlace;
    png_get_IHDR(png, info, &w, &h, &bit_depth, &color_type, &interlace, NULL, NULL);
    st->status = ds_image_check_size(st->name, w, h, st->max_pixels, st->err);
    if (st->status != DSOCR_OK) return -1;

    uint8_t pal[256][3];
    for (int i = 0; i < 256; i++) pal[i][0] = pal[i][1] = pal[i][2] = (uint8_t)i;  /* Pillow ramp */
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_colorp plte;
        int n = 0;
        if (!png_get_PLTE(png, info, &plte, &n)) {
            st->status = ds_fail(st->err, DSOCR_ERR_FORMAT, "%s: palette PNG without a PLTE chunk", st->name);
            return -1;
        }
        for (int i = 0; i < n && i < 256; i++) {
            pal[i][0] = plte[i].red;
            pal[i][1] = plte[i].green;
            pal[i][2] = plte[i].blue;
        }
    }
#ifdef PNG_eXIf_SUPPORTED
    png_uint_32 exif_len = 0;
    png_bytep exif = NULL;
    if (png_get_eXIf_1(png, info, &exif_len, &exif) && exif) st->orientation = ds_exif_orientation(exif, exif_len);
#endif

    int passes = interlace != PNG_INTERLACE_NONE ? png_set_interlace_handling(png) : 1;
    png_read_update_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    size_t nrows = passes > 1 ? h : 1;
    if (rowbytes == 0 || rowbytes > SIZE_MAX / nrows) {
        st->status = ds_fail(st->err, DSOCR_ERR_LIMIT, "%s: PNG rows too large", st->name);
        return -1;
    }
    st->raw = malloc(rowbytes * nrows);
    if (ds_image_alloc((int)w, (int)h, &st->img, st->err) != DSOCR_OK || !st->raw) {
        st->status = ds_fail(st->err, DSOCR_ERR_NOMEM, "%s: out of memory for a %ux%u PNG", st->name, w, h);
        return -1;
    }
    if (passes > 1) {
        for (int p = 0; p < passes; p++)
            for (png_uint_32 y = 0; y < h; y++) png_read_row(png, st->raw + y * rowbytes, NULL);
        for (png_uint_32 y = 0; y < h; y++)
            png_row_to_rgb(st->raw + y * rowbytes, st->img->rgb + (size_t)y * w * 3, (int)w, bit_depth, color_type,
                           (const uint8_t(*)[3])pal);
    } else {
        for (png_uint_32 y = 0; y < h; y++) {
            png_read_row(png, st->raw, NULL);
            png_row_to_rgb(st->raw, st->img->rgb + (size_t)y * w * 3, (int)w, bit_depth, color_type,
                           (const uint8_t(*)[3])pal);
        }
    }
    return 0;
}

dsocr_status ds_decode_png(const uint8_t *data, size_t size, const char *name,
                           uint64_t max_pixels, dsocr_image **out, int *orientation, dsocr_error *err) {
    *out = NULL;
    *orientation = 0;
    png_state st = {.data = data, .size = size, .name = name, .max_pixels = max_pixels, .err = err};
    st.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &st, png_on_error, png_on_warning);
    if (st.png) st.info = png_create_info_struct(st.png);
    if (!st.png || !st.info) {
        png_destroy_read_struct(st.png ? &st.png : NULL, NULL, NULL);
        return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory creating the PNG decoder", name);
    }
    int rc = png_decode_guarded(&st);
    png_destroy_read_struct(&st.png, &st.info, NULL);
    free(st.raw);
    if (rc != 0) {
        dsocr_image_free(st.img);
        if (st.status != DSOCR_OK) return st.status;
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: corrupt PNG: %s", name, st.libpng_msg);
    }
    *out = st.img;
    *orientation = st.orientation;
    return DSOCR_OK;
}
