/* Pre-tokenizer: the Split / ByteLevel steps of a tokenizer.json, run with
 * PCRE2 (UTF + Unicode properties, JIT when available). Semantics follow HF
 * tokenizers: matches found as onig's find_iter does (an empty match right
 * after the previous match is skipped), the split behaviour decides how
 * matches and gaps become pieces, and empty pieces are dropped. */
#include <stdlib.h>
#include <string.h>

#include "text/tokenizer_internal.h"

/* tokenizer.json regexes are written for Oniguruma (Ruby syntax), whose Unicode
 * shorthand classes differ from PCRE2's: onig \s is White_Space (PCRE2 adds
 * U+180E), onig \w is L|M|Nd|Pc (PCRE2: L|N|_), onig \h is a hex digit
 * (PCRE2: horizontal space). Rewrites those escapes to explicit properties.
 * \W and \H inside a character class are left as PCRE2 reads them.
 * Returns a malloc'd pattern, *out_len its length. */
static char *onig_to_pcre2(const char *p, size_t n, size_t *out_len) {
    static const char WORD[] = "\\p{L}\\p{M}\\p{Nd}\\p{Pc}", HEX[] = "0-9a-fA-F";
    char *o = malloc(n * 24 + 1);
    if (!o) return NULL;
    size_t k = 0;
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\' && i + 1 < n) {
            char e = p[++i];
            const char *rep = NULL;
            int wrap = 0, negate = 0;
            if (e == 's' || e == 'S') rep = e == 's' ? "\\p{White_Space}" : "\\P{White_Space}";
            else if (e == 'w' || (e == 'W' && !in_class)) { rep = WORD; wrap = !in_class; negate = e == 'W'; }
            else if (e == 'h' || (e == 'H' && !in_class)) { rep = HEX; wrap = !in_class; negate = e == 'H'; }
            if (!rep) { o[k++] = c; o[k++] = e; continue; }
            if (wrap) { o[k++] = '['; if (negate) o[k++] = '^'; }
            size_t l = strlen(rep);
            memcpy(o + k, rep, l);
            k += l;
            if (wrap) o[k++] = ']';
            continue;
        }
        if (!in_class && c == '[') {
            in_class = 1;
            o[k++] = c;
            if (i + 1 < n && p[i + 1] == '^') o[k++] = p[++i];
            if (i + 1 < n && p[i + 1] == ']') o[k++] = p[++i];     /* a leading ] is literal */
            continue;
        }
        if (in_class && c == '[' && i + 1 < n && p[i + 1] == ':') {   /* [:alpha:] */
            const char *end = strstr(p + i, ":]");
            size_t l = end && (size_t)(end - p) < n ? (size_t)(end - p) - i + 2 : 1;
            memcpy(o + k, p + i, l);
            k += l;
            i += l - 1;
            continue;
        }
        if (in_class && c == ']') in_class = 0;
        o[k++] = c;
    }
    o[k] = 0;
    *out_len = k;
    return o;
}

dsocr_status ds_pretok_compile(const char *pattern, size_t len, int literal, const char *what,
                               pcre2_code **out, dsocr_error *err) {
    int code;
    PCRE2_SIZE at;
    /* onig (Ruby syntax), which HF uses, treats ^ and $ as line anchors */
    uint32_t opts = literal ? PCRE2_UTF | PCRE2_LITERAL : PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE;
    size_t n = len;
    char *translated = literal ? NULL : onig_to_pcre2(pattern, len, &n);
    if (!literal && !translated) return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", what);
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)(literal ? pattern : translated), n, opts, &code, &at, NULL);
    free(translated);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "%s: regex not accepted by PCRE2 (near offset %zu of the translated pattern): %s",
                       what, (size_t)at, (const char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);   /* falls back to the interpreter on failure */
    *out = re;
    return DSOCR_OK;
}

/* ---- growable buffers ---------------------------------------------------------- */

static dsocr_status reserve_pieces(ds_piece **p, size_t *cap, size_t need, dsocr_error *err) {
    if (need <= *cap) return DSOCR_OK;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    ds_piece *q = realloc(*p, c * sizeof *q);
    if (!q) return ds_fail(err, DSOCR_ERR_NOMEM, "tokenizer: out of memory for %zu pieces", need);
    *p = q;
    *cap = c;
    return DSOCR_OK;
}

static dsocr_status reserve_work(ds_tokenizer *tok, size_t need, dsocr_error *err) {
    if (need <= tok->work_cap) return DSOCR_OK;
    size_t c = tok->work_cap ? tok->work_cap : 4096;
    while (c < need) c *= 2;
    char *q = realloc(tok->work, c);
    if (!q) return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory for %zu bytes of text", tok->name, need);
    tok->work = q;
    tok->work_cap = c;
    return DSOCR_OK;
}

/* Appends a piece to pieces2 (empty pieces are dropped, as HF does). */
static dsocr_status emit(ds_tokenizer *tok, size_t *n, size_t off, size_t len, dsocr_error *err) {
    if (len == 0) return DSOCR_OK;
    DS_TRY(reserve_pieces(&tok->pieces2, &tok->pieces2_cap, *n + 1, err));
    tok->pieces2[(*n)++] = (ds_piece){off, len};
    return DSOCR_OK;
}

/* ---- one Split over one piece --------------------------------------------------- */

typedef struct span { size_t start, end; int is_match; } span;

/* Matches and gaps covering subject[0..len), in order (HF Pattern::find_matches). */
static dsocr_status find_spans(ds_tokenizer *tok, pcre2_code *re, const char *subject, size_t len,
                               span **spans, size_t *n_spans, size_t *cap, dsocr_error *err) {
    size_t n = 0, prev = 0, start = 0;
    int have_last = 0;
    size_t last_end = 0;
    while (start <= len) {
        int rc = pcre2_match(re, (PCRE2_SPTR)subject, len, start, PCRE2_NO_UTF_CHECK, tok->md, tok->mctx);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return ds_fail(err, DSOCR_ERR_LIMIT, "%s: pre-tokenizer regex failed on a %zu-byte piece: %s",
                           tok->name, len, (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(tok->md);
        size_t s = ov[0], e = ov[1];
        if (s == e && have_last && last_end == e) {
            /* empty match glued to the previous one: step one character */
            if (start >= len) break;
            start++;
            while (start < len && ((uint8_t)subject[start] & 0xC0) == 0x80) start++;
            continue;
        }
        if (n + 2 > *cap) {
            size_t c = *cap ? *cap * 2 : 64;
            span *q = realloc(*spans, c * sizeof *q);
            if (!q) return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory splitting a %zu-byte piece", tok->name, len);
            *spans = q;
            *cap = c;
        }
        if (prev != s) (*spans)[n++] = (span){prev, s, 0};
        (*spans)[n++] = (span){s, e, 1};
        prev = e;
        start = e;
        have_last = 1;
        last_end = e;
    }
    if (prev != len) {
        if (n + 1 > *cap) {
            size_t c = *cap ? *cap * 2 : 64;
            span *q = realloc(*spans, c * sizeof *q);
            if (!q) return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory splitting a %zu-byte piece", tok->name, len);
            *spans = q;
            *cap = c;
        }
        (*spans)[n++] = (span){prev, len, 0};
    }
    *n_spans = n;
    return DSOCR_OK;
}

/* Applies the split behaviour (HF NormalizedString::split) and emits the pieces. */
static dsocr_status split_piece(ds_tokenizer *tok, const ds_pretok_step *st, ds_piece p, size_t *n_out,
                                span **spans, size_t *spans_cap, dsocr_error *err) {
    size_t n = 0;
    DS_TRY(find_spans(tok, st->re, tok->work + p.off, p.len, spans, &n, spans_cap, err));
    span *sp = *spans;
    if (st->invert)
        for (size_t i = 0; i < n; i++) sp[i].is_match = !sp[i].is_match;

    /* merge spans in place according to the behaviour; 'removed' marks dropped ones */
    size_t m = 0;
    int prev_match = 0;
    switch (st->behavior) {
    case DS_SPLIT_ISOLATED:
        for (size_t i = 0; i < n; i++) sp[i].is_match = 0;
        m = n;
        break;
    case DS_SPLIT_REMOVED:
        m = n;
        break;
    case DS_SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < n; i++) {
            int is_match = sp[i].is_match;
            if (is_match == prev_match && m > 0) sp[m - 1].end = sp[i].end;
            else sp[m++] = (span){sp[i].start, sp[i].end, 0};
            prev_match = is_match;
        }
        break;
    case DS_SPLIT_MERGED_WITH_PREVIOUS:
        for (size_t i = 0; i < n; i++) {
            int is_match = sp[i].is_match;
            if (is_match && !prev_match && m > 0) sp[m - 1].end = sp[i].end;
            else sp[m++] = (span){sp[i].start, sp[i].end, 0};
            prev_match = is_match;
        }
        break;
    case DS_SPLIT_MERGED_WITH_NEXT: {
        /* walk backwards, then restore the order */
        size_t k = n;
        for (size_t i = n; i-- > 0;) {
            int is_match = sp[i].is_match;
            if (is_match && !prev_match && k < n) sp[k].start = sp[i].start;
            else sp[--k] = (span){sp[i].start, sp[i].end, 0};
            prev_match = is_match;
        }
        memmove(sp, sp + k, (n - k) * sizeof *sp);
        m = n - k;
        break;
    }
    }
    for (size_t i = 0; i < m; i++)
        if (!sp[i].is_match) DS_TRY(emit(tok, n_out, p.off + sp[i].start, sp[i].end - sp[i].start, err));
    return DSOCR_OK;
}

/* ---- the whole pre-tokenizer ------------------------------------------------------ */

dsocr_status ds_pretokenize(ds_tokenizer *tok, const char *text, size_t len, dsocr_error *err) {
    tok->work_len = 0;
    tok->n_pieces = 0;
    if (len == 0) return DSOCR_OK;
    DS_TRY(reserve_work(tok, len, err));
    memcpy(tok->work, text, len);
    tok->work_len = len;
    DS_TRY(reserve_pieces(&tok->pieces, &tok->pieces_cap, 1, err));
    tok->pieces[0] = (ds_piece){0, len};
    tok->n_pieces = 1;

    span *spans = NULL;
    size_t spans_cap = 0;
    dsocr_status st = DSOCR_OK;
    for (size_t s = 0; s < tok->n_steps && st == DSOCR_OK; s++) {
        const ds_pretok_step *step = &tok->steps[s];
        size_t n_out = 0;
        for (size_t i = 0; i < tok->n_pieces && st == DSOCR_OK; i++) {
            ds_piece p = tok->pieces[i];
            if (step->is_byte_level && step->add_prefix_space && tok->work[p.off] != ' ') {
                /* copy " " + piece to the end of the work buffer */
                st = reserve_work(tok, tok->work_len + p.len + 1, err);
                if (st) break;
                tok->work[tok->work_len] = ' ';
                memcpy(tok->work + tok->work_len + 1, tok->work + p.off, p.len);
                p = (ds_piece){tok->work_len, p.len + 1};
                tok->work_len += p.len;
            }
            if (step->re) st = split_piece(tok, step, p, &n_out, &spans, &spans_cap, err);
            else st = emit(tok, &n_out, p.off, p.len, err);
        }
        /* the output becomes the input of the next step */
        ds_piece *t = tok->pieces; tok->pieces = tok->pieces2; tok->pieces2 = t;
        size_t c = tok->pieces_cap; tok->pieces_cap = tok->pieces2_cap; tok->pieces2_cap = c;
        tok->n_pieces = n_out;
    }
    free(spans);
    return st;
}
