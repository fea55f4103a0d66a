/* model.safetensors.index.json, through ds_ckpt_open (index parsing reads from a
 * directory). Once per process: a scratch directory (on tmpfs if possible) with
 * config.json and two tiny valid shards; each input is written as the index file
 * there and the directory opened. Accepted checkpoints are walked and bound. */
#include <stdbool.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "io/checkpoint.h"

static char dir[64];
static char index_path[128];

/* A safetensors file: 8-byte little-endian header length, JSON header, data. */
static void write_shard(const char *name, const char *header, size_t data_bytes) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    uint64_t n = strlen(header);
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)(n >> (8 * i));
    fwrite(len, 1, 8, f);
    fwrite(header, 1, n, f);
    for (size_t i = 0; i < data_bytes; i++) fputc((int)i, f);
    if (fclose(f)) abort();
}

static void remove_dir(void) {
    const char *names[] = {"config.json", "a.safetensors", "b.safetensors", "model.safetensors.index.json"};
    char path[128];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void setup(void) {
    /* tmpfs when there is one: a disk file system makes the per-input write the bottleneck */
    const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%.40s/dsfuzzXXXXXX", tmp && *tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    if (!mkdtemp(dir)) abort();
    atexit(remove_dir);
    snprintf(index_path, sizeof index_path, "%s/model.safetensors.index.json", dir);
    char cfg[128];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    FILE *f = fopen(cfg, "wb");
    if (!f || fputs("{}", f) < 0 || fclose(f)) abort();
    write_shard("a.safetensors",
                "{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                16);
    write_shard("b.safetensors",
                "{\"__metadata__\":{\"format\":\"pt\"},"
                "\"x.y\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]}}",
                6);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static bool ready;
    if (!ready) { setup(); ready = true; }
    FILE *f = fopen(index_path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    if (fclose(f)) abort();

    ds_checkpoint *ck = NULL;
    dsocr_error err;
    dsocr_status s = ds_ckpt_open(dir, &ck, &err);
    fuzz_check_error(s, &err);
    if (s != DSOCR_OK) { FUZZ_CHECK(ck == NULL); return 0; }
    int n = ds_ckpt_tensor_count(ck);
    FUZZ_CHECK(n > 0 && n <= 3);
    FUZZ_CHECK(ds_ckpt_shard_count(ck) >= 1 && ds_ckpt_shard_count(ck) <= 2);
    for (int i = 0; i < ds_ckpt_shard_count(ck); i++) FUZZ_CHECK(ds_ckpt_shard_path(ck, i) != NULL);
    const char *file = NULL;
    const ds_tensor *w = ds_ckpt_find(ck, "w", &file);
    ds_binder *b = ds_binder_new(ck);
    if (!b) abort();
    int64_t shape_w[2] = {2, 2}, shape_x[1] = {3};
    ds_tensor tw = ds_bind(b, 2, shape_w, "w");
    ds_tensor tx = ds_bind(b, 1, shape_x, "x.%s", "y");
    FUZZ_CHECK(!w || tw.data == w->data);
    (void)tx;
    (void)ds_binder_unused_count(b);
    s = ds_binder_finish(b, &err);
    fuzz_check_error(s, &err);
    ds_ckpt_close(ck);
    return 0;
}
