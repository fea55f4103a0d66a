/* The output folder (src/ocr/output.c): model text from a stranger's image becomes
 * result.mmd, result_ori.mmd, result.json, a box overlay and figure crops. Each input
 * is one run into a fresh folder inside a scratch parent (on tmpfs when there is
 * one: every file is fsync'ed); afterwards every path in the parent must lie inside
 * the run folder and be a regular file or folder with an expected name (nothing
 * outside it, no links, no leftover temporaries).
 * Input: flags (PDF variant, second page, overlay/crops), W, H (1..32), then the text. */
#include <dirent.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "ocr/output.h"

static char parent[96], run_dir[128];

static void remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            for (struct dirent *de; (de = readdir(d));) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
                char sub[768];
                int n = snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
                if (n > 0 && (size_t)n < sizeof sub) remove_tree(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void cleanup(void) { remove_tree(parent); }

static void setup(void) {
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    if (!base || !*base || strlen(base) > 60) base = "/tmp";
    snprintf(parent, sizeof parent, "%s/dsfuzz-out-XXXXXX", base);
    if (!mkdtemp(parent)) abort();
    atexit(cleanup);
    snprintf(run_dir, sizeof run_dir, "%s/run", parent);
}

static bool digits_then(const char *s, const char *suffix) {
    /* [0-9_]+ followed by suffix: the crop and overlay numbering */
    size_t n = strspn(s, "0123456789_");
    return n > 0 && !strcmp(s + n, suffix);
}

static bool expected_name(const char *rel) {
    static const char *const fixed[] = {"result.mmd", "result_ori.mmd", "result.json", "result_with_boxes.png", "images"};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        if (!strcmp(rel, fixed[i])) return true;
    if (!strncmp(rel, "result_with_boxes_", 18)) return digits_then(rel + 18, ".png");
    if (!strncmp(rel, "images/", 7)) return digits_then(rel + 7, ".jpg");
    return false;
}

/* Every entry under dir (relative names from rel) must be expected, regular or a folder. */
static void check_tree(const char *dir, const char *rel) {
    DIR *d = opendir(dir);
    FUZZ_CHECK(d != NULL);
    for (struct dirent *de; (de = readdir(d));) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char path[768], sub[512];
        int n1 = snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        int n2 = snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", de->d_name);
        FUZZ_CHECK(n1 > 0 && (size_t)n1 < sizeof path && n2 > 0 && (size_t)n2 < sizeof sub);
        struct stat st;
        FUZZ_CHECK(lstat(path, &st) == 0);
        if (!expected_name(sub)) {
            fprintf(stderr, "unexpected output path: %s\n", sub);
            abort();
        }
        FUZZ_CHECK(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode));
        if (S_ISDIR(st.st_mode)) check_tree(path, sub);
    }
    closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!parent[0]) setup();
    fuzz_reader r = {data, size};
    unsigned flags = fuzz_u8(&r);
    int W = (int)fuzz_u8(&r) % 32 + 1, H = (int)fuzz_u8(&r) % 32 + 1;
    int is_pdf = flags & 1;
    ds_output_options opts = ds_output_default_options();
    opts.write_overlay = !(flags & 4);
    opts.write_crops = !(flags & 8);
    uint8_t *rgb = malloc((size_t)W * H * 3);
    if (!rgb) abort();
    for (size_t i = 0; i < (size_t)W * H * 3; i++) rgb[i] = (uint8_t)(i * 31);

    ds_output *o = NULL;
    dsocr_error err;
    dsocr_status s = ds_output_open(run_dir, "../fuzz input.png", is_pdf, &opts, &o, &err);
    FUZZ_CHECK(s == DSOCR_OK);
    int pages = is_pdf && (flags & 2) ? 2 : 1;
    for (int p = 0; p < pages && s == DSOCR_OK; p++) {
        ds_page_output pg = {0};
        pg.index = p * (int)(flags >> 4);
        pg.rgb = (flags & 16) && p ? NULL : rgb;
        pg.width = W;
        pg.height = H;
        pg.text = (const char *)r.p;
        pg.text_len = r.n;
        pg.finish = (dsocr_finish)((flags >> 5) % 3);
        pg.finish_detail = pg.finish == DSOCR_FINISH_LOOP ? "repeated \"x\"\n" : NULL;
        pg.mode = (dsocr_mode)(flags % 5);
        pg.grid_w = pg.grid_h = 1;
        s = ds_output_add_page(o, &pg, &err);
        fuzz_check_error(s, &err);
    }
    if (s == DSOCR_OK) {
        s = ds_output_finish(o, &err);
        fuzz_check_error(s, &err);
        char line[256];
        ds_output_summary(o, line, sizeof line);
    }
    ds_output_free(o);
    free(rgb);

    /* Only the run folder in the parent, and only expected names inside it. */
    DIR *d = opendir(parent);
    FUZZ_CHECK(d != NULL);
    for (struct dirent *de; (de = readdir(d));)
        FUZZ_CHECK(!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || !strcmp(de->d_name, "run"));
    closedir(d);
    check_tree(run_dir, "");
    remove_tree(run_dir);
    return 0;
}
