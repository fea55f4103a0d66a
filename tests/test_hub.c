/* hub: download of the tiny golden model from a loopback server that speaks the
 * Hugging Face hub protocol, into a fresh HF cache per test: cache layout, resume
 * of an interrupted transfer with a Range request, checksum mismatch, token, 404,
 * sharded checkpoints, moved branches, cancel, full disk, offline mode. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/hub.h"
#include "test_hub_server.h"
#include "test_util.h"

#define REPO "test-org/tiny-ocr"
#define COMMIT_A "0123456789abcdef0123456789abcdef01234567"
#define COMMIT_B "89abcdef0123456789abcdef0123456789abcdef"
#define TOKEN "hf_TestSecretToken123"

static hub_server srv;
static char golden_dir[4096];

static const char *const tiny_files[] = {
    "config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "model.safetensors",
};
#define N_TINY (sizeof tiny_files / sizeof tiny_files[0])

/* ---- helpers ---------------------------------------------------------------------- */

/* snprintf for paths and messages in this test (sizes are ample; no truncation warnings). */
static void pathf(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pathf(char *out, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, n, fmt, ap);
    va_end(ap);
}

static void copy_str(char *dst, size_t n, const char *src) { pathf(dst, n, "%s", src ? src : ""); }

/* tu_tmpdir, remembered so main can delete the caches (each holds a 37 MB model). */
static char made_dirs[32][4096];
static int n_made_dirs;

static const char *tmpdir(const char *tag) {
    const char *d = tu_tmpdir(tag);
    if (d && n_made_dirs < 32) copy_str(made_dirs[n_made_dirs++], sizeof made_dirs[0], d);
    return d;
}

static void remove_tmpdirs(void) {
    for (int i = 0; i < n_made_dirs; i++) {
        char cmd[4200];
        pathf(cmd, sizeof cmd, "rm -rf '%s'", made_dirs[i]);
        if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", made_dirs[i]);
    }
}

/* A fresh cache folder; HF_HUB_CACHE points at it. */
static void fresh_cache(const char *tag, char *out, size_t n) {
    copy_str(out, n, tmpdir(tag));
    setenv("HF_HUB_CACHE", out, 1);
    setenv("HF_ENDPOINT", srv.endpoint, 1);
    unsetenv("HF_TOKEN");
    unsetenv("HF_HUB_OFFLINE");
}

static ds_hub_options test_options(void) {
    ds_hub_options o = ds_hub_default_options();
    o.timeout_s = 5;
    return o;
}

static int files_equal(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *da = tu_read_file(a, &na), *db = tu_read_file(b, &nb);
    int eq = da && db && na == nb && !memcmp(da, db, na);
    free(da);
    free(db);
    return eq;
}

static int exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

static long long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* Checks snapshot dir holds each file as a link to ../../blobs/{hash} with the
 * source's bytes. */
static void check_snapshot(const char *snap, const char *src_dir, const char *const *files, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char got[4096], want[4096], target[4096], hash[65];
        pathf(got, sizeof got, "%s/%s", snap, files[i]);
        pathf(want, sizeof want, "%s/%s", src_dir, files[i]);
        CHECK_MSG(files_equal(got, want), "%s differs from %s", got, want);
        ssize_t k = readlink(got, target, sizeof target - 1);
        CHECK_MSG(k > 0, "%s is not a symlink", got);
        if (k <= 0) continue;
        target[k] = 0;
        size_t fn = strlen(files[i]);
        int lfs = file_size(want) > (1 << 20) || (fn > 12 && !strcmp(files[i] + fn - 12, ".safetensors"));
        CHECK(lfs ? hs_sha256_file(want, hash) == 0 : hs_git_sha1_file(want, hash) == 0);
        char expect[200];
        pathf(expect, sizeof expect, "../../blobs/%s", hash);
        CHECK_STR(target, expect);
    }
}

static void snapshot_path(const char *cache, const char *repo, const char *commit, char *out, size_t n) {
    char org[128];
    const char *slash = strchr(repo, '/');
    pathf(org, sizeof org, "%.*s", (int)(slash - repo), repo);
    pathf(out, n, "%s/models--%s--%s/snapshots/%s", cache, org, slash + 1, commit);
}

static void set_commit(const char *c) {
    hs_lock(&srv);
    copy_str(srv.commit, sizeof srv.commit, c);
    hs_unlock(&srv);
}

static void set_drop(const char *file, uint64_t after, int count) {
    hs_lock(&srv);
    copy_str(srv.drop_file, sizeof srv.drop_file, file);
    srv.drop_after = after;
    srv.drop_count = count;
    hs_unlock(&srv);
}

static void set_corrupt(const char *file) {
    hs_lock(&srv);
    copy_str(srv.corrupt_file, sizeof srv.corrupt_file, file);
    hs_unlock(&srv);
}

typedef struct progress_log {
    int calls;
    char last_file[256];
    uint64_t last_done, last_total;
    uint64_t model_done, model_total;   /* last report for model.safetensors */
    uint64_t cancel_after;              /* 0 = never cancel */
} progress_log;

static int on_progress(void *user, const char *file, uint64_t done, uint64_t total) {
    progress_log *p = user;
    p->calls++;
    copy_str(p->last_file, sizeof p->last_file, file);
    p->last_done = done;
    p->last_total = total;
    if (!strcmp(file, "model.safetensors")) { p->model_done = done; p->model_total = total; }
    return p->cancel_after && done >= p->cancel_after;
}

/* ---- online tests ---------------------------------------------------------------- */

static char warm_cache[4096];     /* complete download of REPO at COMMIT_A, reused offline */
static char sharded_cache[4096];

static void test_fresh_download(void) {
    fresh_cache("hub-fresh", warm_cache, sizeof warm_cache);
    hs_clear_log(&srv);
    progress_log pl = {0};
    ds_hub_options o = test_options();
    o.progress = on_progress;
    o.progress_user = &pl;
    char dir[4096], want[4096];
    dsocr_error e = {0};
    CHECK_EQ_INT(ds_hub_resolve(REPO, &o, dir, sizeof dir, &e), DSOCR_OK);
    if (e.message[0]) fprintf(stderr, "  %s\n", e.message);
    snapshot_path(warm_cache, REPO, COMMIT_A, want, sizeof want);
    CHECK_STR(dir, want);
    check_snapshot(dir, golden_dir, tiny_files, N_TINY);

    char path[4096];
    pathf(path, sizeof path, "%s/models--test-org--tiny-ocr/refs/main", warm_cache);
    char *ref = tu_read_file(path, NULL);
    CHECK_STR(ref, COMMIT_A);
    free(ref);
    pathf(path, sizeof path, "%s/models--test-org--tiny-ocr/.no_exist/%s/model.safetensors.index.json",
             warm_cache, COMMIT_A);
    CHECK_MSG(exists(path), "no .no_exist marker for the absent index");
    pathf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    CHECK(!exists(path));

    /* the index was asked for and missing; the weights came from the CDN URL, whole */
    CHECK_EQ_INT(hs_count(&srv, "HEAD", "/resolve/main/config.json"), 1);
    CHECK_EQ_INT(hs_count(&srv, "HEAD", "/model.safetensors.index.json"), 1);
    CHECK_EQ_INT(hs_count(&srv, "GET", "/cdn/test-org/tiny-ocr/model.safetensors"), 1);
    CHECK_EQ_INT(hs_count(&srv, "HEAD", "/resolve/" COMMIT_A "/model.safetensors"), 1);   /* pinned to the commit */
    char range[64];
    hs_last_range(&srv, "GET", "/model.safetensors", range, sizeof range);
    CHECK_STR(range, "");
    CHECK_EQ_INT(pl.model_total, file_size(tu_golden("tiny-model/model.safetensors")));
    CHECK_EQ_INT(pl.model_done, pl.model_total);
    CHECK(pl.calls > 5);

    /* warm cache, online: only HEADs, nothing downloaded again */
    hs_clear_log(&srv);
    CHECK_EQ_INT(ds_hub_resolve(REPO, &o, dir, sizeof dir, &e), DSOCR_OK);
    CHECK_STR(dir, want);
    CHECK_EQ_INT(hs_count(&srv, "GET", ""), 0);
    CHECK_EQ_INT(hs_count(&srv, "HEAD", ""), 6);
}

static void test_resume_next_call(void) {
    char cache[4096], dir[4096], sha[65], part[4096];
    fresh_cache("hub-resume", cache, sizeof cache);
    CHECK(hs_sha256_file(tu_golden("tiny-model/model.safetensors"), sha) == 0);
    pathf(part, sizeof part, "%s/models--test-org--tiny-ocr/blobs/%s.incomplete", cache, sha);
    const uint64_t cut = 5u << 20;
    set_drop("model.safetensors", cut, 1);
    ds_hub_options o = test_options();
    o.max_retries = 0;   /* fail on the dropped connection, resume in the next call */
    dsocr_error e = {0};
    CHECK_EQ_INT(ds_hub_resolve(REPO, &o, dir, sizeof dir, &e), DSOCR_ERR_IO);
    CHECK_MSG(strstr(e.message, "model.safetensors") && strstr(e.message, "resume"), "%s", e.message);
    CHECK_MSG(strstr(e.message, srv.endpoint) != NULL, "no URL in: %s", e.message);
    CHECK_EQ_INT(file_size(part), (long long)cut);

    hs_clear_log(&srv);
    CHECK_EQ_INT(ds_hub_resolve(REPO, &o, dir, sizeof dir, &e), DSOCR_OK);
    char range[64], want_range[64];
    hs_last_range(&srv, "GET", "/model.safetensors", range, sizeof range);
    pathf(want_range, sizeof want_range, "bytes=%llu-", (unsigned long long)cut);
    CHECK_STR(range, want_range);
    CHECK_EQ_INT(hs_count(&srv, "GET", "/model.safetensors"), 1);
    CHECK(!exists(part));
    check_snapshot(dir, golden_dir, tiny_files, N_TINY);
    set_drop("", 0, 0);
}

static void test_retry_same_call(void) {
    char cache[4096], dir[4096];
    fresh_cache("hub-retry", cache, sizeof cache);
    set_drop("model.safetensors", 3u << 20, 2);   /* two drops, then whole */
    hs_clear_log(&srv);
    ds_hub_options o = test_options();   /* 5 retries by default */
    dsocr_error e = {0};
    CHECK_EQ_INT(ds_hub_resolve(REPO, &o, dir, sizeof dir, &e), DSOCR_OK);
    if (e.message[0]) fprintf(stderr, "  %s\n", e.message);
    CHECK_EQ_INT(hs_count(&srv, "GET", "/model.safetensors"), 3);
    char range[64];
    hs_last_range(&srv, "GET", "/model.safetensors", range, sizeof range);
    CHECK_STR(range, "bytes=6291456-");
    check_snapshot(dir, golden_dir, tiny_files, N_TINY);
    set_drop("", 0, 0);

    /* a small (non-LFS) file dropped midway is resumed too, and checked by git sha1 */
    fresh_cache("hub-retry-small", cache, sizeof cache);
    set_drop("tokenizer_config.json", 1000, 1);
    hs_clear_log(&srv);
    CHECK_EQ_INT(ds_hub_resolve(REPO, &o, dir, sizeof dir, &e), DSOCR_OK);
    hs_last_range(&srv, "GET", "/tokenizer_config.json", range, sizeof range);
    CHECK_STR(range, "bytes=1000-");
    check_snapshot(dir, golden_dir, tiny_files, N_TINY);
    set_drop("", 0, 0);
}

static void test_server_ignores_range(void) {
    /* a server that answers a resumed request with the whole file (200): start over */
    char cache[4096], dir[4096];
    fresh_cache("hub-norange", cache, sizeof cache);
    set_drop("model.safetensors", 3u << 20, 1);
    hs_lock(&srv);
    srv.ignore_range = 1;
    hs_unlock(&srv);
    hs_clear_log(&srv);
    ds_hub_options o = test_options();
    dsocr_error e = {0};
    CHECK_EQ_INT(ds_hub_resolve(REPO, &o, dir, sizeof dir, &e), DSOCR_OK);
    if (e.message[0]) fprintf(stderr, "  %s\n", e.message);
    char range[64];
    hs_last_range(&srv, "GET", "/model.safetensors", range, sizeof range);
    CHECK_STR(range, "bytes=3145728-");
    check_snapshot(dir, golden_dir, tiny_files, N_TINY);
    hs_lock(&srv);
    srv.ignore_range = 0;
    hs_unlock(&srv);
    set_drop("", 0, 0);
}

static void test_renamed_repo(void) {
    /* the hub answers a renamed repo with a relative redirect to the new name; the
     * cache stays under the name asked for, as huggingface_hub keeps it */
    char cache[4096], dir[4096], want[4096];
    fresh_cache("hub-renamed", cache, sizeof cache);
    hs_lock(&srv);
    copy_str(srv.renamed_from, sizeof srv.renamed_from, "old-org/old-name");
    copy_str(srv.renamed_to, sizeof srv.renamed_to, REPO);
    hs_unlock(&srv);
    ds_hub_options o = test_options();
    dsocr_error e = {0};
    CHECK_EQ_INT(ds_hub_resolve("old-org/old-name", &o, dir, sizeof dir, &e), DSOCR_OK);
    if (e.message[0]) fprintf(stderr, "  %s\n", e.message);
    snapshot_path(cache, "old-org/old-name", COMMIT_A, want, sizeof want);
    CHECK_STR(dir, want);
    check_snapshot(dir, golden_dir, tiny_files, N_TINY);
}

static void test_checksum_mismatch(void) {
    char cache[4096], dir[4096], sha[65], path[4096];
    fresh_cache("hub-corrupt", cache, sizeof cache);
    CHECK(hs_sha256_file(tu_golden("tiny-model/model.safetensors"), sha) == 0);
    set_corrupt("model.safetensors");
    ds_hub_options o = test_options();
    dsocr_error e = {0};
    CHECK_EQ_INT(ds_hub_resolve(REPO, &o, dir, sizeof dir, &e), DSOCR_ERR_IO);
    CHECK_MSG(strstr(e.message, "checksum mismatch") && strstr(e.message, "model.safetensors"), "%s", e.message);
    CHECK_MSG(strstr(e.message, sha) != NULL, "expected sha256 not named: %s", e.message);
    pathf(path, sizeof path, "%s/models--test-org--tiny-ocr/blobs/%s", cache, sha);
    CHECK(!exists(path));
    strcat(path, ".incomplete");
    CHECK(!exists(path));
    snapshot_path(cache, REPO, COMMIT_A, path, sizeof path);
    strcat(path, "/model.safetensors");
    CHECK(!exists(path));

    /* a small file: checked against its git blob sha1 */
    fresh_cache("hub-corrupt-small", cache, sizeof cache);
    set_corrupt("config.json");
    CHECK_EQ_INT(ds_hub_resolve(REPO, &o, dir, sizeof dir, &e), DSOCR_ERR_IO);
    CHECK_MSG(strstr(e.message, "checksum mismatch") && strstr(e.message, "git sha1") &&
              strstr(e.message, "config.json"), "%s", e.message);

    set_corrupt("");
    CHECK_EQ_INT(ds_hub_resolve(REPO, &o, dir, sizeof dir, &e), DSOCR_OK);
    check_snapshot(dir, golden_dir, tiny_files, N_TINY);
}

static void test_token(void) {
    char cache[4096], dir[4096];
    fresh_cache("hub-token", cache, sizeof cache);
    ds_hub_options o = test_options();
    dsocr_error e = {0};
    CHECK_EQ_INT(ds_hub_resolve("test-org/private", &o, dir, sizeof dir, &e), DSOCR_ERR_IO);
    CHECK_MSG(strstr(e.message, "401") && strstr(e.message, "HF_TOKEN") &&
              strstr(e.message, "/test-org/private/resolve/main/config.json"), "%s", e.message);

    o.token = "hf_wrong_token_456";
    CHECK_EQ_INT(ds_hub_resolve("test-org/private", &o, dir, sizeof dir, &e), DSOCR_ERR_IO);
    CHECK_MSG(strstr(e.message, "401") && !strstr(e.message, "hf_wrong_token_456"), "%s", e.message);
    o.token = NULL;

    setenv("HF_TOKEN", TOKEN, 1);
    hs_clear_log(&srv);
    CHECK_EQ_INT(ds_hub_resolve("test-org/private", &o, dir, sizeof dir, &e), DSOCR_OK);
    check_snapshot(dir, golden_dir, tiny_files, N_TINY);
    hs_lock(&srv);
    int with_auth = 0;
    for (int i = 0; i < srv.n_log; i++) with_auth += srv.log[i].has_auth;
    int n = srv.n_log;
    hs_unlock(&srv);
    CHECK_EQ_INT(with_auth, n);   /* same host: the CDN requests carry it too */
    unsetenv("HF_TOKEN");

    /* the token file huggingface-cli login writes: HF_TOKEN_PATH */
    char tok_path[4096];
    pathf(tok_path, sizeof tok_path, "%s/token", tmpdir("hub-tokfile"));
    CHECK(tu_write_file(tok_path, TOKEN "\n", strlen(TOKEN) + 1) == 0);
    setenv("HF_TOKEN_PATH", tok_path, 1);
    fresh_cache("hub-token2", cache, sizeof cache);
    CHECK_EQ_INT(ds_hub_resolve("test-org/private", &o, dir, sizeof dir, &e), DSOCR_OK);
    unsetenv("HF_TOKEN_PATH");
}

static void test_not_found(void) {
    char cache[4096], dir[4096];
    fresh_cache("hub-404", cache, sizeof cache);
    ds_hub_options o = test_options();
    dsocr_error e = {0};
    CHECK_EQ_INT(ds_hub_resolve("test-org/nothing-here", &o, dir, sizeof dir, &e), DSOCR_ERR_IO);
    CHECK_MSG(strstr(e.message, "404") && strstr(e.message, "repository test-org/nothing-here not found"), "%s",
              e.message);
    CHECK_EQ_INT(ds_hub_resolve("test-org/no-tokcfg", &o, dir, sizeof dir, &e), DSOCR_ERR_IO);
    CHECK_MSG(strstr(e.message, "404") && strstr(e.message, "file tokenizer_config.json not found"), "%s", e.message);
    o.revision = "v9.9";
    CHECK_EQ_INT(ds_hub_resolve(REPO, &o, dir, sizeof dir, &e), DSOCR_ERR_IO);
    CHECK_MSG(strstr(e.message, "404") && strstr(e.message, "revision 'v9.9' not found"), "%s", e.message);
    o.revision = "../../etc";
    CHECK_EQ_INT(ds_hub_resolve(REPO, &o, dir, sizeof dir, &e), DSOCR_ERR_INVALID_ARG);
}

static void test_sharded(const char *repo_dir) {
    static const char *const files[] = {
        "config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
        "model.safetensors.index.json", "model-00001-of-000001.safetensors",
    };
    char dir[4096], path[4096];
    fresh_cache("hub-sharded", sharded_cache, sizeof sharded_cache);
    ds_hub_options o = test_options();
    dsocr_error e = {0};
    CHECK_EQ_INT(ds_hub_resolve("test-org/sharded", &o, dir, sizeof dir, &e), DSOCR_OK);
    if (e.message[0]) fprintf(stderr, "  %s\n", e.message);
    check_snapshot(dir, repo_dir, files, sizeof files / sizeof files[0]);
    pathf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(!exists(path));
}

static void test_branch_moves(void) {
    /* main moves to COMMIT_B with the same files: new snapshot, refs/main updated, no blob downloaded */
    char dir[4096], want[4096], path[4096];
    setenv("HF_HUB_CACHE", warm_cache, 1);
    set_commit(COMMIT_B);
    hs_clear_log(&srv);
    ds_hub_options o = test_options();
    dsocr_error e = {0};
    CHECK_EQ_INT(ds_hub_resolve(REPO, &o, dir, sizeof dir, &e), DSOCR_OK);
    snapshot_path(warm_cache, REPO, COMMIT_B, want, sizeof want);
    CHECK_STR(dir, want);
    CHECK_EQ_INT(hs_count(&srv, "GET", ""), 0);
    check_snapshot(dir, golden_dir, tiny_files, N_TINY);
    pathf(path, sizeof path, "%s/models--test-org--tiny-ocr/refs/main", warm_cache);
    char *ref = tu_read_file(path, NULL);
    CHECK_STR(ref, COMMIT_B);
    free(ref);

    /* asking for a commit by hash: that snapshot, refs/main untouched, no refs/<hash> */
    set_commit(COMMIT_A);
    o.revision = COMMIT_A;
    CHECK_EQ_INT(ds_hub_resolve(REPO, &o, dir, sizeof dir, &e), DSOCR_OK);
    snapshot_path(warm_cache, REPO, COMMIT_A, want, sizeof want);
    CHECK_STR(dir, want);
    pathf(path, sizeof path, "%s/models--test-org--tiny-ocr/refs/%s", warm_cache, COMMIT_A);
    CHECK(!exists(path));
    o.revision = "main";
    CHECK_EQ_INT(ds_hub_resolve(REPO, &o, dir, sizeof dir, &e), DSOCR_OK);   /* refs/main back to A */
}

static void test_cancel(void) {
    char cache[4096], dir[4096], sha[65], part[4096];
    fresh_cache("hub-cancel", cache, sizeof cache);
    CHECK(hs_sha256_file(tu_golden("tiny-model/tokenizer.json"), sha) == 0);
    progress_log pl = {.cancel_after = 2u << 20};
    ds_hub_options o = test_options();
    o.progress = on_progress;
    o.progress_user = &pl;
    dsocr_error e = {0};
    CHECK_EQ_INT(ds_hub_resolve(REPO, &o, dir, sizeof dir, &e), DSOCR_ERR_CANCELLED);
    CHECK_MSG(strstr(e.message, "cancelled") != NULL, "%s", e.message);
    pathf(part, sizeof part, "%s/models--test-org--tiny-ocr/blobs/%s.incomplete", cache, sha);
    /* tokenizer.json (4.3 MB) is the first file past the threshold; its part stays to resume */
    CHECK_STR(pl.last_file, "tokenizer.json");
    CHECK(file_size(part) >= (2 << 20));
    pl.cancel_after = 0;
    CHECK_EQ_INT(ds_hub_resolve(REPO, &o, dir, sizeof dir, &e), DSOCR_OK);
    check_snapshot(dir, golden_dir, tiny_files, N_TINY);
}

static void test_disk_full(void) {
    /* a file size limit stands in for a full disk: writes fail with EFBIG */
    char cache[4096], dir[4096];
    fresh_cache("hub-full", cache, sizeof cache);
    struct rlimit old, lim;
    CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 8u << 20;
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    ds_hub_options o = test_options();
    dsocr_error e = {0};
    dsocr_status s = ds_hub_resolve(REPO, &o, dir, sizeof dir, &e);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, old_handler);
    CHECK_EQ_INT(s, DSOCR_ERR_IO);
    CHECK_MSG(strstr(e.message, "cannot write") && strstr(e.message, strerror(EFBIG)) &&
              strstr(e.message, ".incomplete"), "%s", e.message);
    hs_clear_log(&srv);
    CHECK_EQ_INT(ds_hub_resolve(REPO, &o, dir, sizeof dir, &e), DSOCR_OK);   /* room again: resumes */
    char range[64];
    hs_last_range(&srv, "GET", "/model.safetensors", range, sizeof range);
    CHECK_STR(range, "bytes=8388608-");
    check_snapshot(dir, golden_dir, tiny_files, N_TINY);
}

static void test_unwritable_cache(void) {
    char base[4096], cache[4096], dir[4096];
    copy_str(base, sizeof base, tmpdir("hub-unwritable"));
    pathf(cache, sizeof cache, "%s/a-file/hub", base);
    char blocker[4096];
    pathf(blocker, sizeof blocker, "%s/a-file", base);
    CHECK(tu_write_file(blocker, "x", 1) == 0);
    setenv("HF_HUB_CACHE", cache, 1);
    ds_hub_options o = test_options();
    dsocr_error e = {0};
    CHECK_EQ_INT(ds_hub_resolve(REPO, &o, dir, sizeof dir, &e), DSOCR_ERR_IO);
    CHECK_MSG(strstr(e.message, "not writable") && strstr(e.message, "HF_HUB_CACHE") && strstr(e.message, blocker),
              "%s", e.message);
}

/* ---- with the server stopped ---------------------------------------------------------- */

static void test_offline(const char *dead_endpoint) {
    char dir[4096], want[4096], cold[4096];
    dsocr_error e = {0};
    ds_hub_options o = test_options();
    setenv("HF_ENDPOINT", dead_endpoint, 1);

    /* warm cache, HF_HUB_OFFLINE=1: no network needed */
    setenv("HF_HUB_CACHE", warm_cache, 1);
    setenv("HF_HUB_OFFLINE", "1", 1);
    snapshot_path(warm_cache, REPO, COMMIT_A, want, sizeof want);
    CHECK_EQ_INT(ds_hub_resolve(REPO, &o, dir, sizeof dir, &e), DSOCR_OK);
    CHECK_STR(dir, want);
    check_snapshot(dir, golden_dir, tiny_files, N_TINY);
    unsetenv("HF_HUB_OFFLINE");
    o.offline = 1;   /* the API flag does the same */
    CHECK_EQ_INT(ds_hub_resolve(REPO, &o, dir, sizeof dir, &e), DSOCR_OK);
    CHECK_STR(dir, want);
    o.revision = COMMIT_B;   /* a commit hash with a snapshot */
    CHECK_EQ_INT(ds_hub_resolve(REPO, &o, dir, sizeof dir, &e), DSOCR_OK);
    snapshot_path(warm_cache, REPO, COMMIT_B, want, sizeof want);
    CHECK_STR(dir, want);
    o.revision = "v2";
    CHECK_EQ_INT(ds_hub_resolve(REPO, &o, dir, sizeof dir, &e), DSOCR_ERR_IO);
    CHECK_MSG(strstr(e.message, "offline") && strstr(e.message, "refs/v2"), "%s", e.message);
    o.revision = NULL;

    /* sharded, offline: the cached index names the shard */
    setenv("HF_HUB_CACHE", sharded_cache, 1);
    CHECK_EQ_INT(ds_hub_resolve("test-org/sharded", &o, dir, sizeof dir, &e), DSOCR_OK);

    /* online, hub unreachable, warm cache: served from the cache as huggingface_hub does */
    o.offline = 0;
    setenv("HF_HUB_CACHE", warm_cache, 1);
    CHECK_EQ_INT(ds_hub_resolve(REPO, &o, dir, sizeof dir, &e), DSOCR_OK);
    snapshot_path(warm_cache, REPO, COMMIT_A, want, sizeof want);
    CHECK_STR(dir, want);

    /* cold cache: offline fails naming what is missing; online names the network failure */
    copy_str(cold, sizeof cold, tmpdir("hub-cold"));
    setenv("HF_HUB_CACHE", cold, 1);
    o.offline = 1;
    CHECK_EQ_INT(ds_hub_resolve(REPO, &o, dir, sizeof dir, &e), DSOCR_ERR_IO);
    CHECK_MSG(strstr(e.message, "offline") && strstr(e.message, "not in the cache") && strstr(e.message, REPO),
              "%s", e.message);
    o.offline = 0;
    CHECK_EQ_INT(ds_hub_resolve(REPO, &o, dir, sizeof dir, &e), DSOCR_ERR_IO);
    CHECK_MSG(strstr(e.message, "network error") && strstr(e.message, dead_endpoint) &&
              strstr(e.message, "not fully cached"), "%s", e.message);

    /* a snapshot missing its weights: offline lists the missing file */
    char link[4096];
    snapshot_path(warm_cache, REPO, COMMIT_A, link, sizeof link);
    strcat(link, "/model.safetensors");
    CHECK(unlink(link) == 0);
    setenv("HF_HUB_CACHE", warm_cache, 1);
    o.offline = 1;
    CHECK_EQ_INT(ds_hub_resolve(REPO, &o, dir, sizeof dir, &e), DSOCR_ERR_IO);
    CHECK_MSG(strstr(e.message, "incomplete") && strstr(e.message, "missing model.safetensors"), "%s", e.message);
}

/* ---- no network at all ---------------------------------------------------------------- */

static void test_local_and_names(void) {
    char dir[4096];
    dsocr_error e = {0};
    CHECK_EQ_INT(ds_hub_resolve(golden_dir, NULL, dir, sizeof dir, &e), DSOCR_OK);
    CHECK_STR(dir, golden_dir);
    CHECK_EQ_INT(ds_hub_resolve(tu_golden("tiny-model/config.json"), NULL, dir, sizeof dir, &e), DSOCR_ERR_INVALID_ARG);
    CHECK_EQ_INT(ds_hub_resolve("./no/such/dir", NULL, dir, sizeof dir, &e), DSOCR_ERR_INVALID_ARG);
    CHECK_MSG(strstr(e.message, "./no/such/dir") != NULL, "%s", e.message);
    char tiny[4];
    CHECK_EQ_INT(ds_hub_resolve(golden_dir, NULL, tiny, sizeof tiny, &e), DSOCR_ERR_LIMIT);

    CHECK(ds_hub_is_repo_id("deepseek-ai/DeepSeek-OCR"));
    CHECK(ds_hub_is_repo_id("a/b.c_d-e"));
    CHECK(!ds_hub_is_repo_id("DeepSeek-OCR"));
    CHECK(!ds_hub_is_repo_id("a/b/c"));
    CHECK(!ds_hub_is_repo_id("../x"));
    CHECK(!ds_hub_is_repo_id("a/.."));
    CHECK(!ds_hub_is_repo_id("a--b/c"));
    CHECK(!ds_hub_is_repo_id("a/b c"));
    CHECK(!ds_hub_is_repo_id("/abs"));
    CHECK(!ds_hub_is_repo_id(""));

    /* cache folder precedence: option, HF_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME, HOME */
    char c[4096];
    ds_hub_options o = ds_hub_default_options();
    unsetenv("HF_HUB_CACHE");
    unsetenv("HF_HOME");
    unsetenv("XDG_CACHE_HOME");
    setenv("HOME", "/home/someone", 1);
    CHECK(ds_hub_cache_dir(&o, c, sizeof c, &e) == DSOCR_OK);
    CHECK_STR(c, "/home/someone/.cache/huggingface/hub");
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    CHECK(ds_hub_cache_dir(&o, c, sizeof c, &e) == DSOCR_OK);
    CHECK_STR(c, "/xdg/huggingface/hub");
    setenv("HF_HOME", "~/hf", 1);
    CHECK(ds_hub_cache_dir(&o, c, sizeof c, &e) == DSOCR_OK);
    CHECK_STR(c, "/home/someone/hf/hub");
    setenv("HF_HUB_CACHE", "/hubcache", 1);
    CHECK(ds_hub_cache_dir(&o, c, sizeof c, &e) == DSOCR_OK);
    CHECK_STR(c, "/hubcache");
    o.cache_dir = "/opt-cache";
    CHECK(ds_hub_cache_dir(&o, c, sizeof c, &e) == DSOCR_OK);
    CHECK_STR(c, "/opt-cache");
    unsetenv("XDG_CACHE_HOME");
}

/* A repo folder whose files are links to the golden ones. */
static void make_repo(const char *dir, const char *const *names, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char src[4096], dst[4096];
        pathf(src, sizeof src, "%s/%s", golden_dir, names[i]);
        pathf(dst, sizeof dst, "%s/%s", dir, names[i]);
        CHECK(symlink(src, dst) == 0);
    }
}

int main(void) {
    copy_str(golden_dir, sizeof golden_dir, tu_golden("tiny-model"));
    /* loopback only: no proxy, no token or cache from the user's environment */
    static const char *const drop_env[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                                           "ALL_PROXY", "HF_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE",
                                           "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME"};
    for (size_t i = 0; i < sizeof drop_env / sizeof drop_env[0]; i++) unsetenv(drop_env[i]);
    setenv("NO_PROXY", "127.0.0.1", 1);
    setenv("HF_HOME", tmpdir("hub-home"), 1);

    char sharded[4096], no_tokcfg[4096];
    copy_str(sharded, sizeof sharded, tmpdir("hub-repo-sharded"));
    static const char *const sharded_links[] = {"config.json", "tokenizer.json", "tokenizer_config.json",
                                                "special_tokens_map.json"};
    make_repo(sharded, sharded_links, 4);
    char p[4096];
    pathf(p, sizeof p, "%s/model-00001-of-000001.safetensors", sharded);
    CHECK(symlink(tu_golden("tiny-model/model.safetensors"), p) == 0);
    pathf(p, sizeof p, "%s/model.safetensors.index.json", sharded);
    const char *index = "{\"metadata\": {\"total_size\": 36787200}, \"weight_map\": {"
                        "\"model.embed_tokens.weight\": \"model-00001-of-000001.safetensors\", "
                        "\"lm_head.weight\": \"model-00001-of-000001.safetensors\"}}\n";
    CHECK(tu_write_file(p, index, strlen(index)) == 0);
    copy_str(no_tokcfg, sizeof no_tokcfg, tmpdir("hub-repo-notokcfg"));
    static const char *const partial_links[] = {"config.json", "tokenizer.json", "special_tokens_map.json",
                                                "model.safetensors"};
    make_repo(no_tokcfg, partial_links, 4);

    memset(&srv, 0, sizeof srv);
    copy_str(srv.commit, sizeof srv.commit, COMMIT_A);
    hs_add_repo(&srv, REPO, golden_dir, NULL);
    hs_add_repo(&srv, "test-org/private", golden_dir, TOKEN);
    hs_add_repo(&srv, "test-org/sharded", sharded, NULL);
    hs_add_repo(&srv, "test-org/no-tokcfg", no_tokcfg, NULL);
    if (hs_start(&srv) != 0) {
        fprintf(stderr, "FATAL: cannot start the loopback server\n");
        return 1;
    }
    test_fresh_download();
    test_resume_next_call();
    test_retry_same_call();
    test_server_ignores_range();
    test_renamed_repo();
    test_checksum_mismatch();
    test_token();
    test_not_found();
    test_sharded(sharded);
    test_branch_moves();
    test_cancel();
    test_disk_full();
    test_unwritable_cache();
    char dead[64];
    copy_str(dead, sizeof dead, srv.endpoint);
    hs_stop(&srv);
    test_offline(dead);
    test_local_and_names();
    remove_tmpdirs();
    return tu_done("test_hub");
}
