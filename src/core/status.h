/* Error reporting inside dsocr: every function that can fail returns a
 * dsocr_status and writes a message into a caller-owned dsocr_error (or none
 * when err is NULL). Messages name what and where: file, tensor, byte offset. */
#ifndef DS_STATUS_H
#define DS_STATUS_H

#include "dsocr.h"

#if defined(__GNUC__)
#define DS_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define DS_PRINTF(f, a)
#endif

/* Sets err (if any) to code + formatted message; returns code. */
dsocr_status ds_fail(dsocr_error *err, dsocr_status code, const char *fmt, ...) DS_PRINTF(3, 4);

/* Prepends context ("while loading X: ") to the message already in err; returns err->code. */
dsocr_status ds_wrap(dsocr_error *err, const char *fmt, ...) DS_PRINTF(2, 3);

/* Clears err to DSOCR_OK with an empty message. */
void ds_err_clear(dsocr_error *err);

#define DS_TRY(expr) do { dsocr_status ds_s_ = (expr); if (ds_s_ != DSOCR_OK) return ds_s_; } while (0)

#endif
