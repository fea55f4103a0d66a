/* Bad input through the real dsocr binary: broken checkpoints, configs, tokenizers,
 * images, PDFs, prompts and output folders. Each must give a non-zero exit (not a
 * signal), exactly one error line on stderr naming the problem, and leave no file in
 * the output folder and none outside it. The broken inputs are made here from the
 * golden tiny model at run time. Also: the memory guard (--max-memory), names with
 * "..", and Ctrl-C in a batch. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <mupdf/fitz.h>
#include <mupdf/pdf.h>

#include "ocr/output.h"
#include "test_util.h"

/* ---- running dsocr ------------------------------------------------------------------- */

typedef struct child_opts {
    rlim_t fsize;     /* RLIMIT_FSIZE in bytes (SIGXFSZ ignored: write fails with EFBIG); 0 = none */
    int as_nobody;    /* drop root: uid/gid 65534, so permissions apply */
} child_opts;

typedef struct result {
    int exited, code, sig;
    char err[1 << 16];
    int err_lines;
} result;

static result R;
static char work[4096];   /* this run's scratch root */

static void read_into(const char *path, char *buf, size_t cap) {
    size_t n = 0;
    char *t = tu_read_file(path, &n);
    snprintf(buf, cap, "%s", t ? t : "");
    free(t);
}

static pid_t spawn(const char *const *argv, const char *cwd, const child_opts *o, const char *err_path) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid != 0) return pid;
    int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    int nul = open("/dev/null", O_RDWR);
    if (fd < 0 || nul < 0 || chdir(cwd) != 0) _exit(126);
    dup2(nul, 0);
    dup2(nul, 1);
    dup2(fd, 2);
    if (o && o->fsize) {
        signal(SIGXFSZ, SIG_IGN);   /* stays ignored across exec */
        struct rlimit rl = {o->fsize, o->fsize};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(125);
    }
    if (o && o->as_nobody && getuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(124);
    char bin[4200];
    snprintf(bin, sizeof bin, "%s/dsocr", DSOCR_BINARY_DIR);
    execv(bin, (char *const *)argv);
    _exit(127);
}

static void collect(pid_t pid, const char *err_path) {
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    R.exited = WIFEXITED(st);
    R.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    R.sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    read_into(err_path, R.err, sizeof R.err);
    R.err_lines = 0;
    for (const char *p = R.err; *p; p++) R.err_lines += *p == '\n';
}

/* Runs dsocr with argv (argv[0] = "dsocr", NULL-terminated) in cwd. */
static void run_opts(const char *const *argv, const char *cwd, const child_opts *o) {
    char err_path[4200];
    snprintf(err_path, sizeof err_path, "%s/stderr.txt", work);
    collect(spawn(argv, cwd, o, err_path), err_path);
}

/* ---- files ------------------------------------------------------------------------ */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Regular files under dir, recursively (0 when dir is absent); the first one's path in first. */
static int count_files(const char *dir, char *first, size_t cap) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char path[4500];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) n += count_files(path, n ? NULL : first, cap);
        else {
            if (n == 0 && first) snprintf(first, cap, "%s", path);
            n++;
        }
    }
    closedir(d);
    return n;
}

static int exists(const char *dir, const char *name) {
    char path[9000];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0;
}

/* A fresh sandbox: SANDBOX/cwd (the child's working folder) and SANDBOX/out (the
 * output folder, not created). Everything the child writes must stay in it. */
static char sandbox[4200], sb_cwd[4300], sb_out[4300];
static int sb_out_made;   /* -o does not exist before the run: dsocr creates it (and must remove it) */
static void new_sandbox(const char *tag) {
    static int k;
    snprintf(sandbox, sizeof sandbox, "%s/sb-%02d-%s", work, k++, tag);
    snprintf(sb_cwd, sizeof sb_cwd, "%s/cwd", sandbox);
    snprintf(sb_out, sizeof sb_out, "%s/out", sandbox);
    mkdir(sandbox, 0777);
    mkdir(sb_cwd, 0777);
    sb_out_made = 1;
}

/* The contract for bad input. needles: strings the error line must contain (NULL-ended). */
static void expect_failure(const char *what, const char *const *needles) {
    CHECK_MSG(R.exited && R.code != 0 && R.code < 128, "%s: exit %d, signal %d; stderr: %s", what, R.code, R.sig, R.err);
    CHECK_MSG(R.err_lines == 1 && strncmp(R.err, "dsocr: ", 7) == 0, "%s: want one error line, got %d: %s", what,
              R.err_lines, R.err);
    for (int i = 0; needles && needles[i]; i++)
        CHECK_MSG(strstr(R.err, needles[i]) != NULL, "%s: error lacks \"%s\": %s", what, needles[i], R.err);
    char first[4600] = "";
    int n = count_files(sandbox, first, sizeof first);
    CHECK_MSG(n == 0, "%s: %d file(s) left behind, first %s", what, n, first);
    struct stat st;
    CHECK_MSG(!sb_out_made || stat(sb_out, &st) != 0, "%s: the -o folder dsocr created was left behind", what);
}

#define NEEDLES(...) ((const char *const[]){__VA_ARGS__, NULL})

static char model_golden[4096], image_golden[4096];

/* Runs `dsocr -q -t 1 -m MODEL --mode tiny --max-tokens 4 [extra...] -o OUT INPUT` in a
 * fresh sandbox and checks the failure contract. */
static void ocr_fails(const char *what, const char *model, const char *input, const char *const *extra,
                      const char *const *needles, const child_opts *o) {
    new_sandbox("case");
    const char *argv[40] = {"dsocr", "-q", "-t", "1", "-m", model, "--mode", "tiny", "--max-tokens", "4"};
    int n = 10;
    for (int i = 0; extra && extra[i] && n < 34; i++) argv[n++] = extra[i];
    argv[n++] = "-o";
    argv[n++] = sb_out;
    argv[n++] = input;
    argv[n] = NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    run_opts(argv, sb_cwd, o);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (getenv("BADINPUT_TIMES"))
        fprintf(stderr, "%-32s %.2f s\n", what, (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    expect_failure(what, needles);
}

/* ---- broken models ------------------------------------------------------------------- */

/* A model folder whose files link to the golden ones, except `replace`, which is copied
 * (writable) so the case can break it. Returns the folder. */
static const char *model_copy(const char *tag, const char *replace) {
    static char dir[4300];
    static int k;
    snprintf(dir, sizeof dir, "%s/model-%02d-%s", work, k++, tag);
    mkdir(dir, 0777);
    const char *files[] = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                           "special_tokens_map.json"};
    for (int i = 0; i < 5; i++) {
        if (replace && !strcmp(files[i], replace))
            sh("cp %s/%s %s/%s && chmod u+w %s/%s", model_golden, files[i], dir, files[i], dir, files[i]);
        else
            sh("ln -s %s/%s %s/%s", model_golden, files[i], dir, files[i]);
    }
    return dir;
}

static void truncate_file(const char *dir, const char *name, off_t size) {
    char path[4500];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK_EQ_INT(truncate(path, size), 0);
}

static void flip_bit(const char *dir, const char *name, long offset, int bit) {
    char path[4500];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDWR);
    unsigned char c = 0;
    CHECK(fd >= 0 && pread(fd, &c, 1, offset) == 1);
    c ^= (unsigned char)(1u << bit);
    CHECK(pwrite(fd, &c, 1, offset) == 1);
    close(fd);
}

/* Rewrites the safetensors header through edit(); the new header is padded with
 * spaces to a multiple of 8 so data stays aligned (data offsets are relative). */
static void edit_safetensors(const char *dir, void (*edit)(cJSON *)) {
    char path[4500];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    size_t size = 0;
    unsigned char *d = (unsigned char *)tu_read_file(path, &size);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | d[i];
    cJSON *h = cJSON_ParseWithLength((const char *)d + 8, (size_t)hl);
    CHECK(h != NULL);
    edit(h);
    char *js = cJSON_PrintUnformatted(h);
    size_t n = strlen(js), padded = (n + 7) / 8 * 8;
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < 8; i++) fputc((int)((padded >> (8 * i)) & 255), f);
    fwrite(js, 1, n, f);
    for (size_t i = n; i < padded; i++) fputc(' ', f);
    fwrite(d + 8 + hl, 1, size - 8 - (size_t)hl, f);
    fclose(f);
    free(js);
    cJSON_Delete(h);
    free(d);
}

#define DOWN "model.layers.0.mlp.down_proj.weight"
static void edit_dtype_i32(cJSON *h) {   /* same byte size: [64, 192] bf16 -> [32, 192] i32 */
    cJSON *t = cJSON_GetObjectItem(h, DOWN);
    cJSON_ReplaceItemInObject(t, "dtype", cJSON_CreateString("I32"));
    cJSON_ReplaceItemInObject(t, "shape", cJSON_CreateIntArray((const int[]){32, 192}, 2));
}
static void edit_dtype_f8(cJSON *h) {
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, DOWN), "dtype", cJSON_CreateString("F8_E4M3"));
}
static void edit_shape_swapped(cJSON *h) {   /* [64, 192] -> [192, 64]: same bytes, wrong shape */
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, DOWN), "shape", cJSON_CreateIntArray((const int[]){192, 64}, 2));
}
static void edit_shape_rank(cJSON *h) {   /* [64] -> [8, 8] */
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, "model.image_newline"), "shape",
                              cJSON_CreateIntArray((const int[]){8, 8}, 2));
}
static void edit_missing(cJSON *h) { cJSON_DeleteItemFromObject(h, "model.view_seperator"); }

/* config.json with key path (dots; top level and language_config both for LM keys)
 * set to a JSON value, or deleted when value is NULL. */
static const char *config_with(const char *tag, const char *key, const char *value) {
    const char *dir = model_copy(tag, "config.json");
    char path[4500];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = tu_read_file(path, NULL);
    cJSON *c = cJSON_Parse(text);
    free(text);
    cJSON *roots[2] = {c, strchr(key, '.') ? NULL : cJSON_GetObjectItem(c, "language_config")};
    for (int r = 0; r < 2; r++) {
        cJSON *obj = roots[r];
        if (!obj) continue;
        char k[256];
        snprintf(k, sizeof k, "%s", key);
        char *part = k, *dot;
        while (obj && (dot = strchr(part, '.'))) {
            *dot = 0;
            obj = cJSON_GetObjectItem(obj, part);
            part = dot + 1;
        }
        if (!obj) continue;
        if (value) {
            cJSON *v = cJSON_Parse(value);
            if (cJSON_GetObjectItem(obj, part)) cJSON_ReplaceItemInObject(obj, part, v);
            else cJSON_AddItemToObject(obj, part, v);
        } else {
            cJSON_DeleteItemFromObject(obj, part);
        }
    }
    char *out = cJSON_Print(c);
    tu_write_file(path, out, strlen(out));
    free(out);
    cJSON_Delete(c);
    return dir;
}

/* tokenizer.json with the merges list cut to keep entries (-1: key removed). */
static const char *tokenizer_merges(const char *tag, int keep) {
    const char *dir = model_copy(tag, "tokenizer.json");
    char path[4500];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    char *text = tu_read_file(path, NULL);
    cJSON *t = cJSON_Parse(text);
    free(text);
    cJSON *model = cJSON_GetObjectItem(t, "model");
    if (keep < 0) cJSON_DeleteItemFromObject(model, "merges");
    else {
        cJSON *m = cJSON_GetObjectItem(model, "merges"), *kept = cJSON_CreateArray(), *it = m->child;
        for (int i = 0; i < keep && it; i++, it = it->next) cJSON_AddItemToArray(kept, cJSON_Duplicate(it, 1));
        cJSON_ReplaceItemInObject(model, "merges", kept);
    }
    char *out = cJSON_PrintUnformatted(t);
    tu_write_file(path, out, strlen(out));
    free(out);
    cJSON_Delete(t);
    return dir;
}

static void test_models(void) {
    const char *m = model_golden, *img = image_golden;

    /* truncated checkpoints: inside the data, inside the header, shorter than the length */
    const char *d = model_copy("trunc-data", "model.safetensors");
    truncate_file(d, "model.safetensors", 1000000);
    ocr_fails("truncated data", d, img, NULL, NEEDLES("model.safetensors", "byte offset", "end of the file"), NULL);
    d = model_copy("trunc-header", "model.safetensors");
    truncate_file(d, "model.safetensors", 100);
    ocr_fails("truncated header", d, img, NULL, NEEDLES("model.safetensors", "header"), NULL);
    d = model_copy("trunc-len", "model.safetensors");
    truncate_file(d, "model.safetensors", 4);
    ocr_fails("truncated length", d, img, NULL, NEEDLES("model.safetensors", "8-byte"), NULL);
    d = model_copy("empty", "model.safetensors");
    truncate_file(d, "model.safetensors", 0);
    ocr_fails("empty checkpoint", d, img, NULL, NEEDLES("model.safetensors"), NULL);

    /* bit flips in the header (length, JSON, names, dtypes, shapes, offsets) */
    static const long header_flips[][2] = {{3, 7}, {7, 6}, {8, 0}, {10, 3}, {25, 1}, {40, 4}, {62, 2},
                                           {75, 0}, {300, 5}, {2001, 1}, {9000, 3}, {20200, 6}};
    for (size_t i = 0; i < sizeof header_flips / sizeof header_flips[0]; i++) {
        d = model_copy("flip", "model.safetensors");
        flip_bit(d, "model.safetensors", header_flips[i][0], (int)header_flips[i][1]);
        char what[64];
        snprintf(what, sizeof what, "bit flip at byte %ld", header_flips[i][0]);
        ocr_fails(what, d, img, NULL, NEEDLES("model.safetensors"), NULL);
    }

    /* bit flips in the weights cannot be detected (no checksums in safetensors): they
     * may make NaN or Inf logits, but the run must complete or fail cleanly */
    d = model_copy("dataflip", "model.safetensors");
    for (long off = 21000; off < 36000000; off += 1500007) flip_bit(d, "model.safetensors", off | 1, 6);
    new_sandbox("dataflip");
    const char *argv[] = {"dsocr", "-q", "-t", "1", "-m", d, "--mode", "tiny", "--max-tokens", "4", "-o", sb_out,
                          img, NULL};
    run_opts(argv, sb_cwd, NULL);
    CHECK_MSG(R.exited && R.code < 128, "weight bit flips: exit %d signal %d: %s", R.code, R.sig, R.err);
    if (R.code == 0) CHECK(exists(sb_out, "result.json") && exists(sb_out, "result.mmd"));
    else expect_failure("weight bit flips", NULL);

    /* wrong dtypes and shapes */
    d = model_copy("i32", "model.safetensors");
    edit_safetensors(d, edit_dtype_i32);
    ocr_fails("integer dtype", d, img, NULL, NEEDLES(DOWN, "I32"), NULL);
    d = model_copy("f8", "model.safetensors");
    edit_safetensors(d, edit_dtype_f8);
    ocr_fails("fp8 dtype", d, img, NULL, NEEDLES(DOWN, "F8_E4M3"), NULL);
    d = model_copy("shape", "model.safetensors");
    edit_safetensors(d, edit_shape_swapped);
    ocr_fails("swapped shape", d, img, NULL, NEEDLES(DOWN, "[192, 64]"), NULL);
    d = model_copy("rank", "model.safetensors");
    edit_safetensors(d, edit_shape_rank);
    ocr_fails("wrong rank", d, img, NULL, NEEDLES("model.image_newline"), NULL);
    d = model_copy("missing", "model.safetensors");
    edit_safetensors(d, edit_missing);
    ocr_fails("missing tensor", d, img, NULL, NEEDLES("model.view_seperator", "missing"), NULL);

    /* config: missing, absurd and malformed values */
    ocr_fails("zero heads", config_with("heads0", "num_attention_heads", "0"), img, NULL,
              NEEDLES("config.json", "num_attention_heads"), NULL);
    ocr_fails("negative size", config_with("hneg", "hidden_size", "-64"), img, NULL,
              NEEDLES("config.json", "hidden_size", "-64"), NULL);
    ocr_fails("huge dim", config_with("hhuge", "hidden_size", "1073741824"), img, NULL,
              NEEDLES("config.json", "hidden_size"), NULL);
    ocr_fails("huge vocab", config_with("vhuge", "vocab_size", "1e12"), img, NULL,
              NEEDLES("config.json", "vocab_size"), NULL);
    ocr_fails("many layers", config_with("layers", "num_hidden_layers", "100000"), img, NULL,
              NEEDLES("config.json", "num_hidden_layers"), NULL);
    ocr_fails("missing key", config_with("nohidden", "hidden_size", NULL), img, NULL,
              NEEDLES("config.json", "hidden_size"), NULL);
    ocr_fails("string value", config_with("str", "num_hidden_layers", "\"three\""), img, NULL,
              NEEDLES("config.json", "num_hidden_layers"), NULL);
    ocr_fails("vision zero heads", config_with("samheads", "vision_config.width.sam_vit_b.heads", "0"), img, NULL,
              NEEDLES("config.json", "sam_vit_b.heads"), NULL);
    ocr_fails("vision huge width", config_with("clipw", "vision_config.width.clip-l-14-224.width", "268435456"), img,
              NULL, NEEDLES("config.json", "clip-l-14-224.width"), NULL);
    d = model_copy("badjson", "config.json");
    truncate_file(d, "config.json", 50);
    ocr_fails("truncated config", d, img, NULL, NEEDLES("config.json", "JSON"), NULL);

    /* tokenizer.json without (some of) its merges */
    ocr_fails("no merges", tokenizer_merges("merges-none", 0), img, NULL, NEEDLES("tokenizer.json", "merges"), NULL);
    ocr_fails("half the merges", tokenizer_merges("merges-half", 60000), img, NULL,
              NEEDLES("tokenizer.json", "merges", "truncated"), NULL);
    ocr_fails("merges key gone", tokenizer_merges("merges-key", -1), img, NULL, NEEDLES("tokenizer.json", "merges"),
              NULL);
    (void)m;
}

/* ---- images ---------------------------------------------------------------------- */

static uint32_t crc_table[256];
static uint32_t crc32_of(const unsigned char *p, size_t n) {
    if (!crc_table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            crc_table[i] = c;
        }
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 255] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static void put32(FILE *f, uint32_t v) {
    for (int i = 3; i >= 0; i--) fputc((int)((v >> (8 * i)) & 255), f);
}
static void chunk(FILE *f, const char *type, const unsigned char *data, uint32_t n) {
    unsigned char *b = malloc(n + 4);
    memcpy(b, type, 4);
    if (n) memcpy(b + 4, data, n);
    put32(f, n);
    fwrite(b, 1, n + 4, f);
    put32(f, crc32_of(b, n + 4));
    free(b);
}

/* An RGB PNG of w x h (grey) with stored (uncompressed) deflate blocks; rows_in_data
 * rows are actually present (fewer than h: a header that promises more than it holds). */
static void write_png(const char *path, uint32_t w, uint32_t h, uint32_t rows_in_data) {
    FILE *f = fopen(path, "wb");
    fwrite("\x89PNG\r\n\x1a\n", 1, 8, f);
    unsigned char ihdr[13] = {0};
    for (int i = 0; i < 4; i++) ihdr[i] = (unsigned char)(w >> (24 - 8 * i));
    for (int i = 0; i < 4; i++) ihdr[4 + i] = (unsigned char)(h >> (24 - 8 * i));
    ihdr[8] = 8;
    ihdr[9] = 2;
    chunk(f, "IHDR", ihdr, 13);
    size_t row = 1 + (size_t)w * 3, raw_n = row * rows_in_data;
    unsigned char *raw = malloc(raw_n ? raw_n : 1);
    memset(raw, 0x80, raw_n);
    for (size_t r = 0; r < rows_in_data; r++) raw[r * row] = 0;   /* filter none */
    /* zlib: header, stored blocks of <= 65535 bytes, adler32 */
    size_t nblocks = raw_n / 65535 + 1, z_n = 2 + raw_n + 5 * nblocks + 4;
    unsigned char *z = malloc(z_n), *q = z;
    *q++ = 0x78;
    *q++ = 0x01;
    size_t off = 0;
    for (size_t b = 0; b < nblocks; b++) {
        size_t len = raw_n - off > 65535 ? 65535 : raw_n - off;
        *q++ = b + 1 == nblocks;
        *q++ = (unsigned char)(len & 255);
        *q++ = (unsigned char)(len >> 8);
        *q++ = (unsigned char)(~len & 255);
        *q++ = (unsigned char)((~len >> 8) & 255);
        memcpy(q, raw + off, len);
        q += len;
        off += len;
    }
    uint32_t a = 1, bb = 0;
    for (size_t i = 0; i < raw_n; i++) {
        a = (a + raw[i]) % 65521;
        bb = (bb + a) % 65521;
    }
    uint32_t adler = bb << 16 | a;
    for (int i = 3; i >= 0; i--) *q++ = (unsigned char)(adler >> (8 * i));
    chunk(f, "IDAT", z, (uint32_t)(q - z));
    chunk(f, "IEND", NULL, 0);
    fclose(f);
    free(raw);
    free(z);
}

/* A valid JPEG whose SOF0 says 65000 x 65000: a header bomb (4.2e9 pixels). */
static void write_jpeg_bomb(const char *path) {
    uint8_t rgb[16 * 16 * 3];
    memset(rgb, 200, sizeof rgb);
    uint8_t *jpg = NULL;
    size_t n = 0;
    dsocr_error err;
    CHECK(ds_encode_jpeg(rgb, 16, 16, 90, &jpg, &n, &err) == DSOCR_OK);
    for (size_t i = 2; i + 9 < n; i++)
        if (jpg[i] == 0xff && jpg[i + 1] == 0xc0) {   /* SOF0: len(2) precision(1) height(2) width(2) */
            jpg[i + 5] = 0xfd; jpg[i + 6] = 0xe8;
            jpg[i + 7] = 0xfd; jpg[i + 8] = 0xe8;
            break;
        }
    tu_write_file(path, jpg, n);
    free(jpg);
}

/* A valid image that still must be handled in full: exit 0 and every output file. */
static void ocr_succeeds(const char *what, const char *input, const char *mode) {
    new_sandbox("ok");
    const char *argv[] = {"dsocr", "-q", "-t", "1", "-m", model_golden, "--mode", mode, "--max-tokens", "2", "-o",
                          sb_out, input, NULL};
    run_opts(argv, sb_cwd, NULL);
    CHECK_MSG(R.exited && R.code == 0, "%s: exit %d signal %d: %s", what, R.code, R.sig, R.err);
    CHECK_MSG(exists(sb_out, "result.json") && exists(sb_out, "result.mmd") && exists(sb_out, "result_ori.mmd") &&
              exists(sb_out, "result_with_boxes.png"), "%s: outputs incomplete", what);
    char first[4600];
    CHECK_MSG(count_files(sb_cwd, first, sizeof first) == 0, "%s: wrote %s outside -o", what, first);
}

static void test_images(void) {
    char path[4300];
    snprintf(path, sizeof path, "%s/zero.png", work);
    write_png(path, 0, 0, 0);
    ocr_fails("0x0 png", model_golden, path, NULL, NEEDLES("zero.png"), NULL);
    snprintf(path, sizeof path, "%s/bomb.png", work);
    write_png(path, 100000, 100000, 1);
    ocr_fails("png bomb", model_golden, path, NULL, NEEDLES("bomb.png", "100000x100000", "limit"), NULL);
    snprintf(path, sizeof path, "%s/bomb.jpg", work);
    write_jpeg_bomb(path);
    ocr_fails("jpeg bomb", model_golden, path, NULL, NEEDLES("bomb.jpg", "65000"), NULL);
    snprintf(path, sizeof path, "%s/cut.png", work);
    write_png(path, 300, 200, 20);   /* the data ends after 20 rows */
    ocr_fails("short png", model_golden, path, NULL, NEEDLES("cut.png"), NULL);

    /* 1x1 and 1x100000 are valid images: upstream pads them (a line too thin for the
     * view keeps one pixel column); they must complete, with every output file. */
    snprintf(path, sizeof path, "%s/one.png", work);
    write_png(path, 1, 1, 1);
    ocr_succeeds("1x1", path, "tiny");
    snprintf(path, sizeof path, "%s/thin.png", work);
    write_png(path, 1, 100000, 100000);
    ocr_succeeds("1x100000 tiny", path, "tiny");
    ocr_succeeds("1x100000 gundam", path, "gundam");
}

/* ---- PDFs ------------------------------------------------------------------------ */

/* n pages of 144 x 72 pt; the last is `big_last` pt square when non-zero; encrypted
 * with a user password when encrypt is set. */
static int write_pdf(const char *path, int n_pages, int encrypt, float big_last) {
    fz_context *ctx = fz_new_context(NULL, NULL, FZ_STORE_DEFAULT);
    int ok = 0;
    fz_try(ctx) {
        pdf_document *doc = pdf_create_document(ctx);
        for (int i = 0; i < n_pages; i++) {
            const char *content = "0 0 1 rg 0 0 72 72 re f";
            fz_buffer *contents = fz_new_buffer_from_copied_data(ctx, (const unsigned char *)content, strlen(content));
            pdf_obj *resources = pdf_new_dict(ctx, doc, 1);
            fz_rect box = i == n_pages - 1 && big_last > 0 ? fz_make_rect(0, 0, big_last, big_last)
                                                           : fz_make_rect(0, 0, 144, 72);
            pdf_obj *page = pdf_add_page(ctx, doc, box, 0, resources, contents);
            pdf_insert_page(ctx, doc, -1, page);
            pdf_drop_obj(ctx, page);
            pdf_drop_obj(ctx, resources);
            fz_drop_buffer(ctx, contents);
        }
        pdf_write_options opts = pdf_default_write_options;
        if (encrypt) {
            opts.do_encrypt = PDF_ENCRYPT_AES_128;
            strcpy(opts.upwd_utf8, "secret");
            strcpy(opts.opwd_utf8, "owner");
            opts.permissions = -1;
        }
        pdf_save_document(ctx, doc, path, &opts);
        pdf_drop_document(ctx, doc);
        ok = 1;
    }
    fz_catch(ctx) fprintf(stderr, "write_pdf: %s\n", fz_caught_message(ctx));
    fz_drop_context(ctx);
    return ok;
}

static void test_pdfs(void) {
    char path[4300];
    snprintf(path, sizeof path, "%s/garbage.pdf", work);
    tu_write_file(path, "%PDF-1.7\n\x01\x02 this is not a PDF body at all \xff\xfe\n", 45);
    ocr_fails("corrupt pdf", model_golden, path, NULL, NEEDLES("garbage.pdf"), NULL);
    snprintf(path, sizeof path, "%s/locked.pdf", work);
    CHECK(write_pdf(path, 2, 1, 0));
    ocr_fails("encrypted pdf", model_golden, path, NULL, NEEDLES("locked.pdf", "password"), NULL);
    snprintf(path, sizeof path, "%s/empty.pdf", work);
    CHECK(write_pdf(path, 0, 0, 0));
    ocr_fails("zero-page pdf", model_golden, path, NULL, NEEDLES("empty.pdf", "page"), NULL);
    char cut[4300];
    snprintf(cut, sizeof cut, "%s/cut.pdf", work);
    snprintf(path, sizeof path, "%s/full.pdf", work);
    CHECK(write_pdf(path, 2, 0, 0));
    sh("head -c 20 %s > %s", path, cut);   /* (a cut MuPDF can repair is a valid PDF) */
    ocr_fails("truncated pdf", model_golden, cut, NULL, NEEDLES("cut.pdf"), NULL);
    /* page 1 is fine and its overlay gets written; page 2 is over the pixel limit: the
     * input fails and page 1's files must go too */
    snprintf(path, sizeof path, "%s/second-page-huge.pdf", work);
    CHECK(write_pdf(path, 2, 0, 14000));
    ocr_fails("pdf page 2 too big", model_golden, path, NULL, NEEDLES("second-page-huge.pdf", "page 2"), NULL);
}

/* ---- prompts, limits and output folders ---------------------------------------------- */

static void test_prompts_and_limits(void) {
    const char *img = image_golden;
    ocr_fails("non-UTF-8 prompt", model_golden, img, NEEDLES("--prompt", "<image>\n\xff\xfe"),
              NEEDLES("--prompt", "UTF-8", "offset 8"), NULL);
    ocr_fails("non-UTF-8 ref", model_golden, img, NEEDLES("--task", "locate", "--ref", "ab\xc3("),
              NEEDLES("--ref", "UTF-8"), NULL);
    /* 12,000 words: over max_position_embeddings (8192) before any compute */
    size_t n = 12000 * 3 + 16;
    char *longp = malloc(n), *w = longp + sprintf(longp, "<image>\n");
    for (int i = 0; i < 12000; i++) w += sprintf(w, " go");
    ocr_fails("prompt over the context", model_golden, img, NEEDLES("--prompt", longp),
              NEEDLES("prompt is", "max_position_embeddings", "8192"), NULL);
    free(longp);
    ocr_fails("absurd max tokens", model_golden, img, NEEDLES("--max-tokens", "1048576"),
              NEEDLES("1,048,576"), NULL);
    ocr_fails("max tokens out of range", model_golden, img, NEEDLES("--max-tokens", "99999999"),
              NEEDLES("--max-tokens"), NULL);

    /* the memory guard: at load (weights alone are 35 MiB) and per request (KV cache) */
    ocr_fails("max-memory below the weights", model_golden, img, NEEDLES("--max-memory", "20M"),
              NEEDLES("loading", "tiny-model", "--max-memory", "20 MiB"), NULL);
    ocr_fails("max-memory below the KV cache", model_golden, img,
              NEEDLES("--max-memory", "1G", "--max-tokens", "1000000"),
              NEEDLES("KV cache", "--max-tokens (now 1000000)", "1.00 GiB"), NULL);
    ocr_fails("max-memory unparsable", model_golden, img, NEEDLES("--max-memory", "12 parsecs"),
              NEEDLES("--max-memory"), NULL);
}

static void test_output_dirs(void) {
    const char *img = image_golden;
    /* -o below a regular file */
    new_sandbox("notdir");
    char file[4400], out[4500];
    snprintf(file, sizeof file, "%s/plain-file", sandbox);
    tu_write_file(file, "x", 1);
    snprintf(out, sizeof out, "%s/sub", file);
    const char *argv1[] = {"dsocr", "-q", "-t", "1", "-m", model_golden, "--mode", "tiny", "--max-tokens", "2",
                           "-o", out, img, NULL};
    run_opts(argv1, sb_cwd, NULL);
    unlink(file);
    expect_failure("-o under a file", NEEDLES("-o", "plain-file/sub", "Not a directory"));

    /* a folder without write permission (root drops to nobody, so permissions apply) */
    new_sandbox("readonly");
    mkdir(sb_out, 0555);
    sb_out_made = 0;
    chmod(sandbox, 0777);
    chmod(sb_cwd, 0777);
    child_opts nobody = {.as_nobody = 1};
    const char *argv2[] = {"dsocr", "-q", "-t", "1", "-m", model_golden, "--mode", "tiny", "--max-tokens", "2",
                           "-o", sb_out, img, NULL};
    run_opts(argv2, sb_cwd, &nobody);
    expect_failure("read-only -o", NEEDLES("-o", "cannot write", "Permission denied"));
    rmdir(sb_out);

    /* a full disk: a 64 KiB tmpfs (private mount namespace) takes the small files but
     * not the overlay PNG; without mounts, RLIMIT_FSIZE makes the same write fail */
    new_sandbox("full");
    char mnt[4400];
    snprintf(mnt, sizeof mnt, "%s/disk", sandbox);
    mkdir(mnt, 0777);
    int mounted = unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
                  mount("tmpfs", mnt, "tmpfs", 0, "size=64k") == 0;
    const char *big = tu_golden("images/square_pattern_1300x1250.png");   /* a ~1 MB overlay */
    snprintf(out, sizeof out, "%s/out", mounted ? mnt : sandbox);
    const char *argv3[] = {"dsocr", "-q", "-t", "1", "-m", model_golden, "--mode", "tiny", "--max-tokens", "2",
                           "-o", out, big, NULL};
    if (mounted) {
        run_opts(argv3, sb_cwd, NULL);
        expect_failure("full disk (tmpfs)", NEEDLES("result_with_boxes.png", "No space left on device"));
        umount2(mnt, MNT_DETACH);
    } else {
        fprintf(stderr, "test_badinput: tmpfs mount refused (%s); full disk by RLIMIT_FSIZE only\n", strerror(errno));
    }
    new_sandbox("fsize");
    snprintf(out, sizeof out, "%s/out", sandbox);
    const char *argv4[] = {"dsocr", "-q", "-t", "1", "-m", model_golden, "--mode", "tiny", "--max-tokens", "2",
                           "-o", out, big, NULL};
    child_opts small = {.fsize = 64 * 1024};
    run_opts(argv4, sb_cwd, &small);
    expect_failure("file size limit", NEEDLES("result_with_boxes.png", "File too large"));

    /* names with "..": inputs named "..png", "..a.png", "a..b.png" and reached through
     * "sub/../": every output lands in a plain folder inside -o */
    new_sandbox("dots");
    char in[4400];
    snprintf(in, sizeof in, "%s/in", sandbox);
    mkdir(in, 0777);
    sh("mkdir -p %s/sub && cp %s %s/..png && cp %s %s/..a.png && cp %s '%s/a..b.png'", in, img, in, img, in, img, in);
    char via[4500];
    snprintf(via, sizeof via, "%s/sub/../a..b.png", in);
    const char *argv5[] = {"dsocr", "-q", "-t", "1", "-m", model_golden, "--mode", "tiny", "--max-tokens", "2",
                           "-o", sb_out, in, via, NULL};
    run_opts(argv5, sb_cwd, NULL);
    CHECK_MSG(R.exited && R.code == 0, "dots: exit %d: %s", R.code, R.err);
    /* hidden inputs (a leading '.') are not collected from a folder: a..b.png twice */
    char first[4600];
    int n_out = count_files(sb_out, first, sizeof first), n_all = count_files(sandbox, first, sizeof first);
    CHECK_MSG(n_all == n_out + 3, "dots: %d files in the sandbox, %d in -o (+3 inputs)", n_all, n_out);
    DIR *d = opendir(sb_out);
    int folders = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        folders++;
        CHECK_MSG(ds_output_name_ok(e->d_name) && exists(sb_out, e->d_name), "dots: output folder \"%s\"", e->d_name);
        char sub[4600];
        snprintf(sub, sizeof sub, "%s/%s", sb_out, e->d_name);
        CHECK_MSG(exists(sub, "result.json"), "dots: %s incomplete", sub);
    }
    if (d) closedir(d);
    CHECK_EQ_INT(folders, 2);
    /* a hidden input given by name gets a plain folder name too */
    new_sandbox("dots2");
    snprintf(via, sizeof via, "%s/..png", in);
    const char *argv6[] = {"dsocr", "-q", "-t", "1", "-m", model_golden, "--mode", "tiny", "--max-tokens", "2",
                           "-o", sb_out, via, img, NULL};
    run_opts(argv6, sb_cwd, NULL);
    CHECK_MSG(R.exited && R.code == 0, "dots2: exit %d: %s", R.code, R.err);
    char sub[4600];
    snprintf(sub, sizeof sub, "%s/_-001", sb_out);
    CHECK_MSG(exists(sub, "result.json"), "dots2: ..png's output is not in %s", sub);
}

/* ---- Ctrl-C in a batch ---------------------------------------------------------------- */

static void test_interrupt(void) {
    new_sandbox("sigint");
    const char *a = tu_golden("images/small_text_300x200.png");
    char b[4400];
    snprintf(b, sizeof b, "%s/b.png", sandbox);
    sh("cp %s %s", tu_golden("images/rgba_pattern_640x640.png"), b);
    const char *argv[] = {"dsocr", "-t", "1", "-m", model_golden, "--mode", "tiny", "--max-tokens", "800",
                          "--no-loop-detect", "-o", sb_out, a, b, NULL};
    char err_path[4400], first_json[4500];
    snprintf(err_path, sizeof err_path, "%s/stderr-sigint.txt", work);
    snprintf(first_json, sizeof first_json, "%s/small_text_300x200-001/result.json", sb_out);
    pid_t pid = spawn(argv, sb_cwd, NULL, err_path);
    struct stat st;
    int seen = 0;
    for (int i = 0; i < 60000 && !seen; i++) {   /* up to 60 s */
        seen = stat(first_json, &st) == 0;
        if (!seen) usleep(1000);
    }
    CHECK_MSG(seen, "the first input never finished");
    usleep(300 * 1000);   /* the second input is generating (800 tokens take seconds) */
    kill(pid, SIGINT);
    collect(pid, err_path);
    CHECK_MSG(R.exited && R.code == 130, "Ctrl-C: exit %d signal %d: %s", R.code, R.sig, R.err);
    CHECK_MSG(strstr(R.err, "2 inputs: 1 done, 0 failed, 0 skipped, interrupted in ") && strstr(R.err, "b.png") &&
              strstr(R.err, "(its partial outputs were removed), 0 not started"), "summary: %s", R.err);
    char dir_a[4500], dir_b[4500];
    snprintf(dir_a, sizeof dir_a, "%s/small_text_300x200-001", sb_out);
    snprintf(dir_b, sizeof dir_b, "%s/b-002", sb_out);
    CHECK(exists(dir_a, "result.json") && exists(dir_a, "result.mmd") && exists(dir_a, "result_ori.mmd") &&
          exists(dir_a, "result_with_boxes.png"));
    char first[4600] = "";
    CHECK_MSG(count_files(dir_b, first, sizeof first) == 0, "the interrupted input left %s", first);
    CHECK_MSG(count_files(sb_cwd, first, sizeof first) == 0, "wrote %s outside -o", first);
}

int main(void) {
    snprintf(model_golden, sizeof model_golden, "%s", tu_golden("tiny-model"));
    snprintf(image_golden, sizeof image_golden, "%s", tu_golden("images/small_text_300x200.png"));
    snprintf(work, sizeof work, "%s", tu_tmpdir("badinput"));
    chmod(work, 0777);   /* the read-only case runs as nobody */
    double t0 = (double)clock();
    test_models();
    test_images();
    test_pdfs();
    test_prompts_and_limits();
    test_output_dirs();
    test_interrupt();
    (void)t0;
    sh("rm -rf %s", work);
    return tu_done("test_badinput");
}
