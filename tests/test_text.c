/* text: the tokenizer against the 244 golden cases (HF tokenizers ids, tokens,
 * decodes), the spec 4.4 ids, the prompt builder (spec 5.2), streaming decode,
 * out-of-range ids, invalid UTF-8, unsupported tokenizer.json components, and
 * the added-token flags / split behaviours on small synthetic tokenizers. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_util.h"
#include "text/prompt.h"
#include "text/tokenizer_internal.h"   /* ds_byte_level_map */
#include "text/tokenizer.h"
#include "text/utf8.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int ids_equal(const ds_ids *got, const int32_t *want, size_t n) {
    return got->n == n && (n == 0 || memcmp(got->data, want, n * sizeof *want) == 0);
}

static void print_ids(const char *what, const int32_t *ids, size_t n) {
    fprintf(stderr, "  %s:", what);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fputc('\n', stderr);
}

/* Encodes s and compares with want; prints both on mismatch. */
static void check_encode(ds_tokenizer *tok, const char *s, const int32_t *want, size_t n) {
    ds_ids ids = {0};
    dsocr_error e;
    dsocr_status st = ds_tokenizer_encode(tok, s, strlen(s), &ids, &e);
    CHECK_MSG(st == DSOCR_OK, "encode \"%s\": %s", s, e.message);
    int ok = ids_equal(&ids, want, n);
    CHECK_MSG(ok, "ids of \"%s\"", s);
    if (!ok) { print_ids("got", ids.data, ids.n); print_ids("want", want, n); }
    ds_ids_free(&ids);
}

/* Streams ids through a ds_token_stream: every chunk must be valid UTF-8 and
 * the chunks must add up to the full decode. Returns the number of pushes
 * that returned "" (a character still incomplete). */
static int check_stream(const ds_tokenizer *tok, const int32_t *ids, size_t n, int skip_special, const char *label) {
    ds_token_stream *s;
    dsocr_error e;
    CHECK(ds_token_stream_new(tok, skip_special, &s, &e) == DSOCR_OK);
    size_t cap = 64, len = 0;
    char *acc = malloc(cap);
    int empty_pushes = 0, broken = 0;
    for (size_t i = 0; i <= n; i++) {
        const char *chunk;
        size_t m;
        dsocr_status st = i < n ? ds_token_stream_push(s, ids[i], &chunk, &m, &e) : ds_token_stream_flush(s, &chunk, &m, &e);
        CHECK(st == DSOCR_OK);
        if (ds_utf8_validate((const uint8_t *)chunk, m) != m) broken++;
        if (i < n && m == 0 && ds_tokenizer_id_to_token(tok, ids[i], NULL)) empty_pushes++;
        if (len + m + 1 > cap) { cap = 2 * (len + m + 1); acc = realloc(acc, cap); }
        memcpy(acc + len, chunk, m);
        len += m;
    }
    acc[len] = 0;
    char *full;
    size_t full_len;
    CHECK(ds_tokenizer_decode(tok, ids, n, skip_special, &full, &full_len, &e) == DSOCR_OK);
    CHECK_MSG(broken == 0, "%s: a stream chunk was not valid UTF-8", label);
    CHECK_MSG(full_len == len && memcmp(full, acc, len) == 0, "%s: stream != decode (\"%s\" vs \"%s\")", label, acc, full);
    free(full);
    free(acc);
    ds_token_stream_free(s);
    return empty_pushes;
}

/* ---- golden cases ---------------------------------------------------------------- */

static int32_t *json_ids(const cJSON *arr, size_t *n) {
    *n = (size_t)cJSON_GetArraySize(arr);
    int32_t *ids = malloc((*n ? *n : 1) * sizeof *ids);
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) ids[i++] = (int32_t)it->valuedouble;
    return ids;
}

static void test_golden_cases(ds_tokenizer *tok) {
    size_t size;
    char *text = tu_read_file(tu_golden("tokenizer/tokenizer_cases.json"), &size);
    CHECK(text != NULL);
    if (!text) return;
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *cases = cJSON_GetObjectItem(root, "cases");
    CHECK_EQ_INT(cJSON_GetArraySize(cases), 244);
    int n_ok = 0, n_cases = 0, split_chars = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        n_cases++;
        const char *s = cJSON_GetObjectItem(c, "text")->valuestring;
        size_t n, nb;
        int32_t *want = json_ids(cJSON_GetObjectItem(c, "ids"), &n);
        int32_t *want_bos = json_ids(cJSON_GetObjectItem(c, "ids_with_bos"), &nb);
        int ok = 1;

        ds_ids ids = {0};
        dsocr_error e;
        CHECK(ds_tokenizer_encode(tok, s, strlen(s), &ids, &e) == DSOCR_OK);
        if (!ids_equal(&ids, want, n)) {
            ok = 0;
            CHECK_MSG(0, "golden case %d ids differ: %s", n_cases - 1, cJSON_PrintUnformatted(cJSON_GetObjectItem(c, "text")));
            print_ids("got", ids.data, ids.n);
            print_ids("want", want, n);
        }
        /* ids_with_bos: BOS pushed by hand, as infer() does */
        ds_ids with_bos = {0};
        ds_ids_push(&with_bos, ds_tokenizer_bos_id(tok), NULL);
        ds_tokenizer_encode(tok, s, strlen(s), &with_bos, NULL);
        if (!ids_equal(&with_bos, want_bos, nb)) { ok = 0; CHECK_MSG(0, "golden case %d ids_with_bos", n_cases - 1); }

        /* token strings */
        const cJSON *tokens = cJSON_GetObjectItem(c, "tokens");
        for (size_t i = 0; i < n; i++) {
            size_t len;
            const char *t = ds_tokenizer_id_to_token(tok, want[i], &len);
            const char *w = cJSON_GetArrayItem(tokens, (int)i)->valuestring;
            if (!t || len != strlen(w) || memcmp(t, w, len)) { ok = 0; CHECK_MSG(0, "golden case %d token %zu", n_cases - 1, i); }
        }

        /* decodes of the golden ids, with and without special tokens */
        const char *keys[2] = {"decoded", "decoded_skip_special"};
        for (int skip = 0; skip < 2; skip++) {
            char *d;
            size_t dlen;
            CHECK(ds_tokenizer_decode(tok, want, n, skip, &d, &dlen, &e) == DSOCR_OK);
            const char *w = cJSON_GetObjectItem(c, keys[skip])->valuestring;
            if (dlen != strlen(w) || memcmp(d, w, dlen)) { ok = 0; CHECK_MSG(0, "golden case %d %s: \"%s\" vs \"%s\"", n_cases - 1, keys[skip], d, w); }
            free(d);
            split_chars += check_stream(tok, want, n, skip, keys[skip]);
        }
        n_ok += ok;
        ds_ids_free(&ids);
        ds_ids_free(&with_bos);
        free(want);
        free(want_bos);
    }
    printf("golden tokenizer cases: %d / %d match (ids, ids_with_bos, tokens, decoded, decoded_skip_special)\n", n_ok, n_cases);
    printf("streaming: %d pushes held back an incomplete character\n", split_chars);
    CHECK_EQ_INT(n_ok, 244);
    CHECK(split_chars > 0);     /* the cases do split characters across tokens */
    cJSON_Delete(root);
}

/* ---- spec 4.4 / 4.5 / 5.2 ------------------------------------------------------------ */

static void test_spec_ids(ds_tokenizer *tok) {
    check_encode(tok, "\n<|grounding|>Convert the document to markdown.", (int32_t[]){201, 128820, 21842, 270, 4940, 304, 2121, 7919, 16}, 9);
    check_encode(tok, "\n<|grounding|>Convert the document to markdown. ", (int32_t[]){201, 128820, 21842, 270, 4940, 304, 2121, 7919, 16, 223}, 10);
    check_encode(tok, "\n<|grounding|>OCR this image.", (int32_t[]){201, 128820, 119316, 566, 4609, 16}, 6);
    check_encode(tok, "\nFree OCR.", (int32_t[]){201, 21431, 126041, 16}, 4);
    check_encode(tok, "\nParse the figure.", (int32_t[]){201, 68779, 270, 5991, 16}, 5);
    check_encode(tok, "\nDescribe this image in detail.", (int32_t[]){201, 72188, 566, 4609, 295, 6271, 16}, 7);
    check_encode(tok, "\nLocate <|ref|>the teapot<|/ref|> in the image.",
                 (int32_t[]){201, 26751, 434, 223, 128816, 1805, 823, 630, 347, 128817, 295, 270, 4609, 16}, 14);
    check_encode(tok, "<td>1</td>", (int32_t[]){128821, 19, 128822}, 3);

    /* regex classes as Oniguruma (HF) reads them: U+180E is not \s (PCRE2's \s has
     * it), U+0085 is \s (JavaScript's \s lacks it, so transformers.js differs here) */
    check_encode(tok, "a \u180e b", (int32_t[]){67, 223, 115522, 239, 291}, 5);
    check_encode(tok, "a  \xc2\x85", (int32_t[]){67, 262, 129, 230}, 4);
    /* U+FEFF is not \s either (JavaScript's \s has it) */
    check_encode(tok, "\t\t\xef\xbb\xbf  ", (int32_t[]){200, 200, 15251, 262}, 4);

    CHECK_EQ_INT(ds_tokenizer_bos_id(tok), 0);
    CHECK_EQ_INT(ds_tokenizer_eos_id(tok), 1);
    CHECK_EQ_INT(ds_tokenizer_pad_id(tok), 2);
    CHECK_EQ_INT(ds_tokenizer_add_bos(tok), 1);
    CHECK_EQ_INT(ds_tokenizer_vocab_size(tok), 128827);
    CHECK_EQ_INT(ds_tokenizer_token_to_id(tok, "<image>", 7), 128815);
    CHECK_EQ_INT(ds_tokenizer_token_to_id(tok, "<|Assistant|>", 13), 128826);
    CHECK_EQ_INT(ds_tokenizer_token_to_id(tok, "<nope>", 6), -1);
    CHECK(ds_tokenizer_is_special(tok, 128821));
    CHECK(!ds_tokenizer_is_special(tok, 128803));   /* <｜User｜> (full-width) is not special */

    /* spec 4.5: special tokens kept by default, dropped with skip_special */
    const char *s = "<|ref|>title<|/ref|><|det|>[[100, 200]]<|/det|>\n<td>4</td>";
    ds_ids ids = {0};
    dsocr_error e;
    CHECK(ds_tokenizer_encode(tok, s, strlen(s), &ids, &e) == DSOCR_OK);
    ds_ids_push(&ids, 1, NULL);   /* EOS */
    char *d;
    CHECK(ds_tokenizer_decode(tok, ids.data, ids.n, 0, &d, NULL, &e) == DSOCR_OK);
    CHECK_STR(d, "<|ref|>title<|/ref|><|det|>[[100, 200]]<|/det|>\n<td>4</td><｜end▁of▁sentence｜>");
    free(d);
    CHECK(ds_tokenizer_decode(tok, ids.data, ids.n, 1, &d, NULL, &e) == DSOCR_OK);
    CHECK_STR(d, "title[[100, 200]]\n4");
    free(d);
    ds_ids_free(&ids);
}

static void test_prompt(ds_tokenizer *tok) {
    char *p;
    dsocr_error e;
    CHECK(ds_task_prompt(DSOCR_TASK_MARKDOWN, NULL, &p, &e) == DSOCR_OK);
    CHECK_STR(p, "<image>\n<|grounding|>Convert the document to markdown.");

    ds_prompt pr;
    int n_img = 273;
    CHECK(ds_prompt_build(tok, p, &n_img, 1, &pr, &e) == DSOCR_OK);
    free(p);
    int32_t want[283];
    want[0] = 0;
    for (int i = 1; i <= 273; i++) want[i] = 128815;
    int32_t tail[] = {201, 128820, 21842, 270, 4940, 304, 2121, 7919, 16};
    memcpy(want + 274, tail, sizeof tail);
    CHECK(ids_equal(&pr.ids, want, 283));
    CHECK_EQ_INT(pr.n_image_tokens, 273);
    int mask_ok = 1;
    for (int i = 0; i < 283; i++) mask_ok &= pr.image_mask[i] == (i >= 1 && i <= 273);
    CHECK(mask_ok);
    ds_prompt_free(&pr);

    /* README form with a trailing space: strip() removes it (spec 5.1) */
    CHECK(ds_prompt_build(tok, "  <image>\n<|grounding|>Convert the document to markdown. ", &n_img, 1, &pr, &e) == DSOCR_OK);
    CHECK(ids_equal(&pr.ids, want, 283));
    ds_prompt_free(&pr);

    /* Gundam 2x3: 903 image tokens -> 913 ids */
    int n903 = 903;
    CHECK(ds_prompt_build(tok, "<image>\n<|grounding|>Convert the document to markdown.", &n903, 1, &pr, &e) == DSOCR_OK);
    CHECK_EQ_INT(pr.ids.n, 913);
    ds_prompt_free(&pr);

    /* two images, text between them encoded on its own */
    int two[2] = {3, 2};
    CHECK(ds_prompt_build(tok, "A<image>B<image>C", two, 2, &pr, &e) == DSOCR_OK);
    int32_t a = ds_tokenizer_token_to_id(tok, "A", 1), b = ds_tokenizer_token_to_id(tok, "B", 1), c = ds_tokenizer_token_to_id(tok, "C", 1);
    int32_t want2[] = {0, a, 128815, 128815, 128815, b, 128815, 128815, c};
    CHECK(ids_equal(&pr.ids, want2, 9));
    uint8_t mask2[] = {0, 0, 1, 1, 1, 0, 1, 1, 0};
    CHECK(memcmp(pr.image_mask, mask2, 9) == 0);
    ds_prompt_free(&pr);

    /* marker count must match */
    CHECK(ds_prompt_build(tok, "no image here", &n_img, 1, &pr, &e) == DSOCR_ERR_INVALID_ARG);
    CHECK(strstr(e.message, "0 \"<image>\" markers for 1 images") != NULL);

    /* every task prompt; locate needs a ref */
    dsocr_task tasks[] = {DSOCR_TASK_OCR, DSOCR_TASK_FREE, DSOCR_TASK_FIGURE, DSOCR_TASK_DESCRIBE};
    const char *texts[] = {"<image>\n<|grounding|>OCR this image.", "<image>\nFree OCR.", "<image>\nParse the figure.",
                           "<image>\nDescribe this image in detail."};
    for (int i = 0; i < 4; i++) {
        CHECK(ds_task_prompt(tasks[i], NULL, &p, &e) == DSOCR_OK);
        CHECK_STR(p, texts[i]);
        free(p);
    }
    CHECK(ds_task_prompt(DSOCR_TASK_LOCATE, "the teapot", &p, &e) == DSOCR_OK);
    CHECK_STR(p, "<image>\nLocate <|ref|>the teapot<|/ref|> in the image.");
    CHECK(ds_prompt_build(tok, p, &n_img, 1, &pr, &e) == DSOCR_OK);
    int32_t loc[] = {201, 26751, 434, 223, 128816, 1805, 823, 630, 347, 128817, 295, 270, 4609, 16};
    CHECK(pr.ids.n == 274 + 14 && memcmp(pr.ids.data + 274, loc, sizeof loc) == 0);
    ds_prompt_free(&pr);
    free(p);
    CHECK(ds_task_prompt(DSOCR_TASK_LOCATE, NULL, &p, &e) == DSOCR_ERR_INVALID_ARG);
}

/* ---- decode edge cases, streaming, invalid input ---------------------------------------- */

static void test_decode_edges(ds_tokenizer *tok) {
    dsocr_error e;
    char *d;
    /* ids with no token string: the 129,280-row head ends past the last token (128,826) */
    int32_t none[] = {128827, 129279, 200000, -1, 1 << 30};
    CHECK(ds_tokenizer_decode(tok, none, 5, 0, &d, NULL, &e) == DSOCR_OK);
    CHECK_STR(d, "");
    free(d);
    CHECK(ds_tokenizer_id_to_token(tok, 129000, NULL) == NULL);
    ds_ids ids = {0};
    CHECK(ds_tokenizer_encode(tok, "a b", 3, &ids, &e) == DSOCR_OK);
    int32_t mixed[] = {ids.data[0], 129000, ids.data[1]};
    CHECK(ds_tokenizer_decode(tok, mixed, 3, 0, &d, NULL, &e) == DSOCR_OK);
    CHECK_STR(d, "a b");
    free(d);
    ds_ids_free(&ids);

    /* a lone byte token (first byte of a 3-byte character) decodes to U+FFFD */
    int32_t e4 = ds_tokenizer_token_to_id(tok, "\xc3\xa4", 2);   /* "ä": byte 0xE4 in the byte alphabet */
    CHECK(e4 >= 0);
    CHECK(ds_tokenizer_decode(tok, &e4, 1, 0, &d, NULL, &e) == DSOCR_OK);
    CHECK_STR(d, "\xef\xbf\xbd");
    free(d);

    /* streaming a character split byte by byte: nothing until complete */
    const char *emoji = "\xf0\x9f\x98\x80 \xe4\xb8\xad";   /* 😀 中 */
    uint32_t byte_char[256];
    ds_ids parts = {0};
    /* byte tokens: look up each byte's alphabet character */
    ds_byte_level_map(byte_char);
    for (const char *p = emoji; *p; p++) {
        uint8_t u[4];
        size_t l = ds_utf8_encode(byte_char[(uint8_t)*p], u);
        ds_ids_push(&parts, ds_tokenizer_token_to_id(tok, (const char *)u, l), NULL);
    }
    ds_token_stream *s;
    CHECK(ds_token_stream_new(tok, 0, &s, &e) == DSOCR_OK);
    const char *chunk;
    size_t m;
    size_t lens[8];
    for (size_t i = 0; i < parts.n; i++) {
        CHECK(ds_token_stream_push(s, parts.data[i], &chunk, &m, &e) == DSOCR_OK);
        lens[i] = m;
    }
    CHECK(lens[0] == 0 && lens[1] == 0 && lens[2] == 0 && lens[3] == 4 && lens[4] == 1 && lens[5] == 0 && lens[6] == 0 && lens[7] == 3);
    CHECK(ds_token_stream_flush(s, &chunk, &m, &e) == DSOCR_OK);
    CHECK_EQ_INT(m, 0);
    ds_token_stream_free(s);
    check_stream(tok, parts.data, parts.n, 0, "emoji bytes");
    /* an unfinished sequence at the end is flushed as U+FFFD, and an invalid one mid-stream too */
    int32_t cut[] = {parts.data[0], parts.data[1], parts.data[4], parts.data[5]};
    check_stream(tok, cut, 4, 0, "cut sequences");
    CHECK(ds_tokenizer_decode(tok, cut, 4, 0, &d, NULL, &e) == DSOCR_OK);
    CHECK_STR(d, "\xef\xbf\xbd \xef\xbf\xbd");
    free(d);
    ds_ids_free(&parts);

    /* random id sequences (including byte tokens and out-of-range ids) */
    uint64_t seed = 7;
    for (int round = 0; round < 200; round++) {
        int32_t r[24];
        for (int i = 0; i < 24; i++) {
            uint64_t x = tu_rand_u64(&seed);
            r[i] = (x & 3) == 0 ? (int32_t)(x >> 8) % 400 : (x & 3) == 1 ? 128800 + (int32_t)((x >> 8) % 40) : (int32_t)((x >> 8) % 129280);
        }
        check_stream(tok, r, 24, round & 1, "random ids");
    }
}

static void test_invalid_utf8(ds_tokenizer *tok) {
    const char *bad[] = {"abc\xff", "\xc3", "ok \xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "x\x80y", "\xe4\xb8"};
    size_t at[] = {3, 0, 3, 0, 0, 1, 0};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ds_ids ids = {0};
        dsocr_error e;
        CHECK_EQ_INT(ds_tokenizer_encode(tok, bad[i], strlen(bad[i]), &ids, &e), DSOCR_ERR_INVALID_ARG);
        char want[64];
        snprintf(want, sizeof want, "invalid UTF-8 at byte %zu", at[i]);
        CHECK_MSG(strstr(e.message, want) != NULL, "message \"%s\"", e.message);
        CHECK_EQ_INT(ids.n, 0);
        ds_ids_free(&ids);
    }
    /* embedded NUL is valid UTF-8 and encodes */
    ds_ids ids = {0};
    CHECK(ds_tokenizer_encode(tok, "a\0b", 3, &ids, NULL) == DSOCR_OK);
    char *d;
    size_t dl;
    CHECK(ds_tokenizer_decode(tok, ids.data, ids.n, 0, &d, &dl, NULL) == DSOCR_OK);
    CHECK(dl == 3 && memcmp(d, "a\0b", 3) == 0);
    free(d);
    ds_ids_free(&ids);
}

/* ---- synthetic tokenizers ------------------------------------------------------------------ */

/* A byte-level tokenizer over a tiny vocabulary: all 256 byte characters plus
 * the merges given, wrapped in a tokenizer.json with the given components. */
static char *synthetic_json(const char *pre_tokenizer, const char *merges, const char *extra_vocab,
                            const char *added, const char *normalizer, const char *decoder, const char *model_extra) {
    uint32_t map[256];
    ds_byte_level_map(map);
    size_t cap = 1 << 16, n = 0;
    char *s = malloc(cap);
    n += (size_t)snprintf(s + n, cap - n, "{\"version\":\"1.0\",\"added_tokens\":[%s],\"normalizer\":%s,\"pre_tokenizer\":%s,"
                          "\"post_processor\":null,\"decoder\":%s,\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null%s,\"vocab\":{",
                          added, normalizer, pre_tokenizer, decoder, model_extra);
    for (int b = 0; b < 256; b++) {
        uint8_t u[4];
        size_t l = ds_utf8_encode(map[b], u);
        const char *sep = b ? "," : "";
        if (b == '"' || b == '\\') n += (size_t)snprintf(s + n, cap - n, "%s\"\\%c\":%d", sep, b, b);
        else n += (size_t)snprintf(s + n, cap - n, "%s\"%.*s\":%d", sep, (int)l, (const char *)u, b);
    }
    n += (size_t)snprintf(s + n, cap - n, "%s},\"merges\":[%s]}}", extra_vocab, merges);
    return s;
}

static ds_tokenizer *load_synthetic(const char *json, dsocr_status want, const char *want_msg) {
    ds_tokenizer *t = NULL;
    dsocr_error e;
    dsocr_status st = ds_tokenizer_load_memory(json, strlen(json), NULL, 0, "synthetic.json", &t, &e);
    CHECK_MSG(st == want, "load: got %s (%s), want %s", dsocr_status_name(st), st ? e.message : "", dsocr_status_name(want));
    if (want_msg) CHECK_MSG(st != DSOCR_OK && strstr(e.message, want_msg) != NULL, "message \"%s\" lacks \"%s\"", st ? e.message : "", want_msg);
    return t;
}

#define BL "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":false}"
#define BLD "{\"type\":\"ByteLevel\"}"
#define NONORM "{\"type\":\"Sequence\",\"normalizers\":[]}"

static void test_synthetic(void) {
    /* merges in both forms; "ab" then "abc" */
    char *j = synthetic_json(BL, "\"a b\",[\"ab\",\"c\"]", ",\"ab\":256,\"abc\":257", "", NONORM, BLD, "");
    ds_tokenizer *t = load_synthetic(j, DSOCR_OK, NULL);
    free(j);
    if (t) {
        check_encode(t, "abcab", (int32_t[]){257, 256}, 2);
        check_encode(t, "aab", (int32_t[]){'a', 256}, 2);
        ds_tokenizer_free(t);
    }
    /* merge rank order: "b c" (rank 0) beats "a b" (rank 1) */
    j = synthetic_json(BL, "\"b c\",\"a b\"", ",\"bc\":256,\"ab\":257", "", NONORM, BLD, "");
    t = load_synthetic(j, DSOCR_OK, NULL);
    free(j);
    if (t) { check_encode(t, "abc", (int32_t[]){'a', 256}, 2); check_encode(t, "abab", (int32_t[]){257, 257}, 2); ds_tokenizer_free(t); }

    /* added-token flags: lstrip/rstrip swallow whitespace, single_word needs word boundaries,
     * longest match wins, normalized tokens are matched in the second pass */
    const char *added =
        "{\"id\":300,\"content\":\"<L>\",\"single_word\":false,\"lstrip\":true,\"rstrip\":false,\"normalized\":false,\"special\":true},"
        "{\"id\":301,\"content\":\"<R>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":true,\"normalized\":false,\"special\":true},"
        "{\"id\":302,\"content\":\"cat\",\"single_word\":true,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":false},"
        "{\"id\":303,\"content\":\"<R><R>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},"
        "{\"id\":304,\"content\":\"xy\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":true,\"special\":false}";
    j = synthetic_json(BL, "", "", added, "null", BLD, "");
    t = load_synthetic(j, DSOCR_OK, NULL);
    free(j);
    if (t) {
        check_encode(t, "a  <L>b", (int32_t[]){'a', 300, 'b'}, 3);
        check_encode(t, "a<R> \n b", (int32_t[]){'a', 301, 'b'}, 3);
        check_encode(t, "cat concat cat_ cat.", (int32_t[]){302, ' ', 'c', 'o', 'n', 'c', 'a', 't', ' ', 'c', 'a', 't', '_', ' ', 302, '.'}, 16);
        check_encode(t, "<R><R>x", (int32_t[]){303, 'x'}, 2);
        check_encode(t, "axyb", (int32_t[]){'a', 304, 'b'}, 3);
        char *d;
        int32_t ids[] = {300, 'a', 301, 302};
        CHECK(ds_tokenizer_decode(t, ids, 4, 1, &d, NULL, NULL) == DSOCR_OK);
        CHECK_STR(d, "acat");   /* special tokens dropped, non-special kept */
        free(d);
        ds_tokenizer_free(t);
    }

    /* split behaviours on "a,b,,c" splitting on ","; the merges "a ," ", ," ", b" show
     * where the pieces end: MergedWithPrevious gives "a," "b," "," "c", MergedWithNext
     * "a" ",b" "," ",c", Contiguous "a" "," "b" ",," "c" */
    struct { const char *behavior; int invert; int32_t want[8]; size_t n; } cases[] = {
        {"Removed", 0, {'a', 'b', 'c'}, 3},
        {"Isolated", 0, {'a', ',', 'b', ',', ',', 'c'}, 6},
        {"MergedWithPrevious", 0, {256, 'b', ',', ',', 'c'}, 5},
        {"MergedWithNext", 0, {'a', 258, ',', ',', 'c'}, 5},
        {"Contiguous", 0, {'a', ',', 'b', 257, 'c'}, 5},
        {"Removed", 1, {',', ',', ','}, 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char pre[512];
        snprintf(pre, sizeof pre, "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"String\":\",\"},"
                 "\"behavior\":\"%s\",\"invert\":%s}," BL "]}", cases[i].behavior, cases[i].invert ? "true" : "false");
        j = synthetic_json(pre, "\"a ,\",\", ,\",\", b\"", ",\"a,\":256,\",,\":257,\",b\":258", "", NONORM, BLD, "");
        t = load_synthetic(j, DSOCR_OK, NULL);
        free(j);
        if (!t) continue;
        ds_ids ids = {0};
        CHECK(ds_tokenizer_encode(t, "a,b,,c", 6, &ids, NULL) == DSOCR_OK);
        int ok = ids_equal(&ids, cases[i].want, cases[i].n);
        CHECK_MSG(ok, "split behavior %s invert %d", cases[i].behavior, cases[i].invert);
        if (!ok) print_ids("got", ids.data, ids.n);
        ds_ids_free(&ids);
        ds_tokenizer_free(t);
    }

    /* ByteLevel with the GPT-2 regex and add_prefix_space */
    j = synthetic_json("{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"use_regex\":true}", "\"\xc4\xa0 a\"", ",\"\xc4\xa0" "a\":256", "", "null", BLD, "");
    t = load_synthetic(j, DSOCR_OK, NULL);
    free(j);
    if (t) { check_encode(t, "a a", (int32_t[]){256, 256}, 2); ds_tokenizer_free(t); }

    /* unsupported components are rejected by name */
    struct { const char *pre, *norm, *dec, *model_extra, *msg; } bad[] = {
        {BL, "{\"type\":\"NFC\"}", BLD, "", "normalizer \"NFC\""},
        {BL, "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Lowercase\"}]}", BLD, "", "normalizer \"Lowercase\""},
        {"{\"type\":\"Whitespace\"}", NONORM, BLD, "", "pre_tokenizer \"Whitespace\""},
        {"{\"type\":\"Metaspace\"}", NONORM, BLD, "", "pre_tokenizer \"Metaspace\""},
        {BL, NONORM, "{\"type\":\"WordPiece\"}", "", "decoder \"WordPiece\""},
        {BL, NONORM, "null", "", "decoder \"null\""},
        {BL, NONORM, BLD, ",\"byte_fallback\":true", "byte_fallback"},
        {BL, NONORM, BLD, ",\"continuing_subword_prefix\":\"##\"", "continuing_subword_prefix"},
        {"null", NONORM, BLD, "", "must end with ByteLevel"},
        {"{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},\"behavior\":\"Isolated\",\"invert\":false}", NONORM, BLD, "", "regex not accepted"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = synthetic_json(bad[i].pre, "", "", "", bad[i].norm, bad[i].dec, bad[i].model_extra);
        t = load_synthetic(j, DSOCR_ERR_UNSUPPORTED, bad[i].msg);
        ds_tokenizer_free(t);
        free(j);
    }
    j = synthetic_json(BL, "", "", "", NONORM, BLD, "");
    char *type = strstr(j, "\"BPE\"");
    memcpy(type, "\"WPC\"", 5);
    t = load_synthetic(j, DSOCR_ERR_UNSUPPORTED, "model type \"WPC\"");
    ds_tokenizer_free(t);
    free(j);
    /* malformed */
    j = synthetic_json(BL, "\"a zz\"", "", "", NONORM, BLD, "");
    t = load_synthetic(j, DSOCR_ERR_FORMAT, "model.merges[0]: token \"zz\" is not in the vocab");
    ds_tokenizer_free(t);
    free(j);
    t = load_synthetic("{\"model\": [1, 2", DSOCR_ERR_FORMAT, "not valid JSON");
    ds_tokenizer_free(t);
    /* mutated files: every load either succeeds or fails with a message, never crashes */
    j = synthetic_json("{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s+|\\\\w+\"},"
                       "\"behavior\":\"Isolated\",\"invert\":false}," BL "]}", "\"a b\",[\"ab\",\"c\"]", ",\"ab\":256,\"abc\":257",
                       "{\"id\":258,\"content\":\"<x>\",\"single_word\":true,\"lstrip\":true,\"rstrip\":true,\"normalized\":false,\"special\":true}",
                       NONORM, BLD, "");
    size_t jl = strlen(j);
    char *m = malloc(jl + 1);
    uint64_t seed = 11;
    int loaded = 0;
    for (int round = 0; round < 300; round++) {
        memcpy(m, j, jl + 1);
        for (int k = 0; k < 1 + round % 4; k++) {
            size_t at = (size_t)(tu_rand_u64(&seed) % jl);
            static const char junk[] = "{}[]\",:0123456789 -nulltrue\\x";
            m[at] = junk[tu_rand_u64(&seed) % (sizeof junk - 1)];
        }
        ds_tokenizer *f = NULL;
        dsocr_error fe;
        dsocr_status fs = ds_tokenizer_load_memory(m, jl, NULL, 0, "fuzz.json", &f, &fe);
        CHECK(fs == DSOCR_OK ? f != NULL : (f == NULL && fe.message[0] != 0));
        if (f) {
            ds_ids ids = {0};
            ds_tokenizer_encode(f, "abc <x> ab\n\t c", 14, &ids, NULL);
            char *d = NULL;
            ds_tokenizer_decode(f, ids.data, ids.n, 0, &d, NULL, NULL);
            free(d);
            ds_ids_free(&ids);
            ds_tokenizer_free(f);
            loaded++;
        }
    }
    printf("mutated tokenizer.json: %d of 300 still loaded\n", loaded);
    free(m);
    free(j);

    ds_tokenizer *t2 = NULL;
    dsocr_error e;
    CHECK_EQ_INT(ds_tokenizer_load("/nonexistent/dir", &t2, &e), DSOCR_ERR_IO);
    CHECK(strstr(e.message, "/nonexistent/dir") != NULL);
}

int main(void) {
    const char *dir = tu_golden("tiny-model");
    ds_tokenizer *tok = NULL, *tok2 = NULL;
    dsocr_error e;
    double t0 = now_s();
    dsocr_status st = ds_tokenizer_load(dir, &tok, &e);
    double t1 = now_s();
    CHECK_MSG(st == DSOCR_OK, "%s", e.message);
    if (st) return tu_done("test_text");
    printf("tokenizer.json load: %.3f s\n", t1 - t0);
    /* two tokenizers in one process: no global state */
    CHECK(ds_tokenizer_load(tu_golden("tiny-model/tokenizer.json"), &tok2, &e) == DSOCR_OK);

    test_golden_cases(tok);
    test_spec_ids(tok2);
    test_prompt(tok);
    test_decode_edges(tok);
    test_invalid_utf8(tok);
    test_synthetic();

    ds_tokenizer_free(tok);
    ds_tokenizer_free(tok2);
    return tu_done("test_text");
}
