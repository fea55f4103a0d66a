/* Helper of the node cross-check (tests/node/crosscheck.mjs): reads JSON lines
 * {"text": "..."} on stdin and prints, per line, "OK id id ..." when
 * decode(encode(text)) == text and the streaming decode adds up to the same
 * text, "RT id id ..." when it does not, or "ERR message".
 *   test_text_jsonl MODEL_DIR < lines.jsonl */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/tokenizer.h"

/* Concatenation of a streaming decode of ids (malloc'd). */
static char *stream_decode(const ds_tokenizer *tok, const ds_ids *ids, size_t *len) {
    ds_token_stream *s;
    if (ds_token_stream_new(tok, 0, &s, NULL)) return NULL;
    size_t cap = 64, n = 0;
    char *acc = malloc(cap);
    for (size_t i = 0; acc && i <= ids->n; i++) {
        const char *chunk;
        size_t m;
        if (i < ids->n ? ds_token_stream_push(s, ids->data[i], &chunk, &m, NULL) : ds_token_stream_flush(s, &chunk, &m, NULL)) {
            free(acc);
            acc = NULL;
            break;
        }
        if (n + m + 1 > cap) {
            cap = 2 * (n + m + 1);
            char *q = realloc(acc, cap);
            if (!q) { free(acc); acc = NULL; break; }
            acc = q;
        }
        memcpy(acc + n, chunk, m);
        n += m;
    }
    ds_token_stream_free(s);
    *len = n;
    return acc;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s MODEL_DIR < lines.jsonl\n", argv[0]); return 2; }
    ds_tokenizer *tok;
    dsocr_error err;
    if (ds_tokenizer_load(argv[1], &tok, &err)) { fprintf(stderr, "%s\n", err.message); return 1; }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        cJSON *j = cJSON_ParseWithLength(line, (size_t)n);
        const cJSON *t = cJSON_GetObjectItem(j, "text");
        if (!cJSON_IsString(t)) {
            printf("ERR bad input line\n");
            cJSON_Delete(j);
            continue;
        }
        /* cJSON strings stop at NUL: the corpus has none */
        const char *text = t->valuestring;
        size_t len = strlen(text);
        ds_ids ids = {0};
        if (ds_tokenizer_encode(tok, text, len, &ids, &err)) {
            printf("ERR %s\n", err.message);
        } else {
            char *dec = NULL, *str = NULL;
            size_t dlen = 0, slen = 0;
            ds_tokenizer_decode(tok, ids.data, ids.n, 0, &dec, &dlen, NULL);
            str = stream_decode(tok, &ids, &slen);
            int ok = dec && str && dlen == len && slen == len && memcmp(dec, text, len) == 0 && memcmp(str, text, len) == 0;
            fputs(ok ? "OK" : "RT", stdout);
            for (size_t i = 0; i < ids.n; i++) printf(" %d", ids.data[i]);
            putchar('\n');
            free(dec);
            free(str);
        }
        ds_ids_free(&ids);
        cJSON_Delete(j);
    }
    free(line);
    ds_tokenizer_free(tok);
    return 0;
}
