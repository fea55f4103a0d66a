/* ocr: output directory (atomic files, names, JSON, overlay PNG, figure crops). */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <jpeglib.h>
#include <png.h>

#include "ocr/markdown.h"
#include "ocr/output.h"
#include "test_util.h"

static int exists(const char *dir, const char *name) {
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

static char *read_in(const char *dir, const char *name, size_t *n) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return tu_read_file(path, n);
}

/* No temporary files may be left behind. */
static int count_hidden(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    if (d) closedir(d);
    return n;
}

/* Decodes a JPEG file; returns its size through w, h. */
static int jpeg_size(const char *path, int *w, int *h) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    struct jpeg_decompress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_decompress(&c);
    jpeg_stdio_src(&c, f);
    jpeg_read_header(&c, TRUE);
    *w = (int)c.image_width;
    *h = (int)c.image_height;
    jpeg_destroy_decompress(&c);
    fclose(f);
    return 1;
}

/* Reads a PNG back into RGB through libpng's simplified API. */
static uint8_t *png_read_rgb(const char *path, int *w, int *h) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) return NULL;
    img.format = PNG_FORMAT_RGB;
    uint8_t *px = malloc(PNG_IMAGE_SIZE(img));
    if (!px || !png_image_finish_read(&img, NULL, px, 0, NULL)) {
        free(px);
        png_image_free(&img);
        return NULL;
    }
    *w = (int)img.width;
    *h = (int)img.height;
    return px;
}

static void test_names_and_atomic(const char *dir) {
    CHECK(ds_output_name_ok("result.mmd"));
    CHECK(ds_output_name_ok("images/3_0.jpg"));
    const char *bad[] = {"", "/etc/passwd", "../x", "images/../../x", "a//b", ".hidden", "images/.x", "a b", "a/",
                         "x\\y", "images/.."};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) CHECK_MSG(!ds_output_name_ok(bad[i]), "accepted \"%s\"", bad[i]);
    char s[64];
    ds_output_sanitize("../my report (1).pdf", s, sizeof s);
    CHECK_STR(s, "_._my_report__1_.pdf");
    CHECK(ds_output_name_ok(s));
    ds_output_sanitize("", s, sizeof s);
    CHECK_STR(s, "_");

    dsocr_error err;
    CHECK_EQ_INT(ds_write_atomic(dir, "../escape.txt", "x", 1, &err), DSOCR_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "escape.txt") != NULL);
    CHECK_EQ_INT(ds_write_atomic(dir, "a.txt", "hello", 5, &err), DSOCR_OK);
    CHECK_EQ_INT(ds_write_atomic(dir, "a.txt", "bye", 3, &err), DSOCR_OK);   /* replaces */
    size_t n;
    char *t = read_in(dir, "a.txt", &n);
    CHECK(t && n == 3 && memcmp(t, "bye", 3) == 0);
    free(t);
    CHECK_EQ_INT(ds_write_atomic(dir, "missing/a.txt", "x", 1, &err), DSOCR_ERR_IO);
    CHECK(strstr(err.message, "missing") != NULL);
    CHECK_EQ_INT(count_hidden(dir), 0);
}

static void test_encoders(const char *dir) {
    int w = 37, h = 21;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h * 3; i++) rgb[i] = (uint8_t)(i * 7);
    uint8_t *png;
    size_t size;
    CHECK_EQ_INT(ds_encode_png(rgb, w, h, &png, &size, NULL), DSOCR_OK);
    CHECK_EQ_INT(ds_write_atomic(dir, "t.png", png, size, NULL), DSOCR_OK);
    free(png);
    char path[4200];
    snprintf(path, sizeof path, "%s/t.png", dir);
    int rw, rh;
    uint8_t *back = png_read_rgb(path, &rw, &rh);
    CHECK(back && rw == w && rh == h && memcmp(back, rgb, (size_t)w * h * 3) == 0);   /* lossless */
    free(back);
    uint8_t *jpg;
    CHECK_EQ_INT(ds_encode_jpeg(rgb, w, h, 90, &jpg, &size, NULL), DSOCR_OK);
    CHECK(size > 100 && jpg[0] == 0xff && jpg[1] == 0xd8);
    free(jpg);
    CHECK_EQ_INT(ds_encode_jpeg(rgb, 0, h, 90, &jpg, &size, NULL), DSOCR_ERR_INVALID_ARG);
    free(rgb);
    /* colours are a function of the label only */
    CHECK_EQ_INT(ds_label_color("title"), ds_label_color("title"));
    CHECK(ds_label_color("title") != ds_label_color("text") || ds_label_color("image") != ds_label_color("text"));
}

/* A page 200x100: left half red, right half blue. */
static uint8_t *test_page(int w, int h) {
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            p[0] = x < w / 2 ? 220 : 10;
            p[1] = 20;
            p[2] = x < w / 2 ? 10 : 230;
        }
    return rgb;
}

static const char *page_text =
    "<|ref|>title<|/ref|><|det|>[[0, 0, 999, 100]]<|/det|>\n# Report\n\n"
    "<|ref|>image<|/ref|><|det|>[[0, 200, 499, 600], [500, 200, 999, 600]]<|/det|>\n\n"
    "<|ref|>text<|/ref|><|det|>[[1, 2, 3]]<|/det|>\nbroken det\n\n"
    "<|ref|>image<|/ref|><|det|>[[600, 700, 700, 800]]<|/det|>\n\n"
    "<|ref|>text<|/ref|><|det|>[[10, 850, 990, 990]]<|/det|>\nThe end \\coloneqq done.\n";

static void test_image_run(const char *dir) {
    int w = 200, h = 100;
    uint8_t *rgb = test_page(w, h);
    ds_output *o;
    dsocr_error err;
    CHECK_EQ_INT(ds_output_open(dir, "page.png", 0, NULL, &o, &err), DSOCR_OK);
    char padded[2048];
    snprintf(padded, sizeof padded, "  \n%s\n\n", page_text);   /* the HF path strips */
    ds_page_output pg = {.index = 0, .rgb = rgb, .width = w, .height = h, .text = padded, .text_len = strlen(padded),
                         .finish = DSOCR_FINISH_STOP, .mode = DSOCR_MODE_GUNDAM, .grid_w = 2, .grid_h = 1,
                         .n_prompt_tokens = 900, .n_image_tokens = 473, .n_tokens = 120, .ms_vision = 1.5};
    CHECK_EQ_INT(ds_output_add_page(o, &pg, &err), DSOCR_OK);
    CHECK_EQ_INT(ds_output_finish(o, &err), DSOCR_OK);
    char summary[256];
    ds_output_summary(o, summary, sizeof summary);
    CHECK_STR(summary, "1 page: 1 stop, 0 length, 0 loop; 120 tokens");
    ds_output_free(o);

    /* result.mmd = the reference rewrite of the stripped text */
    char *want;
    ds_markdown_rewrite(page_text, strlen(page_text) - 1, -1, &want, NULL, NULL);
    size_t n;
    char *mmd = read_in(dir, "result.mmd", &n);
    CHECK(mmd && want && strcmp(mmd, want) == 0);
    CHECK(mmd && strstr(mmd, "![](images/0.jpg)\n") && strstr(mmd, "![](images/1.jpg)\n") && strstr(mmd, ":= done."));
    free(mmd);
    free(want);
    char *ori = read_in(dir, "result_ori.mmd", &n);
    CHECK(ori && n == strlen(page_text) - 1 && memcmp(ori, page_text, n) == 0);
    free(ori);

    /* crops: images/0.jpg (first box of image match 0, the link target),
     * images/0_1.jpg (its second box), images/1.jpg (image match 1) */
    char path[4200];
    int cw, ch;
    snprintf(path, sizeof path, "%s/images/0.jpg", dir);
    CHECK(jpeg_size(path, &cw, &ch) && cw == 99 && ch == 40);   /* int(499/999*200)=99, y 20..60 */
    snprintf(path, sizeof path, "%s/images/0_1.jpg", dir);
    CHECK(jpeg_size(path, &cw, &ch) && cw == 100 && ch == 40);  /* 100..200 */
    snprintf(path, sizeof path, "%s/images/1.jpg", dir);
    CHECK(jpeg_size(path, &cw, &ch) && cw == 20 && ch == 10);   /* 120..140 x 70..80 */
    CHECK(!exists(dir, "images/2.jpg"));

    /* overlay: boxes drawn, deterministic colour, the rest untouched */
    snprintf(path, sizeof path, "%s/result_with_boxes.png", dir);
    int ow, oh;
    uint8_t *ov = png_read_rgb(path, &ow, &oh);
    CHECK(ov && ow == w && oh == h);
    if (ov) {
        uint32_t c = ds_label_color("title");
        const uint8_t *corner = ov;   /* (0,0) is on the title outline */
        CHECK(corner[0] == (c >> 16 & 255) && corner[1] == (c >> 8 & 255) && corner[2] == (c & 255));
        const uint8_t *p = ov + ((size_t)15 * w + 180) * 3;   /* (180,15): outside every box */
        CHECK(p[0] == 10 && p[1] == 20 && p[2] == 230);
        CHECK(memcmp(ov + ((size_t)40 * w + 50) * 3, rgb + ((size_t)40 * w + 50) * 3, 3) != 0);   /* tinted fill */
    }
    free(ov);

    /* JSON: blocks with pixels, malformed det skipped, metadata */
    char *js = read_in(dir, "result.json", &n);
    cJSON *doc = cJSON_Parse(js);
    CHECK(doc != NULL);
    cJSON *pages = cJSON_GetObjectItem(doc, "pages");
    CHECK_EQ_INT(cJSON_GetArraySize(pages), 1);
    cJSON *p0 = cJSON_GetArrayItem(pages, 0);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(p0, "finish_reason")), "stop");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(p0, "mode")), "gundam");
    CHECK_EQ_INT(cJSON_GetObjectItem(p0, "n_tokens")->valueint, 120);
    CHECK_EQ_INT(cJSON_GetArrayItem(cJSON_GetObjectItem(p0, "grid"), 0)->valueint, 2);
    cJSON *blocks = cJSON_GetObjectItem(p0, "blocks");
    CHECK_EQ_INT(cJSON_GetArraySize(blocks), 4);
    cJSON *b1 = cJSON_GetArrayItem(blocks, 1);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(b1, "label")), "image");
    cJSON *px = cJSON_GetObjectItem(b1, "boxes_px");
    CHECK_EQ_INT(cJSON_GetArraySize(px), 2);
    CHECK_EQ_INT(cJSON_GetArrayItem(cJSON_GetArrayItem(px, 1), 0)->valueint, 100);
    CHECK_EQ_INT(cJSON_GetArrayItem(cJSON_GetArrayItem(cJSON_GetObjectItem(b1, "boxes_norm"), 1), 2)->valueint, 999);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(blocks, 0), "text")), "# Report");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(blocks, 3), "text")), "The end \\coloneqq done.");
    CHECK_EQ_INT(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "summary"), "stop")->valueint, 1);
    cJSON_Delete(doc);
    free(js);
    CHECK_EQ_INT(count_hidden(dir), 0);
    free(rgb);
}

static void test_pdf_run(const char *dir) {
    int w = 200, h = 100;
    uint8_t *rgb = test_page(w, h);
    ds_output *o;
    CHECK_EQ_INT(ds_output_open(dir, "doc.pdf", 1, NULL, &o, NULL), DSOCR_OK);
    const char *t0 = "<|ref|>image<|/ref|><|det|>[[0, 0, 499, 999]]<|/det|>\n\n\n\n<|ref|>text<|/ref|><|det|>[[1,1,2,2]]<|/det|>\nA\n";
    const char *t2 = "<|ref|>text<|/ref|><|det|>[[1,1,2,2]]<|/det|>\nsame\n<|ref|>text<|/ref|><|det|>[[1,1,2,2]]<|/det|>\nsame\n";
    ds_page_output pg = {.index = 0, .rgb = rgb, .width = w, .height = h, .text = t0, .text_len = strlen(t0),
                         .finish = DSOCR_FINISH_STOP, .n_tokens = 10};
    CHECK_EQ_INT(ds_output_add_page(o, &pg, NULL), DSOCR_OK);
    pg.index = 2;
    pg.text = t2;
    pg.text_len = strlen(t2);
    pg.finish = DSOCR_FINISH_LOOP;
    pg.finish_detail = "det record \"text\" with the same box seen 3 times";
    pg.n_tokens = 20;
    CHECK_EQ_INT(ds_output_add_page(o, &pg, NULL), DSOCR_OK);
    CHECK_EQ_INT(ds_output_finish(o, NULL), DSOCR_OK);
    char summary[256];
    ds_output_summary(o, summary, sizeof summary);
    CHECK(strstr(summary, "2 pages: 1 stop, 0 length, 1 loop (first page 3: det record") == summary);
    size_t n;
    const char *md = ds_output_markdown(o, &n);
    CHECK_STR(md, "![](images/0_0.jpg)\n\n\nA\n" DS_PAGE_SPLIT "\nsame\n\nsame\n" DS_PAGE_SPLIT);
    ds_output_free(o);
    CHECK(exists(dir, "images/0_0.jpg"));
    CHECK(exists(dir, "result_with_boxes_0.png") && exists(dir, "result_with_boxes_2.png"));
    char *ori = read_in(dir, "result_ori.mmd", &n);
    char want[1024];
    snprintf(want, sizeof want, "%s%s%s%s", t0, DS_PAGE_SPLIT, t2, DS_PAGE_SPLIT);
    CHECK_STR(ori, want);
    free(ori);
    char *js = read_in(dir, "result.json", &n);
    cJSON *doc = cJSON_Parse(js);
    cJSON *p1 = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "pages"), 1);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(p1, "finish_reason")), "loop");
    CHECK(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(p1, "loop")), "same box") != NULL);
    CHECK_EQ_INT(cJSON_GetObjectItem(p1, "page")->valueint, 3);
    CHECK_EQ_INT(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "summary"), "loop")->valueint, 1);
    cJSON_Delete(doc);
    free(js);
    free(rgb);
}

static void test_errors(const char *dir) {
    ds_output *o;
    dsocr_error err;
    char path[4200];
    snprintf(path, sizeof path, "%s/no/such/dir", dir);
    CHECK_EQ_INT(ds_output_open(path, "x", 0, NULL, &o, &err), DSOCR_ERR_IO);
    CHECK(strstr(err.message, "no/such/dir") != NULL);
    snprintf(path, sizeof path, "%s/plainfile", dir);
    tu_write_file(path, "x", 1);
    CHECK_EQ_INT(ds_output_open(path, "x", 0, NULL, &o, &err), DSOCR_ERR_IO);
    /* no pixels: text outputs only, no images */
    snprintf(path, sizeof path, "%s/textonly", dir);
    CHECK_EQ_INT(ds_output_open(path, "x", 0, NULL, &o, &err), DSOCR_OK);
    ds_page_output pg = {.text = page_text, .text_len = strlen(page_text), .width = 10, .height = 10};
    CHECK_EQ_INT(ds_output_add_page(o, &pg, &err), DSOCR_OK);
    CHECK_EQ_INT(ds_output_finish(o, &err), DSOCR_OK);
    ds_output_free(o);
    CHECK(exists(path, "result.json") && !exists(path, "images") && !exists(path, "result_with_boxes.png"));
}

int main(void) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("ocr_output"));
    test_names_and_atomic(dir);
    test_encoders(dir);
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("ocr_output_image"));
    test_image_run(dir);
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("ocr_output_pdf"));
    test_pdf_run(dir);
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("ocr_output_err"));
    test_errors(dir);
    return tu_done("test_ocr_output");
}
