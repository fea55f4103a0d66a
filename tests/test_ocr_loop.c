/* ocr: loop detector on crafted token streams, both ways: runaway repetition must
 * be cut early; long legitimate tables, lists and image grids must not be. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocr/loop.h"
#include "test_util.h"

/* ---- a toy tokenizer: words, digit groups of up to 3 (like DeepSeek-V3), single
 * punctuation, whitespace runs and the special tags, each piece one id ---------------- */

#define MAX_VOCAB 4096
static char *vocab[MAX_VOCAB];
static int n_vocab;

static int token_id(const char *s, size_t n) {
    for (int i = 0; i < n_vocab; i++)
        if (strlen(vocab[i]) == n && memcmp(vocab[i], s, n) == 0) return i;
    if (n_vocab == MAX_VOCAB) return 0;
    vocab[n_vocab] = strndup(s, n);
    return n_vocab++;
}

static size_t piece_len(const char *s) {
    static const char *tags[] = {"<|ref|>", "<|/ref|>", "<|det|>", "<|/det|>", "<td>", "</td>", "<tr>", "</tr>",
                                 "<table>", "</table>"};
    for (size_t i = 0; i < sizeof tags / sizeof *tags; i++)
        if (strncmp(s, tags[i], strlen(tags[i])) == 0) return strlen(tags[i]);
    size_t n = 0;
    if (s[0] >= '0' && s[0] <= '9') {
        while (n < 3 && s[n] >= '0' && s[n] <= '9') n++;
        return n;
    }
    if ((s[0] | 32) >= 'a' && (s[0] | 32) <= 'z') {
        while (((s[n] | 32) >= 'a' && (s[n] | 32) <= 'z')) n++;
        return n;
    }
    if (s[0] == ' ' || s[0] == '\n') {
        while (s[n] == s[0]) n++;
        return n;
    }
    return 1;
}

typedef struct stream {
    ds_loop_detector d;
    int n_tokens;
    char *text;
    size_t len, cap;
} stream;

static void stream_init(stream *s, const ds_loop_config *cfg) {
    memset(s, 0, sizeof *s);
    CHECK_EQ_INT(ds_loop_init(&s->d, cfg, NULL), DSOCR_OK);
}

/* Feeds text token by token; stops feeding once the detector fired. */
static void feed(stream *s, const char *text) {
    for (const char *p = text; *p && !s->d.fired;) {
        size_t n = piece_len(p);
        char piece[64];
        snprintf(piece, sizeof piece, "%.*s", (int)n, p);
        CHECK_EQ_INT(ds_loop_push(&s->d, token_id(p, n), piece, NULL), DSOCR_OK);
        if (s->len + n + 1 > s->cap) {
            s->cap = (s->len + n + 1) * 2;
            s->text = realloc(s->text, s->cap);
        }
        memcpy(s->text + s->len, p, n);
        s->len += n;
        s->text[s->len] = 0;
        s->n_tokens++;
        p += n;
    }
}

static void stream_free(stream *s) {
    ds_loop_free(&s->d);
    free(s->text);
}

static uint64_t rng = 7;
static int rnd(int n) { return (int)(tu_rand_u64(&rng) % (uint64_t)n); }

static const char *words[] = {"model", "results", "table", "value", "data", "method", "shows", "for", "the", "of",
                              "training", "accuracy", "we", "propose", "network", "layer", "input", "output",
                              "figure", "section", "analysis", "error", "rate", "sample", "test", "and", "with",
                              "is", "in", "a", "performance", "baseline", "loss", "dataset", "image", "text"};
#define N_WORDS ((int)(sizeof words / sizeof *words))

/* ---- must fire ----------------------------------------------------------------------- */

static void expect_fired(stream *s, const char *what, int max_tokens) {
    CHECK_MSG(s->d.fired != DS_LOOP_NONE, "%s: not detected after %d tokens", what, s->n_tokens);
    CHECK_MSG(s->n_tokens <= max_tokens, "%s: detected only after %d tokens", what, s->n_tokens);
    CHECK(s->d.keep_bytes <= s->len);
    CHECK(s->d.reason[0] != 0);
}

static void test_fires(void) {
    char line[512];
    stream s;

    /* 1. the same line over and over */
    stream_init(&s, NULL);
    for (int i = 0; i < 200 && !s.d.fired; i++) feed(&s, "The quick brown fox jumps over the lazy dog.\n");
    expect_fired(&s, "same line", 250);
    CHECK_EQ_INT(s.d.fired, DS_LOOP_LINE);
    /* keep_bytes: one copy stays, the repeats go */
    CHECK_EQ_INT(s.d.keep_bytes, strlen("The quick brown fox jumps over the lazy dog.\n"));
    stream_free(&s);

    /* 2. a numbered sentence: the counter dodges exact-repeat checks */
    stream_init(&s, NULL);
    for (int i = 1; i < 400 && !s.d.fired; i++) {
        snprintf(line, sizeof line, "%d. The results of the experiment are shown in the table below.\n", i);
        feed(&s, line);
    }
    expect_fired(&s, "numbered sentence", 16 * 30);
    CHECK_EQ_INT(s.d.fired, DS_LOOP_LINE_FUZZY);
    stream_free(&s);

    /* 3. a short cycle on one line: endless empty cells */
    stream_init(&s, NULL);
    feed(&s, "<table><tr><td>Name</td>");
    for (int i = 0; i < 4000 && !s.d.fired; i++) feed(&s, "<td></td>");
    expect_fired(&s, "empty cells", 400);
    CHECK_EQ_INT(s.d.fired, DS_LOOP_TOKEN_CYCLE);
    stream_free(&s);

    /* 4. the HF n-gram ban at work: a 24-token row repeats with one token changed
     *    every time (no 20-gram ever repeats), all on one line */
    stream_init(&s, NULL);
    feed(&s, "<table>");
    for (int i = 0; i < 2000 && !s.d.fired; i++) {
        snprintf(line, sizeof line, "<tr><td>Total</td><td>%d</td><td>0.00</td><td>n/a</td><td>see note</td></tr>", i % 997);
        feed(&s, line);
    }
    expect_fired(&s, "row with a counter", 1000);
    CHECK_EQ_INT(s.d.fired, DS_LOOP_TOKEN_FUZZY);
    stream_free(&s);

    /* 5. the same det record again and again, with different text after it */
    stream_init(&s, NULL);
    for (int i = 0; i < 50 && !s.d.fired; i++) {
        snprintf(line, sizeof line, "<|ref|>text<|/ref|><|det|>[[100, %d, 900, 240]]<|/det|>\n%s %s %s\n\n",
                 200 + (i & 1), words[rnd(N_WORDS)], words[rnd(N_WORDS)], words[rnd(N_WORDS)]);
        feed(&s, line);
    }
    expect_fired(&s, "same det record", 3 * 40);
    CHECK_EQ_INT(s.d.fired, DS_LOOP_DET);
    stream_free(&s);

    /* 6. a block repeating with sliding boxes: same paragraph, new box every time */
    stream_init(&s, NULL);
    for (int i = 0; i < 100 && !s.d.fired; i++) {
        snprintf(line, sizeof line,
                 "<|ref|>text<|/ref|><|det|>[[60, %d, 940, %d]]<|/det|>\nIn this section we describe the method.\n\n",
                 10 * i, 10 * i + 8);
        feed(&s, line);
    }
    expect_fired(&s, "sliding block", 12 * 40);
    CHECK_EQ_INT(s.d.fired, DS_LOOP_LINE);
    stream_free(&s);

    /* 7. two alternating lines */
    stream_init(&s, NULL);
    for (int i = 0; i < 100 && !s.d.fired; i++) feed(&s, "$$\n\\frac{a}{b} = c + d \\cdot e\n");
    expect_fired(&s, "alternating lines", 400);
    stream_free(&s);

    /* 8. text only, no ids (ds_loop_push_text), in odd-sized chunks */
    ds_loop_detector d;
    CHECK_EQ_INT(ds_loop_init(&d, NULL, NULL), DSOCR_OK);
    const char *rep = "Repeated heading of the document\n";
    for (int i = 0; i < 40 && !d.fired; i++) {
        CHECK_EQ_INT(ds_loop_push_text(&d, rep, 7, NULL), DSOCR_OK);
        CHECK_EQ_INT(ds_loop_push_text(&d, rep + 7, strlen(rep) - 7, NULL), DSOCR_OK);
    }
    CHECK_EQ_INT(d.fired, DS_LOOP_LINE);
    ds_loop_free(&d);
}

/* ---- must not fire ---------------------------------------------------------------------- */

static void expect_quiet(stream *s, const char *what, int min_tokens) {
    CHECK_MSG(s->d.fired == DS_LOOP_NONE, "%s: false loop after %d tokens: %s", what, s->n_tokens, s->d.reason);
    CHECK_MSG(s->n_tokens >= min_tokens, "%s: only %d tokens", what, s->n_tokens);
}

static void num(char *out, size_t n, int digits_before, int digits_after) {
    int a = rnd(digits_before == 1 ? 10 : digits_before == 2 ? 100 : 1000), b = rnd(digits_after == 1 ? 10 : 100);
    if (digits_after) snprintf(out, n, "%d.%0*d", a, digits_after, b);
    else snprintf(out, n, "%d", a);
}

static void test_quiet(void) {
    char line[1024], a[32], b[32], c[32], e[32];
    stream s;

    /* 1. a long HTML table on one line: 300 rows of numbers */
    stream_init(&s, NULL);
    feed(&s, "<table><tr><td>Year</td><td>Revenue</td><td>Cost</td><td>Margin</td><td>Growth</td></tr>");
    for (int i = 0; i < 300; i++) {
        num(a, sizeof a, 3, 2), num(b, sizeof b, 3, 2), num(c, sizeof c, 2, 1), num(e, sizeof e, 1, 1);
        snprintf(line, sizeof line, "<tr><td>%d</td><td>%s</td><td>%s</td><td>%s%%</td><td>%s</td></tr>", 1700 + i, a,
                 b, c, e);
        feed(&s, line);
    }
    feed(&s, "</table>\n");
    expect_quiet(&s, "html table", 6000);
    stream_free(&s);

    /* 2. the same table with a constant label column and two numbers per row */
    stream_init(&s, NULL);
    feed(&s, "<table>");
    for (int i = 0; i < 400; i++) {
        num(a, sizeof a, 1, 2), num(b, sizeof b, 2, 2);
        snprintf(line, sizeof line, "<tr><td>Sample</td><td>A</td><td>%s</td><td>%s</td></tr>", a, b);
        feed(&s, line);
    }
    expect_quiet(&s, "table with a constant column", 6000);
    stream_free(&s);

    /* 3. a Markdown table, one row per line */
    stream_init(&s, NULL);
    feed(&s, "| Item | Q1 | Q2 | Q3 | Q4 |\n|---|---|---|---|---|\n");
    for (int i = 0; i < 300; i++) {
        num(a, sizeof a, 2, 1), num(b, sizeof b, 2, 1), num(c, sizeof c, 3, 0), num(e, sizeof e, 2, 2);
        snprintf(line, sizeof line, "| %d | %s | %s | %s | %s |\n", i + 1, a, b, c, e);
        feed(&s, line);
    }
    expect_quiet(&s, "markdown table", 6000);
    stream_free(&s);

    /* 4. a long numbered list of different items */
    stream_init(&s, NULL);
    for (int i = 1; i <= 300; i++) {
        int k = snprintf(line, sizeof line, "%d. ", i);
        int nw = 3 + rnd(6);
        for (int w = 0; w < nw; w++) k += snprintf(line + k, sizeof line - (size_t)k, "%s ", words[rnd(N_WORDS)]);
        snprintf(line + k, sizeof line - (size_t)k, "(p. %d)\n", 10 + rnd(400));
        feed(&s, line);
    }
    expect_quiet(&s, "numbered list", 3000);
    stream_free(&s);

    /* 5. a page of 60 figures: det-only lines, a grid of different boxes */
    stream_init(&s, NULL);
    for (int r = 0; r < 10; r++)
        for (int col = 0; col < 6; col++) {
            snprintf(line, sizeof line, "<|ref|>image<|/ref|><|det|>[[%d, %d, %d, %d]]<|/det|>\n\n", col * 160 + 20,
                     r * 95 + 10, col * 160 + 150, r * 95 + 90);
            feed(&s, line);
        }
    expect_quiet(&s, "image grid", 1000);
    stream_free(&s);

    /* 6. a LaTeX table: \hline between different rows */
    stream_init(&s, NULL);
    feed(&s, "\\begin{tabular}{|c|c|c|}\n");
    for (int i = 0; i < 150; i++) {
        num(a, sizeof a, 2, 2), num(b, sizeof b, 2, 2);
        snprintf(line, sizeof line, "\\hline\n%s & %s & %s %s \\\\\n", a, b, words[rnd(N_WORDS)], words[rnd(N_WORDS)]);
        feed(&s, line);
    }
    expect_quiet(&s, "latex table", 2000);
    stream_free(&s);

    /* 7. grounded prose: a det record per paragraph, boxes moving down the page */
    stream_init(&s, NULL);
    for (int i = 0; i < 80; i++) {
        int k = snprintf(line, sizeof line, "<|ref|>text<|/ref|><|det|>[[60, %d, 940, %d]]<|/det|>\n", 12 * i, 12 * i + 10);
        for (int w = 0; w < 25; w++) k += snprintf(line + k, sizeof line - (size_t)k, "%s ", words[rnd(N_WORDS)]);
        snprintf(line + k, sizeof line - (size_t)k, "\n\n");
        feed(&s, line);
    }
    expect_quiet(&s, "grounded prose", 3000);
    stream_free(&s);

    /* 8. a short list of identical lines is not a loop */
    stream_init(&s, NULL);
    for (int i = 0; i < 6; i++) feed(&s, "- [ ] Signature\n");
    for (int i = 0; i < 8; i++) feed(&s, "| | | |\n");
    expect_quiet(&s, "short repeats", 40);
    stream_free(&s);
}

static void test_config(void) {
    ds_loop_detector d;
    dsocr_error err;
    ds_loop_config c = ds_loop_default_config();
    c.fuzzy_ratio = 1.5f;
    CHECK_EQ_INT(ds_loop_init(&d, &c, &err), DSOCR_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "fuzzy_ratio") != NULL);
    c = ds_loop_default_config();
    c.line_max_period = 20;
    CHECK_EQ_INT(ds_loop_init(&d, &c, &err), DSOCR_ERR_INVALID_ARG);

    /* every rule off: nothing fires */
    c = ds_loop_default_config();
    c.exact_min_tokens = c.fuzzy_window = c.line_repeats = c.fuzzy_line_repeats = c.det_repeats = 0;
    stream s;
    stream_init(&s, &c);
    for (int i = 0; i < 300; i++) feed(&s, "same same same\n");
    expect_quiet(&s, "rules off", 900);
    stream_free(&s);
    CHECK_STR(ds_loop_kind_name(DS_LOOP_TOKEN_FUZZY), "token_fuzzy");
}

int main(void) {
    test_fires();
    test_quiet();
    test_config();
    for (int i = 0; i < n_vocab; i++) free(vocab[i]);
    return tu_done("test_ocr_loop");
}
