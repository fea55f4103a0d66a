/* Optional per-op timing of a backend: where the time goes (dsocr bench --ops).
 *
 *   ds_profile *p;  ds_profile_start(be, &p, &err);   // wraps the backend's kernel table
 *   ... run the model ...
 *   ds_profile_op op;  for (i = 0; i < DS_PROF_N_OPS; i++) ds_profile_get(p, i, &op);
 *   ds_profile_reset(p);                              // next phase
 *   ds_profile_stop(be, p);                           // restores the table, frees p
 *
 * Off by default: without ds_profile_start the ops run exactly as before and pay
 * nothing. Only the table-dispatched ops (kernels/backend.h ds_kernels) are timed,
 * by wall clock around each call on the thread that started the profile; the simple
 * data-movement ops (add, transpose, embed, window partition ...) are not, so
 * "phase time - sum of op times" is what they and the model code cost. */
#ifndef DS_KERNELS_PROFILE_H
#define DS_KERNELS_PROFILE_H

#include <stdint.h>

#include "core/status.h"
#include "kernels/ops.h"

enum {
    DS_PROF_LINEAR, DS_PROF_CONV2D, DS_PROF_LAYERNORM, DS_PROF_RMSNORM, DS_PROF_SOFTMAX,
    DS_PROF_GELU_ERF, DS_PROF_QUICK_GELU, DS_PROF_SILU, DS_PROF_SILU_MUL, DS_PROF_ATTENTION,
    DS_PROF_RELPOS, DS_PROF_ROPE,
    DS_PROF_N_OPS
};

typedef struct ds_profile_op {
    const char *name;   /* "linear", "attention", ... */
    int64_t calls;
    double ms;          /* wall time inside the op */
    double flop;        /* multiply-adds x 2 (linear, conv2d, attention, relpos; else 0) */
    double bytes;       /* weight bytes read (linear, conv2d) or K/V bytes read (attention) */
} ds_profile_op;

/* Linear time is also split by weight: the checkpoint name with every all-digit path
 * component replaced by '#' (model.layers.#.mlp.experts.#.down_proj.weight), at most
 * this many names. */
#define DS_PROF_MAX_WEIGHTS 128

typedef struct ds_profile ds_profile;

/* Starts timing every table op of be (one profile per backend at a time). */
dsocr_status ds_profile_start(ds_backend *be, ds_profile **out, dsocr_error *err);
/* Restores the backend's kernels and frees p. p may be NULL. */
void ds_profile_stop(ds_backend *be, ds_profile *p);
/* Zeroes the counters. */
void ds_profile_reset(ds_profile *p);
/* Counters of op i (0 <= i < DS_PROF_N_OPS). */
void ds_profile_get(const ds_profile *p, int i, ds_profile_op *out);
/* Linear counters per weight name: n names; entry i's name stays valid until the next
 * reset or stop. Names past DS_PROF_MAX_WEIGHTS are counted under "(other weights)". */
int ds_profile_n_weights(const ds_profile *p);
void ds_profile_get_weight(const ds_profile *p, int i, ds_profile_op *out);

#endif
