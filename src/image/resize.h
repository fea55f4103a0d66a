/* Pillow's Image.resize(..., BICUBIC) for 8-bit RGB, bit-exact (spec 6.7). */
#ifndef DS_RESIZE_H
#define DS_RESIZE_H

#include <stdint.h>

#include "core/status.h"

/* src [sh, sw, 3] -> dst [dh, dw, 3] (caller-allocated). Horizontal pass first,
 * each pass only when that side changes, uint8 in between; same size = copy. */
dsocr_status ds_resize_bicubic(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh,
                               dsocr_error *err);

#endif
