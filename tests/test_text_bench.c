/* Encode throughput (MB/s) on generated English and CJK text, plus the
 * tokenizer.json load time. Not a test: `cmake --build B --target bench_text`,
 * then `B/tests/bench_text MODEL_DIR` (default: the golden tiny model). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "text/tokenizer.h"
#include "text/utf8.h"

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* About n bytes of English-like prose: common words, capitals, punctuation, numbers, newlines. */
static char *english(size_t n, size_t *len) {
    static const char *words[] = {
        "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on", "not",
        "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "had", "they", "you", "were",
        "document", "recognition", "optical", "character", "model", "table", "figure", "results", "performance",
        "compression", "vision", "tokens", "encoder", "decoder", "language", "accuracy", "benchmark", "layout",
        "paragraph", "section", "approximately", "significantly", "representation", "information", "DeepSeek",
        "transformer", "attention", "resolution", "throughput", "efficient", "algorithm", "experiment", "dataset"};
    size_t nw = sizeof words / sizeof words[0];
    char *s = malloc(n + 64);
    size_t o = 0;
    uint64_t seed = 1;
    int start = 1;
    while (o < n) {
        uint64_t r = rng(&seed);
        const char *w = words[r % nw];
        if (!start) s[o++] = ' ';
        if (r % 97 == 0) o += (size_t)sprintf(s + o, "%u", (unsigned)(r >> 40) % 100000);
        else {
            size_t l = strlen(w);
            memcpy(s + o, w, l);
            if (start && s[o] >= 'a' && s[o] <= 'z') s[o] -= 32;
            o += l;
        }
        start = 0;
        if (r % 13 == 0) s[o++] = ',';
        if (r % 17 == 0) { s[o++] = '.'; start = 1; }
        if (r % 211 == 0) { s[o++] = '\n'; s[o++] = '\n'; start = 1; }
    }
    *len = o;
    return s;
}

/* About n bytes of CJK: Han characters (Zipf-ish), kana, full-width punctuation, digits. */
static char *cjk(size_t n, size_t *len) {
    char *s = malloc(n + 64);
    size_t o = 0;
    uint64_t seed = 2;
    while (o < n) {
        uint64_t r = rng(&seed);
        uint32_t cp;
        int kind = (int)(r % 100);
        if (kind < 70) cp = 0x4E00 + (uint32_t)(((r >> 8) % 3000) * ((r >> 20) % 3000) / 3000);  /* skewed to common */
        else if (kind < 85) cp = 0x3041 + (uint32_t)((r >> 8) % 86);
        else if (kind < 92) cp = (r >> 8) & 1 ? 0x3002 : 0xFF0C;
        else if (kind < 96) cp = '0' + (uint32_t)((r >> 8) % 10);
        else cp = (r >> 8) % 3 == 0 ? '\n' : 0x3001;
        o += ds_utf8_encode(cp, (uint8_t *)s + o);
    }
    *len = o;
    return s;
}

static void run(ds_tokenizer *tok, const char *name, const char *text, size_t len) {
    ds_ids ids = {0};
    dsocr_error err;
    /* one cold pass (empty cache) and warm passes for >= 1 s */
    double t0 = seconds();
    if (ds_tokenizer_encode(tok, text, len, &ids, &err)) { fprintf(stderr, "%s\n", err.message); return; }
    double cold = seconds() - t0;
    size_t n_tok = ids.n, bytes = 0;
    t0 = seconds();
    double t = t0;
    while (t - t0 < 1.0) {
        ids.n = 0;
        ds_tokenizer_encode(tok, text, len, &ids, NULL);
        bytes += len;
        t = seconds();
    }
    printf("%-8s %8zu bytes %8zu tokens  first pass %7.2f MB/s  steady %7.2f MB/s  (%.2f bytes/token)\n", name, len, n_tok,
           len / cold / 1e6, bytes / (t - t0) / 1e6, (double)len / (double)n_tok);
    ds_ids_free(&ids);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : DSOCR_GOLDEN_DIR "/tiny-model";
    ds_tokenizer *tok;
    dsocr_error err;
    double t0 = seconds();
    if (ds_tokenizer_load(dir, &tok, &err)) { fprintf(stderr, "%s\n", err.message); return 1; }
    printf("load %s: %.3f s\n", dir, seconds() - t0);
    size_t len;
    char *en = english(4 << 20, &len);
    run(tok, "English", en, len);
    free(en);
    char *zh = cjk(4 << 20, &len);
    run(tok, "CJK", zh, len);
    free(zh);
    ds_tokenizer_free(tok);
    return 0;
}
