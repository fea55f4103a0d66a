/* Encode and decode with a loaded tokenizer, as HF tokenizers does:
 * added tokens are cut out first (leftmost-longest over the raw text, then
 * over the normalized gaps), each remaining gap is pre-tokenized and every
 * piece goes through BPE. Decoding maps ids to bytes (ByteLevel) and then to
 * UTF-8 the way Rust's from_utf8_lossy does. */
#include <stdlib.h>
#include <string.h>

#include "text/tokenizer_internal.h"
#include "text/utf8.h"

/* ---- ids ------------------------------------------------------------------------- */

dsocr_status ds_ids_push(ds_ids *ids, int32_t id, dsocr_error *err) {
    if (ids->n == ids->cap) {
        size_t c = ids->cap ? ids->cap * 2 : 64;
        int32_t *q = realloc(ids->data, c * sizeof *q);
        if (!q) return ds_fail(err, DSOCR_ERR_NOMEM, "tokenizer: out of memory for %zu ids", c);
        ids->data = q;
        ids->cap = c;
    }
    ids->data[ids->n++] = id;
    return DSOCR_OK;
}

void ds_ids_free(ds_ids *ids) {
    free(ids->data);
    memset(ids, 0, sizeof *ids);
}

/* ---- lookups ------------------------------------------------------------------------ */

int32_t ds_tokenizer_token_to_id(const ds_tokenizer *tok, const char *token, size_t len) {
    int32_t id = ds_strmap_get(&tok->added_map, token, len);
    return id >= 0 ? id : ds_strmap_get(&tok->vocab, token, len);
}

const char *ds_tokenizer_id_to_token(const ds_tokenizer *tok, int32_t id, size_t *len) {
    if (id < 0 || id >= tok->n_ids || !tok->info[id].str) return NULL;
    if (len) *len = tok->info[id].str_len;
    return tok->info[id].str;
}

int32_t ds_tokenizer_vocab_size(const ds_tokenizer *tok) { return tok->n_ids; }
int ds_tokenizer_is_special(const ds_tokenizer *tok, int32_t id) {
    return id >= 0 && id < tok->n_ids && tok->info[id].special;
}
int32_t ds_tokenizer_bos_id(const ds_tokenizer *tok) { return tok->bos_id; }
int32_t ds_tokenizer_eos_id(const ds_tokenizer *tok) { return tok->eos_id; }
int32_t ds_tokenizer_pad_id(const ds_tokenizer *tok) { return tok->pad_id; }
int ds_tokenizer_add_bos(const ds_tokenizer *tok) { return tok->add_bos; }

void ds_tokenizer_free(ds_tokenizer *tok) {
    if (!tok) return;
    for (size_t i = 0; i < tok->n_steps; i++) pcre2_code_free(tok->steps[i].re);
    free(tok->steps);
    pcre2_code_free(tok->word_re);
    pcre2_match_data_free(tok->md);
    pcre2_match_context_free(tok->mctx);
    pcre2_jit_stack_free(tok->jit_stack);
    ds_strmap_free(&tok->vocab);
    ds_strmap_free(&tok->added_map);
    free(tok->trie_raw.nodes);
    free(tok->trie_norm.nodes);
    free(tok->added);
    free(tok->info);
    free(tok->strings);
    free(tok->decoded);
    free(tok->work);
    free(tok->pieces);
    free(tok->pieces2);
    ds_bpe_free(tok);
    free(tok->name);
    free(tok);
}

/* ---- added-token flags (HF added_vocabulary.rs) --------------------------------------- */

/* Unicode White_Space, which Rust's regex \s matches. */
static int is_white_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static size_t char_before(const char *s, size_t at) {
    size_t p = at;
    while (p > 0 && ((uint8_t)s[--p] & 0xC0) == 0x80) {}
    return p;
}

/* \w on the character at s[at] (Unicode word character, via PCRE2 UCP). */
static int is_word_at(ds_tokenizer *tok, const char *s, size_t len, size_t at) {
    int rc = pcre2_match(tok->word_re, (PCRE2_SPTR)s, len, at, PCRE2_ANCHORED | PCRE2_NO_UTF_CHECK, tok->md, tok->mctx);
    return rc >= 0;
}

/* ---- encoding ----------------------------------------------------------------------------- */

static dsocr_status encode_plain(ds_tokenizer *tok, const char *text, size_t len, ds_ids *ids, dsocr_error *err) {
    if (len == 0) return DSOCR_OK;
    DS_TRY(ds_pretokenize(tok, text, len, err));
    for (size_t i = 0; i < tok->n_pieces; i++)
        DS_TRY(ds_bpe_encode_piece(tok, (const uint8_t *)tok->work + tok->pieces[i].off, tok->pieces[i].len, ids, err));
    return DSOCR_OK;
}

/* Longest added token starting at text[i], as an index into tok->added, or -1. */
static int32_t longest_at(const ds_trie *t, const char *text, size_t len, size_t i, size_t *end) {
    int32_t best = -1, node = 0;
    for (size_t j = i; j < len; j++) {
        int32_t c = t->nodes[node].first_child;
        while (c >= 0 && t->nodes[c].byte != (uint8_t)text[j]) c = t->nodes[c].next_sibling;
        if (c < 0) break;
        node = c;
        if (t->nodes[node].token >= 0) { best = t->nodes[node].token; *end = j + 1; }
    }
    return best;
}

/* pass 0 cuts out the normalized=false tokens, pass 1 the normalized=true ones
 * (the normalizer is the identity), and what is left goes to encode_plain. */
static dsocr_status encode_added(ds_tokenizer *tok, const char *text, size_t len, int pass, ds_ids *ids, dsocr_error *err) {
    const ds_trie *t = pass == 0 ? &tok->trie_raw : &tok->trie_norm;
    if (t->n == 0) return pass == 0 ? encode_added(tok, text, len, 1, ids, err) : encode_plain(tok, text, len, ids, err);
    size_t start_offset = 0, i = 0;
    while (i < len) {
        if (!t->first_byte[(uint8_t)text[i]]) { i++; continue; }
        size_t stop = 0;
        int32_t k = longest_at(t, text, len, i, &stop);
        if (k < 0) { i++; continue; }
        const ds_added_token *a = &tok->added[k];
        size_t start = i;
        i = stop;                                   /* the next search starts after this match */
        if (start < start_offset) continue;         /* swallowed by a previous rstrip */
        if (a->single_word) {
            int start_space = start == 0 || !is_word_at(tok, text, len, char_before(text, start));
            int stop_space = stop == len || !is_word_at(tok, text, len, stop);
            if (!start_space || !stop_space) continue;
        }
        if (a->lstrip) {
            size_t s = start;
            while (s > start_offset) {
                size_t p = char_before(text, s), need;
                size_t l = ds_utf8_seq((const uint8_t *)text + p, len - p, &need);
                if (!is_white_space(ds_utf8_decode((const uint8_t *)text + p, l))) break;
                s = p;
            }
            start = s;
        }
        if (a->rstrip) {
            while (stop < len) {
                size_t need, l = ds_utf8_seq((const uint8_t *)text + stop, len - stop, &need);
                if (!is_white_space(ds_utf8_decode((const uint8_t *)text + stop, l))) break;
                stop += l;
            }
            i = stop > i ? stop : i;
        }
        if (start_offset < start) {
            if (pass == 0) DS_TRY(encode_added(tok, text + start_offset, start - start_offset, 1, ids, err));
            else DS_TRY(encode_plain(tok, text + start_offset, start - start_offset, ids, err));
        }
        DS_TRY(ds_ids_push(ids, a->id, err));
        start_offset = stop;
    }
    if (start_offset < len) {
        if (pass == 0) DS_TRY(encode_added(tok, text + start_offset, len - start_offset, 1, ids, err));
        else DS_TRY(encode_plain(tok, text + start_offset, len - start_offset, ids, err));
    }
    return DSOCR_OK;
}

dsocr_status ds_tokenizer_encode(ds_tokenizer *tok, const char *text, size_t len, ds_ids *ids, dsocr_error *err) {
    if (!tok || !ids || (!text && len)) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "tokenizer encode: NULL argument");
    size_t bad = ds_utf8_validate((const uint8_t *)text, len);
    if (bad < len)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "tokenizer encode: invalid UTF-8 at byte %zu (0x%02x) of %zu",
                       bad, (uint8_t)text[bad], len);
    size_t n0 = ids->n;
    dsocr_status st = encode_added(tok, text, len, 0, ids, err);
    if (st) ids->n = n0;
    return st;
}

/* ---- decoding ------------------------------------------------------------------------------ */

static int keep_id(const ds_tokenizer *tok, int32_t id, int skip_special) {
    return id >= 0 && id < tok->n_ids && tok->info[id].str && !(skip_special && tok->info[id].special);
}

dsocr_status ds_tokenizer_decode(const ds_tokenizer *tok, const int32_t *ids, size_t n, int skip_special,
                                 char **out, size_t *out_len, dsocr_error *err) {
    *out = NULL;
    if (!tok || (!ids && n)) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "tokenizer decode: NULL argument");
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (keep_id(tok, ids[i], skip_special)) total += tok->info[ids[i]].dec_len;
    uint8_t *bytes = malloc(total ? total : 1), *text = malloc(3 * total + 1);
    if (!bytes || !text) {
        free(bytes); free(text);
        return ds_fail(err, DSOCR_ERR_NOMEM, "tokenizer decode: out of memory for %zu bytes", total);
    }
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        if (!keep_id(tok, ids[i], skip_special)) continue;
        const ds_token_info *t = &tok->info[ids[i]];
        memcpy(bytes + pos, tok->decoded + t->dec_off, t->dec_len);
        pos += t->dec_len;
    }
    size_t used, m = ds_utf8_lossy(bytes, total, 1, text, &used);
    text[m] = 0;
    free(bytes);
    *out = (char *)text;
    if (out_len) *out_len = m;
    return DSOCR_OK;
}

/* ---- streaming decode --------------------------------------------------------------------- */

struct ds_token_stream {
    const ds_tokenizer *tok;
    int skip_special;
    uint8_t *pending;       /* bytes not yet emitted: an unfinished UTF-8 sequence (< 4 bytes) + new ones */
    size_t n_pending, pending_cap;
    uint8_t *text;          /* what the last call returned */
    size_t text_cap;
};

dsocr_status ds_token_stream_new(const ds_tokenizer *tok, int skip_special, ds_token_stream **out, dsocr_error *err) {
    *out = calloc(1, sizeof **out);
    if (!*out) return ds_fail(err, DSOCR_ERR_NOMEM, "tokenizer stream: out of memory");
    (*out)->tok = tok;
    (*out)->skip_special = skip_special;
    return DSOCR_OK;
}

static dsocr_status stream_emit(ds_token_stream *s, int final, const char **text, size_t *len, dsocr_error *err) {
    size_t need = 3 * s->n_pending + 1;
    if (need > s->text_cap) {
        uint8_t *q = realloc(s->text, need);
        if (!q) return ds_fail(err, DSOCR_ERR_NOMEM, "tokenizer stream: out of memory");
        s->text = q;
        s->text_cap = need;
    }
    size_t used, m = ds_utf8_lossy(s->pending, s->n_pending, final, s->text, &used);
    if (used && used < s->n_pending) memmove(s->pending, s->pending + used, s->n_pending - used);
    s->n_pending -= used;
    s->text[m] = 0;
    *text = (const char *)s->text;
    if (len) *len = m;
    return DSOCR_OK;
}

dsocr_status ds_token_stream_push(ds_token_stream *s, int32_t id, const char **text, size_t *len, dsocr_error *err) {
    const ds_tokenizer *tok = s->tok;
    if (keep_id(tok, id, s->skip_special)) {
        const ds_token_info *t = &tok->info[id];
        if (s->n_pending + t->dec_len > s->pending_cap) {
            size_t c = (s->n_pending + t->dec_len) * 2 + 16;
            uint8_t *q = realloc(s->pending, c);
            if (!q) return ds_fail(err, DSOCR_ERR_NOMEM, "tokenizer stream: out of memory");
            s->pending = q;
            s->pending_cap = c;
        }
        memcpy(s->pending + s->n_pending, tok->decoded + t->dec_off, t->dec_len);
        s->n_pending += t->dec_len;
    }
    return stream_emit(s, 0, text, len, err);
}

dsocr_status ds_token_stream_flush(ds_token_stream *s, const char **text, size_t *len, dsocr_error *err) {
    return stream_emit(s, 1, text, len, err);
}

void ds_token_stream_free(ds_token_stream *s) {
    if (!s) return;
    free(s->pending);
    free(s->text);
    free(s);
}
