/* Streaming safetensors writer (see st_writer.h). */
#include "io/st_writer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct stw_tensor {
    char *name;
    ds_dtype dtype;
    int ndim;
    int64_t shape[DS_MAX_DIMS];
    uint64_t begin, end;   /* offsets in the data section */
} stw_tensor;

struct ds_st_writer {
    char *path, *tmp_path;
    FILE *fp;
    stw_tensor *tensors;
    int n, cap;
    cJSON *meta;           /* __metadata__ object, NULL if none */
    uint64_t data_size;    /* sum of tensor sizes */
    uint64_t written;      /* data bytes written so far */
    int header_done;
    int failed;            /* a write failed: the file is unusable */
};

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static void writer_free(ds_st_writer *w) {
    if (!w) return;
    if (w->fp) fclose(w->fp);
    for (int i = 0; i < w->n; i++) free(w->tensors[i].name);
    free(w->tensors);
    cJSON_Delete(w->meta);
    free(w->path);
    free(w->tmp_path);
    free(w);
}

dsocr_status ds_stw_open(const char *path, ds_st_writer **out, dsocr_error *err) {
    if (!path || !out) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "ds_stw_open: NULL argument");
    *out = NULL;
    ds_st_writer *w = calloc(1, sizeof *w);
    if (!w) return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", path);
    size_t n = strlen(path) + 32;
    w->path = dup_str(path);
    w->tmp_path = malloc(n);
    if (!w->path || !w->tmp_path) { writer_free(w); return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", path); }
    snprintf(w->tmp_path, n, "%s.tmp%ld", path, (long)getpid());
    w->fp = fopen(w->tmp_path, "wb");
    if (!w->fp) {
        dsocr_status s = ds_fail(err, DSOCR_ERR_IO, "%s: cannot create: %s", w->tmp_path, strerror(errno));
        writer_free(w);
        return s;
    }
    *out = w;
    return DSOCR_OK;
}

dsocr_status ds_stw_add(ds_st_writer *w, const char *name, ds_dtype dtype, int ndim, const int64_t *shape,
                        dsocr_error *err) {
    if (!w || !name) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "ds_stw_add: NULL argument");
    if (w->header_done)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "%s: tensor %s declared after data was written", w->path, name);
    if (!name[0] || !strcmp(name, "__metadata__"))
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "%s: invalid tensor name \"%s\"", w->path, name);
    if ((unsigned)dtype >= DS_DTYPE_COUNT)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "%s: tensor %s: invalid dtype %d", w->path, name, (int)dtype);
    if (ds_dtype_size(dtype) == 0)   /* the block-quantized dtypes have no safetensors name */
        return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "%s: tensor %s: %s cannot be written to safetensors", w->path, name,
                       ds_dtype_name(dtype));
    if (ndim < 0 || ndim > DS_MAX_DIMS || (ndim && !shape))
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "%s: tensor %s: %d dimensions", w->path, name, ndim);
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->tensors[i].name, name))
            return ds_fail(err, DSOCR_ERR_INVALID_ARG, "%s: tensor %s declared twice", w->path, name);
    size_t esize = ds_dtype_size(dtype);
    uint64_t bytes = esize;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0 || (shape[d] > 0 && bytes > (UINT64_C(1) << 52) / (uint64_t)shape[d]))
            return ds_fail(err, DSOCR_ERR_INVALID_ARG, "%s: tensor %s: bad or huge shape", w->path, name);
        bytes *= (uint64_t)shape[d];
    }
    /* the header is padded to 8, so alignment of the data offset is alignment in the file */
    if (w->data_size % esize != 0)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG,
                       "%s: tensor %s (%s) would start at data offset %llu, misaligned; declare wider dtypes first",
                       w->path, name, ds_dtype_name(dtype), (unsigned long long)w->data_size);
    if (w->n == w->cap) {
        int ncap = w->cap ? w->cap * 2 : 64;
        stw_tensor *t = realloc(w->tensors, sizeof *t * (size_t)ncap);
        if (!t) return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", w->path);
        w->tensors = t;
        w->cap = ncap;
    }
    stw_tensor *t = &w->tensors[w->n];
    memset(t, 0, sizeof *t);
    if (!(t->name = dup_str(name))) return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", w->path);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    t->begin = w->data_size;
    t->end = w->data_size + bytes;
    w->data_size = t->end;
    w->n++;
    return DSOCR_OK;
}

dsocr_status ds_stw_set_metadata(ds_st_writer *w, const char *key, const char *value, dsocr_error *err) {
    if (!w || !key || !value) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "ds_stw_set_metadata: NULL argument");
    if (w->header_done)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "%s: metadata %s set after data was written", w->path, key);
    if (!w->meta && !(w->meta = cJSON_CreateObject())) return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", w->path);
    cJSON *v = cJSON_CreateString(value);
    if (!v) return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", w->path);
    if (cJSON_GetObjectItemCaseSensitive(w->meta, key)) cJSON_ReplaceItemInObjectCaseSensitive(w->meta, key, v);
    else cJSON_AddItemToObject(w->meta, key, v);
    return DSOCR_OK;
}

/* Builds the JSON header: {"__metadata__": {...}, "name": {dtype, shape, data_offsets}, ...}. */
static char *header_json(ds_st_writer *w) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    if (w->meta) {
        cJSON_AddItemToObject(root, "__metadata__", w->meta);
        w->meta = NULL; /* now owned by root */
    }
    for (int i = 0; i < w->n; i++) {
        const stw_tensor *t = &w->tensors[i];
        cJSON *e = cJSON_CreateObject(), *shape = cJSON_CreateArray(), *off = cJSON_CreateArray();
        if (!e || !shape || !off) { cJSON_Delete(e); cJSON_Delete(shape); cJSON_Delete(off); cJSON_Delete(root); return NULL; }
        cJSON_AddItemToObject(root, t->name, e);
        cJSON_AddStringToObject(e, "dtype", ds_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        cJSON_AddItemToObject(e, "shape", shape);
        cJSON_AddItemToArray(off, cJSON_CreateNumber((double)t->begin));
        cJSON_AddItemToArray(off, cJSON_CreateNumber((double)t->end));
        cJSON_AddItemToObject(e, "data_offsets", off);
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return json;
}

static dsocr_status write_bytes(ds_st_writer *w, const void *p, size_t n, dsocr_error *err) {
    if (n && fwrite(p, 1, n, w->fp) != n) {
        w->failed = 1;
        return ds_fail(err, DSOCR_ERR_IO, "%s: write failed: %s", w->tmp_path, strerror(errno));
    }
    return DSOCR_OK;
}

static dsocr_status write_header(ds_st_writer *w, dsocr_error *err) {
    char *json = header_json(w);
    if (!json) return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory building the header", w->path);
    size_t len = strlen(json), padded = (len + 7) / 8 * 8;
    uint8_t len_le[8];
    for (int i = 0; i < 8; i++) len_le[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    static const char spaces[8] = "        ";
    dsocr_status s = write_bytes(w, len_le, 8, err);
    if (s == DSOCR_OK) s = write_bytes(w, json, len, err);
    if (s == DSOCR_OK) s = write_bytes(w, spaces, padded - len, err);
    cJSON_free(json);
    w->header_done = 1;
    return s;
}

dsocr_status ds_stw_write(ds_st_writer *w, const void *data, size_t n, dsocr_error *err) {
    if (!w || (!data && n)) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "ds_stw_write: NULL argument");
    if (w->failed) return ds_fail(err, DSOCR_ERR_IO, "%s: an earlier write failed", w->tmp_path);
    if (!w->header_done) DS_TRY(write_header(w, err));
    if (n > w->data_size - w->written)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "%s: %zu bytes written past the end of the data (%llu of %llu written)",
                       w->path, n, (unsigned long long)w->written, (unsigned long long)w->data_size);
    DS_TRY(write_bytes(w, data, n, err));
    w->written += n;
    return DSOCR_OK;
}

uint64_t ds_stw_remaining(const ds_st_writer *w) { return w->data_size - w->written; }

int ds_stw_current(const ds_st_writer *w) {
    for (int i = 0; i < w->n; i++)
        if (w->written < w->tensors[i].end) return i;
    return w->n;
}

void ds_stw_abort(ds_st_writer *w) {
    if (!w) return;
    if (w->fp) { fclose(w->fp); w->fp = NULL; }
    unlink(w->tmp_path);
    writer_free(w);
}

dsocr_status ds_stw_finish(ds_st_writer *w, dsocr_error *err) {
    if (!w) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "ds_stw_finish: NULL writer");
    dsocr_status s = DSOCR_OK;
    if (!w->header_done) s = write_header(w, err);
    if (s == DSOCR_OK && w->failed) s = ds_fail(err, DSOCR_ERR_IO, "%s: an earlier write failed", w->tmp_path);
    if (s == DSOCR_OK && w->written != w->data_size) {
        int i = ds_stw_current(w);
        s = ds_fail(err, DSOCR_ERR_INVALID_ARG, "%s: only %llu of %llu data bytes written (tensor %s incomplete)",
                    w->path, (unsigned long long)w->written, (unsigned long long)w->data_size,
                    i < w->n ? w->tensors[i].name : "?");
    }
    if (s == DSOCR_OK) {
        int close_failed = fclose(w->fp) != 0;
        w->fp = NULL;
        if (close_failed) s = ds_fail(err, DSOCR_ERR_IO, "%s: write failed: %s", w->tmp_path, strerror(errno));
        else if (rename(w->tmp_path, w->path) != 0)
            s = ds_fail(err, DSOCR_ERR_IO, "%s: cannot rename to %s: %s", w->tmp_path, w->path, strerror(errno));
    }
    if (s != DSOCR_OK) { ds_stw_abort(w); return s; }
    writer_free(w);
    return DSOCR_OK;
}
