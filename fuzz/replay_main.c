/* A main() for the fuzz targets outside libFuzzer: runs LLVMFuzzerTestOneInput once
 * per file named on the command line (a directory means every file in it, in name
 * order). The normal gcc build uses it to replay each committed corpus, crash
 * regressions included, as a ctest test (tests/fuzz.cmake), so plain and sanitizer
 * builds both re-check every input found by fuzzing. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "replay: cannot open %s\n", path); return 1; }
    uint8_t *buf = NULL;
    size_t size = 0, cap = 0, got;
    do {
        if (size == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) { free(buf); fclose(f); fprintf(stderr, "replay: out of memory\n"); return 1; }
            buf = nb;
        }
        got = fread(buf + size, 1, cap - size, f);
        size += got;
    } while (got > 0);
    fclose(f);
    /* An exact-size copy, as libFuzzer gives, so sanitizers see any overread. */
    uint8_t *exact = malloc(size ? size : 1);
    if (!exact) { free(buf); return 1; }
    if (size) memcpy(exact, buf, size);
    free(buf);
    LLVMFuzzerTestOneInput(exact, size);
    free(exact);
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir, int *n_run) {
    DIR *d = opendir(dir);
    if (!d) { fprintf(stderr, "replay: cannot list %s\n", dir); return 1; }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int bad = 0;
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) { bad = 1; break; }
            names = nn;
        }
        size_t len = strlen(dir) + strlen(de->d_name) + 2;
        if (!(names[n] = malloc(len))) { bad = 1; break; }
        snprintf(names[n++], len, "%s/%s", dir, de->d_name);
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        if (!bad) { bad |= run_file(names[i]); (*n_run)++; }
        free(names[i]);
    }
    free(names);
    return bad;
}

int main(int argc, char **argv) {
    int bad = 0, n_run = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) { fprintf(stderr, "replay: %s does not exist\n", argv[i]); return 1; }
        if (S_ISDIR(st.st_mode)) bad |= run_dir(argv[i], &n_run);
        else { bad |= run_file(argv[i]); n_run++; }
    }
    if (n_run == 0) { fprintf(stderr, "replay: no inputs\n"); return 1; }
    printf("replay: %d inputs, %s\n", n_run, bad ? "FAILED" : "ok");
    return bad;
}
