/* Streaming safetensors writer: a multi-GB checkpoint can be written with a few KB
 * of memory.
 *
 *   ds_st_writer *w; ds_stw_open("out.safetensors", &w, &err);
 *   ds_stw_add(w, "a.weight", DS_BF16, 2, (int64_t[]){64, 64}, &err);  // every tensor, up front
 *   ds_stw_set_metadata(w, "format", "pt", &err);                       // optional
 *   ds_stw_write(w, bytes, n, &err); ...                                // data in declaration order, any chunks
 *   ds_stw_finish(w, &err);                                             // checks counts, renames into place
 *
 * Tensors are laid out back to back in declaration order (as the safetensors
 * library requires: no holes); the header is padded with spaces to a multiple of 8.
 * A tensor that would start misaligned for its dtype (a 4-byte F32 after an odd
 * count of BF16 values, say) is refused at ds_stw_add: declare wider dtypes first.
 * The file is written under a temporary name and renamed on success; on any error
 * (or ds_stw_abort) the temporary file is removed. */
#ifndef DS_ST_WRITER_H
#define DS_ST_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "core/tensor.h"

typedef struct ds_st_writer ds_st_writer;

dsocr_status ds_stw_open(const char *path, ds_st_writer **out, dsocr_error *err);
/* Declares the next tensor (before the first ds_stw_write). */
dsocr_status ds_stw_add(ds_st_writer *w, const char *name, ds_dtype dtype, int ndim, const int64_t *shape,
                        dsocr_error *err);
/* Adds a __metadata__ string (before the first ds_stw_write). */
dsocr_status ds_stw_set_metadata(ds_st_writer *w, const char *key, const char *value, dsocr_error *err);
/* Appends n data bytes; the first call writes the header. Chunks may span tensors. */
dsocr_status ds_stw_write(ds_st_writer *w, const void *data, size_t n, dsocr_error *err);
/* Bytes still expected for the whole file, and the index of the tensor the next
 * byte belongs to (count when complete). */
uint64_t ds_stw_remaining(const ds_st_writer *w);
int ds_stw_current(const ds_st_writer *w);
/* Checks every byte was written, flushes and renames into place. Frees w either way. */
dsocr_status ds_stw_finish(ds_st_writer *w, dsocr_error *err);
/* Removes the temporary file and frees w. */
void ds_stw_abort(ds_st_writer *w);

#endif
