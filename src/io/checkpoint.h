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

typedef struct ds_binder ds_binder;

ds_binder *ds_binder_new(const ds_checkpoint *ck);
/* Looks up the tensor named by fmt (printf-style) and checks it is a float dtype
 * (BF16/F16/F32) of exactly the given shape. Returns the view, or a zeroed
 * tensor after recording the problem. */
ds_tensor ds_bind(ds_binder *b, int ndim, const int64_t *shape, const char *fmt, ...) DS_PRINTF(4, 5);
/* Number of tensors bound so far and problems recorded. */
int ds_binder_problems(const ds_binder *b);
/* Frees the binder. DSOCR_OK if every bind succeeded, else one DSOCR_ERR_FORMAT
 * error listing the problems (first ones in full, then a count). */
dsocr_status ds_binder_finish(ds_binder *b, dsocr_error *err);

#endif
