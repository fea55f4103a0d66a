/* Tokenizer encode/decode on the real DeepSeek-OCR tokenizer (the golden tiny
 * model's tokenizer.json, loaded once). Valid UTF-8 must encode, decode back to the
 * same bytes (byte-level BPE, no normalizer) and stream-decode to the same text;
 * invalid UTF-8 must be refused with DSOCR_ERR_INVALID_ARG. Lossy decoding of
 * arbitrary id sequences is fuzzed too (ids from the input bytes). */
#include <stdbool.h>

#include "fuzz_util.h"
#include "text/tokenizer.h"

#ifndef DSOCR_GOLDEN_DIR
#error "DSOCR_GOLDEN_DIR must point at the golden fixtures"
#endif

static ds_tokenizer *tok;

/* Strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF), written independently of src/text. */
static bool valid_utf8(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) { i++; continue; }
        if ((c & 0xe0) == 0xc0) { len = 2; cp = c & 0x1f; min = 0x80; }
        else if ((c & 0xf0) == 0xe0) { len = 3; cp = c & 0x0f; min = 0x800; }
        else if ((c & 0xf8) == 0xf0) { len = 4; cp = c & 0x07; min = 0x10000; }
        else return false;
        if (n - i < len) return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += len;
    }
    return true;
}

static void load_once(void) {
    dsocr_error err;
    if (ds_tokenizer_load(DSOCR_GOLDEN_DIR "/tiny-model/tokenizer.json", &tok, &err)) {
        fprintf(stderr, "fuzz_tokenizer_encode: %s\n", err.message);
        abort();   /* the fixture is required: fail, never skip */
    }
}

/* Decoding arbitrary ids (int32 little-endian from the input) must not crash, and the
 * streamed text must equal the one-shot text. */
static void fuzz_decode_ids(const uint8_t *data, size_t size) {
    size_t n = size / 4;
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) abort();
    int32_t vocab = ds_tokenizer_vocab_size(tok);
    for (size_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)data[4 * i] | (uint32_t)data[4 * i + 1] << 8 | (uint32_t)data[4 * i + 2] << 16 |
                     (uint32_t)data[4 * i + 3] << 24;
        /* mostly valid ids, some out of range either way */
        ids[i] = (v >> 31) ? (int32_t)v : (int32_t)(v % (uint32_t)(vocab + 8));
    }
    int skip = size & 1;
    dsocr_error err;
    char *text = NULL;
    size_t len = 0;
    dsocr_status s = ds_tokenizer_decode(tok, ids, n, skip, &text, &len, &err);
    fuzz_check_error(s, &err);
    ds_token_stream *st = NULL;
    if (s == DSOCR_OK && ds_token_stream_new(tok, skip, &st, &err) == DSOCR_OK) {
        size_t at = 0;
        bool ok = true;
        for (size_t i = 0; i <= n && ok; i++) {
            const char *piece;
            size_t plen;
            s = i < n ? ds_token_stream_push(st, ids[i], &piece, &plen, &err)
                      : ds_token_stream_flush(st, &piece, &plen, &err);
            fuzz_check_error(s, &err);
            if (s != DSOCR_OK) { ok = false; break; }
            FUZZ_CHECK(plen <= len - at && !memcmp(piece, text + at, plen));
            at += plen;
        }
        if (ok) FUZZ_CHECK(at == len);
        ds_token_stream_free(st);
    }
    free(text);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!tok) load_once();
    /* First byte 0xff: the rest are ids to decode; else the whole input is text. */
    if (size && data[0] == 0xff) { fuzz_decode_ids(data + 1, size - 1); return 0; }
    ds_ids ids = {0};
    dsocr_error err;
    dsocr_status s = ds_tokenizer_encode(tok, (const char *)data, size, &ids, &err);
    fuzz_check_error(s, &err);
    if (!valid_utf8(data, size)) {
        FUZZ_CHECK(s == DSOCR_ERR_INVALID_ARG);
        ds_ids_free(&ids);
        return 0;
    }
    FUZZ_CHECK(s == DSOCR_OK);
    FUZZ_CHECK(size == 0 || ids.n > 0);
    char *text = NULL;
    size_t len = 0;
    s = ds_tokenizer_decode(tok, ids.data, ids.n, 0, &text, &len, &err);
    FUZZ_CHECK(s == DSOCR_OK);
    FUZZ_CHECK(len == size && !memcmp(text, data, size));   /* lossless round trip */
    free(text);
    ds_ids_free(&ids);
    return 0;
}
