/* Shared helpers of the dsocr subcommands: strict number parsing and one-line errors. */
#ifndef DSOCR_CLI_H
#define DSOCR_CLI_H

#include <stdint.h>

#include "dsocr.h"

/* Parses a whole decimal integer in [lo, hi]; on failure prints
 * "dsocr: OPTION: 'TEXT' is not an integer in [lo, hi]" and returns -1. */
int cli_parse_int(const char *opt, const char *text, long lo, long hi, int *out);
int cli_parse_u64(const char *opt, const char *text, uint64_t *out);
int cli_parse_float(const char *opt, const char *text, double lo, double hi, float *out);
/* Parses a mode name (tiny, small, base, large, gundam); on failure prints
 * "dsocr: OPTION: 'TEXT' is not one of ..." and returns -1. */
int cli_parse_mode(const char *opt, const char *text, dsocr_mode *out);
/* Prints "dsocr: MESSAGE" to stderr (one line). Returns 1 (the exit code). */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints the error of a failed library call and returns the exit code for it. */
int cli_fail(const dsocr_error *err);

#endif
