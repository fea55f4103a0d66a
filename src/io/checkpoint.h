/* A checkpoint directory: config.json plus either model.safetensors.index.json
 * with its shards (the real one names model-00001-of-000001.safetensors) or a
 * single *.safetensors file. Tensors are found by their real names.
 *
 * Binding: model code asks for each tensor it needs with the shape it expects;
 * problems (missing, wrong shape, wrong dtype) are collected and reported as ONE
 * error listing them all, with file and name, before anything is computed. */
#ifndef DS_CHECKPOINT_H
#define DS_CHECKPOINT_H

#include "core/status.h"
#include "core/tensor.h"
#include "io/safetensors.h"

typedef struct ds_checkpoint ds_checkpoint;

dsocr_status ds_ckpt_open(const char *dir, ds_checkpoint **out, dsocr_error *err);
void ds_ckpt_close(ds_checkpoint *ck);

const char *ds_ckpt_dir(const ds_checkpoint *ck);
int ds_ckpt_tensor_count(const ds_checkpoint *ck);
/* NULL if absent; *file (optional) receives the shard path holding it. */
const ds_tensor *ds_ckpt_find(const ds_checkpoint *ck, const char *name, const char **file);
uint64_t ds_ckpt_total_bytes(const ds_checkpoint *ck);
/* The distinct safetensors files opened (1 without an index). */
int ds_ckpt_shard_count(const ds_checkpoint *ck);
const char *ds_ckpt_shard_path(const ds_checkpoint *ck, int i);

typedef struct ds_binder ds_binder;

ds_binder *ds_binder_new(const ds_checkpoint *ck);
/* Looks up the tensor named by fmt (printf-style) and checks it is a float dtype
 * (BF16/F16/F32) of exactly the given shape. Returns the view, or a zeroed
 * tensor after recording the problem. */
ds_tensor ds_bind(ds_binder *b, int ndim, const int64_t *shape, const char *fmt, ...) DS_PRINTF(4, 5);
/* Number of problems recorded so far. */
int ds_binder_problems(const ds_binder *b);
/* Frees the binder. DSOCR_OK if every bind succeeded, else one DSOCR_ERR_FORMAT
 * error listing the problems (first ones in full, then a count). */
dsocr_status ds_binder_finish(ds_binder *b, dsocr_error *err);
/* Frees a binder without reporting (any mode). */
void ds_binder_free(ds_binder *b);
/* Number of ds_bind calls so far. */
int ds_binder_bound_count(const ds_binder *b);
/* Checkpoint tensors never bound so far (call before finish), in name order. */
int ds_binder_unused_count(const ds_binder *b);
const char *ds_binder_unused_name(const ds_binder *b, int k);

/* Recorder: a binder with no checkpoint. ds_bind records (name, ndim, shape) in
 * first-bind order and returns a view with that shape, dtype BF16 and data NULL;
 * binding one name twice with different shapes is a problem. Used to learn every
 * tensor name and shape from the model's own bind code (one source of truth). */
ds_binder *ds_binder_new_recorder(void);
int ds_binder_count(const ds_binder *b);
const char *ds_binder_name(const ds_binder *b, int i);
/* Copies the recorded shape; returns ndim (-1 if i is out of range). */
int ds_binder_shape(const ds_binder *b, int i, int64_t shape[DS_MAX_DIMS]);

#endif
