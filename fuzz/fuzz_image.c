/* Every image decoder (PNG, JPEG, WebP, BMP, GIF, TIFF, chosen by magic bytes as
 * dsocr_image_load_memory does), EXIF orientation parsing and the orientation
 * transforms. The pixel limit is kept small so that a declared size can never make
 * one input slow; the limit checks themselves are what the large-size seeds test. */
#include "fuzz_util.h"
#include "image/image.h"

#define FUZZ_MAX_PIXELS (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* The EXIF parser also sees every input raw (it takes "Exif\0\0"+TIFF or bare TIFF). */
    int o = ds_exif_orientation(data, size);
    FUZZ_CHECK(o >= 0 && o <= 65535);

    dsocr_image *img = NULL;
    dsocr_error err;
    dsocr_status s = dsocr_image_load_memory(data, size, "fuzz", FUZZ_MAX_PIXELS, &img, &err);
    fuzz_check_error(s, &err);
    if (s != DSOCR_OK) { FUZZ_CHECK(img == NULL); return 0; }
    int w = dsocr_image_width(img), h = dsocr_image_height(img);
    FUZZ_CHECK(w > 0 && h > 0 && (uint64_t)w * (uint64_t)h <= FUZZ_MAX_PIXELS);
    const uint8_t *px = dsocr_image_pixels(img);
    size_t bytes = (size_t)w * h * 3;
    volatile uint8_t sink = px[0] ^ px[bytes - 1];   /* ASan: the buffer has its full size */
    (void)sink;
    /* Orientation transforms on what was decoded (every value, valid or not). */
    if (bytes <= 3 * 64 * 64) {
        int orientation = size ? data[size - 1] % 10 : 0;
        s = ds_image_orient(&img, orientation, &err);
        fuzz_check_error(s, &err);
        FUZZ_CHECK(img != NULL);
        if (orientation >= 5 && orientation <= 8) FUZZ_CHECK(img->width == h && img->height == w);
        else FUZZ_CHECK(img->width == w && img->height == h);
    }
    dsocr_image_free(img);
    return 0;
}
