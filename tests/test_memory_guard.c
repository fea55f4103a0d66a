/* The memory guard (app/memory.h): the estimate against the real DeepSeek-OCR config
 * numbers (no full-size model needed), size parsing, the check's message, and the
 * refusal through the public API with the tiny golden model. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/memory.h"
#include "io/config.h"
#include "test_util.h"

#define GiB (1024.0 * 1024.0 * 1024.0)
#define MiB (1024.0 * 1024.0)

static void test_real_config(void) {
    ds_config c;
    ds_config_default(&c);
    /* the real dims the formulas use */
    CHECK_EQ_INT(c.lm.num_hidden_layers, 12);
    CHECK_EQ_INT(c.lm.num_key_value_heads * c.lm.head_dim, 1280);
    CHECK_EQ_INT(c.sam.width, 768);
    CHECK_EQ_INT(c.clip.width, 1024);

    /* KV cache: K and V, [12 layers][ctx][1280] fp32 */
    uint64_t kv = 0;
    uint64_t dec = ds_mem_decoder_bytes(&c.lm, 9000, &kv);
    CHECK_EQ_INT(kv, 2ull * 12 * 9000 * 1280 * 4);   /* 1,105,920,000 bytes */
    /* activations of one 1024-row prefill chunk and the vocab-sized arrays: tens of MB */
    CHECK_MSG(dec - kv > 30 * MiB && dec - kv < 200 * MiB, "decoder activations %.1f MiB", (dec - kv) / MiB);
    /* one more position costs one KV row pair (and one generated id) */
    uint64_t kv2 = 0, dec2 = ds_mem_decoder_bytes(&c.lm, 9001, &kv2);
    CHECK_EQ_INT(kv2 - kv, 2ull * 12 * 1280 * 4);
    CHECK_EQ_INT(dec2 - dec, 2ull * 12 * 1280 * 4 + 4);
    CHECK_EQ_INT(ds_mem_decoder_bytes(&c.lm, 0, NULL), 0);

    /* vision: the SAM qkv buffer of 9 tiles of 640 (40x40 tokens padded to 42x42 windows
     * of 14) is the largest single buffer: 9 * 1764 * 3 * 768 floats */
    ds_mem_view v640x9 = {640, 9}, v1024 = {1024, 1}, v1280 = {1280, 1}, v512 = {512, 1}, v640 = {640, 1};
    uint64_t tiles = ds_mem_vision_bytes(&c, &v640x9, 1);
    CHECK(tiles > 9ull * 1764 * 3 * 768 * 4);
    uint64_t both = ds_mem_vision_bytes(&c, (ds_mem_view[]){v1024, v640x9}, 2);
    /* the header of model/vision.h: "9 tiles of 640: about 600 MB" */
    CHECK_MSG(both > 400 * MiB && both < 1200 * MiB, "gundam vision %.0f MiB", both / MiB);
    CHECK(both >= tiles && both < tiles + ds_mem_vision_bytes(&c, &v1024, 1));   /* buffers are shared */
    uint64_t b512 = ds_mem_vision_bytes(&c, &v512, 1), b640 = ds_mem_vision_bytes(&c, &v640, 1);
    uint64_t b1024 = ds_mem_vision_bytes(&c, &v1024, 1), b1280 = ds_mem_vision_bytes(&c, &v1280, 1);
    CHECK(b512 < b640 && b640 < b1024 && b1024 < b1280);
    /* a view's buffers scale with its tokens: 1280 has 1.5625x the tokens of 1024 */
    CHECK_NEAR((double)b1280 / b1024, 1.5625, 0.15, 0);

    /* modes */
    int g, t, n;
    ds_mem_mode_views(DSOCR_MODE_GUNDAM, 6, &g, &t, &n);
    CHECK(g == 1024 && t == 640 && n == 6);
    ds_mem_mode_views(DSOCR_MODE_LARGE, 9, &g, &t, &n);
    CHECK(g == 1280 && t == 0 && n == 0);
    ds_mem_mode_views(DSOCR_MODE_TINY, 9, &g, &t, &n);
    CHECK(g == 512 && n == 0);

    /* a full gundam page: 6.67 GB of bf16 weights, 9 tiles, 900 prompt + 8192 new tokens */
    const uint64_t weights = 6672547120ull;
    ds_mem_estimate e;
    ds_mem_estimate_request(&c, weights, 1024, 640, 9, 900 + 8192, &e);
    CHECK_EQ_INT(e.weights, weights);
    CHECK_EQ_INT(e.kv_cache, 2ull * 12 * 9092 * 1280 * 4);
    CHECK_EQ_INT(e.vision, both);   /* load reserves exactly this request's views */
    CHECK_EQ_INT(e.total, e.weights + e.vision + e.kv_cache + e.decoder + e.inputs + e.overhead);
    /* inputs: views as u8 + f32 and 9*(10*11) + 16*17 + 1 = 1263 embeddings of 1280 floats */
    CHECK_EQ_INT(e.inputs, (uint64_t)((1024.0 * 1024 * 3 + 9.0 * 640 * 640 * 3) * 5 + 1263.0 * 1280 * 4));
    CHECK_MSG(e.total > 8.0 * GiB && e.total < 9.5 * GiB, "gundam page total %.2f GiB", e.total / GiB);
    fprintf(stderr, "real model, gundam 9 tiles, ctx 9092: total %.2f GiB = weights %.2f + vision %.0f MiB + KV %.0f MiB "
            "+ decoder %.0f MiB + inputs %.0f MiB + overhead %.0f MiB\n", e.total / GiB, e.weights / GiB,
            e.vision / MiB, e.kv_cache / MiB, e.decoder / MiB, e.inputs / MiB, e.overhead / MiB);
    /* smaller asks need less */
    ds_mem_estimate small;
    ds_mem_estimate_request(&c, weights, 640, 0, 0, 111 + 20 + 1024, &small);
    CHECK(small.total < e.total && small.kv_cache < e.kv_cache);
    /* a larger request than the load reservation grows the vision part */
    ds_mem_estimate large;
    ds_mem_estimate_request(&c, weights, 1280, 0, 0, 1000, &large);
    CHECK(large.vision > both);
}

static void test_parse_and_check(void) {
    uint64_t v = 0;
    CHECK(ds_mem_parse_size("12G", &v) == 0 && v == 12ull << 30);
    CHECK(ds_mem_parse_size("800M", &v) == 0 && v == 800ull << 20);
    CHECK(ds_mem_parse_size("1.5g", &v) == 0 && v == 3ull << 29);
    CHECK(ds_mem_parse_size("64k", &v) == 0 && v == 65536);
    CHECK(ds_mem_parse_size("2GiB", &v) == 0 && v == 2ull << 30);
    CHECK(ds_mem_parse_size("8GB", &v) == 0 && v == 8ull << 30);
    CHECK(ds_mem_parse_size("123456", &v) == 0 && v == 123456);
    const char *bad[] = {"", "0", "-1G", "+1G", " 1G", "12X", "1G5", "G", "1e30G", "nan", "inf", "12 G"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(ds_mem_parse_size(bad[i], &v) == -1, "\"%s\" parsed", bad[i]);

    char buf[32];
    ds_mem_format(3ull << 30, buf, sizeof buf);
    CHECK_STR(buf, "3.00 GiB");
    ds_mem_format(800ull << 20, buf, sizeof buf);
    CHECK_STR(buf, "800 MiB");

    ds_mem_estimate e = {.weights = 6ull << 30, .kv_cache = 1ull << 30, .total = 7ull << 30};
    dsocr_error err;
    CHECK_EQ_INT(ds_mem_check(&e, 8ull << 30, 0, "x", "y", &err), DSOCR_OK);
    CHECK_EQ_INT(ds_mem_check(&e, UINT64_MAX, 0, "x", "y", &err), DSOCR_OK);
    CHECK_EQ_INT(ds_mem_check(&e, 4ull << 30, 0, "this page", "use a smaller --max-tokens", &err), DSOCR_ERR_LIMIT);
    CHECK_MSG(strstr(err.message, "this page needs about 7.00 GiB") && strstr(err.message, "KV cache 1.00 GiB") &&
              strstr(err.message, "--max-memory limit of 4.00 GiB") && strstr(err.message, "use a smaller --max-tokens"),
              "%s", err.message);
    /* the machine's own limit */
    CHECK(ds_mem_available() > 0);
    ds_mem_estimate huge = {.total = UINT64_MAX / 2};
    CHECK_EQ_INT(ds_mem_check(&huge, 0, 0, "x", "y", &err), DSOCR_ERR_LIMIT);
    CHECK_MSG(strstr(err.message, "MemAvailable"), "%s", err.message);
}

/* Through the public API with the tiny model: refused at load, or per request before compute. */
static void test_api(void) {
    char model[4096];
    snprintf(model, sizeof model, "%s", tu_golden("tiny-model"));
    dsocr_load_params lp = dsocr_load_default_params();
    lp.n_threads = 1;
    lp.max_memory = 1 << 20;
    dsocr_model *m = NULL;
    dsocr_error err;
    CHECK_EQ_INT(dsocr_model_load(model, &lp, &m, &err), DSOCR_ERR_LIMIT);
    CHECK_MSG(m == NULL && strstr(err.message, "loading") && strstr(err.message, "limit of 1 MiB"), "%s", err.message);

    lp.max_memory = 1ull << 30;
    CHECK_EQ_INT(dsocr_model_load(model, &lp, &m, &err), DSOCR_OK);
    if (!m) return;
    /* the kernels it got are named: "cpu (<isa>, <n> threads)" */
    const char *be = dsocr_model_backend(m);
    CHECK_MSG(strncmp(be, "cpu (", 5) == 0 && strstr(be, " thread"), "backend: %s", be);
    CHECK_STR(dsocr_model_backend(NULL), "");
    uint8_t rgb[32 * 32 * 3];
    memset(rgb, 255, sizeof rgb);
    dsocr_image *img = NULL;
    CHECK_EQ_INT(dsocr_image_from_rgb(rgb, 32, 32, &img, &err), DSOCR_OK);
    dsocr_params p = dsocr_default_params();
    p.mode = DSOCR_MODE_TINY;
    p.max_new_tokens = 1000000;   /* tiny model: 2 * 3 layers * 1M * 64 * 4 = 1.4 GiB of KV cache */
    dsocr_result r;
    CHECK_EQ_INT(dsocr_ocr(m, img, &p, NULL, NULL, &r, &err), DSOCR_ERR_LIMIT);
    CHECK_MSG(strstr(err.message, "KV cache 1.43 GiB") && strstr(err.message, "--max-tokens (now 1000000)"), "%s",
              err.message);
    p.max_new_tokens = 3;
    CHECK_EQ_INT(dsocr_ocr(m, img, &p, NULL, NULL, &r, &err), DSOCR_OK);
    CHECK_EQ_INT(r.n_tokens, 3);
    dsocr_result_free(&r);
    dsocr_image_free(img);
    dsocr_model_free(m);
}

int main(void) {
    test_real_config();
    test_parse_and_check();
    test_api();
    return tu_done("test_memory_guard");
}
