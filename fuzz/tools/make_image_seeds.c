/* Writes the tiny image seeds of fuzz/corpus/image (run once; the output is committed):
 *   gcc -O1 -o /tmp/mkseeds fuzz/tools/make_image_seeds.c $(pkg-config --cflags --libs libpng libjpeg libwebp libtiff-4) -lgif
 *   /tmp/mkseeds fuzz/corpus/image
 * Each format in several layouts (bit depths, palettes, alpha, interlace, progressive,
 * subsampling, EXIF orientation, compression), every file a few hundred bytes. */
#include <stdint.h>
#include <stdio.h>

#include <gif_lib.h>
#include <jpeglib.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>
#include <webp/encode.h>

static const char *out_dir;
static uint8_t rgba[16 * 16 * 4];

typedef struct membuf { uint8_t *data; size_t size, cap; } membuf;
static void mb_put(membuf *b, const void *d, size_t n) {
    if (b->size + n > b->cap) {
        b->cap = (b->size + n) * 2;
        b->data = realloc(b->data, b->cap);
    }
    memcpy(b->data + b->size, d, n);
    b->size += n;
}
static void save(const char *name, const void *d, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", out_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(d, 1, n, f) != n || fclose(f)) { perror(path); exit(1); }
}

/* "Exif\0\0" + little-endian TIFF with one IFD0 entry: Orientation = o. */
static size_t make_exif(uint8_t *out, int o, int with_header) {
    static const uint8_t tiff[] = {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    size_t n = 0;
    if (with_header) { memcpy(out, "Exif\0\0", 6); n = 6; }
    memcpy(out + n, tiff, sizeof tiff);
    out[n + 18] = (uint8_t)o;
    return n + sizeof tiff;
}

static void png_put(png_structp p, png_bytep d, size_t n) { mb_put(png_get_io_ptr(p), d, n); }
static void png_flush(png_structp p) { (void)p; }
static void write_png(const char *name, int w, int h, int depth, int ctype, int interlace, int exif_o) {
    membuf b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) exit(1);
    png_set_write_fn(png, &b, png_put, png_flush);
    png_set_IHDR(png, info, w, h, depth, ctype, interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_color pal[4] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {9, 9, 9}};
    uint8_t trns[2] = {0, 128};
    if (ctype == PNG_COLOR_TYPE_PALETTE) { png_set_PLTE(png, info, pal, 4); png_set_tRNS(png, info, trns, 2, NULL); }
    uint8_t exif[64];
    if (exif_o) png_set_eXIf_1(png, info, (png_uint_32)make_exif(exif, exif_o, 0), exif);
    png_write_info(png, info);
    int passes = png_set_interlace_handling(png);
    size_t rb = png_get_rowbytes(png, info);
    uint8_t *row = malloc(rb);
    for (int pass = 0; pass < passes; pass++)
        for (int y = 0; y < h; y++) {
            for (size_t i = 0; i < rb; i++) row[i] = ctype == PNG_COLOR_TYPE_PALETTE ? (uint8_t)((i + y) % 4 * (depth == 8)) : rgba[(y * rb + i) % sizeof rgba];
            png_write_row(png, row);
        }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(row);
    save(name, b.data, b.size);
    free(b.data);
}

static void write_jpeg(const char *name, int w, int h, int comps, J_COLOR_SPACE cs, int progressive, int sub, int exif_o) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    unsigned char *mem = NULL;
    unsigned long n = 0;
    jpeg_mem_dest(&c, &mem, &n);
    c.image_width = w; c.image_height = h; c.input_components = comps; c.in_color_space = cs;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 50, TRUE);
    if (progressive) jpeg_simple_progression(&c);
    if (comps == 3 && !sub) for (int i = 0; i < 3; i++) c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
    jpeg_start_compress(&c, TRUE);
    if (exif_o) { uint8_t ex[64]; jpeg_write_marker(&c, JPEG_APP0 + 1, ex, (unsigned)make_exif(ex, exif_o, 1)); }
    uint8_t row[16 * 4];
    while (c.next_scanline < c.image_height) {
        for (int i = 0; i < w * comps; i++) row[i] = rgba[(c.next_scanline * 7 + i * 13) % sizeof rgba];
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    save(name, mem, n);
    free(mem);
}

static int gif_put(GifFileType *g, const GifByteType *d, int n) { mb_put(g->UserData, d, (size_t)n); return n; }
static void write_gif(const char *name, int w, int h, int frames, int interlace, int transparent) {
    membuf b = {0};
    int err;
    GifFileType *g = EGifOpen(&b, gif_put, &err);
    GifColorType cols[4] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}};
    ColorMapObject *cm = GifMakeMapObject(4, cols);
    EGifPutScreenDesc(g, w, h, 2, 3, cm);
    for (int f = 0; f < frames; f++) {
        if (transparent) {
            GraphicsControlBlock gcb = {.DisposalMode = DISPOSAL_UNSPECIFIED, .DelayTime = 1, .TransparentColor = 3};
            GifByteType ext[4];
            EGifGCBToExtension(&gcb, ext);
            EGifPutExtension(g, GRAPHICS_EXT_FUNC_CODE, 4, ext);
        }
        int fw = f ? w / 2 : w, fh = f ? h / 2 : h;
        EGifPutImageDesc(g, f, f, fw, fh, interlace, f ? cm : NULL);
        GifPixelType line[64];
        for (int y = 0; y < fh; y++) {
            for (int x = 0; x < fw; x++) line[x] = (GifPixelType)((x + y + f) % 4);
            EGifPutLine(g, line, fw);
        }
    }
    EGifCloseFile(g, &err);
    GifFreeMapObject(cm);
    save(name, b.data, b.size);
    free(b.data);
}

static void write_tiff(const char *name, int w, int h, int spp, int bps, int photometric, int compression, int tiled,
                       int orientation) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", out_dir, name);
    TIFF *t = TIFFOpen(path, "w");
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, w);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, h);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, spp);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, bps);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, photometric);
    TIFFSetField(t, TIFFTAG_COMPRESSION, compression);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    if (orientation) TIFFSetField(t, TIFFTAG_ORIENTATION, orientation);
    if (spp == 4) { uint16_t extra = EXTRASAMPLE_ASSOCALPHA; TIFFSetField(t, TIFFTAG_EXTRASAMPLES, 1, &extra); }
    if (photometric == PHOTOMETRIC_PALETTE) {
        uint16_t r[256], g[256], bl[256];
        for (int i = 0; i < 256; i++) { r[i] = (uint16_t)(i * 257); g[i] = (uint16_t)(65535 - i * 257); bl[i] = 4096; }
        TIFFSetField(t, TIFFTAG_COLORMAP, r, g, bl);
    }
    uint8_t buf[16 * 16 * 8];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = rgba[i % sizeof rgba];
    if (tiled) {
        TIFFSetField(t, TIFFTAG_TILEWIDTH, 16);
        TIFFSetField(t, TIFFTAG_TILELENGTH, 16);
        TIFFWriteTile(t, buf, 0, 0, 0, 0);
    } else {
        TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 2);
        for (int y = 0; y < h; y++) TIFFWriteScanline(t, buf + y * 16, (uint32_t)y, 0);
    }
    TIFFClose(t);
}

static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v & 0xffff); put16(p + 2, v >> 16); }
/* BITMAPINFOHEADER files: bpp 1/4/8 (palette), 24, 32 (BI_BITFIELDS); h < 0 = top-down; rle8. */
static void write_bmp(const char *name, int w, int h, int bpp, int rle8) {
    uint8_t f[2048] = {0};
    int ncol = bpp <= 8 ? 1 << bpp : 0;
    int masks = bpp == 32 ? 12 : 0;
    uint32_t off = 14 + 40 + masks + ncol * 4;
    int ah = h < 0 ? -h : h;
    size_t stride = ((size_t)w * bpp + 31) / 32 * 4;
    uint8_t *px = f + off;
    size_t img;
    if (rle8) {
        size_t k = 0;
        for (int y = 0; y < ah; y++) { px[k++] = (uint8_t)w; px[k++] = (uint8_t)y; px[k++] = 0; px[k++] = 0; }
        px[k++] = 0; px[k++] = 1;
        img = k;
    } else {
        img = stride * ah;
        for (size_t i = 0; i < img; i++) px[i] = rgba[i % sizeof rgba];
    }
    f[0] = 'B'; f[1] = 'M';
    put32(f + 2, (uint32_t)(off + img));
    put32(f + 10, off);
    put32(f + 14, 40);
    put32(f + 18, (uint32_t)w);
    put32(f + 22, (uint32_t)h);
    put16(f + 26, 1);
    put16(f + 28, (unsigned)bpp);
    put32(f + 30, rle8 ? 1 : bpp == 32 ? 3 : 0);
    put32(f + 34, (uint32_t)img);
    put32(f + 46, (uint32_t)ncol);
    if (masks) { put32(f + 54, 0x00ff0000); put32(f + 58, 0x0000ff00); put32(f + 62, 0x000000ff); }
    for (int i = 0; i < ncol; i++) { uint8_t *c = f + 54 + masks + 4 * i; c[0] = (uint8_t)(i * 40); c[1] = (uint8_t)(255 - i); c[2] = (uint8_t)(i * 7); }
    save(name, f, off + img);
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    out_dir = argv[1];
    for (size_t i = 0; i < sizeof rgba; i++) rgba[i] = (uint8_t)(i * 37 + (i >> 4) * 11);
    write_png("rgb8.png", 8, 8, 8, PNG_COLOR_TYPE_RGB, 0, 0);
    write_png("rgba_adam7.png", 9, 7, 8, PNG_COLOR_TYPE_RGBA, 1, 0);
    write_png("gray1.png", 9, 3, 1, PNG_COLOR_TYPE_GRAY, 0, 0);
    write_png("graya16.png", 3, 3, 16, PNG_COLOR_TYPE_GRAY_ALPHA, 0, 0);
    write_png("rgb16_exif6.png", 3, 2, 16, PNG_COLOR_TYPE_RGB, 0, 6);
    write_png("palette_trns.png", 5, 4, 8, PNG_COLOR_TYPE_PALETTE, 0, 0);
    write_png("palette2.png", 6, 3, 2, PNG_COLOR_TYPE_PALETTE, 1, 3);
    write_jpeg("rgb444.jpg", 8, 8, 3, JCS_RGB, 0, 0, 0);
    write_jpeg("ycc420_exif6.jpg", 17, 9, 3, JCS_RGB, 0, 1, 6);
    write_jpeg("progressive.jpg", 12, 10, 3, JCS_RGB, 1, 1, 8);
    write_jpeg("gray.jpg", 9, 9, 1, JCS_GRAYSCALE, 0, 0, 0);
    write_jpeg("cmyk.jpg", 8, 8, 4, JCS_CMYK, 0, 0, 0);
    uint8_t *w = NULL;
    size_t n = WebPEncodeRGB(rgba, 8, 8, 24, 50, &w); save("lossy.webp", w, n); WebPFree(w);
    n = WebPEncodeLosslessRGBA(rgba, 6, 5, 24, &w); save("lossless_alpha.webp", w, n); WebPFree(w);
    n = WebPEncodeRGBA(rgba, 7, 3, 28, 30, &w); save("lossy_alpha.webp", w, n); WebPFree(w);
    write_bmp("rgb24.bmp", 3, 2, 24, 0);
    write_bmp("topdown24.bmp", 5, -3, 24, 0);
    write_bmp("pal8.bmp", 4, 4, 8, 0);
    write_bmp("pal4.bmp", 7, 3, 4, 0);
    write_bmp("mono1.bmp", 9, 2, 1, 0);
    write_bmp("bitfields32.bmp", 3, 3, 32, 0);
    write_bmp("rle8.bmp", 6, 3, 8, 1);
    write_gif("still.gif", 8, 6, 1, 0, 0);
    write_gif("anim_trans.gif", 10, 8, 2, 0, 1);
    write_gif("interlaced.gif", 5, 9, 1, 1, 0);
    write_tiff("rgb_none.tif", 4, 3, 3, 8, PHOTOMETRIC_RGB, COMPRESSION_NONE, 0, 0);
    write_tiff("rgba_lzw_orient6.tif", 4, 4, 4, 8, PHOTOMETRIC_RGB, COMPRESSION_LZW, 0, 6);
    write_tiff("gray16_deflate.tif", 5, 3, 1, 16, PHOTOMETRIC_MINISBLACK, COMPRESSION_ADOBE_DEFLATE, 0, 0);
    write_tiff("palette_packbits.tif", 6, 2, 1, 8, PHOTOMETRIC_PALETTE, COMPRESSION_PACKBITS, 0, 0);
    write_tiff("bilevel_tiled.tif", 16, 16, 1, 1, PHOTOMETRIC_MINISWHITE, COMPRESSION_NONE, 1, 0);
    return 0;
}
