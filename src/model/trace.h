/* Tracing of intermediate tensors: model code reports named intermediates
 * (the golden fixture names: sam_global, clip_crops, image_embeds,
 * prefill_last_layer_hidden, ...) to an optional callback. The parity tool and
 * the golden tests compare them; normal runs pass NULL and pay nothing. */
#ifndef DS_TRACE_H
#define DS_TRACE_H

#include <stdint.h>

typedef struct ds_trace {
    /* data: host f32 values laid out exactly as the golden tensor of that name
     * (PyTorch order, e.g. sam_global [1, C, g, g]). */
    void (*on_tensor)(void *user, const char *name, const float *data, int ndim, const int64_t *shape);
    /* Integer tensors (router indices, token ids). */
    void (*on_ints)(void *user, const char *name, const int64_t *data, int ndim, const int64_t *shape);
    void *user;
} ds_trace;

static inline void ds_trace_tensor(const ds_trace *tr, const char *name, const float *data,
                                   int ndim, const int64_t *shape) {
    if (tr && tr->on_tensor) tr->on_tensor(tr->user, name, data, ndim, shape);
}
static inline void ds_trace_ints(const ds_trace *tr, const char *name, const int64_t *data,
                                 int ndim, const int64_t *shape) {
    if (tr && tr->on_ints) tr->on_ints(tr->user, name, data, ndim, shape);
}

#endif
