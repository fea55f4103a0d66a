#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *dsocr_status_name(dsocr_status s) {
    switch (s) {
    case DSOCR_OK: return "ok";
    case DSOCR_ERR_INVALID_ARG: return "invalid argument";
    case DSOCR_ERR_IO: return "i/o error";
    case DSOCR_ERR_FORMAT: return "bad format";
    case DSOCR_ERR_UNSUPPORTED: return "unsupported";
    case DSOCR_ERR_NOMEM: return "out of memory";
    case DSOCR_ERR_LIMIT: return "limit exceeded";
    case DSOCR_ERR_CANCELLED: return "cancelled";
    case DSOCR_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

dsocr_status ds_fail(dsocr_error *err, dsocr_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

dsocr_status ds_wrap(dsocr_error *err, const char *fmt, ...) {
    if (!err) return DSOCR_ERR_INTERNAL;
    char prefix[512], old[sizeof err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof old);
    size_t np = strlen(prefix), cap = sizeof err->message - 1;
    if (np > cap) np = cap;
    memcpy(err->message, prefix, np);
    size_t no = strnlen(old, sizeof old);
    if (no > cap - np) no = cap - np;
    memcpy(err->message + np, old, no);
    err->message[np + no] = 0;
    return err->code;
}

void ds_err_clear(dsocr_error *err) {
    if (err) { err->code = DSOCR_OK; err->message[0] = 0; }
}
