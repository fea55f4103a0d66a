/* image/pdf: PDFs made here with MuPDF's writer (plain and encrypted) and by hand
 * (no xref: MuPDF repairs it, quietly), rendered to RGB; broken files; page lists. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mupdf/fitz.h>
#include <mupdf/pdf.h>

#include "image/pdf.h"
#include "test_util.h"

/* A PDF of n pages, each 2 x 1 inches with a filled square of colour k on the left;
 * encrypted with user password "secret" when encrypt is set. */
static unsigned char *make_pdf(int n_pages, int encrypt, size_t *size) {
    fz_context *ctx = fz_new_context(NULL, NULL, FZ_STORE_DEFAULT);
    unsigned char *copy = NULL;
    fz_var(copy);
    fz_try(ctx) {
        pdf_document *doc = pdf_create_document(ctx);
        static const char *colours[] = {"1 0 0 rg", "0 1 0 rg", "0 0 1 rg"};
        for (int i = 0; i < n_pages; i++) {
            char content[128];
            snprintf(content, sizeof content, "%s 0 0 72 72 re f", colours[i % 3]);
            fz_buffer *contents = fz_new_buffer_from_copied_data(ctx, (unsigned char *)content, strlen(content));
            pdf_obj *resources = pdf_new_dict(ctx, doc, 1);
            pdf_obj *page = pdf_add_page(ctx, doc, fz_make_rect(0, 0, 144, 72), 0, resources, contents);
            pdf_insert_page(ctx, doc, -1, page);
            pdf_drop_obj(ctx, page);
            pdf_drop_obj(ctx, resources);
            fz_drop_buffer(ctx, contents);
        }
        fz_buffer *out = fz_new_buffer(ctx, 4096);
        fz_output *o = fz_new_output_with_buffer(ctx, out);
        pdf_write_options opts = pdf_default_write_options;
        if (encrypt) {
            opts.do_encrypt = PDF_ENCRYPT_AES_128;
            strcpy(opts.upwd_utf8, "secret");
            strcpy(opts.opwd_utf8, "owner");
            opts.permissions = -1;
        }
        pdf_write_document(ctx, doc, o, &opts);
        fz_close_output(ctx, o);
        fz_drop_output(ctx, o);
        unsigned char *data;
        *size = fz_buffer_storage(ctx, out, &data);
        copy = malloc(*size);
        memcpy(copy, data, *size);
        fz_drop_buffer(ctx, out);
        pdf_drop_document(ctx, doc);
    }
    fz_catch(ctx) {
        fprintf(stderr, "make_pdf: %s\n", fz_caught_message(ctx));
    }
    fz_drop_context(ctx);
    return copy;
}

/* Three pages, written by hand without an xref table: MuPDF must repair it. */
static const char hand_pdf[] =
    "%PDF-1.4\n"
    "1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    "2 0 obj << /Type /Pages /Kids [3 0 R 4 0 R 5 0 R] /Count 3 >> endobj\n"
    "3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 72 36] /Contents 6 0 R >> endobj\n"
    "4 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 36 72] /Contents 6 0 R >> endobj\n"
    "5 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 72 72] >> endobj\n"
    "6 0 obj << /Length 23 >> stream\n"
    "0 0 1 rg 0 0 36 36 re f\n"
    "endstream endobj\n"
    "trailer << /Root 1 0 R >>\n"
    "%%EOF\n";

static int redirect_stderr(const char *path) {
    fflush(stderr);
    int saved = dup(2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    close(fd);
    return saved;
}
static void restore_stderr(int saved) {
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
}

static void test_render(const char *dir) {
    size_t size;
    unsigned char *data = make_pdf(3, 0, &size);
    CHECK(data != NULL);
    char path[4200];
    snprintf(path, sizeof path, "%s/three.pdf", dir);
    tu_write_file(path, data, size);

    ds_pdf *pdf;
    dsocr_error err;
    dsocr_status s = ds_pdf_open_file(path, NULL, &pdf, &err);
    CHECK_MSG(s == DSOCR_OK, "%s", err.message);
    if (s != DSOCR_OK) return;
    CHECK_EQ_INT(ds_pdf_page_count(pdf), 3);
    uint8_t *rgb;
    int w, h;
    CHECK_EQ_INT(ds_pdf_render_page(pdf, 1, DS_PDF_DEFAULT_DPI, 0, &rgb, &w, &h, &err), DSOCR_OK);
    CHECK_EQ_INT(w, 288);   /* 2 in at 144 dpi */
    CHECK_EQ_INT(h, 144);
    const uint8_t *in_square = rgb + ((size_t)72 * w + 72) * 3, *outside = rgb + ((size_t)72 * w + 216) * 3;
    CHECK(in_square[0] == 0 && in_square[1] == 255 && in_square[2] == 0);   /* page 2 is green */
    CHECK(outside[0] == 255 && outside[1] == 255 && outside[2] == 255);     /* alpha off: white paper */
    free(rgb);
    CHECK_EQ_INT(ds_pdf_render_page(pdf, 0, 72, 0, &rgb, &w, &h, &err), DSOCR_OK);
    CHECK(w == 144 && h == 72 && rgb[0] == 255 && rgb[1] == 0);   /* --dpi 72, page 1 red */
    free(rgb);
    CHECK_EQ_INT(ds_pdf_render_page(pdf, 3, 144, 0, &rgb, &w, &h, &err), DSOCR_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "three.pdf") && strstr(err.message, "page 4"));
    CHECK_EQ_INT(ds_pdf_render_page(pdf, 0, 144, 1000, &rgb, &w, &h, &err), DSOCR_ERR_LIMIT);
    CHECK(strstr(err.message, "288x144") != NULL);
    ds_pdf_close(pdf);

    /* the same bytes from memory */
    CHECK_EQ_INT(ds_pdf_open_memory(data, size, "mem.pdf", NULL, &pdf, &err), DSOCR_OK);
    CHECK_EQ_INT(ds_pdf_page_count(pdf), 3);
    ds_pdf_close(pdf);
    free(data);
}

static void test_hand_written(const char *dir) {
    char log[4200];
    snprintf(log, sizeof log, "%s/stderr.txt", dir);
    int saved = redirect_stderr(log);
    ds_pdf *pdf;
    dsocr_error err;
    dsocr_status s = ds_pdf_open_memory(hand_pdf, sizeof hand_pdf - 1, "hand.pdf", NULL, &pdf, &err);
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    dsocr_status r = s == DSOCR_OK ? ds_pdf_render_page(pdf, 1, 144, 0, &rgb, &w, &h, &err) : s;
    restore_stderr(saved);
    CHECK_EQ_INT(s, DSOCR_OK);
    CHECK_EQ_INT(r, DSOCR_OK);
    if (s == DSOCR_OK) {
        CHECK_EQ_INT(ds_pdf_page_count(pdf), 3);
        CHECK(ds_pdf_last_warning(pdf)[0] != 0);   /* MuPDF did complain about the xref... */
        ds_pdf_close(pdf);
    }
    size_t n = 99;
    char *printed = tu_read_file(log, &n);
    CHECK_MSG(printed && n == 0, "MuPDF printed: %s", printed ? printed : "(unreadable)");   /* ...but not on stderr */
    free(printed);
    CHECK(w == 72 && h == 144);
    if (rgb) CHECK(rgb[((size_t)143 * w + 10) * 3 + 2] == 255 && rgb[((size_t)143 * w + 10) * 3] == 0);   /* blue, bottom left */
    free(rgb);
}

static void test_broken(const char *dir) {
    ds_pdf *pdf;
    dsocr_error err;
    char path[4200];
    snprintf(path, sizeof path, "%s/not-a-pdf.pdf", dir);
    tu_write_file(path, "this is certainly not a PDF file\n", 33);
    char log[4200];
    snprintf(log, sizeof log, "%s/stderr2.txt", dir);
    int saved = redirect_stderr(log);
    dsocr_status s1 = ds_pdf_open_file(path, NULL, &pdf, &err);
    char msg1[1024];
    snprintf(msg1, sizeof msg1, "%s", err.message);

    size_t size;
    unsigned char *data = make_pdf(2, 0, &size);
    dsocr_status s2 = ds_pdf_open_memory(data, size / 3, "truncated.pdf", NULL, &pdf, &err);   /* repaired or refused */
    if (s2 == DSOCR_OK) ds_pdf_close(pdf);
    free(data);

    data = make_pdf(2, 1, &size);
    dsocr_status s3 = ds_pdf_open_memory(data, size, "locked.pdf", NULL, &pdf, &err);
    char msg3[1024];
    snprintf(msg3, sizeof msg3, "%s", err.message);
    dsocr_status s4 = ds_pdf_open_memory(data, size, "locked.pdf", "wrong", &pdf, &err);
    dsocr_status s5 = ds_pdf_open_memory(data, size, "locked.pdf", "secret", &pdf, &err);
    restore_stderr(saved);

    CHECK_EQ_INT(s1, DSOCR_ERR_FORMAT);
    CHECK_MSG(strstr(msg1, "not-a-pdf.pdf") && strstr(msg1, "not a readable PDF"), "%s", msg1);
    CHECK(s2 == DSOCR_OK || s2 == DSOCR_ERR_FORMAT);
    CHECK_EQ_INT(s3, DSOCR_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(msg3, "locked.pdf") && strstr(msg3, "encrypted") && strstr(msg3, "password"), "%s", msg3);
    CHECK_EQ_INT(s4, DSOCR_ERR_INVALID_ARG);
    CHECK_EQ_INT(s5, DSOCR_OK);
    if (s5 == DSOCR_OK) {
        CHECK_EQ_INT(ds_pdf_page_count(pdf), 2);
        uint8_t *rgb;
        int w, h;
        CHECK_EQ_INT(ds_pdf_render_page(pdf, 0, 144, 0, &rgb, &w, &h, &err), DSOCR_OK);
        free(rgb);
        ds_pdf_close(pdf);
    }
    free(data);
    size_t n = 99;
    char *printed = tu_read_file(log, &n);
    CHECK_MSG(printed && n == 0, "MuPDF printed: %s", printed ? printed : "(unreadable)");
    free(printed);

    snprintf(path, sizeof path, "%s/missing.pdf", dir);
    CHECK_EQ_INT(ds_pdf_open_file(path, NULL, &pdf, &err), DSOCR_ERR_IO);
    CHECK(strstr(err.message, "missing.pdf") != NULL);
    CHECK_EQ_INT(ds_pdf_open_memory("", 0, "empty.pdf", NULL, &pdf, &err), DSOCR_ERR_FORMAT);
}

static void test_page_lists(void) {
    int *p, n;
    dsocr_error err;
    CHECK_EQ_INT(ds_pdf_parse_pages("1-3,7", 10, &p, &n, &err), DSOCR_OK);
    CHECK(n == 4 && p[0] == 0 && p[1] == 1 && p[2] == 2 && p[3] == 6);
    free(p);
    CHECK_EQ_INT(ds_pdf_parse_pages(NULL, 3, &p, &n, &err), DSOCR_OK);
    CHECK(n == 3 && p[2] == 2);
    free(p);
    CHECK_EQ_INT(ds_pdf_parse_pages(" 7 , 2-3, 3, 9- ", 10, &p, &n, &err), DSOCR_OK);
    CHECK(n == 5 && p[0] == 1 && p[1] == 2 && p[2] == 6 && p[3] == 8 && p[4] == 9);   /* ascending, once each */
    free(p);
    CHECK_EQ_INT(ds_pdf_parse_pages("-2", 10, &p, &n, &err), DSOCR_OK);
    CHECK(n == 2 && p[1] == 1);
    free(p);
    struct { const char *spec, *msg; } bad[] = {{"0", "count from 1"}, {"11", "past the last page (10)"},
                                               {"5-3", "backwards"}, {"1,,2", "expected a page number"},
                                               {"1-x", "expected a page number"}, {"2;3", "unexpected"},
                                               {"1,", "ends with a comma"}, {"abc", "expected a page number"},
                                               {"3-99999999999", "past the last page"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK_EQ_INT(ds_pdf_parse_pages(bad[i].spec, 10, &p, &n, &err), DSOCR_ERR_INVALID_ARG);
        CHECK_MSG(strstr(err.message, bad[i].msg) && strstr(err.message, bad[i].spec), "\"%s\": %s", bad[i].spec,
                  err.message);
    }
}

int main(void) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("ocr_pdf"));
    test_render(dir);
    test_hand_written(dir);
    test_broken(dir);
    test_page_lists();
    return tu_done("test_ocr_pdf");
}
