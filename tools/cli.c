#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocr/output.h"

int cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("dsocr: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int cli_fail(const dsocr_error *err) {
    return cli_error("%s", err->message[0] ? err->message : dsocr_status_name(err->code));
}

int cli_parse_int(const char *opt, const char *text, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = text ? strtol(text, &end, 10) : 0;
    if (!text || !*text || *end || errno || v < lo || v > hi) {
        cli_error("%s: '%s' is not an integer in [%ld, %ld]", opt, text ? text : "", lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int cli_parse_u64(const char *opt, const char *text, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = text ? strtoull(text, &end, 10) : 0;
    if (!text || !*text || *text == '-' || *end || errno) {
        cli_error("%s: '%s' is not a non-negative integer", opt, text ? text : "");
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

int cli_parse_float(const char *opt, const char *text, double lo, double hi, float *out) {
    char *end;
    errno = 0;
    double v = text ? strtod(text, &end) : 0;
    if (!text || !*text || *end || errno || !isfinite(v) || v < lo || v > hi) {
        cli_error("%s: '%s' is not a number in [%g, %g]", opt, text ? text : "", lo, hi);
        return -1;
    }
    *out = (float)v;
    return 0;
}

int cli_parse_mode(const char *opt, const char *text, dsocr_mode *out) {
    for (int m = DSOCR_MODE_TINY; m <= DSOCR_MODE_GUNDAM; m++)
        if (text && !strcmp(text, ds_mode_name((dsocr_mode)m))) { *out = (dsocr_mode)m; return 0; }
    cli_error("%s: '%s' is not one of tiny, small, base, large, gundam", opt, text ? text : "");
    return -1;
}
