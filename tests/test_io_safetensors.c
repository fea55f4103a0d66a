/* safetensors reader: the golden files open with the right tensors and values; each
 * kind of corruption is refused with the right code and a message that names the
 * file and the tensor or byte offset; the streaming writer round-trips. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "io/st_writer.h"
#include "test_util.h"

static const char *tmp;

static size_t padded_len(const char *header) { return (strlen(header) + 7) / 8 * 8; }

/* Writes [u64 len][header padded with spaces to 8][data] to tmp/fname and returns
 * the path (static buffer). */
static const char *make_file(const char *fname, const char *header, const void *data, size_t data_len) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", tmp, fname);
    size_t hl = padded_len(header), total = 8 + hl + data_len;
    uint8_t *buf = malloc(total);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memset(buf + 8, ' ', hl);
    memcpy(buf + 8, header, strlen(header));
    if (data_len) memcpy(buf + 8 + hl, data, data_len);
    CHECK(tu_write_file(path, buf, total) == 0);
    free(buf);
    return path;
}

/* Opens path expecting failure `code` with every non-NULL needle in the message. */
static void expect_fail(const char *path, dsocr_status code, const char *n1, const char *n2) {
    ds_st_file *f = (ds_st_file *)1;
    dsocr_error e = {0};
    dsocr_status s = ds_st_open(path, &f, &e);
    if (getenv("TU_VERBOSE")) fprintf(stderr, "  %s\n", e.message);
    CHECK_MSG(s == code, "%s: got %s, want %s (%s)", path, dsocr_status_name(s), dsocr_status_name(code), e.message);
    CHECK(f == NULL);
    CHECK_EQ_INT(e.code, code);
    const char *base = strrchr(path, '/') + 1;
    CHECK_MSG(strstr(e.message, base) != NULL, "message lacks file name %s: %s", base, e.message);
    if (n1) CHECK_MSG(strstr(e.message, n1) != NULL, "message lacks \"%s\": %s", n1, e.message);
    if (n2) CHECK_MSG(strstr(e.message, n2) != NULL, "message lacks \"%s\": %s", n2, e.message);
    if (s == DSOCR_OK) ds_st_close(f);
}

static void test_golden_model(void) {
    ds_st_file *f;
    dsocr_error e;
    const char *path = tu_golden("tiny-model/model.safetensors");
    if (ds_st_open(path, &f, &e) != DSOCR_OK) { CHECK_MSG(0, "%s", e.message); return; }
    CHECK_EQ_INT(ds_st_count(f), 180);
    CHECK_STR(ds_st_metadata(f, "format"), "pt");
    CHECK(ds_st_metadata(f, "nope") == NULL);
    CHECK_STR(ds_st_path(f), path);
    int n_bf16 = 0, found = 0;
    for (int i = 0; i < ds_st_count(f); i++) {
        const ds_tensor *t = ds_st_at(f, i);
        n_bf16 += t->dtype == DS_BF16;
        found += ds_st_find(f, t->name) == t;
        CHECK((uintptr_t)t->data % 2 == 0);
    }
    CHECK_EQ_INT(n_bf16, 180);
    CHECK_EQ_INT(found, 180);
    CHECK(ds_st_at(f, 180) == NULL && ds_st_at(f, -1) == NULL);
    CHECK(ds_st_find(f, "model.nope") == NULL);
    CHECK(ds_st_find(f, "") == NULL);

    const ds_tensor *t = ds_st_find(f, "lm_head.weight");
    CHECK(t && t->ndim == 2 && t->shape[0] == 129280 && t->shape[1] == 64 && t->stride[0] == 64 && t->stride[1] == 1);
    /* values read with python from the file: data_offsets [0, ...], header 20248 bytes */
    if (t) {
        CHECK_EQ_INT(((const uint16_t *)t->data)[0], 48383);
        CHECK_EQ_INT(ds_st_offset(f, t), 8 + 20248);
    }
    t = ds_st_find(f, "model.norm.weight");
    CHECK(t && t->ndim == 1 && t->shape[0] == 64);
    if (t) {
        CHECK_EQ_INT(((const uint16_t *)t->data)[1], 16246);
        CHECK_EQ_INT(ds_st_offset(f, t), 8 + 20248 + 33639296);
    }
    t = ds_st_find(f, "model.sam_model.pos_embed");
    CHECK(t && t->ndim == 4 && t->shape[0] == 1 && t->shape[1] == 64 && t->shape[2] == 64 && t->shape[3] == 96);
    if (t) CHECK_EQ_INT(((const uint16_t *)t->data)[0], 48138);
    ds_st_close(f);
}

static void test_golden_cases(void) {
    const char *dir = tu_golden("cases");
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    if (!d) return;
    int n_files = 0;
    for (struct dirent *de; (de = readdir(d));) {
        size_t len = strlen(de->d_name);
        if (len < 12 || strcmp(de->d_name + len - 12, ".safetensors")) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        ds_st_file *f;
        dsocr_error e;
        if (ds_st_open(path, &f, &e) != DSOCR_OK) { CHECK_MSG(0, "%s", e.message); continue; }
        n_files++;
        const ds_tensor *ids = ds_st_find(f, "input_ids"), *mask = ds_st_find(f, "images_seq_mask");
        CHECK(ids && ids->dtype == DS_I64 && ids->ndim == 1);
        CHECK(mask && mask->dtype == DS_U8 && ids && mask->shape[0] == ids->shape[0]);
        CHECK(ds_st_metadata(f, "mode") != NULL);
        CHECK(ds_st_count(f) >= 18);
        if (!strcmp(de->d_name, "portrait_page_850x1100__base.safetensors")) {
            CHECK_STR(ds_st_metadata(f, "mode"), "base");
            CHECK_STR(ds_st_metadata(f, "n_image_tokens"), "273");
            CHECK(ids && ids->shape[0] == 283 && ((const int64_t *)ids->data)[0] == 0 &&
                  ((const int64_t *)ids->data)[1] == 128815);
            const ds_tensor *logits = ds_st_find(f, "prefill_logits_last");
            CHECK(logits && logits->dtype == DS_F32 && logits->ndim == 1 && logits->shape[0] == 129280);
            const ds_tensor *sam = ds_st_find(f, "sam_global");
            CHECK(sam && sam->ndim == 4 && sam->shape[1] == 128 && sam->shape[3] == 16);
        }
        ds_st_close(f);
    }
    closedir(d);
    CHECK_EQ_INT(n_files, 25);
}

static void test_corruption(void) {
    static const uint8_t zeros[64];
    const char *p;

    /* truncated: fewer than 8 bytes; header length past the end of the file */
    p = make_file("short.safetensors", "", NULL, 0);
    CHECK(tu_write_file(p, "\x10\0\0", 3) == 0);
    expect_fail(p, DSOCR_ERR_FORMAT, "3 bytes", "shorter than");
    {
        char path[4096];
        snprintf(path, sizeof path, "%s/trunc.safetensors", tmp);
        uint8_t buf[20] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
        CHECK(tu_write_file(path, buf, sizeof buf) == 0);
        expect_fail(path, DSOCR_ERR_FORMAT, "header length 100", "past the end");
        uint8_t huge[16] = {0, 0, 0, 0, 0, 0, 0, 0x7f};
        CHECK(tu_write_file(path, huge, sizeof huge) == 0);
        expect_fail(path, DSOCR_ERR_FORMAT, "absurd", "byte offset 0");
    }

    /* truncated data: the tensor's end lies past the end of the file */
    p = make_file("cut.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4,4],\"data_offsets\":[0,64]}}", zeros, 32);
    expect_fail(p, DSOCR_ERR_FORMAT, "tensor w", "beyond the end");

    /* header JSON */
    p = make_file("badjson.safetensors", "{\"w\":{\"dtype\":\"F32\",,}}", NULL, 0);
    expect_fail(p, DSOCR_ERR_FORMAT, "not valid JSON", "byte offset");
    p = make_file("array.safetensors", "[1,2]   ", NULL, 0);
    expect_fail(p, DSOCR_ERR_FORMAT, "not an object", NULL);
    p = make_file("trailing.safetensors", "{} x", NULL, 0);
    expect_fail(p, DSOCR_ERR_FORMAT, "trailing garbage", "byte offset 11");

    /* entry fields */
    p = make_file("nodtype.safetensors", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", zeros, 4);
    expect_fail(p, DSOCR_ERR_FORMAT, "tensor w", "dtype");
    p = make_file("noshape.safetensors", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", zeros, 4);
    expect_fail(p, DSOCR_ERR_FORMAT, "tensor w", "shape");
    p = make_file("nooffs.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", zeros, 4);
    expect_fail(p, DSOCR_ERR_FORMAT, "tensor w", "data_offsets");
    p = make_file("entry.safetensors", "{\"w\":7}", NULL, 0);
    expect_fail(p, DSOCR_ERR_FORMAT, "tensor w", "not an object");
    p = make_file("dtypenum.safetensors", "{\"w\":{\"dtype\":3,\"shape\":[1],\"data_offsets\":[0,4]}}", zeros, 4);
    expect_fail(p, DSOCR_ERR_FORMAT, "tensor w", "dtype is not a string");
    p = make_file("shapestr.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}", zeros, 4);
    expect_fail(p, DSOCR_ERR_FORMAT, "tensor w", "shape is not an array");

    /* dtypes: unknown string vs known but unsupported */
    p = make_file("dtype.safetensors", "{\"w\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}", zeros, 4);
    expect_fail(p, DSOCR_ERR_FORMAT, "tensor w", "unknown dtype \"Q4\"");
    p = make_file("f64.safetensors", "{\"w\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", zeros, 8);
    expect_fail(p, DSOCR_ERR_UNSUPPORTED, "tensor w", "F64");

    /* shapes */
    p = make_file("neg.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", zeros, 4);
    expect_fail(p, DSOCR_ERR_FORMAT, "tensor w", "shape[0]");
    p = make_file("frac.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2, 1.5],\"data_offsets\":[0,12]}}", zeros, 12);
    expect_fail(p, DSOCR_ERR_FORMAT, "tensor w", "shape[1]");
    p = make_file("ovf.safetensors",
                  "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", zeros, 4);
    expect_fail(p, DSOCR_ERR_FORMAT, "tensor w", "overflow");
    /* empty (a zero dim) but the other dims' product overflows the strides (found by fuzz_safetensors) */
    p = make_file("ovf0.safetensors",
                  "{\"w\":{\"dtype\":\"F16\",\"shape\":[0,11000000000,1000000000,2],\"data_offsets\":[0,0]}}", zeros, 0);
    expect_fail(p, DSOCR_ERR_FORMAT, "tensor w", "overflow");
    p = make_file("dims.safetensors", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,1]}}", zeros, 1);
    expect_fail(p, DSOCR_ERR_UNSUPPORTED, "tensor w", "5 dimensions");

    /* data offsets */
    p = make_file("offs.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4]}}", zeros, 8);
    expect_fail(p, DSOCR_ERR_FORMAT, "tensor w", "[begin, end]");
    p = make_file("rev.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", zeros, 8);
    expect_fail(p, DSOCR_ERR_FORMAT, "tensor w", "begin > end");
    /* header offset past end: 16 bytes of data, end 100 */
    {
        const char *h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[96,100]}}";
        char want[64];
        snprintf(want, sizeof want, "(byte offset %zu)", 8 + padded_len(h) + 100);
        p = make_file("past.safetensors", h, zeros, 16);
        expect_fail(p, DSOCR_ERR_FORMAT, "tensor w", want);
    }
    p = make_file("size.safetensors", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[3,4],\"data_offsets\":[0,16]}}", zeros, 16);
    expect_fail(p, DSOCR_ERR_FORMAT, "tensor w", "but shape [3, 4] of BF16 needs 24");
    p = make_file("align.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}", zeros, 8);
    expect_fail(p, DSOCR_ERR_FORMAT, "tensor w", "not 4-byte aligned");

    /* overlapping tensors (listed out of order; an empty tensor in between) */
    p = make_file("overlap.safetensors",
                  "{\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]},"
                  "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                  "\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
                  zeros, 24);
    expect_fail(p, DSOCR_ERR_FORMAT, "tensors a and b overlap", "byte offset");

    /* duplicate names */
    p = make_file("dup.safetensors",
                  "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                  "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                  zeros, 8);
    expect_fail(p, DSOCR_ERR_FORMAT, "tensor w", "twice");

    /* metadata must be an object of strings */
    p = make_file("meta.safetensors", "{\"__metadata__\":{\"a\":1}}", NULL, 0);
    expect_fail(p, DSOCR_ERR_FORMAT, "__metadata__", "\"a\"");
    p = make_file("meta2.safetensors", "{\"__metadata__\":[\"a\"]}", NULL, 0);
    expect_fail(p, DSOCR_ERR_FORMAT, "__metadata__", "not an object");

    /* missing file */
    {
        char path[4096];
        snprintf(path, sizeof path, "%s/absent.safetensors", tmp);
        expect_fail(path, DSOCR_ERR_IO, "cannot open", NULL);
    }

    /* a valid small file: scalar, empty tensor, several dtypes */
    uint8_t data[32] = {0};
    float two = 2.0f;
    memcpy(data, &two, 4);
    p = make_file("ok.safetensors",
                  "{\"__metadata__\":{\"k\":\"v\"},\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                  "\"z\":{\"dtype\":\"I64\",\"shape\":[0,3],\"data_offsets\":[8,8]},"
                  "\"i\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[8,24]},"
                  "\"u\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[24,27]}}",
                  data, 32);
    ds_st_file *f;
    dsocr_error e;
    if (ds_st_open(p, &f, &e) == DSOCR_OK) {
        CHECK_EQ_INT(ds_st_count(f), 4);
        const ds_tensor *s = ds_st_find(f, "s");
        CHECK(s && s->ndim == 0 && ds_tensor_numel(s) == 1 && *(const float *)s->data == 2.0f);
        const ds_tensor *z = ds_st_find(f, "z");
        CHECK(z && z->ndim == 2 && ds_tensor_numel(z) == 0);
        CHECK_STR(ds_st_metadata(f, "k"), "v");
        CHECK_STR(ds_st_at(f, 3)->name, "u");
        ds_st_close(f);
    } else CHECK_MSG(0, "%s", e.message);
}

static void test_memory(void) {
    /* ds_st_open_memory names the buffer in messages and never reads past it
     * (ASan checks the latter: every truncation is a fresh exact-size malloc) */
    const char hdr[] = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    size_t hl = padded_len(hdr), total = 8 + hl + 8;
    uint64_t buf64[32] = {0};
    uint8_t *buf = (uint8_t *)buf64;
    CHECK(total <= sizeof buf64);
    buf[0] = (uint8_t)hl;
    memset(buf + 8, ' ', hl);
    memcpy(buf + 8, hdr, strlen(hdr));
    ds_st_file *f;
    dsocr_error e;
    if (ds_st_open_memory(buf, total, "mem-image", &f, &e) == DSOCR_OK) {
        CHECK_EQ_INT(ds_st_count(f), 1);
        CHECK_STR(ds_st_path(f), "mem-image");
        ds_st_close(f);
    } else CHECK_MSG(0, "%s", e.message);
    int n_fail = 0;
    for (size_t n = 0; n < total; n++) {
        uint64_t *copy = malloc(n ? n : 1); /* malloc'd: 8-aligned like the original */
        memcpy(copy, buf, n);
        if (ds_st_open_memory(copy, n, "mem-image", &f, &e) != DSOCR_OK) {
            n_fail++;
            CHECK_MSG(strstr(e.message, "mem-image") != NULL, "%s", e.message);
        } else ds_st_close(f);
        free(copy);
    }
    CHECK_EQ_INT(n_fail, (int)total);

    /* random byte mutations of a richer header: never a crash or an over-read;
     * whatever opens has every tensor inside the image */
    const char rich[] = "{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                        "\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[16,22]},"
                        "\"c\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[22,24]}}";
    size_t rl = padded_len(rich), rtotal = 8 + rl + 24;
    uint8_t *img = calloc(1, rtotal);
    img[0] = (uint8_t)rl;
    memset(img + 8, ' ', rl);
    memcpy(img + 8, rich, strlen(rich));
    if (ds_st_open_memory(img, rtotal, "rich", &f, &e) == DSOCR_OK) {
        CHECK_EQ_INT(ds_st_count(f), 3);
        ds_st_close(f);
    } else CHECK_MSG(0, "%s", e.message);
    uint64_t rng = 42;
    int n_ok = 0;
    uint64_t *mut = malloc(rtotal + 8);
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(mut, img, rtotal);
        int flips = 1 + (int)(tu_rand_u64(&rng) % 3);
        for (int k = 0; k < flips; k++) {
            size_t at = tu_rand_u64(&rng) % rtotal;
            static const char alphabet[] = "{}[]\",:0123456789-.eE \\ubtrfalsenul";
            ((uint8_t *)mut)[at] = (tu_rand_u64(&rng) & 1) ? (uint8_t)alphabet[tu_rand_u64(&rng) % (sizeof alphabet - 1)]
                                                         : (uint8_t)tu_rand_u64(&rng);
        }
        if (ds_st_open_memory(mut, rtotal, "fuzz", &f, &e) == DSOCR_OK) {
            n_ok++;
            for (int i = 0; i < ds_st_count(f); i++) {
                const ds_tensor *t = ds_st_at(f, i);
                uint64_t off = ds_st_offset(f, t), bytes = (uint64_t)ds_tensor_numel(t) * ds_dtype_size(t->dtype);
                CHECK(off + bytes <= rtotal);
            }
            ds_st_close(f);
        } else {
            CHECK(e.code != DSOCR_OK && strstr(e.message, "fuzz") != NULL);
        }
    }
    CHECK(n_ok > 0 && n_ok < 3000);
    free(mut);
    free(img);
}

static void test_writer(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/written.safetensors", tmp);
    ds_st_writer *w;
    dsocr_error e;
    CHECK_EQ_INT(ds_stw_open(path, &w, &e), DSOCR_OK);
    /* 1000 F32, 3x5 BF16 (30 bytes), 7 U8 */
    CHECK_EQ_INT(ds_stw_add(w, "big", DS_F32, 1, (int64_t[]){1000}, &e), DSOCR_OK);
    CHECK_EQ_INT(ds_stw_add(w, "mid", DS_BF16, 2, (int64_t[]){3, 5}, &e), DSOCR_OK);
    CHECK_EQ_INT(ds_stw_add(w, "mid", DS_BF16, 1, (int64_t[]){1}, &e), DSOCR_ERR_INVALID_ARG);
    CHECK_EQ_INT(ds_stw_add(w, "small", DS_U8, 1, (int64_t[]){7}, &e), DSOCR_OK);
    CHECK_EQ_INT(ds_stw_add(w, "late", DS_F32, 1, (int64_t[]){1}, &e), DSOCR_ERR_INVALID_ARG); /* misaligned */
    CHECK(strstr(e.message, "late") && strstr(e.message, "misaligned"));
    CHECK_EQ_INT(ds_stw_add(w, "q", DS_Q4_0, 2, (int64_t[]){4, 32}, &e), DSOCR_ERR_UNSUPPORTED);   /* no byte size */
    CHECK(strstr(e.message, "Q4_0") != NULL);
    CHECK_EQ_INT(ds_stw_set_metadata(w, "format", "pt", &e), DSOCR_OK);
    CHECK_EQ_INT(ds_stw_remaining(w), 4000 + 30 + 7);
    /* stream in odd chunks that cross tensor boundaries */
    uint8_t all[4037];
    for (int i = 0; i < 1000; i++) { float v = (float)i * 0.5f; memcpy(all + 4 * i, &v, 4); }
    for (int i = 4000; i < 4037; i++) all[i] = (uint8_t)i;
    for (size_t at = 0; at < sizeof all;) {
        size_t n = sizeof all - at < 333 ? sizeof all - at : 333;
        CHECK_EQ_INT(ds_stw_write(w, all + at, n, &e), DSOCR_OK);
        at += n;
        if (at == 999) CHECK_EQ_INT(ds_stw_current(w), 0);
    }
    CHECK_EQ_INT(ds_stw_current(w), 3);
    CHECK_EQ_INT(ds_stw_write(w, all, 1, &e), DSOCR_ERR_INVALID_ARG); /* past the end */
    CHECK_EQ_INT(ds_stw_finish(w, &e), DSOCR_OK);

    ds_st_file *f;
    if (ds_st_open(path, &f, &e) != DSOCR_OK) { CHECK_MSG(0, "%s", e.message); return; }
    CHECK_EQ_INT(ds_st_count(f), 3);
    CHECK_STR(ds_st_metadata(f, "format"), "pt");
    const ds_tensor *big = ds_st_find(f, "big"), *mid = ds_st_find(f, "mid"), *small = ds_st_find(f, "small");
    CHECK(big && big->dtype == DS_F32 && big->shape[0] == 1000 && ((const float *)big->data)[999] == 499.5f);
    CHECK(mid && mid->dtype == DS_BF16 && mid->ndim == 2 && mid->shape[1] == 5 && !memcmp(mid->data, all + 4000, 30));
    CHECK(small && small->dtype == DS_U8 && !memcmp(small->data, all + 4030, 7));
    CHECK_EQ_INT(ds_st_offset(f, big) % 8, 0); /* header padded to 8 */
    CHECK_STR(ds_st_at(f, 0)->name, "big");
    ds_st_close(f);

    /* short write: finish fails naming the incomplete tensor, and leaves no file */
    snprintf(path, sizeof path, "%s/short-write.safetensors", tmp);
    CHECK_EQ_INT(ds_stw_open(path, &w, &e), DSOCR_OK);
    CHECK_EQ_INT(ds_stw_add(w, "a", DS_F32, 1, (int64_t[]){4}, &e), DSOCR_OK);
    CHECK_EQ_INT(ds_stw_add(w, "b", DS_F32, 1, (int64_t[]){4}, &e), DSOCR_OK);
    CHECK_EQ_INT(ds_stw_write(w, all, 20, &e), DSOCR_OK);
    CHECK_EQ_INT(ds_stw_finish(w, &e), DSOCR_ERR_INVALID_ARG);
    CHECK(strstr(e.message, "tensor b") != NULL);
    char *left = tu_read_file(path, NULL);
    CHECK(left == NULL);
    free(left);
    DIR *d = opendir(tmp);
    int leftovers = 0;
    for (struct dirent *de; d && (de = readdir(d));) leftovers += strstr(de->d_name, ".tmp") != NULL;
    if (d) closedir(d);
    CHECK_EQ_INT(leftovers, 0);

    /* a file with no tensors */
    snprintf(path, sizeof path, "%s/empty.safetensors", tmp);
    CHECK_EQ_INT(ds_stw_open(path, &w, &e), DSOCR_OK);
    CHECK_EQ_INT(ds_stw_finish(w, &e), DSOCR_OK);
    if (ds_st_open(path, &f, &e) == DSOCR_OK) { CHECK_EQ_INT(ds_st_count(f), 0); ds_st_close(f); }
    else CHECK_MSG(0, "%s", e.message);
}

int main(void) {
    tmp = tu_tmpdir("safetensors");
    CHECK(tmp != NULL);
    if (!tmp) return tu_done("test_safetensors");
    test_golden_model();
    test_golden_cases();
    test_corruption();
    test_memory();
    test_writer();
    return tu_done("test_safetensors");
}
