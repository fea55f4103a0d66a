/* ocr: grounding parser (incremental, against the reference regex through PCRE2)
 * and the result.mmd rewrite against outputs of the reference Python code. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "ocr/grounding.h"
#include "ocr/markdown.h"
#include "test_util.h"

/* Hand-written model outputs; expected strings printed by the reference code
 * (re_match + the replace loops of run_dpsk_ocr_image.py / run_dpsk_ocr_pdf.py,
 * PDF variant with page 3) on Python 3. */
typedef struct md_case {
    const char *name, *text, *image_mmd, *pdf_mmd;
} md_case;

static const md_case md_cases[] = {
{"doc", "<|ref|>title<|/ref|><|det|>[[62, 30, 937, 72]]<|/det|>\n# Results\n\n<|ref|>text<|/ref|><|det|>[[62, 90, 937, 200]]<|/det|>\nWe define $f \\coloneqq g$ and $h \\eqqcolon k$.\n\n<|ref|>image<|/ref|><|det|>[[100, 220, 900, 600]]<|/det|>\n\n<|ref|>image_caption<|/ref|><|det|>[[100, 610, 900, 640]]<|/det|>\nFigure 1: A plot.\n\n<|ref|>table<|/ref|><|det|>[[62, 660, 937, 900]]<|/det|>\n<table><tr><td>a</td><td>1</td></tr></table>\n\n\n\n<|ref|>equation<|/ref|><|det|>[[62, 910, 937, 990]]<|/det|>\n\\[x \\coloneqq 1\\]",
 "\n# Results\n\n\nWe define $f := g$ and $h =: k$.\n\n![](images/0.jpg)\n\n\n\nFigure 1: A plot.\n\n\n<table><tr><td>a</td><td>1</td></tr></table>\n\n\n\n\n\\[x := 1\\]",
 "\n# Results\n\nWe define $f := g$ and $h =: k$.\n\n![](images/3_0.jpg)\n\nFigure 1: A plot.\n\n<table><tr><td>a</td><td>1</td></tr></table>\n\n\\[x := 1\\]"},
/* multibox */
{"multibox", "<|ref|>image<|/ref|><|det|>[[0, 0, 499, 499], [500, 500, 999, 999]]<|/det|>\ntext between\n<|ref|>image<|/ref|><|det|>[[10,10,20,20]]<|/det|>\nend",
 "![](images/0.jpg)\n\ntext between\n![](images/1.jpg)\n\nend",
 "![](images/3_0.jpg)\n\ntext between\n![](images/3_1.jpg)\n\nend"},
/* spaces */
{"spaces", "<|ref|>page header<|/ref|><|det|>[[10, 5, 990, 40]]<|/det|>\nChapter 3\n\n<|ref|>sub title<|/ref|><|det|>[[10,50,500,80]]<|/det|>\n## Intro \\coloneqq\n",
 "\nChapter 3\n\n\n## Intro :=\n",
 "\nChapter 3\n\n## Intro :=\n"},
/* malformed */
{"malformed", "<|ref|>text<|/ref|><|det|>[[1, 2, 3]]<|/det|>\nthree numbers\n<|ref|>text<|/ref|><|det|>[[1, 2, 3, 4]<|/det|>\nunbalanced\n<|ref|>image<|/ref|><|det|>not a list<|/det|>\nbad image\n<|ref|>text<|/ref|> <|det|>[[1,2,3,4]]<|/det|>\nnot adjacent\n<|ref|>formula<|/ref|><|det|>[[10, 20, 30, 40],]<|/det|>\ntrailing comma ok\n<|ref|>image<|/ref|><|det|>[]<|/det|>\nempty list\n<|ref|>text<|/ref|><|det|>[[1,2,3,4]]\nno close at all",
 "\nthree numbers\n\nunbalanced\n![](images/0.jpg)\n\nbad image\n\ntrailing comma ok\n![](images/1.jpg)\n\nempty list\n<|ref|>text<|/ref|><|det|>[[1,2,3,4]]\nno close at all",
 "\nthree numbers\n\nunbalanced\n![](images/3_0.jpg)\n\nbad image\n\ntrailing comma ok\n![](images/3_1.jpg)\n\nempty list\n<|ref|>text<|/ref|><|det|>[[1,2,3,4]]\nno close at all"},
/* dupes */
{"dupes", "<|ref|>image<|/ref|><|det|>[[1, 2, 3, 4]]<|/det|>A<|ref|>image<|/ref|><|det|>[[1, 2, 3, 4]]<|/det|>B<|ref|>text<|/ref|><|det|>[[5,6,7,8]]<|/det|>C<|ref|>text<|/ref|><|det|>[[5,6,7,8]]<|/det|>D",
 "![](images/0.jpg)\nA![](images/0.jpg)\nBCD",
 "![](images/3_0.jpg)\nA![](images/3_0.jpg)\nBCD"},
/* nested */
{"nested", "<|ref|>a<|ref|>image<|/ref|><|det|>[[1,1,2,2]]<|/det|>x<|ref|>image<|/ref|><|det|>[[1,1,2,2]]<|/det|>y<|ref|>lab<|/ref|>el<|/ref|><|det|>[[3,3,4,4]]<|/det|>z\n\n\n\nw \\coloneqq",
 "![](images/0.jpg)\nx![](images/1.jpg)\nyz\n\n\n\nw :=",
 "![](images/3_0.jpg)\nx![](images/3_1.jpg)\nyz\n\nw :="},
/* noother */
{"noother", "plain \\coloneqq text\n\n\n\nwith <|ref|>image<|/ref|><|det|>[[1,1,998,998]]<|/det|> only",
 "plain \\coloneqq text\n\n\n\nwith ![](images/0.jpg)\n only",
 "plain \\coloneqq text\n\n\n\nwith ![](images/3_0.jpg)\n only"},
/* pdfnl */
{"pdfnl", "<|ref|>text<|/ref|><|det|>[[1,2,3,4]]<|/det|>\n\n\n\n\nA\n\n\nB\n\n\n\n\n\n\nC",
 "\n\n\n\n\nA\n\n\nB\n\n\n\n\n\n\nC",
 "\n\nA\n\nB\n\n\n\nC"},
};

/* ---- the regex, as the reference runs it --------------------------------------- */

typedef struct span { size_t start, end, label_start, label_end, det_start, det_end; } span;

static int regex_findall(const char *text, size_t len, span *out, int max) {
    int errcode;
    PCRE2_SIZE erroff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR) "(<\\|ref\\|>(.*?)<\\|/ref\\|><\\|det\\|>(.*?)<\\|/det\\|>)",
                                   PCRE2_ZERO_TERMINATED, PCRE2_DOTALL, &errcode, &erroff, NULL);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int n = 0;
    size_t at = 0;
    while (n < max && pcre2_match(re, (PCRE2_SPTR)text, len, at, 0, md, NULL) > 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        out[n++] = (span){ov[0], ov[1], ov[4], ov[5], ov[6], ov[7]};
        at = ov[1];
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return n;
}

static int same_blocks(const ds_grounding *g, const char *text, const span *want, int n_want) {
    if (g->n_blocks != n_want) return 0;
    for (int i = 0; i < n_want; i++) {
        const ds_ground_block *b = &g->blocks[i];
        size_t ll = want[i].label_end - want[i].label_start;
        if (b->start != want[i].start || b->end != want[i].end || b->det_start != want[i].det_start ||
            b->det_end != want[i].det_end || strlen(b->label) != ll || memcmp(b->label, text + want[i].label_start, ll))
            return 0;
    }
    return 1;
}

/* Random text from pieces that make matches, near-misses and split markers likely. */
static size_t random_text(uint64_t *rng, char *out, size_t cap) {
    static const char *pieces[] = {"<|ref|>", "<|/ref|>", "<|det|>", "<|/det|>", "<|/ref|><|det|>", "image", "title",
                                   "text", "[[1, 2, 3, 4]]", "[[10,20,30,40], [5,6,7,8]]", "[1,2]", "\n", " ", "abc",
                                   "<|", "|>", "<|ref", "det|>", "é", "[[", "]]", ", ", "999",
                                   "<|ref|>text<|/ref|><|det|>[[1,2,3,4]]<|/det|>", "<|ref|>image<|/ref|><|det|>"};
    size_t n = 0;
    int count = 1 + (int)(tu_rand_u64(rng) % 40);
    for (int i = 0; i < count; i++) {
        const char *p = pieces[tu_rand_u64(rng) % (sizeof pieces / sizeof *pieces)];
        size_t l = strlen(p);
        if (n + l >= cap) break;
        memcpy(out + n, p, l);
        n += l;
    }
    out[n] = 0;
    return n;
}

static void test_regex_equivalence(void) {
    uint64_t rng = 42;
    char text[2048];
    span want[256];
    int mismatches = 0, total_blocks = 0;
    for (int iter = 0; iter < 3000; iter++) {
        size_t len = random_text(&rng, text, sizeof text);
        int n_want = regex_findall(text, len, want, 256);
        total_blocks += n_want;
        ds_grounding whole;
        CHECK_EQ_INT(ds_grounding_parse(text, len, 1000, 800, &whole, NULL), DSOCR_OK);
        if (!same_blocks(&whole, text, want, n_want)) mismatches++;
        /* the same text in random chunks, including empty ones and 1-byte ones */
        ds_grounding inc;
        ds_grounding_init(&inc, 1000, 800);
        size_t at = 0;
        while (at < len) {
            size_t step = (size_t)(tu_rand_u64(&rng) % 12);
            if (step > len - at) step = len - at;
            CHECK_EQ_INT(ds_grounding_feed(&inc, text + at, step, NULL), DSOCR_OK);
            at += step;
        }
        if (!same_blocks(&inc, text, want, n_want)) mismatches++;
        for (int i = 0; i < inc.n_blocks && i < whole.n_blocks; i++) {
            CHECK_EQ_INT(inc.blocks[i].det_ok, whole.blocks[i].det_ok);
            CHECK_EQ_INT(inc.blocks[i].n_boxes, whole.blocks[i].n_boxes);
        }
        CHECK_STR(ds_grounding_text(&inc), text);
        ds_grounding_free(&whole);
        ds_grounding_free(&inc);
    }
    CHECK_EQ_INT(mismatches, 0);
    CHECK(total_blocks > 500);   /* the generator really produces matches */
}

/* ---- det lists and pixels ------------------------------------------------------ */

static int det(const char *s, int w, int h, ds_ground_box **b) {
    int n;
    int ok = ds_grounding_parse_det(s, strlen(s), w, h, b, &n);
    return ok == 1 ? n : -1;
}

static void test_det_lists(void) {
    ds_ground_box *b;
    CHECK_EQ_INT(det("[[62, 30, 937, 72]]", 1000, 1000, &b), 1);
    CHECK_EQ_INT(b[0].px[0], 62);   /* int(62/999*1000) = 62 */
    CHECK_EQ_INT(b[0].px[2], 937);
    free(b);
    /* several boxes, spaces and newlines, trailing commas (Python accepts them) */
    CHECK_EQ_INT(det(" [[0, 0, 499, 499], \n [500,500,999,999],] ", 1654, 2339, &b), 2);
    int want[2][4] = {{0, 0, 826, 1168}, {827, 1170, 1654, 2339}};   /* reference values */
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 4; k++) CHECK_EQ_INT(b[i].px[k], want[i][k]);
    free(b);
    CHECK_EQ_INT(det("[]", 10, 10, &b), 0);
    CHECK_EQ_INT(det("[[1,2,3,4,]]", 999, 999, &b), 1);
    free(b);
    CHECK_EQ_INT(det("[[1.5, 2e1, -3, +4]]", 999, 999, &b), 1);
    CHECK(b[0].norm[0] == 1.5 && b[0].norm[1] == 20.0 && b[0].norm[2] == -3.0 && b[0].norm[3] == 4.0);
    CHECK_EQ_INT(b[0].px[2], -3);   /* truncation toward zero: int(-3/999*999) */
    free(b);
    /* malformed: each of these makes the reference skip the block */
    const char *bad[] = {"[[1, 2, 3]]", "[[1, 2, 3, 4]", "not a list", "", "[1, 2, 3, 4]", "[[1,2,3,4,5]]",
                         "[[1,2,3,4]] x", "[[01,2,3,4]]", "[[1,,2,3,4]]", "[[a,2,3,4]]", "[[1e999,2,3,4]]",
                         "[[1j,2,3,4]]", "[[[1,2,3,4]]]", "[,]", "[[1,2,3,4]],"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) CHECK_MSG(det(bad[i], 9, 9, &b) == -1, "accepted \"%s\"", bad[i]);
    CHECK_EQ_INT(det("[[000,2,3,4]]", 9, 9, &b), 1);   /* Python accepts 000 */
    free(b);

    /* int(x / 999 * W) in float64: (x/999)*W, not x*W/999. Reference values. */
    CHECK_EQ_INT(ds_grounding_to_px(63, 999), 62);
    CHECK_EQ_INT(ds_grounding_to_px(126, 999), 125);
    CHECK_EQ_INT(ds_grounding_to_px(509, 999), 508);
    CHECK_EQ_INT(ds_grounding_to_px(999, 1654), 1654);
    CHECK_EQ_INT(ds_grounding_to_px(499, 1654), 826);
    CHECK_EQ_INT(ds_grounding_to_px(1e12, 1000), 1073741824);   /* clamped, no UB */
}

static void test_blocks_in_outputs(void) {
    /* label text with spaces, boxes in pixels */
    const char *spaces = md_cases[2].text;
    ds_grounding g;
    CHECK_EQ_INT(ds_grounding_parse(spaces, strlen(spaces), 1654, 2339, &g, NULL), DSOCR_OK);
    CHECK_EQ_INT(g.n_blocks, 2);
    CHECK_STR(g.blocks[0].label, "page header");
    CHECK_STR(g.blocks[1].label, "sub title");
    CHECK_EQ_INT(g.blocks[0].boxes[0].px[0], 16);
    CHECK_EQ_INT(g.blocks[0].boxes[0].px[1], 11);
    CHECK_EQ_INT(g.blocks[0].boxes[0].px[2], 1639);
    CHECK_EQ_INT(g.blocks[1].boxes[0].px[2], 827);
    ds_grounding_free(&g);

    /* malformed det lists: matched (and rewritten) but without boxes */
    const char *bad = md_cases[3].text;
    CHECK_EQ_INT(ds_grounding_parse(bad, strlen(bad), 1654, 2339, &g, NULL), DSOCR_OK);
    CHECK_EQ_INT(g.n_blocks, 5);
    int ok[5] = {0, 0, 0, 1, 1}, nb[5] = {0, 0, 0, 1, 0};
    for (int i = 0; i < 5 && i < g.n_blocks; i++) {
        CHECK_EQ_INT(g.blocks[i].det_ok, ok[i]);
        CHECK_EQ_INT(g.blocks[i].n_boxes, nb[i]);
    }
    /* ref and det not adjacent: the label runs on to the next "<|/ref|><|det|>" */
    if (g.n_blocks == 5) {
        CHECK(strncmp(g.blocks[3].label, "text<|/ref|> <|det|>", 20) == 0);
        CHECK_EQ_INT(g.blocks[3].boxes[0].px[0], 16);
        CHECK_EQ_INT(g.blocks[3].boxes[0].px[3], 93);
    }
    ds_grounding_free(&g);

    /* several boxes in one image block */
    const char *multi = md_cases[1].text;
    CHECK_EQ_INT(ds_grounding_parse(multi, strlen(multi), 1654, 2339, &g, NULL), DSOCR_OK);
    CHECK_EQ_INT(g.n_blocks, 2);
    CHECK_EQ_INT(g.blocks[0].n_boxes, 2);
    CHECK_EQ_INT(g.blocks[0].boxes[1].px[0], 827);
    CHECK_EQ_INT(g.blocks[1].boxes[0].px[3], 46);
    ds_grounding_free(&g);

    /* streamed one byte at a time, blocks appear as soon as "<|/det|>" is complete */
    ds_grounding_init(&g, 100, 100);
    const char *t = "<|ref|>text<|/ref|><|det|>[[1,2,3,4]]<|/det|>tail";
    size_t close_end = strstr(t, "<|/det|>") + 8 - t;
    for (size_t i = 0; i < strlen(t); i++) {
        ds_grounding_feed(&g, t + i, 1, NULL);
        CHECK_EQ_INT(g.n_blocks, i + 1 >= close_end ? 1 : 0);
    }
    ds_grounding_free(&g);
}

/* ---- result.mmd ----------------------------------------------------------------- */

static void test_markdown(void) {
    for (size_t i = 0; i < sizeof md_cases / sizeof *md_cases; i++) {
        const md_case *c = &md_cases[i];
        char *out;
        size_t n;
        CHECK_EQ_INT(ds_markdown_rewrite(c->text, strlen(c->text), -1, &out, &n, NULL), DSOCR_OK);
        CHECK_MSG(strcmp(out, c->image_mmd) == 0, "%s (image): got \"%s\"", c->name, out);
        CHECK_EQ_INT(n, strlen(c->image_mmd));
        free(out);
        CHECK_EQ_INT(ds_markdown_rewrite(c->text, strlen(c->text), 3, &out, &n, NULL), DSOCR_OK);
        CHECK_MSG(strcmp(out, c->pdf_mmd) == 0, "%s (pdf): got \"%s\"", c->name, out);
        free(out);
    }
    char *out;
    CHECK_EQ_INT(ds_markdown_plain(md_cases[0].text, strlen(md_cases[0].text), &out, NULL, NULL), DSOCR_OK);
    CHECK_STR(out, "# Results\n\nWe define $f \\coloneqq g$ and $h \\eqqcolon k$.\n\nFigure 1: A plot.\n\n"
                   "<table><tr><td>a</td><td>1</td></tr></table>\n\n\\[x \\coloneqq 1\\]");
    free(out);

    /* Python str.strip(): Unicode whitespace, not only ASCII */
    const char *s = "\xe3\x80\x80 \n\xc2\xa0text \xe2\x80\x83\t";
    size_t a, n;
    ds_markdown_strip(s, strlen(s), &a, &n);
    CHECK_EQ_INT(n, 4);
    CHECK(strncmp(s + a, "text", 4) == 0);
    ds_markdown_strip("  ", 2, &a, &n);
    CHECK_EQ_INT(n, 0);
    size_t rl;
    char *r = ds_str_replace("aaaa", 4, "aa", 2, "b", 1, &rl);
    CHECK_STR(r, "bb");
    free(r);
    r = ds_str_replace("\n\n\n\n\n\n\n", 7, "\n\n\n\n", 4, "\n\n", 2, &rl);   /* non-overlapping, left to right */
    CHECK_EQ_INT(rl, 5);
    free(r);
}

int main(void) {
    test_regex_equivalence();
    test_det_lists();
    test_blocks_in_outputs();
    test_markdown();
    return tu_done("test_ocr_grounding");
}
