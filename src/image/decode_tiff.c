/* TIFF, first directory, via libtiff scanlines (any compression libtiff knows),
 * converted as Pillow's TiffImagePlugin + convert("RGB") does for the common
 * layouts, all with contiguous samples:
 *   8-bit RGB / RGBA / RGBX: the first three samples (alpha dropped, never
 *     premultiplied: libtiff's RGBA interface would premultiply, so it is not used)
 *   1- and 8-bit gray (MinIsBlack, or MinIsWhite = inverted), extra samples dropped
 *   1/4/8-bit palette: ColorMap entries >> 8 (Pillow: b // 256)
 * Other layouts (16-bit, planar, CMYK, YCbCr, LAB, ...) are reported as unsupported.
 * The Orientation tag is applied like EXIF orientation. */
#include "image/image.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>

typedef struct tiff_src {
    const uint8_t *data;
    size_t size, pos;
} tiff_src;

static tmsize_t tiff_read(thandle_t h, void *buf, tmsize_t n) {
    tiff_src *s = h;
    if (n < 0) return 0;
    size_t k = (size_t)n;
    if (s->pos > s->size) return 0;
    if (k > s->size - s->pos) k = s->size - s->pos;
    memcpy(buf, s->data + s->pos, k);
    s->pos += k;
    return (tmsize_t)k;
}
static tmsize_t tiff_write(thandle_t h, void *buf, tmsize_t n) { (void)h; (void)buf; (void)n; return -1; }
static toff_t tiff_seek(thandle_t h, toff_t off, int whence) {
    tiff_src *s = h;
    uint64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? s->pos : s->size;
    uint64_t np = base + off;
    if (whence != SEEK_SET && (int64_t)off < 0) np = base - (uint64_t)(-(int64_t)off);
    if (np > s->size) return (toff_t)-1;
    s->pos = np;
    return np;
}
static int tiff_close(thandle_t h) { (void)h; return 0; }
static toff_t tiff_size(thandle_t h) { return ((tiff_src *)h)->size; }

/* libtiff reports errors through a handler with the client data; keep the message. */
static int tiff_on_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
    (void)tif; (void)module;
    char *msg = user;
    if (!msg[0]) vsnprintf(msg, 256, fmt, ap);
    return 1;
}
static int tiff_on_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
    (void)tif; (void)user; (void)module; (void)fmt; (void)ap;
    return 1;
}

dsocr_status ds_decode_tiff(const uint8_t *data, size_t size, const char *name,
                            uint64_t max_pixels, dsocr_image **out, int *orientation, dsocr_error *err) {
    *out = NULL;
    *orientation = 0;
    tiff_src src = {data, size, 0};
    char msg[256] = "";
    TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
    if (!opts) return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory opening TIFF", name);
    TIFFOpenOptionsSetErrorHandlerExtR(opts, tiff_on_error, msg);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, tiff_on_warning, NULL);
    TIFF *tif = TIFFClientOpenExt(name, "rm", &src, tiff_read, tiff_write, tiff_seek, tiff_close, tiff_size,
                                  NULL, NULL, opts);
    TIFFOpenOptionsFree(opts);
    if (!tif) return ds_fail(err, DSOCR_ERR_FORMAT, "%s: corrupt TIFF: %s", name, msg);

    dsocr_status status = DSOCR_OK;
    uint8_t *line = NULL;
    dsocr_image *img = NULL;
    uint32_t w = 0, h = 0;
    uint16_t bps = 1, spp = 1, photo = 0, planar = PLANARCONFIG_CONTIG, orient = ORIENTATION_TOPLEFT;
    uint16_t *cr = NULL, *cg = NULL, *cb = NULL;
    TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bps);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
    if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photo)) photo = 0xffff;
    TIFFGetFieldDefaulted(tif, TIFFTAG_ORIENTATION, &orient);
    status = ds_image_check_size(name, w, h, max_pixels, err);
    if (status != DSOCR_OK) goto done;

    int rgb = photo == PHOTOMETRIC_RGB && bps == 8 && spp >= 3;
    int gray = (photo == PHOTOMETRIC_MINISBLACK || photo == PHOTOMETRIC_MINISWHITE) && (bps == 8 || bps == 1);
    int pal = photo == PHOTOMETRIC_PALETTE && (bps == 1 || bps == 4 || bps == 8) && spp == 1 &&
              TIFFGetField(tif, TIFFTAG_COLORMAP, &cr, &cg, &cb);
    if ((!rgb && !gray && !pal) || (planar != PLANARCONFIG_CONTIG && spp > 1) || TIFFIsTiled(tif)) {
        status = ds_fail(err, DSOCR_ERR_UNSUPPORTED,
                         "%s: TIFF layout not supported (photometric %u, %u bits x %u samples, planar %u%s)", name,
                         photo, bps, spp, planar, TIFFIsTiled(tif) ? ", tiled" : "");
        goto done;
    }
    tmsize_t sl = TIFFScanlineSize(tif);
    if (sl <= 0 || (uint64_t)sl < ((uint64_t)w * bps * spp + 7) / 8) {
        status = ds_fail(err, DSOCR_ERR_FORMAT, "%s: corrupt TIFF: bad scanline size", name);
        goto done;
    }
    line = malloc((size_t)sl);
    if (!line) {
        status = ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", name);
        goto done;
    }
    status = ds_image_alloc((int)w, (int)h, &img, err);
    if (status != DSOCR_OK) goto done;
    for (uint32_t y = 0; y < h; y++) {
        if (TIFFReadScanline(tif, line, y, 0) < 0) {
            status = ds_fail(err, DSOCR_ERR_FORMAT, "%s: corrupt or truncated TIFF at row %u: %s", name, y, msg);
            goto done;
        }
        uint8_t *o = img->rgb + (size_t)y * w * 3;
        for (uint32_t x = 0; x < w; x++, o += 3) {
            if (rgb) {
                memcpy(o, line + (size_t)x * spp, 3);
            } else if (bps == 8) {
                int v = line[(size_t)x * spp];
                if (pal) { o[0] = cr[v] >> 8; o[1] = cg[v] >> 8; o[2] = cb[v] >> 8; continue; }
                if (photo == PHOTOMETRIC_MINISWHITE) v = 255 - v;
                o[0] = o[1] = o[2] = (uint8_t)v;
            } else {
                int per = 8 / bps, sh = 8 - bps * (int)(x % per + 1);
                int v = (line[x / per] >> sh) & ((1 << bps) - 1);
                if (pal) { o[0] = cr[v] >> 8; o[1] = cg[v] >> 8; o[2] = cb[v] >> 8; continue; }
                if (photo == PHOTOMETRIC_MINISWHITE) v = !v;
                o[0] = o[1] = o[2] = v ? 255 : 0;
            }
        }
    }
    *orientation = orient;
done:
    TIFFClose(tif);
    free(line);
    if (status != DSOCR_OK) {
        dsocr_image_free(img);
        *orientation = 0;
        return status;
    }
    *out = img;
    return DSOCR_OK;
}
