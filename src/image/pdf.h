/* PDF input through MuPDF (spec 6.1): pages rendered at `dpi` (144 by default,
 * i.e. zoom 2.0 like the reference's Matrix(dpi/72, dpi/72)), alpha off, to packed
 * 8-bit RGB. Wrap a page with dsocr_image_from_rgb(rgb, w, h, ...).
 *
 * Each ds_pdf owns its own MuPDF context (no global state) whose warning and
 * error callbacks keep the last message instead of printing it: the library never
 * writes to stderr. Not thread-safe per handle; use one handle per thread.
 *
 *   ds_pdf *pdf; DS_TRY(ds_pdf_open_file("a.pdf", NULL, &pdf, &err));
 *   int *pages, n; DS_TRY(ds_pdf_parse_pages("1-3,7", ds_pdf_page_count(pdf), &pages, &n, &err));
 *   uint8_t *rgb; int w, h; DS_TRY(ds_pdf_render_page(pdf, pages[0], 144, 0, &rgb, &w, &h, &err));
 */
#ifndef DS_IMAGE_PDF_H
#define DS_IMAGE_PDF_H

#include <stddef.h>
#include <stdint.h>

#include "dsocr.h"

#define DS_PDF_DEFAULT_DPI 144
#define DS_PDF_DEFAULT_MAX_PIXELS 178956970ull   /* Pillow's decompression-bomb limit */
/* Most pages a document may declare. MuPDF takes the page count from the page tree's
 * /Count, which a hostile file can set to 2^31-1 in a few bytes; every per-page
 * allocation (page lists, results) would follow it. (Found by fuzz/fuzz_pdf.) */
#define DS_PDF_MAX_PAGES 100000

typedef struct ds_pdf ds_pdf;

/* password: NULL or "" = none. An encrypted file that needs a password (and was not
 * given the right one), a file that is not a PDF, a damaged one MuPDF cannot repair
 * or one with no pages fail with a message naming the file. */
dsocr_status ds_pdf_open_file(const char *path, const char *password, ds_pdf **out, dsocr_error *err);
/* The data is copied. name is used in messages ("<memory>" when NULL). */
dsocr_status ds_pdf_open_memory(const void *data, size_t size, const char *name, const char *password,
                                ds_pdf **out, dsocr_error *err);
int ds_pdf_page_count(const ds_pdf *pdf);
/* Renders page `index` (0-based) at dpi (1..2400) into a malloc'd width*height*3
 * buffer. max_pixels: 0 = DS_PDF_DEFAULT_MAX_PIXELS; a larger page fails with
 * DSOCR_ERR_LIMIT before anything is rendered. */
dsocr_status ds_pdf_render_page(ds_pdf *pdf, int index, float dpi, uint64_t max_pixels, uint8_t **rgb,
                                int *width, int *height, dsocr_error *err);
/* The last warning MuPDF reported (e.g. a repaired xref), "" if none. */
const char *ds_pdf_last_warning(const ds_pdf *pdf);
void ds_pdf_close(ds_pdf *pdf);

/* Parses a page list like "1-3,7" (1-based, inclusive ranges, spaces allowed, "5-"
 * = 5 to the end, "-3" = 1 to 3) against n_pages into a malloc'd array of 0-based
 * indices, ascending, each page once. NULL or "" = every page. */
dsocr_status ds_pdf_parse_pages(const char *spec, int n_pages, int **pages, int *n, dsocr_error *err);

#endif
