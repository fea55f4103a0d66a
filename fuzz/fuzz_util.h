/* Small helpers shared by the fuzz targets. A broken promise of the API under test
 * (not just a sanitizer finding) aborts, so libFuzzer keeps the input as a crash. */
#ifndef DS_FUZZ_UTIL_H
#define DS_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsocr.h"

#define FUZZ_CHECK(cond)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

/* A failed call must say why: the status is in err, with a non-empty, terminated message. */
static inline void fuzz_check_error(dsocr_status s, const dsocr_error *err) {
    if (s == DSOCR_OK) return;
    FUZZ_CHECK(err->code == s);
    FUZZ_CHECK(memchr(err->message, 0, sizeof err->message) != NULL);
    FUZZ_CHECK(err->message[0] != 0);
}

/* Consumes the input from the front: fixed-size fields first, the rest as payload. */
typedef struct fuzz_reader {
    const uint8_t *p;
    size_t n;
} fuzz_reader;

static inline uint32_t fuzz_u8(fuzz_reader *r) {
    if (!r->n) return 0;
    r->n--;
    return *r->p++;
}

static inline uint32_t fuzz_u16(fuzz_reader *r) {
    uint32_t lo = fuzz_u8(r);
    return lo | fuzz_u8(r) << 8;
}

static inline uint32_t fuzz_u32(fuzz_reader *r) {
    uint32_t lo = fuzz_u16(r);
    return lo | fuzz_u16(r) << 16;
}

/* A malloc'd NUL-terminated copy of data[0..n) (fuzz inputs are not terminated). */
static inline char *fuzz_strndup(const uint8_t *data, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    if (n) memcpy(s, data, n);
    s[n] = 0;
    return s;
}

#endif
