/* result.mmd rewrite and plain text, following the reference scripts step by step. */
#include "ocr/markdown.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "ocr/grounding.h"

/* ---- Python string helpers ----------------------------------------------------- */

char *ds_str_replace(const char *s, size_t len, const char *old, size_t old_len,
                     const char *rep, size_t rep_len, size_t *out_len) {
    size_t count = 0;
    if (old_len > 0) {
        for (const char *p = s, *end = s + len; (p = memmem(p, (size_t)(end - p), old, old_len)); p += old_len)
            count++;
    }
    size_t n = len - count * old_len + count * rep_len;
    char *out = malloc(n + 1), *w = out;
    if (!out) return NULL;
    const char *p = s, *end = s + len;
    for (size_t k = 0; k < count; k++) {
        const char *hit = memmem(p, (size_t)(end - p), old, old_len);
        memcpy(w, p, (size_t)(hit - p));
        w += hit - p;
        memcpy(w, rep, rep_len);
        w += rep_len;
        p = hit + old_len;
    }
    memcpy(w, p, (size_t)(end - p));
    out[n] = 0;
    if (out_len) *out_len = n;
    return out;
}

/* Decodes one UTF-8 code point at s[i] (i < n); invalid bytes decode as themselves. */
static unsigned utf8_at(const unsigned char *s, size_t i, size_t n, size_t *size) {
    unsigned c = s[i];
    int extra = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
    if (i + (size_t)extra >= n) extra = 0;
    for (int k = 1; k <= extra; k++)
        if ((s[i + k] & 0xc0) != 0x80) extra = 0;
    *size = (size_t)extra + 1;
    if (extra == 0) return c;
    unsigned cp = c & (0x3fu >> extra);
    for (int k = 1; k <= extra; k++) cp = (cp << 6) | (s[i + k] & 0x3f);
    return cp;
}

/* str.isspace(): bidi class WS, B or S, or category Zs. */
static int py_isspace(unsigned cp) {
    return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

void ds_markdown_strip(const char *text, size_t len, size_t *start, size_t *out_len) {
    const unsigned char *s = (const unsigned char *)text;
    size_t a = 0, b = len, size;
    while (a < b && py_isspace(utf8_at(s, a, b, &size))) a += size;
    while (b > a) {
        size_t lead = b - 1;   /* back to the lead byte of the last code point */
        while (lead > a && (s[lead] & 0xc0) == 0x80 && b - lead < 4) lead--;
        unsigned cp = utf8_at(s, lead, b, &size);
        if (lead + size != b) { lead = b - 1; cp = s[lead]; }   /* not a clean sequence */
        if (!py_isspace(cp)) break;
        b = lead;
    }
    *start = a;
    *out_len = b - a;
}

/* s = s.replace(old, new), in place of the caller's pointer. */
static int replace_in(char **s, size_t *len, const char *old, const char *rep, size_t rep_len) {
    char *n = ds_str_replace(*s, *len, old, strlen(old), rep, rep_len, len);
    if (!n) return 0;
    free(*s);
    *s = n;
    return 1;
}

static char *dup_bytes(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* ---- result.mmd ---------------------------------------------------------------- */

/* '<|ref|>image<|/ref|>' in a_match[0]: the reference tests the whole match text. */
int ds_markdown_is_image(const char *text, const ds_ground_block *b) {
    static const char key[] = "<|ref|>image<|/ref|>";
    return memmem(text + b->start, b->end - b->start, key, sizeof key - 1) != NULL;
}

dsocr_status ds_markdown_rewrite(const char *text, size_t len, int page,
                                 char **out, size_t *out_len, dsocr_error *err) {
    *out = NULL;
    ds_grounding g;
    DS_TRY(ds_grounding_parse(text, len, 1, 1, &g, err));
    size_t n = len;
    char *s = dup_bytes(text, len);
    int ok = s != NULL;

    int idx = 0;   /* for idx, a_match_image in enumerate(matches_images) */
    for (int i = 0; ok && i < g.n_blocks; i++) {
        const ds_ground_block *b = &g.blocks[i];
        if (!ds_markdown_is_image(text, b)) continue;
        char link[64];
        int link_len = page < 0 ? snprintf(link, sizeof link, "![](images/%d.jpg)\n", idx)
                                : snprintf(link, sizeof link, "![](images/%d_%d.jpg)\n", page, idx);
        char *r = ds_str_replace(s, n, text + b->start, b->end - b->start, link, (size_t)link_len, &n);
        ok = r != NULL;
        free(s);
        s = r;
        idx++;
    }
    for (int i = 0; ok && i < g.n_blocks; i++) {
        const ds_ground_block *b = &g.blocks[i];
        if (ds_markdown_is_image(text, b)) continue;
        char *r = ds_str_replace(s, n, text + b->start, b->end - b->start, "", 0, &n);
        ok = r != NULL;
        free(s);
        s = r;
        ok = ok && replace_in(&s, &n, "\\coloneqq", ":=", 2) && replace_in(&s, &n, "\\eqqcolon", "=:", 2);
        if (ok && page >= 0)
            ok = replace_in(&s, &n, "\n\n\n\n", "\n\n", 2) && replace_in(&s, &n, "\n\n\n", "\n\n", 2);
    }
    ds_grounding_free(&g);
    if (!ok) {
        free(s);
        return ds_fail(err, DSOCR_ERR_NOMEM, "markdown: out of memory rewriting %zu bytes", len);
    }
    *out = s;
    if (out_len) *out_len = n;
    return DSOCR_OK;
}

/* ---- plain text ------------------------------------------------------------------ */

dsocr_status ds_markdown_plain(const char *text, size_t len,
                               char **out, size_t *out_len, dsocr_error *err) {
    *out = NULL;
    ds_grounding g;
    DS_TRY(ds_grounding_parse(text, len, 1, 1, &g, err));
    char *s = malloc(len + 1);
    if (!s) {
        ds_grounding_free(&g);
        return ds_fail(err, DSOCR_ERR_NOMEM, "markdown: out of memory for %zu bytes", len);
    }
    /* copy the text between matches, collapsing newline runs to at most two */
    size_t n = 0, from = 0, newlines = 0;
    for (int i = 0; i <= g.n_blocks; i++) {
        size_t to = i < g.n_blocks ? g.blocks[i].start : len;
        for (size_t k = from; k < to; k++) {
            newlines = text[k] == '\n' ? newlines + 1 : 0;
            if (newlines <= 2) s[n++] = text[k];
        }
        if (i < g.n_blocks) from = g.blocks[i].end;
    }
    ds_grounding_free(&g);
    size_t a, m;
    ds_markdown_strip(s, n, &a, &m);
    memmove(s, s + a, m);
    s[m] = 0;
    *out = s;
    if (out_len) *out_len = m;
    return DSOCR_OK;
}
