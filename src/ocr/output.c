/* Output directory: atomic writes, PNG/JPEG encoding, box overlay, figure crops,
 * result.mmd / result_ori.mmd / result.json. See output.h for the layout. */
#include "ocr/output.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdio.h>   /* before jpeglib.h, which uses FILE */
#include <jpeglib.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/status.h"
#include "ocr/markdown.h"

const char *ds_finish_name(dsocr_finish f) {
    switch (f) {
    case DSOCR_FINISH_STOP: return "stop";
    case DSOCR_FINISH_LENGTH: return "length";
    case DSOCR_FINISH_LOOP: return "loop";
    }
    return "unknown";
}

const char *ds_mode_name(dsocr_mode m) {
    switch (m) {
    case DSOCR_MODE_TINY: return "tiny";
    case DSOCR_MODE_SMALL: return "small";
    case DSOCR_MODE_BASE: return "base";
    case DSOCR_MODE_LARGE: return "large";
    case DSOCR_MODE_GUNDAM: return "gundam";
    }
    return "unknown";
}

/* ---- files ------------------------------------------------------------------------ */

static int name_char_ok(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
}

int ds_output_name_ok(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n > 255) return 0;
    int at_start = 1;   /* at the start of a component */
    for (size_t i = 0; i < n; i++) {
        if (name[i] == '/') {
            if (at_start) return 0;   /* leading '/' or empty component */
            at_start = 1;
            continue;
        }
        if (!name_char_ok(name[i]) || (at_start && name[i] == '.')) return 0;   /* ".", "..", hidden */
        at_start = 0;
    }
    return !at_start;
}

void ds_output_sanitize(const char *in, char *out, size_t size) {
    if (size == 0) return;
    size_t w = 0;
    for (size_t i = 0; in && in[i] && w + 1 < size; i++) out[w++] = name_char_ok(in[i]) ? in[i] : '_';
    if (w > 0 && out[0] == '.') out[0] = '_';
    if (w == 0 && size > 1) out[w++] = '_';
    out[w] = 0;
}

dsocr_status ds_write_atomic(const char *dir, const char *name, const void *data, size_t size,
                             dsocr_error *err) {
    if (!ds_output_name_ok(name))
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "refusing to write \"%s\" in %s: not a plain relative name", name, dir);
    char path[4096], tmp[4200];
    const char *slash = strrchr(name, '/');
    int n1 = snprintf(path, sizeof path, "%s/%s", dir, name);
    int n2 = slash ? snprintf(tmp, sizeof tmp, "%s/%.*s/.%s.tmp-%ld", dir, (int)(slash - name), name, slash + 1, (long)getpid())
                   : snprintf(tmp, sizeof tmp, "%s/.%s.tmp-%ld", dir, name, (long)getpid());
    if (n1 < 0 || n1 >= (int)sizeof path || n2 < 0 || n2 >= (int)sizeof tmp)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "output path too long: %s/%s", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return ds_fail(err, DSOCR_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = size;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return ds_fail(err, DSOCR_ERR_IO, "cannot write %s (%zu of %zu bytes written): %s", tmp, size - left, size,
                           strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return ds_fail(err, DSOCR_ERR_IO, "cannot flush %s: %s", tmp, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return ds_fail(err, DSOCR_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(e));
    }
    return DSOCR_OK;
}

/* ---- growing byte buffer ------------------------------------------------------------- */

typedef struct buf {
    char *data;
    size_t len, cap;
    int oom;
} buf;

static void buf_add(buf *b, const void *p, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 4096;
        while (ncap < b->len + n + 1) ncap *= 2;
        char *nd = realloc(b->data, ncap);
        if (!nd) { b->oom = 1; return; }
        b->data = nd;
        b->cap = ncap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

/* ---- PNG and JPEG encoders --------------------------------------------------------- */

static void png_write_to_buf(png_structp png, png_bytep data, png_size_t n) {
    buf_add(png_get_io_ptr(png), data, n);
}
static void png_flush_nop(png_structp png) { (void)png; }
static void png_error_jump(png_structp png, png_const_charp msg) {
    char *slot = png_get_error_ptr(png);
    snprintf(slot, 200, "%s", msg);
    png_longjmp(png, 1);
}
static void png_warning_quiet(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

dsocr_status ds_encode_png(const uint8_t *rgb, int width, int height, uint8_t **out, size_t *size,
                           dsocr_error *err) {
    *out = NULL;
    *size = 0;
    if (!rgb || width <= 0 || height <= 0)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "png: bad image %dx%d", width, height);
    /* everything the error path touches lives on the heap: locals changed between
     * setjmp and longjmp would be indeterminate */
    buf *b = calloc(1, sizeof *b);
    char *msg = calloc(1, 200);
    png_structp png = b && msg ? png_create_write_struct(PNG_LIBPNG_VER_STRING, msg, png_error_jump, png_warning_quiet)
                               : NULL;
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, NULL);
        free(b);
        free(msg);
        return ds_fail(err, DSOCR_ERR_NOMEM, "png: out of memory for %dx%d", width, height);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        ds_fail(err, DSOCR_ERR_INTERNAL, "png: encoding %dx%d failed: %s", width, height, msg);
        free(b->data);
        free(b);
        free(msg);
        return DSOCR_ERR_INTERNAL;
    }
    png_set_write_fn(png, b, png_write_to_buf, png_flush_nop);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, 6);
    png_write_info(png, info);
    for (int y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(rgb + (size_t)y * width * 3));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    buf result = *b;
    free(b);
    free(msg);
    if (result.oom) {
        free(result.data);
        return ds_fail(err, DSOCR_ERR_NOMEM, "png: out of memory encoding %dx%d", width, height);
    }
    *out = (uint8_t *)result.data;
    *size = result.len;
    return DSOCR_OK;
}

typedef struct jpeg_error_jump {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
} jpeg_error_jump;

static void jpeg_error_exit_jump(j_common_ptr cinfo) { longjmp(((jpeg_error_jump *)cinfo->err)->jump, 1); }
static void jpeg_output_quiet(j_common_ptr cinfo) { (void)cinfo; }

/* A libjpeg destination that writes into our growing buffer, in 16 KiB steps. */
typedef struct jpeg_buf_dest {
    struct jpeg_destination_mgr mgr;
    buf out;
    JOCTET chunk[16384];
} jpeg_buf_dest;

static void jpeg_dest_init(j_compress_ptr cinfo) {
    jpeg_buf_dest *d = (jpeg_buf_dest *)cinfo->dest;
    d->mgr.next_output_byte = d->chunk;
    d->mgr.free_in_buffer = sizeof d->chunk;
}
static boolean jpeg_dest_empty(j_compress_ptr cinfo) {
    jpeg_buf_dest *d = (jpeg_buf_dest *)cinfo->dest;
    buf_add(&d->out, d->chunk, sizeof d->chunk);   /* called when the whole chunk is full */
    d->mgr.next_output_byte = d->chunk;
    d->mgr.free_in_buffer = sizeof d->chunk;
    return TRUE;
}
static void jpeg_dest_term(j_compress_ptr cinfo) {
    jpeg_buf_dest *d = (jpeg_buf_dest *)cinfo->dest;
    buf_add(&d->out, d->chunk, sizeof d->chunk - d->mgr.free_in_buffer);
}

dsocr_status ds_encode_jpeg(const uint8_t *rgb, int width, int height, int quality, uint8_t **out,
                            size_t *size, dsocr_error *err) {
    *out = NULL;
    *size = 0;
    if (!rgb || width <= 0 || height <= 0 || width > 65500 || height > 65500)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "jpeg: bad image %dx%d (1..65500 per side)", width, height);
    jpeg_buf_dest *dest = calloc(1, sizeof *dest);
    if (!dest) return ds_fail(err, DSOCR_ERR_NOMEM, "jpeg: out of memory");
    dest->mgr.init_destination = jpeg_dest_init;
    dest->mgr.empty_output_buffer = jpeg_dest_empty;
    dest->mgr.term_destination = jpeg_dest_term;
    struct jpeg_compress_struct cinfo;
    jpeg_error_jump jerr;
    cinfo.err = jpeg_std_error(&jerr.mgr);
    jerr.mgr.error_exit = jpeg_error_exit_jump;
    jerr.mgr.output_message = jpeg_output_quiet;
    if (setjmp(jerr.jump)) {
        char msg[JMSG_LENGTH_MAX];
        jerr.mgr.format_message((j_common_ptr)&cinfo, msg);
        jpeg_destroy_compress(&cinfo);
        free(dest->out.data);
        free(dest);
        return ds_fail(err, DSOCR_ERR_INTERNAL, "jpeg: encoding %dx%d failed: %s", width, height, msg);
    }
    jpeg_create_compress(&cinfo);
    cinfo.dest = &dest->mgr;
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)cinfo.next_scanline * width * 3);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    buf result = dest->out;
    free(dest);
    if (result.oom) {
        free(result.data);
        return ds_fail(err, DSOCR_ERR_NOMEM, "jpeg: out of memory encoding %dx%d", width, height);
    }
    *out = (uint8_t *)result.data;
    *size = result.len;
    return DSOCR_OK;
}

/* ---- overlay and crops ------------------------------------------------------------- */

uint32_t ds_label_color(const char *label) {
    /* distinct, readable on white; index by FNV-1a of the label */
    static const uint32_t palette[12] = {0xe6194b, 0x3cb44b, 0x4363d8, 0xf58231, 0x911eb4, 0x46a0a0,
                                         0xc0329b, 0x808000, 0x9a6324, 0x800000, 0x000075, 0x2f4f4f};
    uint32_t h = 2166136261u;
    for (const char *s = label ? label : ""; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return palette[h % 12];
}

static void blend_px(uint8_t *p, uint32_t color, int alpha) {
    int c[3] = {(int)(color >> 16) & 255, (int)(color >> 8) & 255, (int)color & 255};
    for (int k = 0; k < 3; k++) p[k] = (uint8_t)((p[k] * (255 - alpha) + c[k] * alpha + 127) / 255);
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* PIL's rectangle([x1, y1, x2, y2]) covers x1..x2 inclusive; the outline grows inward. */
static void draw_box(uint8_t *rgb, int width, int height, const int box[4], uint32_t color, int line) {
    int x1 = box[0], y1 = box[1], x2 = box[2], y2 = box[3];
    if (x2 < x1 || y2 < y1) return;
    int cx1 = clampi(x1, 0, width - 1), cx2 = clampi(x2, 0, width - 1);
    int cy1 = clampi(y1, 0, height - 1), cy2 = clampi(y2, 0, height - 1);
    if (x1 > width - 1 || y1 > height - 1 || x2 < 0 || y2 < 0) return;
    for (int y = cy1; y <= cy2; y++) {
        for (int x = cx1; x <= cx2; x++) {
            uint8_t *p = rgb + ((size_t)y * width + x) * 3;
            int edge = x - x1 < line || x2 - x < line || y - y1 < line || y2 - y < line;
            if (edge) {
                p[0] = (uint8_t)(color >> 16);
                p[1] = (uint8_t)(color >> 8);
                p[2] = (uint8_t)color;
            } else {
                blend_px(p, color, 20);
            }
        }
    }
}

void ds_draw_boxes(uint8_t *rgb, int width, int height, const ds_grounding *g) {
    for (int i = 0; i < g->n_blocks; i++) {
        const ds_ground_block *b = &g->blocks[i];
        if (!b->det_ok) continue;
        uint32_t color = ds_label_color(b->label);
        int line = strcmp(b->label, "title") == 0 ? 4 : 2;
        for (int k = 0; k < b->n_boxes; k++) draw_box(rgb, width, height, b->boxes[k].px, color, line);
    }
}

int ds_crop_rgb(const uint8_t *rgb, int width, int height, const int box[4], uint8_t **out, int *out_w,
                int *out_h) {
    *out = NULL;
    int x1 = clampi(box[0], 0, width), x2 = clampi(box[2], 0, width);
    int y1 = clampi(box[1], 0, height), y2 = clampi(box[3], 0, height);
    if (x2 <= x1 || y2 <= y1) return 0;
    int w = x2 - x1, h = y2 - y1;
    uint8_t *c = malloc((size_t)w * h * 3);
    if (!c) return -1;
    for (int y = 0; y < h; y++) memcpy(c + (size_t)y * w * 3, rgb + ((size_t)(y1 + y) * width + x1) * 3, (size_t)w * 3);
    *out = c;
    *out_w = w;
    *out_h = h;
    return 1;
}

/* ---- the run ----------------------------------------------------------------------- */

struct ds_output {
    char *dir;
    char *source;
    int is_pdf;
    ds_output_options opts;
    int images_dir_made;
    buf markdown, raw;
    cJSON *pages;   /* array */
    int n_pages, n_stop, n_length, n_loop;
    long n_tokens;
    char first_loop[256];
};

ds_output_options ds_output_default_options(void) {
    ds_output_options o = {.write_overlay = 1, .write_crops = 1, .jpeg_quality = 90};
    return o;
}

dsocr_status ds_output_open(const char *dir, const char *source, int is_pdf, const ds_output_options *opts,
                            ds_output **out, dsocr_error *err) {
    *out = NULL;
    if (!dir || !*dir) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "output: empty directory name");
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return ds_fail(err, DSOCR_ERR_IO, "cannot create output directory %s: %s", dir, strerror(errno));
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return ds_fail(err, DSOCR_ERR_IO, "output path %s is not a directory", dir);
    ds_output *o = calloc(1, sizeof *o);
    if (!o) return ds_fail(err, DSOCR_ERR_NOMEM, "output: out of memory");
    o->dir = strdup(dir);
    o->source = strdup(source ? source : "");
    o->is_pdf = is_pdf;
    o->opts = opts ? *opts : ds_output_default_options();
    if (o->opts.jpeg_quality < 1 || o->opts.jpeg_quality > 100) o->opts.jpeg_quality = 90;
    o->pages = cJSON_CreateArray();
    if (!o->dir || !o->source || !o->pages) {
        ds_output_free(o);
        return ds_fail(err, DSOCR_ERR_NOMEM, "output: out of memory");
    }
    *out = o;
    return DSOCR_OK;
}

void ds_output_free(ds_output *o) {
    if (!o) return;
    free(o->dir);
    free(o->source);
    free(o->markdown.data);
    free(o->raw.data);
    cJSON_Delete(o->pages);
    free(o);
}

const char *ds_output_markdown(const ds_output *o, size_t *len) {
    if (len) *len = o->markdown.len;
    return o->markdown.data ? o->markdown.data : "";
}

static dsocr_status write_crops(ds_output *o, const ds_page_output *pg, const char *text, const ds_grounding *g,
                                cJSON *files, dsocr_error *err) {
    int idx = -1;
    for (int i = 0; i < g->n_blocks; i++) {
        const ds_ground_block *b = &g->blocks[i];
        if (!ds_markdown_is_image(text, b)) continue;
        idx++;   /* the same count as the Markdown links */
        for (int k = 0; k < b->n_boxes; k++) {
            uint8_t *crop;
            int cw, ch;
            int r = ds_crop_rgb(pg->rgb, pg->width, pg->height, b->boxes[k].px, &crop, &cw, &ch);
            if (r < 0) return ds_fail(err, DSOCR_ERR_NOMEM, "output: out of memory cropping page %d", pg->index);
            if (r == 0) continue;
            if (!o->images_dir_made) {
                char path[4200];
                snprintf(path, sizeof path, "%s/images", o->dir);
                if (mkdir(path, 0777) != 0 && errno != EEXIST) {
                    free(crop);
                    return ds_fail(err, DSOCR_ERR_IO, "cannot create %s: %s", path, strerror(errno));
                }
                o->images_dir_made = 1;
            }
            char name[96];
            if (o->is_pdf)
                snprintf(name, sizeof name, k ? "images/%d_%d_%d.jpg" : "images/%d_%d.jpg", pg->index, idx, k);
            else
                snprintf(name, sizeof name, k ? "images/%d_%d.jpg" : "images/%d.jpg", idx, k);
            uint8_t *jpg;
            size_t jpg_size;
            dsocr_status s = ds_encode_jpeg(crop, cw, ch, o->opts.jpeg_quality, &jpg, &jpg_size, err);
            free(crop);
            if (s == DSOCR_OK) {
                s = ds_write_atomic(o->dir, name, jpg, jpg_size, err);
                free(jpg);
            }
            if (s != DSOCR_OK) return s;
            cJSON_AddItemToArray(files, cJSON_CreateString(name));
        }
    }
    return DSOCR_OK;
}

static cJSON *box_array(const ds_ground_block *b, int pixels) {
    cJSON *arr = cJSON_CreateArray();
    for (int k = 0; arr && k < b->n_boxes; k++) {
        cJSON *one = cJSON_CreateArray();
        for (int c = 0; one && c < 4; c++)
            cJSON_AddItemToArray(one, cJSON_CreateNumber(pixels ? (double)b->boxes[k].px[c] : b->boxes[k].norm[c]));
        cJSON_AddItemToArray(arr, one);
    }
    return arr;
}

/* Block text: what follows the block up to the next match (or the end), stripped. */
static cJSON *blocks_json(const char *text, size_t len, const ds_grounding *g) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < g->n_blocks; i++) {
        const ds_ground_block *b = &g->blocks[i];
        if (!b->det_ok) continue;   /* malformed det: skipped, as the reference does */
        size_t from = b->end, to = i + 1 < g->n_blocks ? g->blocks[i + 1].start : len, a, n;
        ds_markdown_strip(text + from, to - from, &a, &n);
        char *t = malloc(n + 1);
        if (!t) { cJSON_Delete(arr); return NULL; }
        memcpy(t, text + from + a, n);
        t[n] = 0;
        cJSON *jb = cJSON_CreateObject();
        cJSON_AddStringToObject(jb, "label", b->label);
        cJSON_AddItemToObject(jb, "boxes_px", box_array(b, 1));
        cJSON_AddItemToObject(jb, "boxes_norm", box_array(b, 0));
        cJSON_AddStringToObject(jb, "text", t);
        free(t);
        cJSON_AddItemToArray(arr, jb);
    }
    return arr;
}

dsocr_status ds_output_add_page(ds_output *o, const ds_page_output *pg, dsocr_error *err) {
    if (!pg->text && pg->text_len)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "output: page %d has no text", pg->index);
    if (pg->rgb && (pg->width <= 0 || pg->height <= 0))
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "output: page %d has size %dx%d", pg->index, pg->width, pg->height);
    const char *text = pg->text ? pg->text : "";
    size_t len = pg->text_len;
    if (!o->is_pdf) {   /* HF path: outputs.strip() before writing and rewriting */
        size_t a;
        ds_markdown_strip(text, len, &a, &len);
        text += a;
    }
    /* a copy: the text may hold NUL bytes in the middle, the parsers take lengths */
    ds_grounding g;
    DS_TRY(ds_grounding_parse(text, len, pg->width > 0 ? pg->width : 1, pg->height > 0 ? pg->height : 1, &g, err));

    char *md = NULL;
    size_t md_len = 0;
    dsocr_status s = ds_markdown_rewrite(text, len, o->is_pdf ? pg->index : -1, &md, &md_len, err);
    cJSON *files = cJSON_CreateArray();
    if (s == DSOCR_OK && pg->rgb && o->opts.write_crops) s = write_crops(o, pg, text, &g, files, err);
    if (s == DSOCR_OK && pg->rgb && o->opts.write_overlay) {
        size_t npx = (size_t)pg->width * pg->height * 3;
        uint8_t *copy = malloc(npx), *png = NULL;
        size_t png_size = 0;
        if (!copy) s = ds_fail(err, DSOCR_ERR_NOMEM, "output: out of memory for the overlay of page %d", pg->index);
        if (s == DSOCR_OK) {
            memcpy(copy, pg->rgb, npx);
            ds_draw_boxes(copy, pg->width, pg->height, &g);
            s = ds_encode_png(copy, pg->width, pg->height, &png, &png_size, err);
        }
        char name[64];
        if (o->is_pdf) snprintf(name, sizeof name, "result_with_boxes_%d.png", pg->index);
        else snprintf(name, sizeof name, "result_with_boxes.png");
        if (s == DSOCR_OK) s = ds_write_atomic(o->dir, name, png, png_size, err);
        if (s == DSOCR_OK) cJSON_AddItemToArray(files, cJSON_CreateString(name));
        free(copy);
        free(png);
    }
    if (s != DSOCR_OK) {
        free(md);
        cJSON_Delete(files);
        ds_grounding_free(&g);
        return s;
    }

    buf_add(&o->raw, text, len);
    buf_add(&o->markdown, md, md_len);
    if (o->is_pdf) {
        buf_add(&o->raw, DS_PAGE_SPLIT, strlen(DS_PAGE_SPLIT));
        buf_add(&o->markdown, DS_PAGE_SPLIT, strlen(DS_PAGE_SPLIT));
    }
    free(md);

    cJSON *jp = cJSON_CreateObject();
    cJSON_AddNumberToObject(jp, "index", pg->index);
    cJSON_AddNumberToObject(jp, "page", pg->index + 1);
    cJSON_AddNumberToObject(jp, "width", pg->width);
    cJSON_AddNumberToObject(jp, "height", pg->height);
    cJSON_AddStringToObject(jp, "mode", ds_mode_name(pg->mode));
    cJSON *grid = cJSON_AddArrayToObject(jp, "grid");
    cJSON_AddItemToArray(grid, cJSON_CreateNumber(pg->grid_w));
    cJSON_AddItemToArray(grid, cJSON_CreateNumber(pg->grid_h));
    cJSON_AddStringToObject(jp, "finish_reason", ds_finish_name(pg->finish));
    if (pg->finish == DSOCR_FINISH_LOOP)
        cJSON_AddStringToObject(jp, "loop", pg->finish_detail ? pg->finish_detail : "");
    cJSON_AddNumberToObject(jp, "n_prompt_tokens", pg->n_prompt_tokens);
    cJSON_AddNumberToObject(jp, "n_image_tokens", pg->n_image_tokens);
    cJSON_AddNumberToObject(jp, "n_tokens", pg->n_tokens);
    cJSON *tm = cJSON_AddObjectToObject(jp, "timings");
    cJSON_AddNumberToObject(tm, "vision_ms", pg->ms_vision);
    cJSON_AddNumberToObject(tm, "prefill_ms", pg->ms_prefill);
    cJSON_AddNumberToObject(tm, "decode_ms", pg->ms_decode);
    cJSON_AddItemToObject(jp, "blocks", blocks_json(text, len, &g));
    cJSON_AddItemToObject(jp, "files", files);
    cJSON_AddItemToArray(o->pages, jp);
    ds_grounding_free(&g);

    o->n_pages++;
    o->n_tokens += pg->n_tokens;
    if (pg->finish == DSOCR_FINISH_STOP) o->n_stop++;
    if (pg->finish == DSOCR_FINISH_LENGTH) o->n_length++;
    if (pg->finish == DSOCR_FINISH_LOOP && o->n_loop++ == 0)
        snprintf(o->first_loop, sizeof o->first_loop, "page %d: %s", pg->index + 1,
                 pg->finish_detail ? pg->finish_detail : "repetition");
    if (o->raw.oom || o->markdown.oom) return ds_fail(err, DSOCR_ERR_NOMEM, "output: out of memory for page text");
    return DSOCR_OK;
}

void ds_output_summary(const ds_output *o, char *out, size_t size) {
    int n = snprintf(out, size, "%d page%s: %d stop, %d length, %d loop", o->n_pages, o->n_pages == 1 ? "" : "s",
                     o->n_stop, o->n_length, o->n_loop);
    if (n < 0 || (size_t)n >= size) return;
    if (o->n_loop) n += snprintf(out + n, size - (size_t)n, " (first %s)", o->first_loop);
    if (n < 0 || (size_t)n >= size) return;
    snprintf(out + n, size - (size_t)n, "; %ld tokens", o->n_tokens);
}

dsocr_status ds_output_finish(ds_output *o, dsocr_error *err) {
    if (o->raw.oom || o->markdown.oom) return ds_fail(err, DSOCR_ERR_NOMEM, "output: out of memory for page text");
    DS_TRY(ds_write_atomic(o->dir, "result.mmd", o->markdown.data ? o->markdown.data : "", o->markdown.len, err));
    DS_TRY(ds_write_atomic(o->dir, "result_ori.mmd", o->raw.data ? o->raw.data : "", o->raw.len, err));

    cJSON *doc = cJSON_CreateObject();
    char summary[512];
    ds_output_summary(o, summary, sizeof summary);
    cJSON_AddStringToObject(doc, "source", o->source);
    cJSON_AddStringToObject(doc, "type", o->is_pdf ? "pdf" : "image");
    cJSON_AddStringToObject(doc, "dsocr_version", DSOCR_VERSION);
    cJSON *js = cJSON_AddObjectToObject(doc, "summary");
    cJSON_AddNumberToObject(js, "pages", o->n_pages);
    cJSON_AddNumberToObject(js, "stop", o->n_stop);
    cJSON_AddNumberToObject(js, "length", o->n_length);
    cJSON_AddNumberToObject(js, "loop", o->n_loop);
    cJSON_AddNumberToObject(js, "n_tokens", (double)o->n_tokens);
    cJSON_AddStringToObject(js, "text", summary);
    cJSON_AddItemReferenceToObject(doc, "pages", o->pages);
    char *json = cJSON_Print(doc);
    cJSON_Delete(doc);   /* the reference leaves o->pages alone */
    if (!json) return ds_fail(err, DSOCR_ERR_NOMEM, "output: out of memory printing result.json");
    size_t n = strlen(json);
    char *withnl = realloc(json, n + 2);
    if (!withnl) {
        free(json);
        return ds_fail(err, DSOCR_ERR_NOMEM, "output: out of memory printing result.json");
    }
    withnl[n] = '\n';
    dsocr_status s = ds_write_atomic(o->dir, "result.json", withnl, n + 1, err);
    free(withnl);
    return s;
}
