/* Decoding: every format and pixel layout converts like Pillow's
 * Image.open + ImageOps.exif_transpose + convert("RGB"); broken files fail
 * cleanly with a message naming the file. Inputs are generated here with the
 * format libraries' own writers, so expected values are known exactly. */
#include <dirent.h>
#include <gif_lib.h>
#include <png.h>
#include <stdio.h>  /* jpeglib.h needs FILE */
#include <jpeglib.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>
#include <webp/decode.h>
#include <webp/encode.h>

#include "image/image.h"
#include "test_util.h"

/* ---- growable memory buffer ------------------------------------------------ */

typedef struct membuf {
    uint8_t *data;
    size_t size, cap;
} membuf;

static void mb_put(membuf *b, const void *p, size_t n) {
    if (b->size + n > b->cap) {
        b->cap = (b->size + n) * 2;
        b->data = realloc(b->data, b->cap);
    }
    memcpy(b->data + b->size, p, n);
    b->size += n;
}

static dsocr_image *load(const membuf *b, const char *name, dsocr_error *err) {
    dsocr_image *img = NULL;
    if (dsocr_image_load_memory(b->data, b->size, name, 0, &img, err) != DSOCR_OK) return NULL;
    return img;
}

static const uint8_t *px(const dsocr_image *img, int x, int y) { return img->rgb + ((size_t)y * img->width + x) * 3; }

static int is_rgb(const uint8_t *p, int r, int g, int b) { return p[0] == r && p[1] == g && p[2] == b; }

/* ---- PNG writer ------------------------------------------------------------- */

static void png_write_mem(png_structp png, png_bytep d, size_t n) { mb_put(png_get_io_ptr(png), d, n); }
static void png_flush_mem(png_structp png) { (void)png; }

typedef struct png_spec {
    int w, h, bit_depth, color_type, interlace;
    const uint8_t *rows;          /* packed rows, png rowbytes each */
    const png_color *palette;
    int n_palette;
    const uint8_t *trns;
    int n_trns;
    const uint8_t *exif;
    int n_exif;
} png_spec;

static membuf write_png(const png_spec *s) {
    membuf b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        fprintf(stderr, "png writer failed\n");
        exit(2);
    }
    png_set_write_fn(png, &b, png_write_mem, png_flush_mem);
    png_set_IHDR(png, info, s->w, s->h, s->bit_depth, s->color_type,
                 s->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (s->palette) png_set_PLTE(png, info, s->palette, s->n_palette);
    if (s->trns) png_set_tRNS(png, info, s->trns, s->n_trns, NULL);
    if (s->exif) png_set_eXIf_1(png, info, s->n_exif, (png_bytep)s->exif);
    png_write_info(png, info);
    size_t rb = png_get_rowbytes(png, info);
    png_bytep *rows = malloc(sizeof(png_bytep) * s->h);
    for (int y = 0; y < s->h; y++) rows[y] = (png_bytep)s->rows + rb * y;
    png_write_image(png, rows);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(rows);
    return b;
}

static dsocr_image *png_roundtrip(const png_spec *s) {
    membuf b = write_png(s);
    dsocr_error err;
    dsocr_image *img = load(&b, "gen.png", &err);
    CHECK_MSG(img != NULL, "%s", err.message);
    free(b.data);
    if (img) CHECK(img->width == s->w && img->height == s->h);
    return img;
}

static void test_png_layouts(void) {
    /* 8-bit RGB: exact. */
    uint8_t rgb[2 * 3 * 2] = {1, 2, 3, 4, 5, 6, 250, 251, 252, 0, 128, 255};
    png_spec s = {.w = 2, .h = 2, .bit_depth = 8, .color_type = PNG_COLOR_TYPE_RGB, .rows = rgb};
    dsocr_image *img = png_roundtrip(&s);
    if (img) CHECK(memcmp(img->rgb, rgb, sizeof rgb) == 0);
    dsocr_image_free(img);

    /* RGBA: alpha dropped, NOT composited: a fully transparent pixel keeps its colour. */
    uint8_t rgba[2 * 4] = {10, 20, 30, 0, 200, 100, 50, 128};
    s = (png_spec){.w = 2, .h = 1, .bit_depth = 8, .color_type = PNG_COLOR_TYPE_RGB_ALPHA, .rows = rgba};
    img = png_roundtrip(&s);
    if (img) CHECK(is_rgb(px(img, 0, 0), 10, 20, 30) && is_rgb(px(img, 1, 0), 200, 100, 50));
    dsocr_image_free(img);

    /* L and LA: the grey value replicated. */
    uint8_t gray[3] = {0, 77, 255};
    s = (png_spec){.w = 3, .h = 1, .bit_depth = 8, .color_type = PNG_COLOR_TYPE_GRAY, .rows = gray};
    img = png_roundtrip(&s);
    if (img) CHECK(is_rgb(px(img, 0, 0), 0, 0, 0) && is_rgb(px(img, 1, 0), 77, 77, 77) && is_rgb(px(img, 2, 0), 255, 255, 255));
    dsocr_image_free(img);
    uint8_t la[2 * 2] = {90, 0, 180, 255};
    s = (png_spec){.w = 2, .h = 1, .bit_depth = 8, .color_type = PNG_COLOR_TYPE_GRAY_ALPHA, .rows = la};
    img = png_roundtrip(&s);
    if (img) CHECK(is_rgb(px(img, 0, 0), 90, 90, 90) && is_rgb(px(img, 1, 0), 180, 180, 180));
    dsocr_image_free(img);

    /* 16-bit gray: Pillow opens "I;16" and convert("RGB") clips at 255 (I16_RGB:
     * high byte != 0 -> 255), it does NOT scale: 100 -> 100, 255 -> 255, 256 -> 255. */
    uint8_t g16[5 * 2] = {0, 0, 0, 100, 0, 255, 1, 0, 255, 255};
    s = (png_spec){.w = 5, .h = 1, .bit_depth = 16, .color_type = PNG_COLOR_TYPE_GRAY, .rows = g16};
    img = png_roundtrip(&s);
    if (img)
        CHECK(px(img, 0, 0)[0] == 0 && px(img, 1, 0)[0] == 100 && px(img, 2, 0)[0] == 255 && px(img, 3, 0)[0] == 255 &&
              px(img, 4, 0)[0] == 255 && px(img, 1, 0)[2] == 100);
    dsocr_image_free(img);

    /* 16-bit RGB / RGBA / LA: rawmodes "RGB;16B" etc. keep the HIGH byte (no rounding:
     * 0x12ff -> 0x12). */
    uint8_t rgb16[6] = {0x12, 0xff, 0xab, 0x01, 0x00, 0x80};
    s = (png_spec){.w = 1, .h = 1, .bit_depth = 16, .color_type = PNG_COLOR_TYPE_RGB, .rows = rgb16};
    img = png_roundtrip(&s);
    if (img) CHECK(is_rgb(px(img, 0, 0), 0x12, 0xab, 0x00));
    dsocr_image_free(img);
    uint8_t rgba16[8] = {0x34, 0x80, 0x56, 0x7f, 0x78, 0x00, 0x00, 0x00};
    s = (png_spec){.w = 1, .h = 1, .bit_depth = 16, .color_type = PNG_COLOR_TYPE_RGB_ALPHA, .rows = rgba16};
    img = png_roundtrip(&s);
    if (img) CHECK(is_rgb(px(img, 0, 0), 0x34, 0x56, 0x78));
    dsocr_image_free(img);
    uint8_t la16[4] = {0x9a, 0xff, 0x00, 0x00};
    s = (png_spec){.w = 1, .h = 1, .bit_depth = 16, .color_type = PNG_COLOR_TYPE_GRAY_ALPHA, .rows = la16};
    img = png_roundtrip(&s);
    if (img) CHECK(is_rgb(px(img, 0, 0), 0x9a, 0x9a, 0x9a));
    dsocr_image_free(img);

    /* Low bit depth gray: Pillow's "1" gives 0/255, "L;2" v*0x55, "L;4" v*0x11. */
    uint8_t g1[1] = {0xa0};                 /* 1 0 1 0 */
    s = (png_spec){.w = 4, .h = 1, .bit_depth = 1, .color_type = PNG_COLOR_TYPE_GRAY, .rows = g1};
    img = png_roundtrip(&s);
    if (img) CHECK(px(img, 0, 0)[0] == 255 && px(img, 1, 0)[0] == 0 && px(img, 2, 0)[0] == 255 && px(img, 3, 0)[0] == 0);
    dsocr_image_free(img);
    uint8_t g2[1] = {0x1b};                 /* 0 1 2 3 */
    s = (png_spec){.w = 4, .h = 1, .bit_depth = 2, .color_type = PNG_COLOR_TYPE_GRAY, .rows = g2};
    img = png_roundtrip(&s);
    if (img) CHECK(px(img, 0, 0)[0] == 0 && px(img, 1, 0)[0] == 85 && px(img, 2, 0)[0] == 170 && px(img, 3, 0)[0] == 255);
    dsocr_image_free(img);
    uint8_t g4[2] = {0x0f, 0x7a};           /* 0 15 7 10 */
    s = (png_spec){.w = 4, .h = 1, .bit_depth = 4, .color_type = PNG_COLOR_TYPE_GRAY, .rows = g4};
    img = png_roundtrip(&s);
    if (img) CHECK(px(img, 0, 0)[0] == 0 && px(img, 1, 0)[0] == 255 && px(img, 2, 0)[0] == 119 && px(img, 3, 0)[1] == 170);
    dsocr_image_free(img);

    /* Palette (P) with tRNS: palette colours, transparency ignored by convert("RGB");
     * index 200 is past the 3 PLTE entries and reads Pillow's default ramp (200,200,200). */
    png_color pal[3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
    uint8_t trns[3] = {0, 128, 255};
    uint8_t idx[4] = {0, 1, 2, 200};
    s = (png_spec){.w = 4, .h = 1, .bit_depth = 8, .color_type = PNG_COLOR_TYPE_PALETTE, .rows = idx,
                   .palette = pal, .n_palette = 3, .trns = trns, .n_trns = 3};
    img = png_roundtrip(&s);
    if (img)
        CHECK(is_rgb(px(img, 0, 0), 255, 0, 0) && is_rgb(px(img, 1, 0), 0, 255, 0) && is_rgb(px(img, 2, 0), 0, 0, 255) &&
              is_rgb(px(img, 3, 0), 200, 200, 200));
    dsocr_image_free(img);
    uint8_t idx2[1] = {0x24};               /* 2-bit: 0 2 1 0 */
    s = (png_spec){.w = 4, .h = 1, .bit_depth = 2, .color_type = PNG_COLOR_TYPE_PALETTE, .rows = idx2,
                   .palette = pal, .n_palette = 3};
    img = png_roundtrip(&s);
    if (img)
        CHECK(is_rgb(px(img, 0, 0), 255, 0, 0) && is_rgb(px(img, 1, 0), 0, 0, 255) && is_rgb(px(img, 2, 0), 0, 255, 0) &&
              is_rgb(px(img, 3, 0), 255, 0, 0));
    dsocr_image_free(img);

    /* Interlaced (Adam7) equals the same pixels written progressively. */
    enum { IW = 13, IH = 11 };
    uint8_t big[IW * IH * 3];
    uint64_t seed = 3;
    for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)tu_rand_u64(&seed);
    s = (png_spec){.w = IW, .h = IH, .bit_depth = 8, .color_type = PNG_COLOR_TYPE_RGB, .rows = big, .interlace = 1};
    img = png_roundtrip(&s);
    if (img) CHECK(memcmp(img->rgb, big, sizeof big) == 0);
    dsocr_image_free(img);
}

/* ---- EXIF orientation ------------------------------------------------------------ */

/* TIFF block with IFD0 = { Orientation (SHORT) }. */
static size_t make_exif(uint8_t *out, int orientation, int big_endian) {
    const uint8_t le[] = {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0,
                          (uint8_t)orientation, 0, 0, 0, 0, 0, 0, 0};
    const uint8_t be[] = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1,
                          0, (uint8_t)orientation, 0, 0, 0, 0, 0, 0};
    memcpy(out, big_endian ? be : le, sizeof le);
    return sizeof le;
}

static void test_exif_png(void) {
    /* 3x2 source:  a b c / d e f.  Expected layouts per ImageOps.exif_transpose:
     * 2 FLIP_LEFT_RIGHT, 3 ROTATE_180, 4 FLIP_TOP_BOTTOM, 5 TRANSPOSE,
     * 6 ROTATE_270 (90 deg clockwise), 7 TRANSVERSE, 8 ROTATE_90 (counter-clockwise). */
    const uint8_t letters[6] = {'a', 'b', 'c', 'd', 'e', 'f'};
    static const char *expect[9] = {"abcdef", "abcdef", "cbafed", "fedcba", "defabc",
                                    "adbecf", "daebfc", "fcebda", "cfbead"};
    uint8_t rows[6 * 3];
    for (int i = 0; i < 6; i++) rows[3 * i] = rows[3 * i + 1] = rows[3 * i + 2] = letters[i];
    for (int o = 0; o <= 9; o++) {
        for (int be = 0; be < 2; be++) {
            uint8_t exif[64];
            size_t n = make_exif(exif, o, be);
            png_spec s = {.w = 3, .h = 2, .bit_depth = 8, .color_type = PNG_COLOR_TYPE_RGB, .rows = rows,
                          .exif = exif, .n_exif = (int)n};
            membuf b = write_png(&s);
            dsocr_error err;
            dsocr_image *img = load(&b, "exif.png", &err);
            CHECK_MSG(img != NULL, "orientation %d: %s", o, img ? "" : err.message);
            if (img) {
                const char *e = o <= 8 ? expect[o] : expect[1];   /* 0 and 9: left alone */
                int swapped = o >= 5 && o <= 8;
                CHECK_MSG(img->width == (swapped ? 2 : 3) && img->height == (swapped ? 3 : 2), "orientation %d", o);
                char got[7] = {0};
                for (int i = 0; i < 6; i++) got[i] = (char)img->rgb[3 * i];
                CHECK_MSG(!strcmp(got, e), "orientation %d (%s): got %s, expected %s", o, be ? "MM" : "II", got, e);
            }
            dsocr_image_free(img);
            free(b.data);
        }
    }
    /* Garbage EXIF is ignored like a missing tag. */
    CHECK_EQ_INT(ds_exif_orientation((const uint8_t *)"Exif\0\0garbage-garbage", 21), 0);
    CHECK_EQ_INT(ds_exif_orientation(NULL, 0), 0);
}

/* ---- JPEG --------------------------------------------------------------------- */

typedef struct jpeg_spec {
    int w, h, components, progressive, quality;
    J_COLOR_SPACE space;
    const uint8_t *pixels;
    const uint8_t *app1;
    size_t app1_len;
} jpeg_spec;

static membuf write_jpeg(const jpeg_spec *s) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    unsigned char *out = NULL;
    unsigned long outlen = 0;
    jpeg_mem_dest(&c, &out, &outlen);
    c.image_width = s->w;
    c.image_height = s->h;
    c.input_components = s->components;
    c.in_color_space = s->space;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, s->quality, TRUE);
    if (s->progressive) jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    if (s->app1) jpeg_write_marker(&c, JPEG_APP0 + 1, s->app1, (unsigned)s->app1_len);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)s->pixels + (size_t)c.next_scanline * s->w * s->components;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    membuf b = {0};
    mb_put(&b, out, outlen);
    free(out);
    return b;
}

/* Reference decode with plain libjpeg defaults (what Pillow runs). */
static uint8_t *libjpeg_decode(const membuf *b, J_COLOR_SPACE out_space, int *w, int *h) {
    struct jpeg_decompress_struct d;
    struct jpeg_error_mgr jerr;
    d.err = jpeg_std_error(&jerr);
    jpeg_create_decompress(&d);
    jpeg_mem_src(&d, b->data, b->size);
    jpeg_read_header(&d, TRUE);
    d.out_color_space = out_space;
    jpeg_start_decompress(&d);
    *w = (int)d.output_width;
    *h = (int)d.output_height;
    size_t stride = (size_t)d.output_width * d.output_components;
    uint8_t *pix = malloc(stride * d.output_height);
    while (d.output_scanline < d.output_height) {
        JSAMPROW row = pix + stride * d.output_scanline;
        jpeg_read_scanlines(&d, &row, 1);
    }
    jpeg_finish_decompress(&d);
    jpeg_destroy_decompress(&d);
    return pix;
}

static void test_jpeg(void) {
    enum { W = 33, H = 17 };
    uint8_t rgb[W * H * 3], gray[W * H], cmyk[W * H * 4];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = rgb + (y * W + x) * 3;
            p[0] = (uint8_t)(x * 7);
            p[1] = (uint8_t)(y * 15);
            p[2] = (uint8_t)((x + y) * 5);
            gray[y * W + x] = (uint8_t)(x * 7 + y);
            uint8_t *q = cmyk + (y * W + x) * 4;
            q[0] = (uint8_t)(255 - x * 3);
            q[1] = (uint8_t)(255 - y * 9);
            q[2] = 200;
            q[3] = (uint8_t)(x < 16 ? 255 : 180);
        }
    /* Baseline and progressive colour: identical to a default libjpeg decode, near the source. */
    for (int prog = 0; prog < 2; prog++) {
        jpeg_spec s = {W, H, 3, prog, 92, JCS_RGB, rgb, NULL, 0};
        membuf b = write_jpeg(&s);
        dsocr_error err;
        dsocr_image *img = load(&b, prog ? "prog.jpg" : "base.jpg", &err);
        CHECK_MSG(img != NULL, "%s", img ? "" : err.message);
        int w, h;
        uint8_t *ref = libjpeg_decode(&b, JCS_RGB, &w, &h);
        if (img) {
            CHECK(img->width == W && img->height == H);
            CHECK(memcmp(img->rgb, ref, sizeof rgb) == 0);
            int maxd = 0;
            for (size_t i = 0; i < sizeof rgb; i++) {
                int d = abs((int)img->rgb[i] - rgb[i]);
                if (d > maxd) maxd = d;
            }
            CHECK_MSG(maxd < 40, "jpeg error %d", maxd);
        }
        free(ref);
        dsocr_image_free(img);
        free(b.data);
    }
    /* Grayscale: L replicated. */
    {
        jpeg_spec s = {W, H, 1, 0, 95, JCS_GRAYSCALE, gray, NULL, 0};
        membuf b = write_jpeg(&s);
        dsocr_error err;
        dsocr_image *img = load(&b, "gray.jpg", &err);
        int w, h;
        uint8_t *ref = libjpeg_decode(&b, JCS_GRAYSCALE, &w, &h);
        CHECK(img != NULL);
        if (img) {
            int same = 1;
            for (int i = 0; i < W * H; i++) same &= is_rgb(img->rgb + 3 * i, ref[i], ref[i], ref[i]);
            CHECK(same);
        }
        free(ref);
        dsocr_image_free(img);
        free(b.data);
    }
    /* CMYK (libjpeg writes the Adobe marker): Pillow reads "CMYK;I" (inverted) and
     * converts with cmyk2rgb. The stored samples here are already inverted (Adobe
     * style), so stored 255 = no ink. Expected from the reference CMYK decode. */
    {
        jpeg_spec s = {W, H, 4, 0, 100, JCS_CMYK, cmyk, NULL, 0};
        membuf b = write_jpeg(&s);
        dsocr_error err;
        dsocr_image *img = load(&b, "cmyk.jpg", &err);
        CHECK_MSG(img != NULL, "%s", img ? "" : err.message);
        int w, h;
        uint8_t *ref = libjpeg_decode(&b, JCS_CMYK, &w, &h);
        if (img) {
            int same = 1;
            for (int i = 0; i < W * H; i++) {
                int k = 255 - ref[4 * i + 3], nk = 255 - k;
                for (int ch = 0; ch < 3; ch++) {
                    int c = 255 - ref[4 * i + ch], t = c * nk + 128;
                    int v = nk - (((t >> 8) + t) >> 8);
                    same &= img->rgb[3 * i + ch] == v;
                }
            }
            CHECK(same);
            /* Pixel (0,0): stored C=255 (no cyan), M=255, Y=200 (55 yellow), K=255 (no black)
             * -> about (255, 255, 200). */
            const uint8_t *p = px(img, 0, 0);
            CHECK_MSG(p[0] >= 250 && p[1] >= 250 && abs(p[2] - 200) <= 3, "cmyk px %d %d %d", p[0], p[1], p[2]);
        }
        free(ref);
        dsocr_image_free(img);
        free(b.data);
    }
    /* EXIF orientation 6 in APP1: left half red, right half blue; after the
     * clockwise rotation red is on top. */
    {
        enum { JW = 32, JH = 16 };
        uint8_t pix[JW * JH * 3];
        for (int i = 0; i < JW * JH; i++) {
            int left = (i % JW) < JW / 2;
            pix[3 * i] = left ? 255 : 0;
            pix[3 * i + 1] = 0;
            pix[3 * i + 2] = left ? 0 : 255;
        }
        uint8_t app1[64] = "Exif\0\0";
        size_t n = 6 + make_exif(app1 + 6, 6, 1);
        jpeg_spec s = {JW, JH, 3, 0, 95, JCS_RGB, pix, app1, n};
        membuf b = write_jpeg(&s);
        dsocr_error err;
        dsocr_image *img = load(&b, "exif6.jpg", &err);
        CHECK(img != NULL);
        if (img) {
            CHECK(img->width == JH && img->height == JW);
            const uint8_t *top = px(img, 8, 4), *bottom = px(img, 8, 28);
            CHECK(top[0] > 200 && top[2] < 60 && bottom[2] > 200 && bottom[0] < 60);
        }
        dsocr_image_free(img);
        free(b.data);
    }
}

/* ---- WebP ------------------------------------------------------------------------ */

static void test_webp(void) {
    enum { W = 9, H = 7 };
    uint8_t rgba[W * H * 4];
    uint64_t seed = 11;
    for (size_t i = 0; i < sizeof rgba; i++) rgba[i] = (uint8_t)tu_rand_u64(&seed);
    rgba[3] = 0;                               /* a fully transparent pixel keeps its colour */
    /* Lossless with exact=1, else libwebp rewrites the RGB under transparent pixels. */
    WebPConfig cfg;
    WebPConfigInit(&cfg);
    cfg.lossless = 1;
    cfg.exact = 1;
    WebPPicture pic;
    WebPPictureInit(&pic);
    pic.use_argb = 1;
    pic.width = W;
    pic.height = H;
    WebPMemoryWriter wr;
    WebPMemoryWriterInit(&wr);
    pic.writer = WebPMemoryWrite;
    pic.custom_ptr = &wr;
    CHECK(WebPPictureImportRGBA(&pic, rgba, W * 4) && WebPEncode(&cfg, &pic));
    WebPPictureFree(&pic);
    membuf b = {0};
    mb_put(&b, wr.mem, wr.size);
    WebPMemoryWriterClear(&wr);
    uint8_t *out = NULL;
    size_t n;
    dsocr_error err;
    dsocr_image *img = load(&b, "lossless.webp", &err);
    CHECK_MSG(img != NULL, "%s", img ? "" : err.message);
    if (img) {
        int same = 1;
        for (int i = 0; i < W * H; i++) same &= !memcmp(img->rgb + 3 * i, rgba + 4 * i, 3);
        CHECK(same);
    }
    dsocr_image_free(img);
    free(b.data);

    uint8_t rgb[W * H * 3];
    for (int i = 0; i < W * H; i++) memcpy(rgb + 3 * i, rgba + 4 * i, 3);
    n = WebPEncodeRGB(rgb, W, H, W * 3, 80, &out);
    CHECK(n > 0);
    b = (membuf){0};
    mb_put(&b, out, n);
    WebPFree(out);
    img = load(&b, "lossy.webp", &err);
    int w, h;
    uint8_t *ref = WebPDecodeRGB(b.data, b.size, &w, &h);
    CHECK(img != NULL && ref != NULL);
    if (img && ref) CHECK(memcmp(img->rgb, ref, sizeof rgb) == 0);
    WebPFree(ref);
    dsocr_image_free(img);
    free(b.data);
}

/* ---- BMP --------------------------------------------------------------------------- */

static void put16(membuf *b, uint32_t v) { uint8_t p[2] = {(uint8_t)v, (uint8_t)(v >> 8)}; mb_put(b, p, 2); }
static void put32(membuf *b, uint32_t v) {
    uint8_t p[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    mb_put(b, p, 4);
}

/* BITMAPINFOHEADER file; `extra` (palette or masks) before the pixel rows. */
static membuf bmp_file(int w, int h, int bits, uint32_t compression, const void *extra, size_t extra_len,
                       const void *pixels, size_t pix_len) {
    membuf b = {0};
    mb_put(&b, "BM", 2);
    put32(&b, (uint32_t)(54 + extra_len + pix_len));
    put32(&b, 0);
    put32(&b, (uint32_t)(54 + extra_len));
    put32(&b, 40);
    put32(&b, (uint32_t)w);
    put32(&b, (uint32_t)h);
    put16(&b, 1);
    put16(&b, (uint32_t)bits);
    put32(&b, compression);
    put32(&b, (uint32_t)pix_len);
    put32(&b, 2835);
    put32(&b, 2835);
    put32(&b, 0);
    put32(&b, 0);
    if (extra_len) mb_put(&b, extra, extra_len);
    mb_put(&b, pixels, pix_len);
    return b;
}

static void test_bmp(void) {
    dsocr_error err;
    /* 24-bit, bottom-up, rows padded to 4 bytes: 2x2 -> 8-byte rows. */
    const uint8_t p24[16] = {255, 0, 0, 0, 255, 0, 0, 0,          /* bottom row: blue, green (BGR) */
                             0, 0, 255, 10, 20, 30, 0, 0};        /* top row: red, (30,20,10) */
    membuf b = bmp_file(2, 2, 24, 0, NULL, 0, p24, sizeof p24);
    dsocr_image *img = load(&b, "t24.bmp", &err);
    CHECK_MSG(img != NULL, "%s", img ? "" : err.message);
    if (img)
        CHECK(is_rgb(px(img, 0, 0), 255, 0, 0) && is_rgb(px(img, 1, 0), 30, 20, 10) && is_rgb(px(img, 0, 1), 0, 0, 255) &&
              is_rgb(px(img, 1, 1), 0, 255, 0));
    dsocr_image_free(img);
    free(b.data);
    /* Top-down (negative height). */
    b = bmp_file(2, -2, 24, 0, NULL, 0, p24, sizeof p24);
    img = load(&b, "td.bmp", &err);
    if (img) CHECK(is_rgb(px(img, 0, 0), 0, 0, 255) && is_rgb(px(img, 0, 1), 255, 0, 0));
    CHECK(img != NULL);
    dsocr_image_free(img);
    free(b.data);
    /* 8-bit palette with 2 entries; index 9 reads the ramp. */
    const uint8_t pal[8] = {0, 0, 255, 0, 255, 0, 0, 0};           /* BGRX: red, blue */
    const uint8_t p8[4] = {0, 1, 9, 0};
    b = bmp_file(3, 1, 8, 0, pal, sizeof pal, p8, sizeof p8);
    b.data[46] = 2;                                                 /* biClrUsed = 2 */
    img = load(&b, "p8.bmp", &err);
    CHECK_MSG(img != NULL, "%s", img ? "" : err.message);
    if (img) CHECK(is_rgb(px(img, 0, 0), 255, 0, 0) && is_rgb(px(img, 1, 0), 0, 0, 255) && is_rgb(px(img, 2, 0), 9, 9, 9));
    dsocr_image_free(img);
    free(b.data);
    /* 32-bit BI_RGB: BGRX, the 4th byte ignored. */
    const uint8_t p32[8] = {1, 2, 3, 0, 4, 5, 6, 99};
    b = bmp_file(2, 1, 32, 0, NULL, 0, p32, sizeof p32);
    img = load(&b, "t32.bmp", &err);
    if (img) CHECK(is_rgb(px(img, 0, 0), 3, 2, 1) && is_rgb(px(img, 1, 0), 6, 5, 4));
    CHECK(img != NULL);
    dsocr_image_free(img);
    free(b.data);
    /* 16-bit: BI_RGB is 5-5-5; BITFIELDS 5-6-5. Each field -> v * 255 / max (truncating). */
    const uint8_t p16[4] = {0x1f | 0x20, 0x7c >> 0, 0, 0};          /* 0x7c3f: r=31 g=1 b=31 */
    b = bmp_file(1, 1, 16, 0, NULL, 0, p16, sizeof p16);
    img = load(&b, "t555.bmp", &err);
    if (img) CHECK(is_rgb(px(img, 0, 0), 255, 1 * 255 / 31, 255));
    CHECK(img != NULL);
    dsocr_image_free(img);
    free(b.data);
    const uint8_t masks[12] = {0x00, 0xf8, 0, 0, 0xe0, 0x07, 0, 0, 0x1f, 0, 0, 0};
    const uint8_t p565[4] = {0x2a, 0x51, 0, 0};                     /* 0x512a: r=10 g=9 b=10 */
    b = bmp_file(1, 1, 16, 3, masks, sizeof masks, p565, sizeof p565);
    img = load(&b, "t565.bmp", &err);
    CHECK_MSG(img != NULL, "%s", img ? "" : err.message);
    if (img) CHECK(is_rgb(px(img, 0, 0), 10 * 255 / 31, 9 * 255 / 63, 10 * 255 / 31));
    dsocr_image_free(img);
    free(b.data);
    /* RLE is refused clearly. */
    b = bmp_file(1, 1, 8, 1, pal, sizeof pal, p8, sizeof p8);
    CHECK(dsocr_image_load_memory(b.data, b.size, "rle.bmp", 0, &img, &err) == DSOCR_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, "rle.bmp") != NULL);
    free(b.data);
}

/* ---- GIF --------------------------------------------------------------------------- */

static int gif_write_mem(GifFileType *g, const GifByteType *d, int n) {
    mb_put(g->UserData, d, (size_t)n);
    return n;
}

static void test_gif(void) {
    membuf b = {0};
    int e;
    GifFileType *g = EGifOpen(&b, gif_write_mem, &e);
    GifColorType colors[4] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
    ColorMapObject *cm = GifMakeMapObject(4, colors);
    EGifSetGifVersion(g, true);
    EGifPutScreenDesc(g, 4, 3, 2, 0, cm);
    GraphicsControlBlock gcb = {.DisposalMode = 0, .UserInputFlag = false, .DelayTime = 0, .TransparentColor = 2};
    GifByteType ext[4];
    EGifGCBToExtension(&gcb, ext);
    EGifPutExtension(g, GRAPHICS_EXT_FUNC_CODE, 4, ext);
    /* A 2x2 frame at (1,1): the rest of the 4x3 canvas is the transparent index 2 (green). */
    EGifPutImageDesc(g, 1, 1, 2, 2, false, NULL);
    GifPixelType l1[2] = {1, 3}, l2[2] = {0, 1};
    EGifPutLine(g, l1, 2);
    EGifPutLine(g, l2, 2);
    EGifCloseFile(g, &e);
    GifFreeMapObject(cm);
    dsocr_error err;
    dsocr_image *img = load(&b, "t.gif", &err);
    CHECK_MSG(img != NULL, "%s", img ? "" : err.message);
    if (img) {
        CHECK(img->width == 4 && img->height == 3);
        CHECK(is_rgb(px(img, 0, 0), 0, 255, 0) && is_rgb(px(img, 1, 1), 255, 0, 0) && is_rgb(px(img, 2, 1), 0, 0, 255) &&
              is_rgb(px(img, 1, 2), 0, 0, 0) && is_rgb(px(img, 3, 2), 0, 255, 0));
    }
    dsocr_image_free(img);
    /* Every truncation fails cleanly. */
    int all_fail = 1;
    for (size_t n = 0; n + 1 < b.size; n++) {
        dsocr_image *t = NULL;
        if (dsocr_image_load_memory(b.data, n, "cut.gif", 0, &t, &err) == DSOCR_OK) {
            all_fail = 0;
            fprintf(stderr, "gif truncated to %zu bytes decoded\n", n);
        }
        dsocr_image_free(t);
    }
    CHECK(all_fail);
    free(b.data);
}

/* ---- TIFF -------------------------------------------------------------------------- */

static membuf write_tiff(int w, int h, int spp, int bps, int photometric, int orientation, const uint8_t *rows,
                         const uint16_t *cmap) {
    const char *dir = tu_tmpdir("image");
    char path[4200];
    snprintf(path, sizeof path, "%s/t.tif", dir);
    TIFF *t = TIFFOpen(path, "w");
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, w);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, h);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, spp);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, bps);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, photometric);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_LZW);
    TIFFSetField(t, TIFFTAG_ORIENTATION, orientation);
    if (spp == 4) {
        uint16_t extra = EXTRASAMPLE_UNASSALPHA;
        TIFFSetField(t, TIFFTAG_EXTRASAMPLES, 1, &extra);
    }
    if (cmap) TIFFSetField(t, TIFFTAG_COLORMAP, cmap, cmap + 256, cmap + 512);
    size_t rb = ((size_t)w * spp * bps + 7) / 8;
    for (int y = 0; y < h; y++) TIFFWriteScanline(t, (void *)(rows + rb * y), (uint32_t)y, 0);
    TIFFClose(t);
    membuf b = {0};
    b.data = (uint8_t *)tu_read_file(path, &b.size);
    return b;
}

static void test_tiff(void) {
    dsocr_error err;
    /* RGBA with unassociated alpha: RGB kept as stored (no premultiplication). */
    const uint8_t rgba[8] = {200, 100, 50, 0, 1, 2, 3, 255};
    membuf b = write_tiff(2, 1, 4, 8, PHOTOMETRIC_RGB, ORIENTATION_TOPLEFT, rgba, NULL);
    dsocr_image *img = load(&b, "rgba.tif", &err);
    CHECK_MSG(img != NULL, "%s", img ? "" : err.message);
    if (img) CHECK(is_rgb(px(img, 0, 0), 200, 100, 50) && is_rgb(px(img, 1, 0), 1, 2, 3));
    dsocr_image_free(img);
    free(b.data);
    /* MinIsWhite 8-bit gray is inverted; orientation tag 3 (180 degrees) applied. */
    const uint8_t g[2] = {0, 200};
    b = write_tiff(2, 1, 1, 8, PHOTOMETRIC_MINISWHITE, 3, g, NULL);
    img = load(&b, "gray.tif", &err);
    CHECK_MSG(img != NULL, "%s", img ? "" : err.message);
    if (img) CHECK(is_rgb(px(img, 0, 0), 55, 55, 55) && is_rgb(px(img, 1, 0), 255, 255, 255));
    dsocr_image_free(img);
    free(b.data);
    /* 1-bit bilevel (MinIsBlack) and an 8-bit palette (16-bit colormap >> 8). */
    const uint8_t bits[1] = {0x90};
    b = write_tiff(4, 1, 1, 1, PHOTOMETRIC_MINISBLACK, 1, bits, NULL);
    img = load(&b, "bw.tif", &err);
    if (img) CHECK(px(img, 0, 0)[0] == 255 && px(img, 1, 0)[0] == 0 && px(img, 3, 0)[0] == 255);
    CHECK(img != NULL);
    dsocr_image_free(img);
    free(b.data);
    uint16_t cmap[768] = {0};
    cmap[5] = 0xff00; cmap[256 + 5] = 0x1234; cmap[512 + 5] = 0x00ff;
    const uint8_t pi[1] = {5};
    b = write_tiff(1, 1, 1, 8, PHOTOMETRIC_PALETTE, 1, pi, cmap);
    img = load(&b, "pal.tif", &err);
    CHECK_MSG(img != NULL, "%s", img ? "" : err.message);
    if (img) CHECK(is_rgb(px(img, 0, 0), 0xff, 0x12, 0x00));
    dsocr_image_free(img);
    free(b.data);
}

/* ---- broken inputs ------------------------------------------------------------------ */

/* PNG chunk CRC (CRC-32, reflected, polynomial 0xedb88320). */
static uint32_t crc_of(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return c ^ 0xffffffffu;
}

static void expect_fail(const membuf *b, size_t n, const char *name, dsocr_status want) {
    dsocr_image *img = NULL;
    dsocr_error err = {0};
    dsocr_status s = dsocr_image_load_memory(b->data, n, name, 0, &img, &err);
    CHECK_MSG(s == want, "%s (%zu bytes): status %s, expected %s (%s)", name, n, dsocr_status_name(s),
              dsocr_status_name(want), err.message);
    CHECK(img == NULL);
    CHECK_MSG(s == DSOCR_OK || strstr(err.message, name) != NULL, "message does not name the file: %s", err.message);
    dsocr_image_free(img);
}

/* Valid tiny files of each format, then every way of breaking them. */
static void test_broken(void) {
    uint8_t rgb[8 * 8 * 3];
    for (size_t i = 0; i < sizeof rgb; i++) rgb[i] = (uint8_t)(i * 37);
    png_spec ps = {.w = 8, .h = 8, .bit_depth = 8, .color_type = PNG_COLOR_TYPE_RGB, .rows = rgb};
    membuf png = write_png(&ps);
    jpeg_spec js = {8, 8, 3, 1, 90, JCS_RGB, rgb, NULL, 0};
    membuf jpg = write_jpeg(&js);
    uint8_t *wout = NULL;
    size_t wn = WebPEncodeRGB(rgb, 8, 8, 24, 75, &wout);
    membuf webp = {0};
    mb_put(&webp, wout, wn);
    WebPFree(wout);

    /* Every proper prefix fails (no partial image treated as whole). */
    const membuf *files[3] = {&png, &jpg, &webp};
    const char *names[3] = {"cut.png", "cut.jpg", "cut.webp"};
    for (int f = 0; f < 3; f++) {
        int ok_count = 0;
        for (size_t n = 0; n < files[f]->size; n++) {
            dsocr_image *img = NULL;
            dsocr_error err;
            if (dsocr_image_load_memory(files[f]->data, n, names[f], 0, &img, &err) == DSOCR_OK) {
                /* A PNG cut inside or after IEND (nothing pixel-related missing) may load. */
                if (!(f == 0 && n >= files[f]->size - 12)) ok_count++;
            } else {
                CHECK_MSG(strstr(err.message, names[f]) != NULL, "%s", err.message);
            }
            dsocr_image_free(img);
        }
        CHECK_MSG(ok_count == 0, "%s: %d truncated lengths decoded", names[f], ok_count);
    }

    /* Wrong magic, empty input. */
    membuf junk = {0};
    mb_put(&junk, "hello, not an image", 19);
    expect_fail(&junk, junk.size, "junk.png", DSOCR_ERR_UNSUPPORTED);
    expect_fail(&junk, 0, "empty.png", DSOCR_ERR_FORMAT);

    /* Huge declared PNG size (100000 x 100000, valid CRC): refused before allocating. */
    membuf huge = {0};
    mb_put(&huge, png.data, png.size);
    const uint8_t dims[8] = {0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0};
    memcpy(huge.data + 16, dims, 8);
    uint32_t crc = crc_of(huge.data + 12, 17);
    uint8_t cb[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc};
    memcpy(huge.data + 29, cb, 4);
    expect_fail(&huge, huge.size, "huge.png", DSOCR_ERR_LIMIT);
    /* Zero width. */
    memset(huge.data + 16, 0, 4);
    crc = crc_of(huge.data + 12, 17);
    uint8_t cz[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc};
    memcpy(huge.data + 29, cz, 4);
    expect_fail(&huge, huge.size, "zero.png", DSOCR_ERR_FORMAT);
    free(huge.data);

    /* Huge JPEG: SOF dimensions patched to 65000 x 65000. */
    membuf hj = {0};
    mb_put(&hj, jpg.data, jpg.size);
    for (size_t i = 2; i + 9 < hj.size; i++) {
        if (hj.data[i] == 0xff && (hj.data[i + 1] == 0xc0 || hj.data[i + 1] == 0xc2)) {
            hj.data[i + 5] = 0xfd; hj.data[i + 6] = 0xe8;   /* height 65000 */
            hj.data[i + 7] = 0xfd; hj.data[i + 8] = 0xe8;   /* width 65000 */
            break;
        }
    }
    expect_fail(&hj, hj.size, "huge.jpg", DSOCR_ERR_LIMIT);
    free(hj.data);

    /* The caller's pixel limit: 8x8 = 64 pixels. */
    dsocr_image *img = NULL;
    dsocr_error err;
    CHECK(dsocr_image_load_memory(png.data, png.size, "lim.png", 63, &img, &err) == DSOCR_ERR_LIMIT);
    CHECK(strstr(err.message, "lim.png") && strstr(err.message, "8x8"));
    CHECK(dsocr_image_load_memory(png.data, png.size, "lim.png", 64, &img, &err) == DSOCR_OK);
    dsocr_image_free(img);

    /* Corrupt IDAT (CRC mismatch) and random mutations: errors or images, never crashes. */
    membuf bad = {0};
    mb_put(&bad, png.data, png.size);
    bad.data[png.size - 20] ^= 0x55;
    expect_fail(&bad, bad.size, "crc.png", DSOCR_ERR_FORMAT);
    free(bad.data);
    uint64_t seed = 99;
    int decoded = 0, failed = 0;
    for (int f = 0; f < 3; f++) {
        for (int it = 0; it < 150; it++) {
            membuf m = {0};
            mb_put(&m, files[f]->data, files[f]->size);
            int flips = 1 + (int)(tu_rand_u64(&seed) % 4);
            for (int k = 0; k < flips; k++) m.data[tu_rand_u64(&seed) % m.size] ^= (uint8_t)(1 + tu_rand_u64(&seed) % 255);
            dsocr_image *t = NULL;
            if (dsocr_image_load_memory(m.data, m.size, "fuzz", 0, &t, &err) == DSOCR_OK) {
                decoded++;
                CHECK(t->width > 0 && t->height > 0 && (size_t)t->width * t->height <= 1u << 20);
            } else {
                failed++;
            }
            dsocr_image_free(t);
            free(m.data);
        }
    }
    printf("mutations: %d decoded, %d rejected\n", decoded, failed);

    /* The committed corpus: every file is rejected with a message naming it. */
    const char *dir = tu_source("tests/data/images/broken");
    DIR *d = opendir(dir);
    CHECK_MSG(d != NULL, "%s", dir);
    int n_files = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        dsocr_image *t = NULL;
        dsocr_status s = dsocr_image_load_file(path, 0, &t, &err);
        CHECK_MSG(s != DSOCR_OK && t == NULL, "%s was accepted", de->d_name);
        CHECK_MSG(s == DSOCR_OK || strstr(err.message, de->d_name), "%s", err.message);
        printf("  %-24s -> %s: %s\n", de->d_name, dsocr_status_name(s), err.message);
        dsocr_image_free(t);
        n_files++;
    }
    if (d) closedir(d);
    CHECK(n_files >= 8);

    CHECK(dsocr_image_load_file("/nonexistent/x.png", 0, &img, &err) == DSOCR_ERR_IO);
    CHECK(strstr(err.message, "/nonexistent/x.png") != NULL);
    free(png.data);
    free(jpg.data);
    free(webp.data);
    free(junk.data);
}

static void test_api(void) {
    const uint8_t rgb[6] = {1, 2, 3, 4, 5, 6};
    dsocr_image *img;
    dsocr_error err;
    CHECK(dsocr_image_from_rgb(rgb, 2, 1, &img, &err) == DSOCR_OK);
    CHECK(dsocr_image_width(img) == 2 && dsocr_image_height(img) == 1);
    CHECK(memcmp(dsocr_image_pixels(img), rgb, 6) == 0);
    dsocr_image_free(img);
    CHECK(dsocr_image_from_rgb(rgb, 0, 1, &img, &err) != DSOCR_OK && img == NULL);
    CHECK(dsocr_image_from_rgb(NULL, 1, 1, &img, &err) == DSOCR_ERR_INVALID_ARG);
    CHECK(dsocr_image_load_memory(NULL, 5, "x", 0, &img, &err) == DSOCR_ERR_INVALID_ARG);
    dsocr_image_free(NULL);
    CHECK(dsocr_image_width(NULL) == 0);
    /* Errors without an error struct still return the code. */
    CHECK(dsocr_image_load_memory("abc", 3, "x", 0, &img, NULL) == DSOCR_ERR_UNSUPPORTED);
}

int main(void) {
    test_png_layouts();
    test_exif_png();
    test_jpeg();
    test_webp();
    test_bmp();
    test_gif();
    test_tiff();
    test_broken();
    test_api();
    return tu_done("test_image_decode");
}
