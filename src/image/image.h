/* Decoded images: 8-bit RGB, packed HWC, EXIF orientation applied.
 *
 * Every decoder reproduces what Pillow gives for
 *   ImageOps.exif_transpose(Image.open(f)).convert("RGB")
 * because DeepSeek-OCR's reference preprocessing is exactly that (spec 6.1).
 * Decoders read from memory with bounds checks, check the declared size
 * against the pixel limit before allocating, and never return a partial image. */
#ifndef DS_IMAGE_H
#define DS_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Pillow's Image.MAX_IMAGE_PIXELS (decompression-bomb limit). */
#define DS_IMAGE_DEFAULT_MAX_PIXELS 178956970ull
/* No side may exceed this even when the pixel limit allows it. */
#define DS_IMAGE_MAX_SIDE (1 << 24)

struct dsocr_image {
    int width, height;
    uint8_t *rgb;   /* [height, width, 3] */
};

/* Allocates an uninitialised width x height image. */
dsocr_status ds_image_alloc(int width, int height, dsocr_image **out, dsocr_error *err);

/* Rejects zero, negative or absurd sizes and sizes over max_pixels (0 = default),
 * naming the file. Call before allocating anything proportional to the size. */
dsocr_status ds_image_check_size(const char *name, int64_t width, int64_t height,
                                 uint64_t max_pixels, dsocr_error *err);

/* One decoder per format. `data` holds the whole file. On success *out is a new
 * RGB image in stored orientation and *orientation the EXIF orientation tag
 * (1..8; 0 when there is none). On failure nothing is allocated. */
typedef dsocr_status (*ds_image_decoder)(const uint8_t *data, size_t size, const char *name,
                                         uint64_t max_pixels, dsocr_image **out,
                                         int *orientation, dsocr_error *err);
dsocr_status ds_decode_png(const uint8_t *data, size_t size, const char *name,
                           uint64_t max_pixels, dsocr_image **out, int *orientation, dsocr_error *err);
dsocr_status ds_decode_jpeg(const uint8_t *data, size_t size, const char *name,
                            uint64_t max_pixels, dsocr_image **out, int *orientation, dsocr_error *err);
dsocr_status ds_decode_webp(const uint8_t *data, size_t size, const char *name,
                            uint64_t max_pixels, dsocr_image **out, int *orientation, dsocr_error *err);
dsocr_status ds_decode_bmp(const uint8_t *data, size_t size, const char *name,
                           uint64_t max_pixels, dsocr_image **out, int *orientation, dsocr_error *err);
dsocr_status ds_decode_gif(const uint8_t *data, size_t size, const char *name,
                           uint64_t max_pixels, dsocr_image **out, int *orientation, dsocr_error *err);
dsocr_status ds_decode_tiff(const uint8_t *data, size_t size, const char *name,
                            uint64_t max_pixels, dsocr_image **out, int *orientation, dsocr_error *err);

/* EXIF orientation (IFD0 tag 0x0112) from an EXIF block: either "Exif\0\0" + TIFF
 * data (JPEG APP1, WebP EXIF) or bare TIFF data (PNG eXIf). 0 when absent/unreadable. */
int ds_exif_orientation(const uint8_t *exif, size_t size);

/* Applies orientation 2..8 as ImageOps.exif_transpose does (1, 0 and other values
 * leave the image as is). Replaces *img on success. */
dsocr_status ds_image_orient(dsocr_image **img, int orientation, dsocr_error *err);

#endif
