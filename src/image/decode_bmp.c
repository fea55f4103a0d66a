/* BMP (Windows DIB), uncompressed and BI_BITFIELDS, as Pillow's BmpImagePlugin:
 *   1/4/8 bit: palette (BGRX entries; BGR for the 12-byte OS/2 header); indices past
 *              the palette read Pillow's default ramp (i, i, i)
 *   16 bit:    "BGR;15" (5-5-5; also the BI_RGB default) or "BGR;16" (5-6-5), each
 *              field scaled as v * 255 / max (integer division)
 *   24 bit:    BGR;  32 bit: BGRX (alpha ignored) or any byte-aligned bitfields
 * Rows are bottom-up unless the height is negative. RLE4/RLE8 are not supported. */
#include "image/image.h"

#include <stdlib.h>
#include <string.h>

static uint32_t rd16(const uint8_t *p) { return p[0] | p[1] << 8; }
static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

/* Index of the lowest set bit and the width of a contiguous mask; -1 if not contiguous. */
static int mask_shift(uint32_t m, int *bits) {
    if (!m) return -1;
    int s = 0;
    while (!(m & 1)) { m >>= 1; s++; }
    int b = 0;
    while (m & 1) { m >>= 1; b++; }
    if (m) return -1;
    *bits = b;
    return s;
}

dsocr_status ds_decode_bmp(const uint8_t *d, size_t size, const char *name,
                           uint64_t max_pixels, dsocr_image **out, int *orientation, dsocr_error *err) {
    *out = NULL;
    *orientation = 0;
    if (size < 14 + 12) return ds_fail(err, DSOCR_ERR_FORMAT, "%s: truncated BMP header (%zu bytes)", name, size);
    uint32_t pix_off = rd32(d + 10), hsize = rd32(d + 14);
    int64_t w, h;
    int bits;
    uint32_t compression = 0, colors = 0;
    size_t pal_entry = 4;
    if (hsize == 12) {
        w = rd16(d + 18);
        h = (int16_t)rd16(d + 20);
        bits = (int)rd16(d + 24);
        pal_entry = 3;
    } else if (hsize >= 40 && hsize <= 124) {
        if (size < 14 + (size_t)hsize) return ds_fail(err, DSOCR_ERR_FORMAT, "%s: truncated BMP header", name);
        w = (int32_t)rd32(d + 18);
        h = (int32_t)rd32(d + 22);
        bits = (int)rd16(d + 28);
        compression = rd32(d + 30);
        colors = rd32(d + 46);
    } else {
        return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "%s: unsupported BMP header size %u", name, hsize);
    }
    int top_down = h < 0;
    if (top_down) h = -h;
    DS_TRY(ds_image_check_size(name, w, h, max_pixels, err));

    /* Channel masks: in the V2+ header, or right after a 40-byte header. */
    uint32_t mask[3] = {0x7c00, 0x3e0, 0x1f};
    if (bits == 32) { mask[0] = 0xff0000; mask[1] = 0xff00; mask[2] = 0xff; }
    size_t after_header = 14 + (size_t)hsize;
    if (compression == 3 || compression == 6) {
        size_t mpos = hsize >= 52 ? 14 + 40 : after_header;
        if (mpos + 12 > size) return ds_fail(err, DSOCR_ERR_FORMAT, "%s: truncated BMP bitfields", name);
        for (int c = 0; c < 3; c++) mask[c] = rd32(d + mpos + 4 * c);
        if (hsize == 40) after_header += compression == 6 ? 16 : 12;
        if (bits != 16 && bits != 32)
            return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "%s: BMP bitfields with %d bits per pixel", name, bits);
    } else if (compression != 0) {
        return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "%s: compressed BMP (compression %u) is not supported", name,
                       compression);
    }
    int shift[3], width_bits[3];
    for (int c = 0; c < 3; c++) {
        shift[c] = mask_shift(mask[c], &width_bits[c]);
        if (shift[c] < 0 || (bits == 32 && width_bits[c] != 8) || (bits == 16 && width_bits[c] > 8))
            return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "%s: unsupported BMP bitfields layout %08x %08x %08x", name,
                           mask[0], mask[1], mask[2]);
    }

    uint8_t pal[256][3];
    for (int i = 0; i < 256; i++) pal[i][0] = pal[i][1] = pal[i][2] = (uint8_t)i;
    if (bits == 1 || bits == 4 || bits == 8) {
        if (colors == 0 || colors > (1u << bits)) colors = 1u << bits;
        if (after_header + colors * pal_entry > size)
            return ds_fail(err, DSOCR_ERR_FORMAT, "%s: truncated BMP palette", name);
        for (uint32_t i = 0; i < colors; i++) {
            const uint8_t *p = d + after_header + i * pal_entry;
            pal[i][0] = p[2];
            pal[i][1] = p[1];
            pal[i][2] = p[0];
        }
    } else if (bits != 16 && bits != 24 && bits != 32) {
        return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "%s: BMP with %d bits per pixel", name, bits);
    }

    size_t stride = (((size_t)w * (size_t)bits + 31) / 32) * 4;
    if (pix_off > size || stride * (size_t)h > size - pix_off)
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: truncated BMP: pixel data needs %zu bytes at offset %u, file has %zu",
                       name, stride * (size_t)h, pix_off, size);
    dsocr_image *img;
    DS_TRY(ds_image_alloc((int)w, (int)h, &img, err));
    for (int64_t y = 0; y < h; y++) {
        const uint8_t *row = d + pix_off + stride * (size_t)(top_down ? y : h - 1 - y);
        uint8_t *o = img->rgb + (size_t)y * (size_t)w * 3;
        for (int64_t x = 0; x < w; x++, o += 3) {
            if (bits <= 8) {
                int per = 8 / bits, sh = 8 - bits * (int)(x % per + 1);
                int idx = (row[x / per] >> sh) & ((1 << bits) - 1);
                memcpy(o, pal[idx], 3);
            } else if (bits == 24) {
                o[0] = row[3 * x + 2];
                o[1] = row[3 * x + 1];
                o[2] = row[3 * x];
            } else {
                uint32_t v = bits == 16 ? rd16(row + 2 * x) : rd32(row + 4 * x);
                for (int c = 0; c < 3; c++) {
                    uint32_t f = (v & mask[c]) >> shift[c], maxv = (1u << width_bits[c]) - 1;
                    o[c] = (uint8_t)(bits == 16 ? f * 255 / maxv : f);
                }
            }
        }
    }
    *out = img;
    return DSOCR_OK;
}
