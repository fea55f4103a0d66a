/* The page-range parser (ds_pdf_parse_pages, the CLI's --pages): the first two
 * bytes give the page count (0..4096; the parser's cost grows with it, its logic
 * does not), the rest is the spec. An accepted list is
 * ascending, without repeats, inside the document. */
#include "fuzz_util.h"
#include "image/pdf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_reader r = {data, size};
    int n_pages = (int)(fuzz_u16(&r) % 4097);
    char *spec = fuzz_strndup(r.p, r.n);   /* stops at an embedded NUL, as a C string would */
    int *pages = NULL, n = -1;
    dsocr_error err;
    dsocr_status s = ds_pdf_parse_pages(spec, n_pages, &pages, &n, &err);
    fuzz_check_error(s, &err);
    if (s == DSOCR_OK) {
        FUZZ_CHECK(n >= 1 && n <= n_pages && pages != NULL);
        for (int i = 0; i < n; i++) {
            FUZZ_CHECK(pages[i] >= 0 && pages[i] < n_pages);
            if (i) FUZZ_CHECK(pages[i] > pages[i - 1]);
        }
    } else {
        FUZZ_CHECK(pages == NULL && n == 0);
    }
    free(pages);
    free(spec);
    return 0;
}
