/* Grounding parser: the reference regex as an incremental scanner, plus a
 * parser for the det list (a subset of Python literals). See grounding.h. */
#include "ocr/grounding.h"

#include <ctype.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

#define REF_OPEN "<|ref|>"            /* 7 bytes */
#define REF_CLOSE_DET "<|/ref|><|det|>" /* 14 bytes: the regex requires them adjacent */
#define DET_CLOSE "<|/det|>"          /* 8 bytes */
#define NONE SIZE_MAX

/* ---- det list: [[x1, y1, x2, y2], ...] -------------------------------------- */

int ds_grounding_to_px(double v, int size) {
    double x = v / 999.0 * (double)size;   /* same operation order as the reference */
    if (!(x < 1073741824.0)) return x != x ? 0 : 1073741824;
    if (!(x > -1073741824.0)) return -1073741824;
    return (int)x;                          /* C casts truncate toward zero, like int() */
}

typedef struct det_cursor {
    const char *s;
    size_t i, n;
} det_cursor;

static void skip_space(det_cursor *c) {
    while (c->i < c->n && (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\n' ||
                           c->s[c->i] == '\r' || c->s[c->i] == '\f' || c->s[c->i] == '\v'))
        c->i++;
}

static int is_digit(char ch) { return ch >= '0' && ch <= '9'; }

/* A number as Python's eval reads it: unary signs, then a decimal integer
 * (no leading zeros unless all zeros) or a float literal. Returns 0 if it is not one. */
static int parse_number(det_cursor *c, double *out) {
    int negative = 0;
    skip_space(c);
    while (c->i < c->n && (c->s[c->i] == '-' || c->s[c->i] == '+')) {
        if (c->s[c->i] == '-') negative = !negative;
        c->i++;
        skip_space(c);
    }
    size_t start = c->i, int_digits = 0, frac_digits = 0;
    int is_float = 0;
    while (c->i < c->n && is_digit(c->s[c->i])) c->i++, int_digits++;
    if (c->i < c->n && c->s[c->i] == '.') {
        is_float = 1;
        c->i++;
        while (c->i < c->n && is_digit(c->s[c->i])) c->i++, frac_digits++;
    }
    if (int_digits + frac_digits == 0) return 0;
    if (c->i < c->n && (c->s[c->i] == 'e' || c->s[c->i] == 'E')) {
        is_float = 1;
        c->i++;
        if (c->i < c->n && (c->s[c->i] == '+' || c->s[c->i] == '-')) c->i++;
        size_t exp_digits = 0;
        while (c->i < c->n && is_digit(c->s[c->i])) c->i++, exp_digits++;
        if (exp_digits == 0) return 0;
    }
    /* "1x", "1j", "1_0": not a plain literal followed by a separator */
    if (c->i < c->n && (isalnum((unsigned char)c->s[c->i]) || c->s[c->i] == '_' || c->s[c->i] == '.'))
        return 0;
    size_t len = c->i - start;
    double v;
    if (!is_float) {
        if (c->s[start] == '0') {   /* Python 3 rejects 012 but accepts 000 */
            for (size_t k = start; k < c->i; k++)
                if (c->s[k] != '0') return 0;
        }
        if (len <= 15) {
            int64_t x = 0;
            for (size_t k = start; k < c->i; k++) x = x * 10 + (c->s[k] - '0');
            v = (double)x;
        } else {
            v = INFINITY;   /* decided below via strtod_l */
        }
    }
    if (is_float || len > 15) {
        /* strtod in the C locale: correctly rounded, like Python's float() */
        char buf[128];
        if (len >= sizeof buf) return 0;
        memcpy(buf, c->s + start, len);
        buf[len] = 0;
        locale_t cl = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
        if (!cl) return 0;
        char *end = NULL;
        v = strtod_l(buf, &end, cl);
        freelocale(cl);
        if (end != buf + len) return 0;
    }
    if (!isfinite(v)) return 0;   /* int(inf) raises in the reference: block skipped */
    *out = negative ? -v : v;
    return 1;
}

/* Expects `ch` after optional space. */
static int expect(det_cursor *c, char ch) {
    skip_space(c);
    if (c->i < c->n && c->s[c->i] == ch) { c->i++; return 1; }
    return 0;
}

/* After an item: "," (then maybe the closing bracket: Python allows a trailing
 * comma) or the closing bracket. Returns 1 = more items, 0 = closed, -1 = error. */
static int list_next(det_cursor *c, char close) {
    skip_space(c);
    if (c->i >= c->n) return -1;
    if (c->s[c->i] == close) { c->i++; return 0; }
    if (c->s[c->i] != ',') return -1;
    c->i++;
    skip_space(c);
    if (c->i < c->n && c->s[c->i] == close) { c->i++; return 0; }
    return 1;
}

int ds_grounding_parse_det(const char *s, size_t n, int width, int height,
                           ds_ground_box **boxes, int *n_boxes) {
    det_cursor c = {s, 0, n};
    ds_ground_box *out = NULL;
    int count = 0, cap = 0, ok = 0;
    *boxes = NULL;
    *n_boxes = 0;
    if (!expect(&c, '[')) return 0;
    skip_space(&c);
    if (c.i < c.n && c.s[c.i] == ']') {   /* [] : a list with no boxes */
        c.i++;
        ok = 1;
        goto done;
    }
    for (;;) {
        double v[4];
        if (!expect(&c, '[')) goto done;
        for (int k = 0; k < 4; k++) {
            if (!parse_number(&c, &v[k])) goto done;
            int more = list_next(&c, ']');
            if (more < 0 || (more == 0) != (k == 3)) goto done;   /* exactly 4 numbers */
        }
        if (count == cap) {
            int ncap = cap ? cap * 2 : 4;
            ds_ground_box *nb = realloc(out, (size_t)ncap * sizeof *nb);
            if (!nb) { free(out); return -1; }
            out = nb;
            cap = ncap;
        }
        ds_ground_box *b = &out[count++];
        for (int k = 0; k < 4; k++) {
            b->norm[k] = v[k];
            b->px[k] = ds_grounding_to_px(v[k], (k & 1) ? height : width);
        }
        int more = list_next(&c, ']');
        if (more < 0) goto done;
        if (more == 0) break;
    }
    ok = 1;
done:
    skip_space(&c);
    if (ok && c.i == c.n) {
        *boxes = out;
        *n_boxes = count;
        return 1;
    }
    free(out);
    return 0;
}

/* ---- incremental regex scan --------------------------------------------------- */

void ds_grounding_init(ds_grounding *g, int width, int height) {
    memset(g, 0, sizeof *g);
    g->width = width;
    g->height = height;
    g->ref_at = NONE;
    g->mid_at = NONE;
}

const char *ds_grounding_text(const ds_grounding *g) { return g->text ? g->text : ""; }

void ds_grounding_free(ds_grounding *g) {
    for (int i = 0; i < g->n_blocks; i++) {
        free(g->blocks[i].label);
        free(g->blocks[i].boxes);
    }
    free(g->blocks);
    free(g->text);
    memset(g, 0, sizeof *g);
    g->ref_at = NONE;
    g->mid_at = NONE;
}

/* Finds `pat` in text[from, len); on failure moves find_from to where a marker
 * split across chunks could still start. */
static size_t find_marker(ds_grounding *g, const char *pat, size_t plen) {
    if (g->len >= g->find_from + plen) {
        const char *p = memmem(g->text + g->find_from, g->len - g->find_from, pat, plen);
        if (p) return (size_t)(p - g->text);
    }
    if (g->len + 1 > g->find_from + plen) g->find_from = g->len + 1 - plen;
    return NONE;
}

static dsocr_status emit_block(ds_grounding *g, size_t det_close, dsocr_error *err) {
    if (g->n_blocks == g->cap_blocks) {
        int ncap = g->cap_blocks ? g->cap_blocks * 2 : 16;
        ds_ground_block *nb = realloc(g->blocks, (size_t)ncap * sizeof *nb);
        if (!nb) return ds_fail(err, DSOCR_ERR_NOMEM, "grounding: out of memory for %d blocks", ncap);
        g->blocks = nb;
        g->cap_blocks = ncap;
    }
    ds_ground_block b = {0};
    b.start = g->ref_at;
    b.end = det_close + strlen(DET_CLOSE);
    b.det_start = g->mid_at + strlen(REF_CLOSE_DET);
    b.det_end = det_close;
    size_t label_start = g->ref_at + strlen(REF_OPEN), label_len = g->mid_at - label_start;
    b.label = malloc(label_len + 1);
    if (!b.label) return ds_fail(err, DSOCR_ERR_NOMEM, "grounding: out of memory for a label");
    memcpy(b.label, g->text + label_start, label_len);
    b.label[label_len] = 0;
    int r = ds_grounding_parse_det(g->text + b.det_start, b.det_end - b.det_start, g->width, g->height,
                                   &b.boxes, &b.n_boxes);
    if (r < 0) {
        free(b.label);
        return ds_fail(err, DSOCR_ERR_NOMEM, "grounding: out of memory for boxes");
    }
    b.det_ok = r;
    g->blocks[g->n_blocks++] = b;
    return DSOCR_OK;
}

dsocr_status ds_grounding_feed(ds_grounding *g, const char *chunk, size_t n, dsocr_error *err) {
    if (n && !chunk) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "grounding: NULL chunk of %zu bytes", n);
    if (g->len + n + 1 > g->cap) {
        size_t ncap = g->cap ? g->cap : 256;
        while (ncap < g->len + n + 1) ncap *= 2;
        char *nt = realloc(g->text, ncap);
        if (!nt) return ds_fail(err, DSOCR_ERR_NOMEM, "grounding: out of memory for %zu bytes of text", ncap);
        g->text = nt;
        g->cap = ncap;
    }
    if (n) memcpy(g->text + g->len, chunk, n);
    g->len += n;
    g->text[g->len] = 0;

    /* The regex's leftmost match starts at the first "<|ref|>"; its label ends at the
     * first "<|/ref|><|det|>" after it and its det at the first "<|/det|>" after that.
     * If either is missing, no later start can match either, so we only ever wait. */
    for (;;) {
        if (g->ref_at == NONE) {
            size_t p = find_marker(g, REF_OPEN, strlen(REF_OPEN));
            if (p == NONE) return DSOCR_OK;
            g->ref_at = p;
            g->find_from = p + strlen(REF_OPEN);
        }
        if (g->mid_at == NONE) {
            size_t q = find_marker(g, REF_CLOSE_DET, strlen(REF_CLOSE_DET));
            if (q == NONE) return DSOCR_OK;
            g->mid_at = q;
            g->find_from = q + strlen(REF_CLOSE_DET);
        }
        size_t r = find_marker(g, DET_CLOSE, strlen(DET_CLOSE));
        if (r == NONE) return DSOCR_OK;
        DS_TRY(emit_block(g, r, err));
        g->find_from = r + strlen(DET_CLOSE);
        g->ref_at = NONE;
        g->mid_at = NONE;
    }
}

dsocr_status ds_grounding_parse(const char *text, size_t len, int width, int height,
                                ds_grounding *out, dsocr_error *err) {
    ds_grounding_init(out, width, height);
    dsocr_status s = ds_grounding_feed(out, text, len, err);
    if (s != DSOCR_OK) ds_grounding_free(out);
    return s;
}
