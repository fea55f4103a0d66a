/* Minimal test harness: CHECK macros count failures; tu_done() prints a summary
 * and returns the exit code. Tests assert real values. */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern int tu_checks, tu_failures;

#define CHECK(cond) do { tu_checks++; if (!(cond)) { tu_failures++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECK_MSG(cond, ...) do { tu_checks++; if (!(cond)) { tu_failures++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)
#define CHECK_EQ_INT(a, b) do { long long a_ = (long long)(a), b_ = (long long)(b); tu_checks++; \
    if (a_ != b_) { tu_failures++; fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", \
    __FILE__, __LINE__, #a, #b, a_, b_); } } while (0)
#define CHECK_STR(a, b) do { const char *a_ = (a), *b_ = (b); tu_checks++; \
    if (!a_ || !b_ || strcmp(a_, b_)) { tu_failures++; fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", \
    __FILE__, __LINE__, #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); } } while (0)
/* |a-b| <= atol + rtol*|b| */
#define CHECK_NEAR(a, b, atol, rtol) do { double a_ = (a), b_ = (b); tu_checks++; \
    if (!(fabs(a_ - b_) <= (atol) + (rtol) * fabs(b_))) { tu_failures++; \
    fprintf(stderr, "%s:%d: %s ~ %s failed: %.9g vs %.9g\n", __FILE__, __LINE__, #a, #b, a_, b_); } } while (0)

/* Prints "<name>: N passed, N failed" and returns 0 if no check failed. */
int tu_done(const char *name);

/* Path under the golden folder (DSOCR_GOLDEN_DIR). Exits with failure when the
 * folder is missing: golden tests must fail, not skip. */
const char *tu_golden(const char *rel);
/* Path under the source tree / build tree. */
const char *tu_source(const char *rel);
const char *tu_build(const char *rel);
/* Fresh empty temporary directory under the build tree, unique per call. */
const char *tu_tmpdir(const char *tag);

/* Whole file into a malloc'd buffer (NUL-terminated); NULL on failure. */
char *tu_read_file(const char *path, size_t *size);
int tu_write_file(const char *path, const void *data, size_t size);

/* Deterministic PRNG (splitmix64). */
uint64_t tu_rand_u64(uint64_t *state);
double tu_rand_uniform(uint64_t *state);          /* [0, 1) */
double tu_rand_normal(uint64_t *state);

/* max |a-b| and max |b| over n floats. */
double tu_max_abs_diff(const float *a, const float *b, size_t n);
double tu_max_abs(const float *a, size_t n);

#endif
