/* Grow-only activation buffers for the vision run state: allocated once for the
 * largest view, reused by every call (first touch of fresh pages is slow). */
#ifndef DS_VISION_BUF_H
#define DS_VISION_BUF_H

#include <stddef.h>

#include "core/status.h"
#include "kernels/ops.h"

typedef struct ds_vbuf {
    float *p;
    size_t cap;   /* floats */
} ds_vbuf;

/* Makes b hold at least n floats (old contents are not kept). */
static inline dsocr_status ds_vbuf_reserve(ds_backend *be, ds_vbuf *b, size_t n,
                                           const char *what, dsocr_error *err) {
    if (n <= b->cap && b->p) return DSOCR_OK;
    if (b->p) ds_buf_free(be, b->p);
    b->p = ds_buf_alloc(be, n ? n : 1);
    b->cap = b->p ? n : 0;
    if (!b->p)
        return ds_fail(err, DSOCR_ERR_NOMEM, "vision: cannot allocate %s (%zu floats, %.1f MiB)",
                       what, n, (double)n * 4.0 / (1024.0 * 1024.0));
    return DSOCR_OK;
}

static inline void ds_vbuf_free(ds_backend *be, ds_vbuf *b) {
    if (b->p) ds_buf_free(be, b->p);
    b->p = NULL;
    b->cap = 0;
}

#endif
