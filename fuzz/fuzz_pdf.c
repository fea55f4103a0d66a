/* PDF open and render through MuPDF (ds_pdf_open_memory, ds_pdf_render_page):
 * any bytes, never a crash, a leak or a write to stderr. One page is rendered at a
 * low dpi under a small pixel limit (a page's declared size is what the limit
 * check is for; the resolution does not change the parsing). The page list of the
 * whole document ("every page") is built as the CLI does. */
#include "fuzz_util.h"
#include "image/pdf.h"

#define FUZZ_DPI 36.0f
#define FUZZ_MAX_PIXELS (1u << 18)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ds_pdf *pdf = NULL;
    dsocr_error err;
    dsocr_status s = ds_pdf_open_memory(data, size, "fuzz.pdf", NULL, &pdf, &err);
    fuzz_check_error(s, &err);
    if (s != DSOCR_OK) { FUZZ_CHECK(pdf == NULL); return 0; }
    int n_pages = ds_pdf_page_count(pdf);
    FUZZ_CHECK(n_pages > 0);
    int *pages = NULL, n = 0;
    s = ds_pdf_parse_pages(NULL, n_pages, &pages, &n, &err);
    fuzz_check_error(s, &err);
    if (s == DSOCR_OK) FUZZ_CHECK(n == n_pages && pages[0] == 0 && pages[n - 1] == n_pages - 1);
    free(pages);
    /* The first page, and another one picked by the last input byte. */
    int which[2] = {0, size ? data[size - 1] % n_pages : 0};
    for (int k = 0; k < (which[1] ? 2 : 1); k++) {
        uint8_t *rgb = NULL;
        int w = 0, h = 0;
        s = ds_pdf_render_page(pdf, which[k], FUZZ_DPI, FUZZ_MAX_PIXELS, &rgb, &w, &h, &err);
        fuzz_check_error(s, &err);
        if (s == DSOCR_OK) {
            FUZZ_CHECK(rgb && w > 0 && h > 0 && (uint64_t)w * (uint64_t)h <= FUZZ_MAX_PIXELS);
            volatile uint8_t sink = rgb[0] ^ rgb[(size_t)w * h * 3 - 1];
            (void)sink;
        } else {
            FUZZ_CHECK(rgb == NULL);
        }
        free(rgb);
    }
    (void)ds_pdf_last_warning(pdf);
    ds_pdf_close(pdf);
    return 0;
}
