/* WebP via libwebp. Pillow decodes to RGBA (non-premultiplied) and convert("RGB")
 * drops alpha, so the RGB samples are libwebp's, alpha ignored. The EXIF chunk
 * (if any) gives the orientation. Animated WebP is not supported. */
#include "image/image.h"

#include <stdlib.h>
#include <string.h>
#include <webp/decode.h>

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

/* RIFF chunks after "RIFF" size "WEBP": fourcc, LE size, data, pad to even. */
static int webp_orientation(const uint8_t *d, size_t n) {
    size_t pos = 12;
    while (pos + 8 <= n) {
        uint32_t len = le32(d + pos + 4);
        if (len > n - pos - 8) break;
        if (!memcmp(d + pos, "EXIF", 4)) return ds_exif_orientation(d + pos + 8, len);
        pos += 8 + (size_t)len + (len & 1);
    }
    return 0;
}

dsocr_status ds_decode_webp(const uint8_t *data, size_t size, const char *name,
                            uint64_t max_pixels, dsocr_image **out, int *orientation, dsocr_error *err) {
    *out = NULL;
    *orientation = 0;
    WebPBitstreamFeatures f;
    VP8StatusCode vs = WebPGetFeatures(data, size, &f);
    if (vs == VP8_STATUS_NOT_ENOUGH_DATA)
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: truncated WebP", name);
    if (vs != VP8_STATUS_OK) return ds_fail(err, DSOCR_ERR_FORMAT, "%s: corrupt WebP (status %d)", name, (int)vs);
    if (f.has_animation) return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "%s: animated WebP is not supported", name);
    DS_TRY(ds_image_check_size(name, f.width, f.height, max_pixels, err));
    size_t stride = (size_t)f.width * 4, n = stride * (size_t)f.height;
    uint8_t *rgba = malloc(n);
    dsocr_image *img = NULL;
    if (!rgba || ds_image_alloc(f.width, f.height, &img, NULL) != DSOCR_OK) {
        free(rgba);
        return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory for a %dx%d WebP", name, f.width, f.height);
    }
    if (!WebPDecodeRGBAInto(data, size, rgba, n, (int)stride)) {
        free(rgba);
        dsocr_image_free(img);
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: corrupt or truncated WebP image data", name);
    }
    size_t np = (size_t)f.width * f.height;
    for (size_t i = 0; i < np; i++) memcpy(img->rgb + 3 * i, rgba + 4 * i, 3);
    free(rgba);
    *out = img;
    *orientation = webp_orientation(data, size);
    return DSOCR_OK;
}
