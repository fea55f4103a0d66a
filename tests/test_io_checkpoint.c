/* Checkpoint directories and the binder: the golden tiny model; sharded checkpoints
 * written with the streaming writer; one error listing every binding problem;
 * broken indexes; the recorder. */
#include <stdlib.h>
#include <string.h>

#include "io/checkpoint.h"
#include "io/st_writer.h"
#include "test_util.h"

static const int64_t S4x3[] = {4, 3}, S3x4[] = {3, 4}, S64[] = {64}, S2[] = {2};

static int has(const char *msg, const char *needle) {
    static char last[1024];
    if (getenv("TU_VERBOSE") && strcmp(msg, last)) fprintf(stderr, "  %s\n", msg);
    snprintf(last, sizeof last, "%s", msg);
    if (strstr(msg, needle)) return 1;
    fprintf(stderr, "  message lacks \"%s\": %s\n", needle, msg);
    return 0;
}

static const char *path_in(const char *dir, const char *name) {
    static char bufs[4][4096];
    static int next;
    char *b = bufs[next++ & 3];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

static void write_text(const char *dir, const char *name, const char *text) {
    CHECK(tu_write_file(path_in(dir, name), text, strlen(text)) == 0);
}

/* A shard of F32 tensors named names[i] with shapes (rows[i], 3), filled with
 * value base + element index, plus an I64 tensor "ids" when with_ids. */
static void write_shard(const char *path, int n, const char *const *names, const int64_t *rows, float base,
                        int with_ids) {
    ds_st_writer *w;
    dsocr_error e;
    if (ds_stw_open(path, &w, &e) != DSOCR_OK) { CHECK_MSG(0, "%s", e.message); return; }
    if (with_ids) CHECK_EQ_INT(ds_stw_add(w, "ids", DS_I64, 1, S2, &e), DSOCR_OK);
    for (int i = 0; i < n; i++) CHECK_EQ_INT(ds_stw_add(w, names[i], DS_F32, 2, (int64_t[]){rows[i], 3}, &e), DSOCR_OK);
    if (with_ids) { int64_t ids[2] = {7, 9}; CHECK_EQ_INT(ds_stw_write(w, ids, sizeof ids, &e), DSOCR_OK); }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < rows[i] * 3; j++) {  /* one element per call: the writer streams */
            float v = base + (float)j;
            CHECK_EQ_INT(ds_stw_write(w, &v, 4, &e), DSOCR_OK);
        }
    CHECK_EQ_INT(ds_stw_finish(w, &e), DSOCR_OK);
}

static void test_golden(void) {
    ds_checkpoint *ck;
    dsocr_error e;
    const char *dir = tu_golden("tiny-model");
    if (ds_ckpt_open(dir, &ck, &e) != DSOCR_OK) { CHECK_MSG(0, "%s", e.message); return; }
    CHECK_EQ_INT(ds_ckpt_tensor_count(ck), 180);
    CHECK_EQ_INT(ds_ckpt_shard_count(ck), 1);
    CHECK_EQ_INT(ds_ckpt_total_bytes(ck), 36779712);
    CHECK_STR(ds_ckpt_dir(ck), dir);
    const char *file = NULL;
    const ds_tensor *t = ds_ckpt_find(ck, "model.projector.layers.bias", &file);
    CHECK(t && t->dtype == DS_BF16 && t->ndim == 1 && t->shape[0] == 64);
    if (t) CHECK_EQ_INT(((const uint16_t *)t->data)[0], 15669);
    CHECK(file && strstr(file, "tiny-model/model.safetensors"));
    CHECK(ds_ckpt_find(ck, "model.nope", &file) == NULL && file == NULL);

    /* binder: good binds, then the unused report */
    ds_binder *b = ds_binder_new(ck);
    ds_tensor w = ds_bind(b, 2, (int64_t[]){129280, 64}, "lm_head.weight");
    CHECK(w.data != NULL && w.shape[0] == 129280);
    for (int l = 0; l < 3; l++) {
        ds_tensor q = ds_bind(b, 2, (int64_t[]){64, 64}, "model.layers.%d.self_attn.q_proj.weight", l);
        CHECK(q.data != NULL && q.dtype == DS_BF16 && q.name && strstr(q.name, "q_proj"));
    }
    ds_tensor rp = ds_bind(b, 2, (int64_t[]){127, 48}, "model.sam_model.blocks.%d.attn.rel_pos_h", 1);
    CHECK(rp.data != NULL);
    CHECK_EQ_INT(ds_binder_problems(b), 0);
    CHECK_EQ_INT(ds_binder_bound_count(b), 5);
    CHECK_EQ_INT(ds_binder_unused_count(b), 175);
    CHECK(ds_binder_unused_name(b, 0) != NULL && ds_binder_unused_name(b, 175) == NULL);
    CHECK_EQ_INT(ds_binder_finish(b, &e), DSOCR_OK);

    /* binder problems against the real file: message names the shard */
    b = ds_binder_new(ck);
    ds_bind(b, 1, S64, "model.norm.weight");
    ds_tensor bad = ds_bind(b, 2, (int64_t[]){64, 129280}, "lm_head.weight");
    CHECK(bad.data == NULL && bad.ndim == 0);
    CHECK_EQ_INT(ds_binder_finish(b, &e), DSOCR_ERR_FORMAT);
    CHECK(has(e.message, "tiny-model/model.safetensors"));
    CHECK(has(e.message, "lm_head.weight: shape [129280, 64] in file "));
    CHECK(has(e.message, "expected [64, 129280]"));
    CHECK(has(e.message, "1 tensor problem:"));
    ds_ckpt_close(ck);
}

static void test_sharded(void) {
    const char *dir = tu_tmpdir("ckpt-sharded");
    static const char *const a_names[] = {"model.a", "model.b"}, *const b_names[] = {"model.c"};
    write_shard(path_in(dir, "model-00001-of-00002.safetensors"), 2, a_names, (const int64_t[]){4, 2}, 0.0f, 1);
    write_shard(path_in(dir, "model-00002-of-00002.safetensors"), 1, b_names, (const int64_t[]){3}, 100.0f, 0);
    write_text(dir, "config.json", "{}");
    write_text(dir, "model.safetensors.index.json",
               "{\"metadata\": {\"total_size\": 108}, \"weight_map\": {"
               "\"model.a\": \"model-00001-of-00002.safetensors\", \"model.b\": \"model-00001-of-00002.safetensors\","
               "\"ids\": \"model-00001-of-00002.safetensors\", \"model.c\": \"model-00002-of-00002.safetensors\"}}");
    ds_checkpoint *ck;
    dsocr_error e;
    if (ds_ckpt_open(dir, &ck, &e) != DSOCR_OK) { CHECK_MSG(0, "%s", e.message); return; }
    CHECK_EQ_INT(ds_ckpt_tensor_count(ck), 4);
    CHECK_EQ_INT(ds_ckpt_shard_count(ck), 2);
    CHECK_EQ_INT(ds_ckpt_total_bytes(ck), 16 + (4 + 2 + 3) * 3 * 4);
    const char *file;
    const ds_tensor *c = ds_ckpt_find(ck, "model.c", &file);
    CHECK(c && c->shape[0] == 3 && ((const float *)c->data)[8] == 108.0f);
    CHECK(file && strstr(file, "model-00002-of-00002.safetensors"));
    const ds_tensor *bt = ds_ckpt_find(ck, "model.b", &file);
    CHECK(bt && ((const float *)bt->data)[5] == 5.0f && strstr(file, "model-00001-of-00002"));

    /* one error listing two missing, one misshaped, one wrong dtype; good ones bind */
    ds_binder *b = ds_binder_new(ck);
    ds_tensor ta = ds_bind(b, 2, (int64_t[]){4, 3}, "model.a");
    CHECK(ta.data != NULL && ((const float *)ta.data)[11] == 11.0f);
    ds_bind(b, 1, S64, "model.missing_one");
    ds_tensor tb = ds_bind(b, 2, S3x4, "model.b");     /* file has [2, 3] */
    CHECK(tb.data == NULL);
    ds_bind(b, 1, S2, "ids");                         /* I64 */
    ds_bind(b, 2, S4x3, "model.layers.%d.missing_two", 7);
    ds_bind(b, 2, (int64_t[]){3, 3}, "model.c");
    CHECK_EQ_INT(ds_binder_problems(b), 4);
    CHECK_EQ_INT(ds_binder_unused_count(b), 0);
    CHECK_EQ_INT(ds_binder_finish(b, &e), DSOCR_ERR_FORMAT);
    CHECK_EQ_INT(e.code, DSOCR_ERR_FORMAT);
    CHECK(has(e.message, dir));
    CHECK(has(e.message, "(2 shards)"));
    CHECK(has(e.message, "4 tensor problems"));
    CHECK(has(e.message, "model.missing_one: missing"));
    CHECK(has(e.message, "model.layers.7.missing_two: missing"));
    CHECK(has(e.message, "model.b: shape [2, 3] in file "));
    CHECK(has(e.message, "model-00001-of-00002.safetensors, expected [3, 4]"));
    CHECK(has(e.message, "ids: dtype I64 in file "));
    CHECK(!strstr(e.message, "model.a:") && !strstr(e.message, "model.c:"));
    CHECK(!strstr(e.message, "more"));

    /* many problems: the first ones in full, then a count */
    b = ds_binder_new(ck);
    for (int i = 0; i < 30; i++) ds_bind(b, 2, S4x3, "model.layers.%d.mlp.experts.%d.gate_proj.weight", i, 63);
    CHECK_EQ_INT(ds_binder_finish(b, &e), DSOCR_ERR_FORMAT);
    CHECK(has(e.message, "30 tensor problems"));
    CHECK(has(e.message, "model.layers.0.mlp.experts.63.gate_proj.weight: missing"));
    CHECK(has(e.message, "... and 2"));
    CHECK(has(e.message, " more"));
    CHECK(strlen(e.message) < sizeof e.message - 1);
    ds_ckpt_close(ck);
}

static void expect_open_fail(const char *dir, dsocr_status code, const char *n1, const char *n2) {
    ds_checkpoint *ck = (ds_checkpoint *)1;
    dsocr_error e = {0};
    dsocr_status s = ds_ckpt_open(dir, &ck, &e);
    if (getenv("TU_VERBOSE")) fprintf(stderr, "  %s\n", e.message);
    CHECK_MSG(s == code, "%s: got %s, want %s (%s)", dir, dsocr_status_name(s), dsocr_status_name(code), e.message);
    CHECK(ck == NULL);
    if (n1) CHECK(has(e.message, n1));
    if (n2) CHECK(has(e.message, n2));
    if (s == DSOCR_OK) ds_ckpt_close(ck);
}

static void test_broken_dirs(void) {
    static const char *const names[] = {"model.a"};
    const int64_t rows[] = {2};

    /* index naming a shard file that does not exist */
    const char *dir = tu_tmpdir("ckpt-noshard");
    write_shard(path_in(dir, "one.safetensors"), 1, names, rows, 0.0f, 0);
    write_text(dir, "config.json", "{}");
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\": {\"model.a\": \"one.safetensors\", \"model.z\": \"two.safetensors\"}}");
    expect_open_fail(dir, DSOCR_ERR_IO, "two.safetensors", "model.safetensors.index.json");

    /* index naming a tensor its shard lacks */
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\": {\"model.a\": \"one.safetensors\", \"model.q\": \"one.safetensors\"}}");
    expect_open_fail(dir, DSOCR_ERR_FORMAT, "tensor model.q", "one.safetensors");

    /* index with a path outside the directory, bad JSON, no weight_map */
    write_text(dir, "model.safetensors.index.json", "{\"weight_map\": {\"model.a\": \"../one.safetensors\"}}");
    expect_open_fail(dir, DSOCR_ERR_FORMAT, "../one.safetensors", "plain file name");
    write_text(dir, "model.safetensors.index.json", "{\"weight_map\": ");
    expect_open_fail(dir, DSOCR_ERR_FORMAT, "model.safetensors.index.json", "JSON");
    write_text(dir, "model.safetensors.index.json", "{\"metadata\": {}}");
    expect_open_fail(dir, DSOCR_ERR_FORMAT, "model.safetensors.index.json", "weight_map");

    /* a corrupt shard: the safetensors error comes through */
    write_text(dir, "model.safetensors.index.json", "{\"weight_map\": {\"model.a\": \"bad.safetensors\"}}");
    CHECK(tu_write_file(path_in(dir, "bad.safetensors"), "\x04\0\0\0\0\0\0\0{x}}", 12) == 0);
    expect_open_fail(dir, DSOCR_ERR_FORMAT, "bad.safetensors", "not valid JSON");

    /* no index: two safetensors files are ambiguous, none is missing weights */
    remove(path_in(dir, "model.safetensors.index.json"));
    expect_open_fail(dir, DSOCR_ERR_FORMAT, "2 *.safetensors files", "index");
    remove(path_in(dir, "bad.safetensors"));
    ds_checkpoint *ck;
    dsocr_error e;
    if (ds_ckpt_open(dir, &ck, &e) == DSOCR_OK) {
        CHECK_EQ_INT(ds_ckpt_tensor_count(ck), 1);
        ds_ckpt_close(ck);
    } else CHECK_MSG(0, "%s", e.message);
    remove(path_in(dir, "one.safetensors"));
    expect_open_fail(dir, DSOCR_ERR_IO, "no *.safetensors", NULL);

    /* config.json is required; the directory must exist */
    const char *dir2 = tu_tmpdir("ckpt-noconfig");
    write_shard(path_in(dir2, "model.safetensors"), 1, names, rows, 0.0f, 0);
    expect_open_fail(dir2, DSOCR_ERR_IO, "config.json", "missing");
    expect_open_fail(path_in(dir2, "nope"), DSOCR_ERR_IO, "nope", NULL);
}

static void test_recorder(void) {
    ds_binder *r = ds_binder_new_recorder();
    ds_tensor t = ds_bind(r, 2, S4x3, "model.layers.%d.w", 0);
    CHECK(t.data == NULL && t.ndim == 2 && t.shape[0] == 4 && t.shape[1] == 3 && t.stride[0] == 3);
    CHECK_STR(t.name, "model.layers.0.w");
    ds_bind(r, 1, S64, "model.norm.weight");
    ds_bind(r, 2, S4x3, "model.layers.0.w");  /* same again: recorded once */
    ds_bind(r, 0, NULL, "scalar");
    CHECK_EQ_INT(ds_binder_count(r), 3);
    CHECK_EQ_INT(ds_binder_problems(r), 0);
    int64_t shape[DS_MAX_DIMS];
    CHECK_STR(ds_binder_name(r, 1), "model.norm.weight");
    CHECK_EQ_INT(ds_binder_shape(r, 1, shape), 1);
    CHECK_EQ_INT(shape[0], 64);
    CHECK_EQ_INT(ds_binder_shape(r, 0, shape), 2);
    CHECK(shape[0] == 4 && shape[1] == 3);
    CHECK_EQ_INT(ds_binder_shape(r, 2, shape), 0);
    CHECK_EQ_INT(ds_binder_shape(r, 3, shape), -1);
    CHECK(ds_binder_name(r, 3) == NULL);
    ds_binder_free(r);

    /* conflicting shapes for one name are a problem */
    r = ds_binder_new_recorder();
    ds_bind(r, 2, S4x3, "model.w");
    ds_bind(r, 2, S3x4, "model.w");
    ds_bind(r, 5, S4x3, "model.v");
    CHECK_EQ_INT(ds_binder_count(r), 1);
    CHECK_EQ_INT(ds_binder_problems(r), 2);
    dsocr_error e;
    CHECK_EQ_INT(ds_binder_finish(r, &e), DSOCR_ERR_FORMAT);
    CHECK(has(e.message, "model.w: bound twice with different shapes [4, 3] and [3, 4]"));
    CHECK(has(e.message, "model.v"));
}

int main(void) {
    test_golden();
    test_sharded();
    test_broken_dirs();
    test_recorder();
    return tu_done("test_checkpoint");
}
