/* Runaway-repetition detector: token cycles, repeated lines, repeated det records.
 * See loop.h for the rules and why each threshold sits where it does. */
#include "ocr/loop.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

ds_loop_config ds_loop_default_config(void) {
    ds_loop_config c;
    c.max_period = 256;
    c.exact_min_tokens = 384;
    c.exact_min_repeats = 8;
    c.fuzzy_window = 640;
    c.fuzzy_ratio = 0.90f;
    c.fuzzy_min_repeats = 4;
    c.line_max_period = 4;
    c.line_repeats = 10;
    c.line_min_bytes = 160;
    c.fuzzy_line_repeats = 16;
    c.fuzzy_line_min_letters = 8;
    c.det_repeats = 3;
    c.det_tolerance = 2;
    return c;
}

const char *ds_loop_kind_name(ds_loop_kind k) {
    switch (k) {
    case DS_LOOP_NONE: return "none";
    case DS_LOOP_TOKEN_CYCLE: return "token_cycle";
    case DS_LOOP_TOKEN_FUZZY: return "token_fuzzy";
    case DS_LOOP_LINE: return "line";
    case DS_LOOP_LINE_FUZZY: return "line_fuzzy";
    case DS_LOOP_DET: return "det";
    }
    return "unknown";
}

dsocr_status ds_loop_init(ds_loop_detector *d, const ds_loop_config *cfg, dsocr_error *err) {
    memset(d, 0, sizeof *d);
    d->cfg = cfg ? *cfg : ds_loop_default_config();
    const ds_loop_config *c = &d->cfg;
    /* 0 turns a rule off; anything else must make sense */
    if (c->max_period < 1 || c->max_period > 4096)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "loop detector: max_period %d not in 1..4096", c->max_period);
    if (c->exact_min_tokens < 0 || c->exact_min_repeats < 0 || c->fuzzy_window < 0 || c->fuzzy_min_repeats < 0 ||
        c->line_repeats < 0 || c->line_min_bytes < 0 || c->fuzzy_line_repeats < 0 ||
        c->fuzzy_line_min_letters < 0 || c->det_repeats < 0 || c->det_tolerance < 0)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "loop detector: negative threshold in config");
    if (c->fuzzy_window > 0 && !(c->fuzzy_ratio > 0.0f && c->fuzzy_ratio <= 1.0f))
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "loop detector: fuzzy_ratio %g not in (0, 1]", (double)c->fuzzy_ratio);
    if (c->line_max_period < 1 || c->line_max_period > DS_LOOP_MAX_LINE_PERIOD)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "loop detector: line_max_period %d not in 1..%d",
                       c->line_max_period, DS_LOOP_MAX_LINE_PERIOD);
    d->run = calloc((size_t)c->max_period + 1, sizeof *d->run);
    d->fuzzy_count = calloc((size_t)c->max_period + 1, sizeof *d->fuzzy_count);
    if (!d->run || !d->fuzzy_count) {
        ds_loop_free(d);
        return ds_fail(err, DSOCR_ERR_NOMEM, "loop detector: out of memory for %d periods", c->max_period);
    }
    ds_grounding_init(&d->ground, 999, 999);   /* pixels unused: boxes compare in 0..999 */
    return DSOCR_OK;
}

void ds_loop_free(ds_loop_detector *d) {
    free(d->ids);
    free(d->id_offsets);
    free(d->id_in_det);
    free(d->run);
    free(d->fuzzy_count);
    free(d->line);
    ds_grounding_free(&d->ground);
    d->ids = NULL;
    d->id_offsets = NULL;
    d->id_in_det = NULL;
    d->run = d->fuzzy_count = NULL;
    d->line = NULL;
}

static void fire(ds_loop_detector *d, ds_loop_kind kind, size_t keep_bytes, const char *fmt, ...) DS_PRINTF(4, 5);
static void fire(ds_loop_detector *d, ds_loop_kind kind, size_t keep_bytes, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->reason, sizeof d->reason, fmt, ap);
    va_end(ap);
    d->fired = kind;
    d->fired_at_token = d->n_ids > 0 ? d->n_ids - 1 : 0;
    d->keep_bytes = keep_bytes;
}

/* ---- token cycles --------------------------------------------------------------- */

/* Exact: run[p] = how many consecutive ids equal the id p back; the periodic stretch
 * is run[p] + p long. Fuzzy: fuzzy_count[p] = such matches among the last W ids,
 * kept by adding the newest position and removing the one that leaves the window. */
static dsocr_status token_step(ds_loop_detector *d, int id, int in_det, dsocr_error *err) {
    const ds_loop_config *c = &d->cfg;
    if (d->n_ids == d->cap_ids) {
        int ncap = d->cap_ids ? d->cap_ids * 2 : 1024;
        int *ni = realloc(d->ids, (size_t)ncap * sizeof *ni);
        if (ni) d->ids = ni;
        size_t *no = realloc(d->id_offsets, (size_t)ncap * sizeof *no);
        if (no) d->id_offsets = no;
        uint8_t *nd = realloc(d->id_in_det, (size_t)ncap);
        if (nd) d->id_in_det = nd;
        if (!ni || !no || !nd) return ds_fail(err, DSOCR_ERR_NOMEM, "loop detector: out of memory for %d tokens", ncap);
        d->cap_ids = ncap;
    }
    int i = d->n_ids++;
    const int *t = d->ids;
    d->ids[i] = id;
    d->id_offsets[i] = d->text_len;
    d->id_in_det[i] = (uint8_t)in_det;
    const uint8_t *masked = d->id_in_det;

    const int W = c->fuzzy_window;
    for (int p = 1; p <= c->max_period; p++) {
        int m = i >= p && t[i] == t[i - p];
        d->run[p] = m ? d->run[p] + 1 : 0;
        if (W > 0) {
            d->fuzzy_count[p] += m && !masked[i] && !masked[i - p];
            int j = i - W;   /* leaves the window */
            if (j >= p && t[j] == t[j - p] && !masked[j] && !masked[j - p]) d->fuzzy_count[p]--;
        }
    }
    if (c->exact_min_tokens > 0) {
        for (int p = 1; p <= c->max_period; p++) {
            int span = d->run[p] + p;
            if (d->run[p] > 0 && span >= c->exact_min_tokens && span >= c->exact_min_repeats * p) {
                int first = i - span + 1;
                fire(d, DS_LOOP_TOKEN_CYCLE, d->id_offsets[first + p],
                     "token cycle of period %d repeated over %d tokens", p, span);
                return DSOCR_OK;
            }
        }
    }
    if (W > 0 && i + 1 >= W) {
        int need = (int)ceil((double)c->fuzzy_ratio * W);
        for (int p = 1; p <= c->max_period && p * c->fuzzy_min_repeats <= W; p++) {
            if (d->fuzzy_count[p] >= need) {
                int first = i - W + 1;
                fire(d, DS_LOOP_TOKEN_FUZZY, d->id_offsets[first + p],
                     "tokens repeat with period %d: %d of the last %d equal the token %d back",
                     p, d->fuzzy_count[p], W, p);
                return DSOCR_OK;
            }
        }
    }
    return DSOCR_OK;
}

/* ---- lines ----------------------------------------------------------------------- */

static uint64_t fnv1a(uint64_t h, unsigned char b) { return (h ^ b) * 1099511628211ull; }

/* The line without its det records ("<|ref|>..<|/det|>" spans), trimmed. Lines
 * that hold only det records come out empty and are ignored, so a page of images
 * (one det line each) never looks like a loop. */
static size_t strip_det_records(char *s, size_t n) {
    size_t w = 0, r = 0;
    while (r < n) {
        const char *ref = memmem(s + r, n - r, "<|ref|>", 7);
        if (!ref) break;
        const char *close = memmem(ref, (size_t)(s + n - ref), "<|/det|>", 8);
        if (!close) break;
        size_t keep = (size_t)(ref - (s + r));
        memmove(s + w, s + r, keep);
        w += keep;
        r = (size_t)(close + 8 - s);
    }
    memmove(s + w, s + r, n - r);
    w += n - r;
    size_t a = 0, b = w;
    while (a < b && (s[a] == ' ' || s[a] == '\t' || s[a] == '\r')) a++;
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t' || s[b - 1] == '\r')) b--;
    memmove(s, s + a, b - a);
    return b - a;
}

static void line_done(ds_loop_detector *d) {
    const ds_loop_config *c = &d->cfg;
    size_t n = strip_det_records(d->line, d->line_len);
    size_t line_start = d->line_start;
    d->line_len = 0;
    d->line_start = d->text_len;   /* text_len already counts the '\n' */
    if (n == 0) return;

    uint64_t h = 1469598103934665603ull, hf = h;
    int letters = 0, in_digits = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned char b = (unsigned char)d->line[k];
        h = fnv1a(h, b);
        int digit = b >= '0' && b <= '9';
        if (!digit) hf = fnv1a(hf, b);
        else if (!in_digits) hf = fnv1a(hf, '#');   /* a run of digits counts as one '#' */
        in_digits = digit;
        letters += ((b | 32) >= 'a' && (b | 32) <= 'z') || b >= 0xc0;
    }
    long j = d->n_lines++;
    int slot = (int)(j % DS_LOOP_LINE_RING);
    d->line_hash[slot] = h;
    d->line_fuzzy_hash[slot] = hf;
    d->line_bytes[slot] = n > 1000000 ? 1000000 : (int)n;
    d->line_letters[slot] = letters;

    for (int q = 1; q <= c->line_max_period; q++) {
        int prev = (int)((j - q + DS_LOOP_LINE_RING * 4) % DS_LOOP_LINE_RING);
        int same = j >= q && d->line_hash[prev] == h;
        int similar = j >= q && d->line_fuzzy_hash[prev] == hf;
        if (same && d->line_run[q] == 0) d->line_run_start[q] = line_start;
        if (similar && d->fuzzy_line_run[q] == 0) d->fuzzy_line_run_start[q] = line_start;
        d->line_run[q] = same ? d->line_run[q] + 1 : 0;
        d->fuzzy_line_run[q] = similar ? d->fuzzy_line_run[q] + 1 : 0;
    }
    for (int q = 1; q <= c->line_max_period && j >= q; q++) {
        long unit_bytes = 0, unit_letters = 0;
        for (int k = 0; k < q; k++) {
            int s = (int)((j - k + DS_LOOP_LINE_RING * 4) % DS_LOOP_LINE_RING);
            unit_bytes += d->line_bytes[s];
            unit_letters += d->line_letters[s];
        }
        int reps = d->line_run[q] / q + 1;
        if (c->line_repeats > 0 && d->line_run[q] > 0 && reps >= c->line_repeats &&
            unit_bytes * reps >= c->line_min_bytes) {
            fire(d, DS_LOOP_LINE, d->line_run_start[q], "a group of %d line%s repeated %d times", q,
                 q > 1 ? "s" : "", reps);
            return;
        }
        int freps = d->fuzzy_line_run[q] / q + 1;
        if (c->fuzzy_line_repeats > 0 && d->fuzzy_line_run[q] > 0 && freps >= c->fuzzy_line_repeats &&
            unit_letters >= c->fuzzy_line_min_letters) {
            fire(d, DS_LOOP_LINE_FUZZY, d->fuzzy_line_run_start[q],
                 "a group of %d line%s repeated %d times with only numbers changing", q, q > 1 ? "s" : "", freps);
            return;
        }
    }
}

/* ---- det records ------------------------------------------------------------------ */

static int near_box(const double *a, const double *b, double tol) {
    for (int k = 0; k < 4; k++)
        if (fabs(a[k] - b[k]) > tol) return 0;
    return 1;
}

static void det_step(ds_loop_detector *d) {
    const ds_loop_config *c = &d->cfg;
    for (; d->n_ground_seen < d->ground.n_blocks; d->n_ground_seen++) {
        const ds_ground_block *b = &d->ground.blocks[d->n_ground_seen];
        if (!b->det_ok || b->n_boxes == 0 || c->det_repeats == 0) continue;
        uint64_t lh = 1469598103934665603ull;
        for (const char *s = b->label; *s; s++) lh = fnv1a(lh, (unsigned char)*s);
        const double *first = b->boxes[0].norm, *last = b->boxes[b->n_boxes - 1].norm;
        ds_loop_det_record *hit = NULL;
        for (int k = 0; k < d->n_dets && !hit; k++) {
            ds_loop_det_record *r = &d->dets[k];
            if (r->label_hash == lh && r->n_boxes == b->n_boxes && near_box(r->first, first, c->det_tolerance) &&
                near_box(r->last, last, c->det_tolerance))
                hit = r;
        }
        if (hit) {
            if (++hit->count >= c->det_repeats) {
                fire(d, DS_LOOP_DET, b->start, "det record \"%.40s\" with the same box%s seen %d times", b->label,
                     b->n_boxes > 1 ? "es" : "", hit->count);
                return;
            }
            continue;
        }
        ds_loop_det_record *r = &d->dets[d->n_dets_total++ % DS_LOOP_DET_MEMORY];
        if (d->n_dets < DS_LOOP_DET_MEMORY) d->n_dets++;
        r->label_hash = lh;
        r->n_boxes = b->n_boxes;
        memcpy(r->first, first, sizeof r->first);
        memcpy(r->last, last, sizeof r->last);
        r->count = 1;
    }
}

/* ---- text ----------------------------------------------------------------------- */

static dsocr_status text_step(ds_loop_detector *d, const char *text, size_t len, dsocr_error *err) {
    for (size_t k = 0; k < len && !d->fired; k++) {
        d->text_len++;
        if (text[k] == '\n') {
            line_done(d);
            continue;
        }
        if (d->line_len == d->line_cap) {
            size_t ncap = d->line_cap ? d->line_cap * 2 : 256;
            char *nl = realloc(d->line, ncap);
            if (!nl) return ds_fail(err, DSOCR_ERR_NOMEM, "loop detector: out of memory for a %zu-byte line", ncap);
            d->line = nl;
            d->line_cap = ncap;
        }
        d->line[d->line_len++] = text[k];
    }
    if (d->fired) return DSOCR_OK;
    DS_TRY(ds_grounding_feed(&d->ground, text, len, err));
    det_step(d);
    return DSOCR_OK;
}

/* Whether this token's text touches a <|ref|>..<|/det|> record (markers may arrive
 * split over several tokens, so the last 8 bytes are kept). */
static int track_det_records(ds_loop_detector *d, const char *text, size_t len) {
    int touched = d->in_det;
    for (size_t k = 0; k < len; k++) {
        memmove(d->tail, d->tail + 1, sizeof d->tail - 1);
        d->tail[sizeof d->tail - 1] = text[k];
        if (memcmp(d->tail + 1, "<|ref|>", 7) == 0) d->in_det = touched = 1;
        if (memcmp(d->tail, "<|/det|>", 8) == 0) d->in_det = 0;
    }
    return touched;
}

dsocr_status ds_loop_push(ds_loop_detector *d, int token_id, const char *text, dsocr_error *err) {
    if (d->fired) return DSOCR_OK;
    if (!d->run) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "loop detector: not initialised");
    size_t len = text ? strlen(text) : 0;
    int in_det = track_det_records(d, text, len);
    if (token_id >= 0) DS_TRY(token_step(d, token_id, in_det, err));
    if (d->fired) return DSOCR_OK;
    return text_step(d, text, len, err);
}

dsocr_status ds_loop_push_text(ds_loop_detector *d, const char *text, size_t len, dsocr_error *err) {
    if (d->fired) return DSOCR_OK;
    if (!d->run) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "loop detector: not initialised");
    track_det_records(d, text, len);
    return text_step(d, text, len, err);
}
