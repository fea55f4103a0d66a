#include "test_util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tu_checks, tu_failures;

int tu_done(const char *name) {
    printf("%s: %d passed, %d failed\n", name, tu_checks - tu_failures, tu_failures);
    return tu_failures ? 1 : 0;
}

static const char *join(const char *base, const char *rel) {
    static char bufs[8][4096];
    static int next;
    char *b = bufs[next++ & 7];
    snprintf(b, sizeof bufs[0], "%s/%s", base, rel);
    return b;
}

const char *tu_golden(const char *rel) {
    struct stat st;
    if (stat(DSOCR_GOLDEN_DIR, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "FATAL: golden fixtures not found at %s (tests must not skip)\n", DSOCR_GOLDEN_DIR);
        exit(2);
    }
    return join(DSOCR_GOLDEN_DIR, rel);
}

const char *tu_source(const char *rel) { return join(DSOCR_SOURCE_DIR, rel); }
const char *tu_build(const char *rel) { return join(DSOCR_BINARY_DIR, rel); }

const char *tu_tmpdir(const char *tag) {
    static char path[4096];
    static int n;
    snprintf(path, sizeof path, "%s/tmp-tests", DSOCR_BINARY_DIR);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/tmp-tests/%s-%d-%d", DSOCR_BINARY_DIR, tag, (int)getpid(), n++);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) return NULL;
    if (mkdir(path, 0777) != 0 && errno != EEXIST) return NULL;
    return path;
}

char *tu_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return NULL; }
    long n = ftell(f);
    if (n < 0) { fclose(f); return NULL; }
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    fclose(f);
    if (buf) { buf[n] = 0; if (size) *size = (size_t)n; }
    return buf;
}

int tu_write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, size, f);
    return (fclose(f) == 0 && w == size) ? 0 : -1;
}

uint64_t tu_rand_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double tu_rand_uniform(uint64_t *s) { return (double)(tu_rand_u64(s) >> 11) * (1.0 / 9007199254740992.0); }

double tu_rand_normal(uint64_t *s) {
    double u1 = tu_rand_uniform(s), u2 = tu_rand_uniform(s);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

double tu_max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || d != d) m = d;
    }
    return m;
}

double tu_max_abs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) if (fabs((double)a[i]) > m) m = fabs((double)a[i]);
    return m;
}
