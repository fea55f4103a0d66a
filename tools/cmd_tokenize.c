/* dsocr tokenize: text -> ids, ids -> text, and an encode benchmark.
 *
 *   dsocr tokenize -m MODEL_DIR TEXT...          one line of ids per TEXT
 *   dsocr tokenize -m MODEL_DIR --decode IDS...  the arguments form one id sequence
 *   dsocr tokenize -m MODEL_DIR [--decode]       no TEXT: one input per stdin line
 *   dsocr tokenize -m MODEL_DIR --bench FILE     encode throughput in MB/s
 *
 * Ids are printed space-separated (encode(text, add_special_tokens=False), no
 * BOS). --decode keeps special tokens unless --skip-special is given. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "text/tokenizer.h"

static const char USAGE[] =
    "usage: dsocr tokenize -m MODEL_DIR [--decode [--skip-special]] [TEXT...]\n"
    "       dsocr tokenize -m MODEL_DIR --bench FILE\n";

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int encode_line(ds_tokenizer *tok, const char *text, size_t len) {
    ds_ids ids = {0};
    dsocr_error err;
    if (ds_tokenizer_encode(tok, text, len, &ids, &err)) {
        fprintf(stderr, "dsocr tokenize: %s\n", err.message);
        ds_ids_free(&ids);
        return 1;
    }
    for (size_t i = 0; i < ids.n; i++) printf(i ? " %d" : "%d", ids.data[i]);
    putchar('\n');
    ds_ids_free(&ids);
    return 0;
}

/* Parses ids separated by spaces, tabs or commas (brackets ignored) onto ids. */
static int parse_ids(const char *s, ds_ids *ids) {
    while (*s) {
        if (strchr(" \t,[]\r\n", *s)) { s++; continue; }
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v > INT32_MAX) {
            fprintf(stderr, "dsocr tokenize: --decode: \"%.20s\" is not a token id\n", s);
            return 1;
        }
        if (ds_ids_push(ids, (int32_t)v, NULL)) { fprintf(stderr, "dsocr tokenize: out of memory\n"); return 1; }
        s = end;
    }
    return 0;
}

static int decode_ids(const ds_tokenizer *tok, const ds_ids *ids, int skip_special) {
    char *text;
    size_t len;
    dsocr_error err;
    if (ds_tokenizer_decode(tok, ids->data, ids->n, skip_special, &text, &len, &err)) {
        fprintf(stderr, "dsocr tokenize: %s\n", err.message);
        return 1;
    }
    fwrite(text, 1, len, stdout);
    putchar('\n');
    free(text);
    return 0;
}

static int bench(ds_tokenizer *tok, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "dsocr tokenize: %s: %s\n", path, strerror(errno)); return 1; }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc(size > 0 ? (size_t)size : 1);
    if (!text || size < 0 || fread(text, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "dsocr tokenize: %s: cannot read\n", path);
        fclose(f);
        free(text);
        return 1;
    }
    fclose(f);
    ds_ids ids = {0};
    dsocr_error err;
    size_t bytes = 0, tokens = 0;
    int runs = 0;
    double t0 = seconds(), t = t0;
    while (runs < 1 || t - t0 < 1.0) {     /* repeat for at least a second */
        ids.n = 0;
        if (ds_tokenizer_encode(tok, text, (size_t)size, &ids, &err)) {
            fprintf(stderr, "dsocr tokenize: %s: %s\n", path, err.message);
            ds_ids_free(&ids);
            free(text);
            return 1;
        }
        bytes += (size_t)size;
        tokens += ids.n;
        runs++;
        t = seconds();
    }
    printf("%s: %ld bytes, %zu tokens, %d runs, %.2f MB/s, %.0f tokens/s\n", path, size, ids.n, runs,
           bytes / (t - t0) / 1e6, tokens / (t - t0));
    ds_ids_free(&ids);
    free(text);
    return 0;
}

int dsocr_cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *bench_file = NULL;
    int decode = 0, skip_special = 0, first_text = argc;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) {
            if (++i >= argc) { fprintf(stderr, "dsocr tokenize: -m needs a model directory\n%s", USAGE); return 2; }
            model = argv[i];
        } else if (!strcmp(argv[i], "--decode")) {
            decode = 1;
        } else if (!strcmp(argv[i], "--skip-special")) {
            skip_special = 1;
        } else if (!strcmp(argv[i], "--bench")) {
            if (++i >= argc) { fprintf(stderr, "dsocr tokenize: --bench needs a file\n%s", USAGE); return 2; }
            bench_file = argv[i];
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(USAGE, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--")) {
            first_text = i + 1;
            break;
        } else if (argv[i][0] == '-' && argv[i][1] && !decode) {
            fprintf(stderr, "dsocr tokenize: unknown option %s\n%s", argv[i], USAGE);
            return 2;
        } else {
            first_text = i;
            break;
        }
    }
    if (!model) { fprintf(stderr, "dsocr tokenize: -m MODEL_DIR is required\n%s", USAGE); return 2; }

    ds_tokenizer *tok;
    dsocr_error err;
    if (ds_tokenizer_load(model, &tok, &err)) {
        fprintf(stderr, "dsocr tokenize: %s\n", err.message);
        return 1;
    }
    int rc = 0;
    if (bench_file) {
        rc = bench(tok, bench_file);
    } else if (first_text < argc) {
        if (decode) {
            ds_ids ids = {0};
            for (int i = first_text; i < argc && !rc; i++) rc = parse_ids(argv[i], &ids);
            if (!rc) rc = decode_ids(tok, &ids, skip_special);
            ds_ids_free(&ids);
        } else {
            for (int i = first_text; i < argc && !rc; i++) rc = encode_line(tok, argv[i], strlen(argv[i]));
        }
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while (!rc && (n = getline(&line, &cap, stdin)) >= 0) {
            if (n > 0 && line[n - 1] == '\n') n--;
            if (decode) {
                ds_ids ids = {0};
                line[n] = 0;
                rc = parse_ids(line, &ids);
                if (!rc) rc = decode_ids(tok, &ids, skip_special);
                ds_ids_free(&ids);
            } else {
                rc = encode_line(tok, line, (size_t)n);
            }
        }
        free(line);
    }
    fflush(stdout);
    ds_tokenizer_free(tok);
    return rc;
}
