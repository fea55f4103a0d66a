/* tokenizer.json (+ tokenizer_config.json after the first NUL byte, if any), through
 * ds_tokenizer_load_memory; an accepted tokenizer then encodes and decodes a few
 * fixed strings, so fuzzed vocabularies, merges, regexes and added tokens all run. */
#include "fuzz_util.h"
#include "text/tokenizer.h"

static const char *const samples[] = {
    "Hello, the world! 12345 ing",
    "<image>\n<|grounding|>Convert the document to markdown.",
    "  \t\r\n  <|ref|>title<|/ref|><|det|>[[1, 2, 3, 4]]<|/det|>",
    "\xe4\xbd\xa0\xe5\xa5\xbd \xe3\x81\x82 \xf0\x9f\x98\x80 caf\xc3\xa9",
    "",
};

static void round_trip(ds_tokenizer *tok, const char *text) {
    dsocr_error err;
    ds_ids ids = {0};
    dsocr_status s = ds_tokenizer_encode(tok, text, strlen(text), &ids, &err);
    fuzz_check_error(s, &err);
    if (s == DSOCR_OK) {
        int32_t vocab = ds_tokenizer_vocab_size(tok);
        for (size_t i = 0; i < ids.n; i++) FUZZ_CHECK(ids.data[i] >= 0 && ids.data[i] < vocab);
        char *out = NULL;
        size_t len = 0;
        s = ds_tokenizer_decode(tok, ids.data, ids.n, (int)(ids.n & 1), &out, &len, &err);
        fuzz_check_error(s, &err);
        if (s == DSOCR_OK) FUZZ_CHECK(out && out[len] == 0);   /* text may hold NULs (token "\u0000") */
        free(out);
        for (size_t i = 0; i < ids.n; i++) {
            size_t n;
            const char *t = ds_tokenizer_id_to_token(tok, ids.data[i], &n);
            if (t) (void)ds_tokenizer_token_to_id(tok, t, n);
        }
    }
    ds_ids_free(&ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t json_len = nul ? (size_t)(nul - data) : size;
    const char *config = nul ? (const char *)nul + 1 : NULL;
    size_t config_len = nul ? size - json_len - 1 : 0;
    ds_tokenizer *tok = NULL;
    dsocr_error err;
    dsocr_status s = ds_tokenizer_load_memory((const char *)data, json_len, config, config_len, "fuzz", &tok, &err);
    fuzz_check_error(s, &err);
    if (s != DSOCR_OK) { FUZZ_CHECK(tok == NULL); return 0; }
    for (size_t i = 0; i < sizeof samples / sizeof *samples; i++) round_trip(tok, samples[i]);
    int32_t bad[] = {-1, ds_tokenizer_vocab_size(tok), ds_tokenizer_bos_id(tok), ds_tokenizer_eos_id(tok), 0x7fffffff};
    char *out = NULL;
    s = ds_tokenizer_decode(tok, bad, 5, 0, &out, NULL, &err);
    fuzz_check_error(s, &err);
    free(out);
    ds_tokenizer_free(tok);
    return 0;
}
