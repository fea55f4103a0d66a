/* The grounding-output parser and what consumes it (src/ocr): model output is
 * text from a stranger's image, so every byte sequence must be safe.
 *   - ds_grounding_parse on the whole text vs ds_grounding_feed in random chunks:
 *     the same blocks (the documented chunking invariance);
 *   - the match spans vs PCRE2 running the reference regex itself
 *     (<\|ref\|>(.*?)<\|/ref\|><\|det\|>(.*?)<\|/det\|>, DOTALL);
 *   - pixels = ds_grounding_to_px of the 0..999 values;
 *   - Markdown rewrite (image and PDF variants) and plain text;
 *   - a label sanitized for a file name passes ds_output_name_ok (no path escapes);
 *   - boxes drawn on, and cropped from, a small page.
 * Input: width, height (2 bytes each; 0 allowed), a chunking seed byte, then the text. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "fuzz_util.h"
#include "ocr/grounding.h"
#include "ocr/markdown.h"
#include "ocr/output.h"

static pcre2_code *reference_re;
static pcre2_match_data *md;

static void compile_reference(void) {
    int code;
    PCRE2_SIZE at;
    reference_re = pcre2_compile((PCRE2_SPTR) "(<\\|ref\\|>(.*?)<\\|/ref\\|><\\|det\\|>(.*?)<\\|/det\\|>)",
                                 PCRE2_ZERO_TERMINATED, PCRE2_DOTALL, &code, &at, NULL);
    md = reference_re ? pcre2_match_data_create_from_pattern(reference_re, NULL) : NULL;
    if (!md) abort();
}

static void same_blocks(const ds_grounding *a, const ds_grounding *b) {
    FUZZ_CHECK(a->n_blocks == b->n_blocks);
    for (int i = 0; i < a->n_blocks; i++) {
        const ds_ground_block *x = &a->blocks[i], *y = &b->blocks[i];
        FUZZ_CHECK(!strcmp(x->label, y->label) && x->det_ok == y->det_ok && x->n_boxes == y->n_boxes);
        FUZZ_CHECK(x->start == y->start && x->end == y->end && x->det_start == y->det_start && x->det_end == y->det_end);
        for (int k = 0; k < x->n_boxes; k++) FUZZ_CHECK(!memcmp(&x->boxes[k], &y->boxes[k], sizeof x->boxes[k]));
    }
}

/* The matches PCRE2 finds with the reference regex, as re.finditer would. */
static void check_against_regex(const ds_grounding *g, const char *text, size_t len) {
    PCRE2_SIZE from = 0;
    int i = 0;
    for (;;) {
        int rc = pcre2_match(reference_re, (PCRE2_SPTR)text, len, from, 0, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        FUZZ_CHECK(rc > 0);   /* no match-limit errors on inputs of this size */
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        FUZZ_CHECK(i < g->n_blocks);
        const ds_ground_block *b = &g->blocks[i++];
        FUZZ_CHECK(b->start == ov[0] && b->end == ov[1] && b->det_start == ov[6] && b->det_end == ov[7]);
        FUZZ_CHECK(strlen(b->label) <= ov[5] - ov[4] && !memcmp(b->label, text + ov[4], ov[5] - ov[4]));
        from = ov[1] > ov[0] ? ov[1] : ov[1] + 1;
    }
    FUZZ_CHECK(i == g->n_blocks);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!reference_re) compile_reference();
    fuzz_reader r = {data, size};
    int width = (int)fuzz_u16(&r), height = (int)fuzz_u16(&r);
    uint32_t chunk_seed = fuzz_u8(&r);
    const char *text = (const char *)r.p;
    size_t len = r.n;
    dsocr_error err;

    ds_grounding whole;
    dsocr_status s = ds_grounding_parse(text, len, width, height, &whole, &err);
    FUZZ_CHECK(s == DSOCR_OK);
    FUZZ_CHECK(whole.len == len && (len == 0 || !memcmp(ds_grounding_text(&whole), text, len)));

    ds_grounding inc;
    ds_grounding_init(&inc, width, height);
    uint32_t x = chunk_seed * 2654435761u + 1;
    for (size_t at = 0; at < len;) {
        x = x * 1103515245u + 12345u;
        size_t n = chunk_seed & 1 ? 1 + (x >> 16) % 9 : 1 + (x >> 16) % 64;
        if (n > len - at) n = len - at;
        FUZZ_CHECK(ds_grounding_feed(&inc, text + at, n, &err) == DSOCR_OK);
        at += n;
    }
    same_blocks(&whole, &inc);
    ds_grounding_free(&inc);
    check_against_regex(&whole, text, len);

    for (int i = 0; i < whole.n_blocks; i++) {
        const ds_ground_block *b = &whole.blocks[i];
        FUZZ_CHECK(b->det_ok || b->n_boxes == 0);
        for (int k = 0; k < b->n_boxes; k++)
            for (int c = 0; c < 4; c++)
                FUZZ_CHECK(b->boxes[k].px[c] == ds_grounding_to_px(b->boxes[k].norm[c], c & 1 ? height : width));
        char safe[64];
        ds_output_sanitize(b->label, safe, sizeof safe);
        FUZZ_CHECK(ds_output_name_ok(safe));
        (void)ds_markdown_is_image(ds_grounding_text(&whole), b);
        (void)ds_label_color(b->label);
    }

    char *md_out = NULL;
    size_t md_len = 0;
    s = ds_markdown_rewrite(text, len, chunk_seed & 2 ? (int)(chunk_seed % 7) : -1, &md_out, &md_len, &err);
    FUZZ_CHECK(s == DSOCR_OK && md_out && strlen(md_out) <= md_len);
    free(md_out);
    s = ds_markdown_plain(text, len, &md_out, &md_len, &err);
    FUZZ_CHECK(s == DSOCR_OK && md_out);
    free(md_out);

    /* Boxes on a small page: the parsed coordinates map to a W x H page (<= 32 x 32). */
    int W = width % 32 + 1, H = height % 32 + 1;
    ds_grounding page;
    FUZZ_CHECK(ds_grounding_parse(text, len, W, H, &page, &err) == DSOCR_OK);
    uint8_t *rgb = calloc((size_t)W * H * 3, 1);
    if (!rgb) abort();
    ds_draw_boxes(rgb, W, H, &page);
    for (int i = 0; i < page.n_blocks; i++)
        for (int k = 0; k < page.blocks[i].n_boxes; k++) {
            uint8_t *crop = NULL;
            int cw = 0, ch = 0;
            if (ds_crop_rgb(rgb, W, H, page.blocks[i].boxes[k].px, &crop, &cw, &ch)) {
                FUZZ_CHECK(crop && cw > 0 && ch > 0 && cw <= W && ch <= H);
                volatile uint8_t sink = crop[(size_t)cw * ch * 3 - 1];
                (void)sink;
            }
            free(crop);
        }
    free(rgb);
    ds_grounding_free(&page);
    ds_grounding_free(&whole);
    return 0;
}
