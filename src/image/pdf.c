/* PDF pages to RGB through MuPDF. See pdf.h. */
#include "image/pdf.h"

#include <errno.h>
#include <mupdf/fitz.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

/* MuPDF's PDF handler. Registering only this one (not fz_register_document_handlers)
 * keeps XPS/EPUB/HTML and their harfbuzz dependency out of the link, and makes
 * sure nothing but PDF is ever parsed. Defined in libmupdf, not in its headers. */
extern fz_document_handler pdf_document_handler;

struct ds_pdf {
    fz_context *ctx;
    fz_document *doc;
    int n_pages;
    char name[512];           /* file name for messages */
    char last_warning[256];
    char last_error[256];
};

/* MuPDF reports through these instead of stderr; we keep the last message. */
static void on_mupdf_warning(void *user, const char *message) {
    ds_pdf *p = user;
    snprintf(p->last_warning, sizeof p->last_warning, "%s", message);
}
static void on_mupdf_error(void *user, const char *message) {
    ds_pdf *p = user;
    snprintf(p->last_error, sizeof p->last_error, "%s", message);
}

const char *ds_pdf_last_warning(const ds_pdf *pdf) { return pdf->last_warning; }
int ds_pdf_page_count(const ds_pdf *pdf) { return pdf->n_pages; }

void ds_pdf_close(ds_pdf *pdf) {
    if (!pdf) return;
    if (pdf->ctx) {
        fz_drop_document(pdf->ctx, pdf->doc);
        fz_drop_context(pdf->ctx);
    }
    free(pdf);
}

static dsocr_status new_handle(const char *name, ds_pdf **out, dsocr_error *err) {
    ds_pdf *p = calloc(1, sizeof *p);
    if (!p) return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", name);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ctx = fz_new_context(NULL, NULL, FZ_STORE_DEFAULT);
    if (!p->ctx) {
        free(p);
        return ds_fail(err, DSOCR_ERR_NOMEM, "%s: cannot create a MuPDF context", name);
    }
    fz_set_warning_callback(p->ctx, on_mupdf_warning, p);
    fz_set_error_callback(p->ctx, on_mupdf_error, p);
    fz_try(p->ctx) {
        fz_register_document_handler(p->ctx, &pdf_document_handler);
    }
    fz_catch(p->ctx) {
        ds_pdf_close(p);
        return ds_fail(err, DSOCR_ERR_NOMEM, "%s: cannot set up MuPDF", name);
    }
    *out = p;
    return DSOCR_OK;
}

/* Opens the document from a stream (taking it over), checks encryption, counts pages. */
static dsocr_status open_stream(ds_pdf *p, fz_stream *stm, const char *password, dsocr_error *err) {
    fz_context *ctx = p->ctx;
    fz_document *volatile doc = NULL;
    volatile int n_pages = 0;
    fz_try(ctx) {
        doc = fz_open_document_with_stream(ctx, "application/pdf", stm);
    }
    fz_always(ctx) {
        fz_drop_stream(ctx, stm);
    }
    fz_catch(ctx) {
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: not a readable PDF: %s", p->name, fz_caught_message(ctx));
    }
    p->doc = doc;
    volatile int needs_password = 0, authenticated = 0;
    fz_try(ctx) {
        needs_password = fz_needs_password(ctx, p->doc);
        if (needs_password && password && *password) authenticated = fz_authenticate_password(ctx, p->doc, password);
        if (!needs_password || authenticated) n_pages = fz_count_pages(ctx, p->doc);
    }
    fz_catch(ctx) {
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: damaged PDF, cannot count pages: %s", p->name,
                       fz_caught_message(ctx));
    }
    if (needs_password && (!password || !*password))
        return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "%s: the PDF is encrypted and needs a password", p->name);
    if (needs_password && !authenticated)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "%s: wrong password for the encrypted PDF", p->name);
    if (n_pages <= 0)
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: the PDF has no pages%s%s%s", p->name,
                       p->last_warning[0] ? " (MuPDF: " : "", p->last_warning[0] ? p->last_warning : "",
                       p->last_warning[0] ? ")" : "");
    if (n_pages > DS_PDF_MAX_PAGES)   /* a lying /Count: see DS_PDF_MAX_PAGES */
        return ds_fail(err, DSOCR_ERR_LIMIT, "%s: the PDF declares %d pages, over the limit of %d", p->name, n_pages,
                       DS_PDF_MAX_PAGES);
    p->n_pages = n_pages;
    return DSOCR_OK;
}

/* Arguments are never reassigned below: fz_try is setjmp, and a changed local
 * would be indeterminate in fz_catch. */
static dsocr_status open_memory(const void *data, size_t size, const char *name, const char *password,
                                ds_pdf **out, dsocr_error *err) {
    *out = NULL;
    if (!data || size == 0) return ds_fail(err, DSOCR_ERR_FORMAT, "%s: empty PDF data", name);
    ds_pdf *p;
    DS_TRY(new_handle(name, &p, err));
    fz_context *ctx = p->ctx;
    fz_stream *volatile stm = NULL;
    fz_buffer *volatile buf = NULL;
    fz_try(ctx) {
        buf = fz_new_buffer_from_copied_data(ctx, data, size);
        stm = fz_open_buffer(ctx, buf);
    }
    fz_always(ctx) {
        fz_drop_buffer(ctx, buf);   /* the stream holds its own reference */
    }
    fz_catch(ctx) {
        ds_pdf_close(p);
        return ds_fail(err, DSOCR_ERR_NOMEM, "%s: cannot buffer %zu bytes of PDF", name, size);
    }
    dsocr_status s = open_stream(p, stm, password, err);
    if (s != DSOCR_OK) {
        ds_pdf_close(p);
        return s;
    }
    *out = p;
    return DSOCR_OK;
}

dsocr_status ds_pdf_open_memory(const void *data, size_t size, const char *name, const char *password,
                                ds_pdf **out, dsocr_error *err) {
    return open_memory(data, size, name ? name : "<memory>", password, out, err);
}

dsocr_status ds_pdf_open_file(const char *path, const char *password, ds_pdf **out, dsocr_error *err) {
    *out = NULL;
    if (!path) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "pdf: NULL path");
    FILE *f = fopen(path, "rb");   /* a plain i/o error gets a plain message */
    if (!f) return ds_fail(err, DSOCR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    fclose(f);
    ds_pdf *p;
    DS_TRY(new_handle(path, &p, err));
    fz_context *ctx = p->ctx;
    fz_stream *volatile stm = NULL;
    fz_try(ctx) {
        stm = fz_open_file(ctx, path);
    }
    fz_catch(ctx) {
        ds_pdf_close(p);
        return ds_fail(err, DSOCR_ERR_IO, "%s: cannot open: %s", path, fz_caught_message(ctx));
    }
    dsocr_status s = open_stream(p, stm, password, err);
    if (s != DSOCR_OK) {
        ds_pdf_close(p);
        return s;
    }
    *out = p;
    return DSOCR_OK;
}

static dsocr_status render_page(ds_pdf *pdf, int index, float dpi, uint64_t max_pixels, uint8_t **rgb,
                               int *width, int *height, dsocr_error *err);

dsocr_status ds_pdf_render_page(ds_pdf *pdf, int index, float dpi, uint64_t max_pixels, uint8_t **rgb,
                                int *width, int *height, dsocr_error *err) {
    return render_page(pdf, index, dpi, max_pixels ? max_pixels : DS_PDF_DEFAULT_MAX_PIXELS, rgb, width, height, err);
}

static dsocr_status render_page(ds_pdf *pdf, int index, float dpi, uint64_t max_pixels, uint8_t **rgb,
                               int *width, int *height, dsocr_error *err) {
    *rgb = NULL;
    if (index < 0 || index >= pdf->n_pages)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "%s: page %d does not exist (the PDF has %d)", pdf->name, index + 1,
                       pdf->n_pages);
    if (!(dpi >= 1.0f && dpi <= 2400.0f))
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "%s: dpi %g not in 1..2400", pdf->name, (double)dpi);
    fz_context *ctx = pdf->ctx;
    fz_page *volatile page = NULL;
    fz_pixmap *volatile pix = NULL;
    volatile int too_big = 0;
    volatile int64_t want_w = 0, want_h = 0;
    fz_matrix m = fz_scale(dpi / 72.0f, dpi / 72.0f);   /* the reference's Matrix(dpi/72, dpi/72) */
    fz_try(ctx) {
        page = fz_load_page(ctx, pdf->doc, index);
        fz_irect box = fz_round_rect(fz_transform_rect(fz_bound_page(ctx, page), m));
        want_w = (int64_t)box.x1 - box.x0;
        want_h = (int64_t)box.y1 - box.y0;
        if (want_w <= 0 || want_h <= 0 || (uint64_t)(want_w * want_h) > max_pixels) {
            too_big = 1;
        } else {
            pix = fz_new_pixmap_from_page(ctx, page, m, fz_device_rgb(ctx), 0);   /* alpha off: white page */
        }
    }
    fz_always(ctx) {
        fz_drop_page(ctx, page);
    }
    fz_catch(ctx) {
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: cannot render page %d: %s", pdf->name, index + 1,
                       fz_caught_message(ctx));
    }
    if (too_big) {
        if (want_w <= 0 || want_h <= 0)
            return ds_fail(err, DSOCR_ERR_FORMAT, "%s: page %d is empty (%lldx%lld at %g dpi)", pdf->name, index + 1,
                           (long long)want_w, (long long)want_h, (double)dpi);
        return ds_fail(err, DSOCR_ERR_LIMIT, "%s: page %d at %g dpi is %lldx%lld pixels, over the limit of %llu",
                       pdf->name, index + 1, (double)dpi, (long long)want_w, (long long)want_h,
                       (unsigned long long)max_pixels);
    }
    int w = fz_pixmap_width(ctx, pix), h = fz_pixmap_height(ctx, pix), n = fz_pixmap_components(ctx, pix);
    int stride = fz_pixmap_stride(ctx, pix);
    const unsigned char *src = fz_pixmap_samples(ctx, pix);
    uint8_t *out = n == 3 ? malloc((size_t)w * h * 3) : NULL;
    if (!out) {
        fz_drop_pixmap(ctx, pix);
        if (n != 3) return ds_fail(err, DSOCR_ERR_INTERNAL, "%s: page %d rendered with %d components", pdf->name, index + 1, n);
        return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory for page %d (%dx%d)", pdf->name, index + 1, w, h);
    }
    for (int y = 0; y < h; y++) memcpy(out + (size_t)y * w * 3, src + (size_t)y * stride, (size_t)w * 3);
    fz_drop_pixmap(ctx, pix);
    *rgb = out;
    *width = w;
    *height = h;
    return DSOCR_OK;
}

/* ---- page lists ------------------------------------------------------------------ */

static const char *skip_blank(const char *s) {
    while (*s == ' ' || *s == '\t') s++;
    return s;
}

/* A page number: 1..n_pages. Returns the end pointer, or NULL (message in err). */
static const char *page_number(const char *s, const char *spec, int n_pages, int *out, dsocr_error *err) {
    s = skip_blank(s);
    if (*s < '0' || *s > '9') {
        ds_fail(err, DSOCR_ERR_INVALID_ARG, "page list \"%s\": expected a page number at \"%.20s\"", spec, s);
        return NULL;
    }
    long v = 0;
    while (*s >= '0' && *s <= '9') {
        if (v < 100000000) v = v * 10 + (*s - '0');
        s++;
    }
    if (v < 1) {
        ds_fail(err, DSOCR_ERR_INVALID_ARG, "page list \"%s\": pages count from 1, got 0", spec);
        return NULL;
    }
    if (v > n_pages) {
        ds_fail(err, DSOCR_ERR_INVALID_ARG, "page list \"%s\": page %ld is past the last page (%d)", spec, v, n_pages);
        return NULL;
    }
    *out = (int)v;
    return skip_blank(s);
}

dsocr_status ds_pdf_parse_pages(const char *spec, int n_pages, int **pages, int *n, dsocr_error *err) {
    *pages = NULL;
    *n = 0;
    if (n_pages <= 0) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "page list: the document has no pages");
    char *want = calloc((size_t)n_pages, 1);
    if (!want) return ds_fail(err, DSOCR_ERR_NOMEM, "page list: out of memory for %d pages", n_pages);
    const char *s = spec ? skip_blank(spec) : "";
    if (*s == 0) memset(want, 1, (size_t)n_pages);
    while (*s) {
        int a = 1, b;
        if (*s != '-') {
            s = page_number(s, spec, n_pages, &a, err);
            if (!s) { free(want); return DSOCR_ERR_INVALID_ARG; }
        }
        b = a;
        if (*s == '-') {
            s = skip_blank(s + 1);
            if (*s == ',' || *s == 0) b = n_pages;   /* "5-": to the end */
            else if (!(s = page_number(s, spec, n_pages, &b, err))) { free(want); return DSOCR_ERR_INVALID_ARG; }
            if (b < a) {
                free(want);
                return ds_fail(err, DSOCR_ERR_INVALID_ARG, "page list \"%s\": range %d-%d runs backwards", spec, a, b);
            }
        }
        for (int k = a; k <= b; k++) want[k - 1] = 1;
        if (*s == ',') {
            s = skip_blank(s + 1);
            if (*s == 0) {
                free(want);
                return ds_fail(err, DSOCR_ERR_INVALID_ARG, "page list \"%s\": ends with a comma", spec);
            }
        } else if (*s) {
            free(want);
            return ds_fail(err, DSOCR_ERR_INVALID_ARG, "page list \"%s\": unexpected \"%.20s\"", spec, s);
        }
    }
    int count = 0;
    for (int k = 0; k < n_pages; k++) count += want[k];
    int *list = malloc((size_t)count * sizeof *list);
    if (!list) {
        free(want);
        return ds_fail(err, DSOCR_ERR_NOMEM, "page list: out of memory");
    }
    for (int k = 0, j = 0; k < n_pages; k++)
        if (want[k]) list[j++] = k;
    free(want);
    *pages = list;
    *n = count;
    return DSOCR_OK;
}
