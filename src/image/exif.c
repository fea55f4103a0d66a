/* EXIF orientation: read tag 0x0112 of IFD0 with libexif and apply it the way
 * Pillow's ImageOps.exif_transpose does (Image.transpose methods per value). */
#include "image/image.h"

#include <libexif/exif-data.h>
#include <stdlib.h>
#include <string.h>

int ds_exif_orientation(const uint8_t *exif, size_t size) {
    if (!exif || size < 8 || size > (1u << 30)) return 0;
    /* libexif wants the "Exif\0\0" header; PNG eXIf chunks carry bare TIFF data. */
    uint8_t *buf = NULL;
    const uint8_t *p = exif;
    size_t n = size;
    if (memcmp(exif, "Exif\0\0", 6) != 0) {
        buf = malloc(size + 6);
        if (!buf) return 0;
        memcpy(buf, "Exif\0\0", 6);
        memcpy(buf + 6, exif, size);
        p = buf;
        n = size + 6;
    }
    int orientation = 0;
    ExifData *ed = exif_data_new();
    if (ed) {
        /* Read what is there: no "fixing" that could invent a default tag. */
        exif_data_unset_option(ed, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
        exif_data_load_data(ed, p, (unsigned int)n);
        ExifEntry *e = exif_content_get_entry(ed->ifd[EXIF_IFD_0], EXIF_TAG_ORIENTATION);
        if (e && e->data && e->components >= 1) {
            ExifByteOrder bo = exif_data_get_byte_order(ed);
            size_t have = e->size;
            if (e->format == EXIF_FORMAT_SHORT && have >= 2) orientation = exif_get_short(e->data, bo);
            else if (e->format == EXIF_FORMAT_LONG && have >= 4) orientation = (int)(exif_get_long(e->data, bo) & 0xffff);
            else if (e->format == EXIF_FORMAT_BYTE && have >= 1) orientation = e->data[0];
        }
        exif_data_unref(ed);
    }
    free(buf);
    return orientation;
}

/* out(x, y) = in(sx, sy) for each Image.transpose method; values as in
 * ImageOps.exif_transpose: 2 FLIP_LEFT_RIGHT, 3 ROTATE_180, 4 FLIP_TOP_BOTTOM,
 * 5 TRANSPOSE, 6 ROTATE_270, 7 TRANSVERSE, 8 ROTATE_90 (counter-clockwise). */
dsocr_status ds_image_orient(dsocr_image **img, int orientation, dsocr_error *err) {
    if (orientation < 2 || orientation > 8) return DSOCR_OK;
    const dsocr_image *in = *img;
    int W = in->width, H = in->height;
    int swap = orientation >= 5;
    dsocr_image *out;
    DS_TRY(ds_image_alloc(swap ? H : W, swap ? W : H, &out, err));
    for (int y = 0; y < out->height; y++) {
        for (int x = 0; x < out->width; x++) {
            int sx, sy;
            switch (orientation) {
            case 2: sx = W - 1 - x; sy = y; break;
            case 3: sx = W - 1 - x; sy = H - 1 - y; break;
            case 4: sx = x; sy = H - 1 - y; break;
            case 5: sx = y; sy = x; break;
            case 6: sx = y; sy = H - 1 - x; break;
            case 7: sx = W - 1 - y; sy = H - 1 - x; break;
            default: sx = W - 1 - y; sy = x; break;   /* 8 */
            }
            memcpy(out->rgb + ((size_t)y * out->width + x) * 3, in->rgb + ((size_t)sy * W + sx) * 3, 3);
        }
    }
    dsocr_image_free(*img);
    *img = out;
    return DSOCR_OK;
}
