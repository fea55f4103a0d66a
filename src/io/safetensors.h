/* safetensors reader: the file is memory-mapped and tensors are views into it
 * (zero copy). The header is validated strictly before anything is used:
 * header length sane, JSON well-formed, known dtypes, data offsets inside the
 * file, byte size == numel x dtype size, no overlaps, no duplicate names, data
 * naturally aligned for its dtype (kernels read through typed pointers). Views are
 * read-only and live until ds_st_close. On failure err names the file and the
 * tensor and/or byte offset; on success err is left untouched. */
#ifndef DS_SAFETENSORS_H
#define DS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "core/tensor.h"

typedef struct ds_st_file ds_st_file;

dsocr_status ds_st_open(const char *path, ds_st_file **out, dsocr_error *err);
/* Parses a file image held in memory (not copied; must outlive the handle). */
dsocr_status ds_st_open_memory(const void *data, size_t size, const char *name,
                               ds_st_file **out, dsocr_error *err);
void ds_st_close(ds_st_file *f);

const char *ds_st_path(const ds_st_file *f);
int ds_st_count(const ds_st_file *f);
/* Tensors in header order; name is in t->name. */
const ds_tensor *ds_st_at(const ds_st_file *f, int i);
/* NULL if absent. */
const ds_tensor *ds_st_find(const ds_st_file *f, const char *name);
/* __metadata__ string value, NULL if absent. */
const char *ds_st_metadata(const ds_st_file *f, const char *key);
/* Byte offset of a tensor's data from the start of the file (for messages). */
uint64_t ds_st_offset(const ds_st_file *f, const ds_tensor *t);

#endif
