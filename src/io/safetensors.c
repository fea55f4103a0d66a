/* safetensors reader.
 *
 * File layout: [u64 little-endian header length N][N bytes of JSON][data section].
 * The JSON maps tensor names to {"dtype", "shape", "data_offsets": [begin, end]}
 * (offsets relative to the data section) plus an optional "__metadata__" object of
 * strings. Every rule is checked before a single tensor is handed out, so later code
 * can trust shapes, sizes and alignment. */
#include "io/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER (100u * 1000u * 1000u) /* 100 MB: the real header is ~200 KB */
#define ST_MAX_EXACT 9007199254740992.0      /* 2^53: larger JSON numbers are not exact */

struct ds_st_file {
    char *path;                /* file path, or the name given to ds_st_open_memory */
    const uint8_t *base;       /* whole file image */
    size_t size;
    int mapped;                /* base came from mmap (unmap on close) */
    uint64_t data_start;       /* 8 + header length */
    int n;
    ds_tensor *tensors;        /* header order */
    char **names;              /* owned; tensors[i].name points here */
    int *by_name;              /* tensor indexes sorted by name, for binary search */
    int n_meta;
    char **meta_keys, **meta_values;
};

/* ---- small helpers ------------------------------------------------------ */

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static uint64_t read_u64_le(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* safetensors dtype string -> ds_dtype. Returns 1 if known and supported, 0 if a
 * known safetensors dtype that dsocr does not handle, -1 if not a dtype at all. */
static int parse_dtype(const char *s, ds_dtype *out) {
    static const struct { const char *name; ds_dtype t; } ok[] = {
        {"F32", DS_F32}, {"BF16", DS_BF16}, {"F16", DS_F16},
        {"I64", DS_I64}, {"I32", DS_I32}, {"U8", DS_U8},
    };
    static const char *unsupported[] = {
        "BOOL", "F64", "I8", "I16", "U16", "U32", "U64", "F8_E4M3", "F8_E5M2",
        "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (!strcmp(s, ok[i].name)) { *out = ok[i].t; return 1; }
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
        if (!strcmp(s, unsupported[i])) return 0;
    return -1;
}

/* A JSON number that is an exact non-negative integer (within 2^53). */
static int json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0.0) || d > ST_MAX_EXACT || d != (double)(uint64_t)d) return 0;
    *out = (uint64_t)d;
    return 1;
}

/* ---- sorting ------------------------------------------------------------ */

typedef struct { uint64_t begin, end; int idx; } st_span;

static int cmp_span(const void *a, const void *b) {
    const st_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* qsort has no context argument, so sort (name, index) pairs. */
typedef struct { const char *name; int idx; } st_named;

static int cmp_named(const void *a, const void *b) {
    return strcmp(((const st_named *)a)->name, ((const st_named *)b)->name);
}

/* ---- header parsing ----------------------------------------------------- */

static dsocr_status parse_metadata(ds_st_file *f, const cJSON *meta, dsocr_error *err) {
    if (!cJSON_IsObject(meta))
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: header: __metadata__ is not an object", f->path);
    int n = cJSON_GetArraySize(meta);
    f->meta_keys = calloc((size_t)n + 1, sizeof *f->meta_keys);
    f->meta_values = calloc((size_t)n + 1, sizeof *f->meta_values);
    if (!f->meta_keys || !f->meta_values) return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", f->path);
    for (const cJSON *e = meta->child; e; e = e->next) {
        if (!cJSON_IsString(e) || !e->valuestring)
            return ds_fail(err, DSOCR_ERR_FORMAT, "%s: header: __metadata__ value of \"%s\" is not a string",
                           f->path, e->string ? e->string : "");
        f->meta_keys[f->n_meta] = dup_str(e->string ? e->string : "");
        f->meta_values[f->n_meta] = dup_str(e->valuestring);
        f->n_meta++;
        if (!f->meta_keys[f->n_meta - 1] || !f->meta_values[f->n_meta - 1])
            return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", f->path);
    }
    return DSOCR_OK;
}

/* Validates one tensor entry and fills f->tensors[i] (data pointer included).
 * span receives its byte range within the data section. */
static dsocr_status parse_entry(ds_st_file *f, const cJSON *e, int i, st_span *span, dsocr_error *err) {
    const char *name = e->string;
    if (!name || !name[0])
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: header: tensor #%d has an empty name", f->path, i);
    if (!cJSON_IsObject(e))
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: tensor %s: header entry is not an object", f->path, name);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!jd || !js || !jo)
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: tensor %s: header entry lacks \"%s\"", f->path, name,
                       !jd ? "dtype" : !js ? "shape" : "data_offsets");
    if (!cJSON_IsString(jd) || !jd->valuestring)
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: tensor %s: dtype is not a string", f->path, name);
    if (!cJSON_IsArray(js))
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: tensor %s: shape is not an array", f->path, name);
    if (!cJSON_IsArray(jo))
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: tensor %s: data_offsets is not an array", f->path, name);

    ds_tensor *t = &f->tensors[i];
    int known = parse_dtype(jd->valuestring, &t->dtype);
    if (known == 0)
        return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "%s: tensor %s: dtype %s is not supported (F32, BF16, F16, I64, I32, U8)",
                       f->path, name, jd->valuestring);
    if (known < 0)
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: tensor %s: unknown dtype \"%.64s\"", f->path, name, jd->valuestring);

    int ndim = cJSON_GetArraySize(js);
    if (ndim > DS_MAX_DIMS)
        return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "%s: tensor %s: %d dimensions (at most %d supported)",
                       f->path, name, ndim, DS_MAX_DIMS);
    t->ndim = ndim;
    size_t esize = ds_dtype_size(t->dtype);
    /* the product of the non-zero dims must fit too: the strides are products of them,
     * even when a zero dim makes the tensor empty */
    uint64_t numel = 1, nonzero = 1, max_numel = (uint64_t)INT64_MAX / esize;
    int d = 0;
    for (const cJSON *x = js->child; x; x = x->next, d++) {
        uint64_t dim;
        if (!json_uint(x, &dim))
            return ds_fail(err, DSOCR_ERR_FORMAT, "%s: tensor %s: shape[%d] is not a non-negative integer",
                           f->path, name, d);
        t->shape[d] = (int64_t)dim;
        if (dim != 0 && nonzero > max_numel / dim)
            return ds_fail(err, DSOCR_ERR_FORMAT, "%s: tensor %s: element count overflows", f->path, name);
        if (dim != 0) nonzero *= dim;
        numel *= dim;
    }
    ds_tensor_set_contiguous(t);

    uint64_t begin, end;
    if (cJSON_GetArraySize(jo) != 2 || !json_uint(jo->child, &begin) || !json_uint(jo->child->next, &end))
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: tensor %s: data_offsets is not [begin, end] of non-negative integers",
                       f->path, name);
    uint64_t data_size = f->size - f->data_start;
    if (begin > end)
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: tensor %s: data_offsets [%llu, %llu] has begin > end",
                       f->path, name, (unsigned long long)begin, (unsigned long long)end);
    if (end > data_size)
        return ds_fail(err, DSOCR_ERR_FORMAT,
                       "%s: tensor %s: data_offsets end %llu (byte offset %llu) is beyond the end of the file (%zu bytes)",
                       f->path, name, (unsigned long long)end, (unsigned long long)(f->data_start + end), f->size);
    if (end - begin != numel * esize) {
        char shape[160];
        return ds_fail(err, DSOCR_ERR_FORMAT,
                       "%s: tensor %s: %llu data bytes at byte offset %llu, but shape %s of %s needs %llu",
                       f->path, name, (unsigned long long)(end - begin), (unsigned long long)(f->data_start + begin),
                       ds_shape_str(t, shape, sizeof shape), ds_dtype_name(t->dtype), (unsigned long long)(numel * esize));
    }
    const uint8_t *p = f->base + f->data_start + begin;
    /* Kernels read elements through typed pointers (uint16_t for bf16, float ...), so
     * the data must be naturally aligned. Real files are: the header is padded to 8. */
    if ((uintptr_t)p % esize != 0)
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: tensor %s: data at byte offset %llu is not %zu-byte aligned for %s",
                       f->path, name, (unsigned long long)(f->data_start + begin), esize, ds_dtype_name(t->dtype));
    t->data = (void *)p;
    span->begin = begin;
    span->end = end;
    span->idx = i;
    return DSOCR_OK;
}

/* Duplicate JSON keys are legal for cJSON (it keeps both): sort names and compare
 * neighbours, which also builds the lookup index. */
static dsocr_status build_name_index(ds_st_file *f, dsocr_error *err) {
    st_named *tmp = malloc(sizeof *tmp * (size_t)(f->n ? f->n : 1));
    f->by_name = malloc(sizeof *f->by_name * (size_t)(f->n ? f->n : 1));
    if (!tmp || !f->by_name) { free(tmp); return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", f->path); }
    for (int i = 0; i < f->n; i++) { tmp[i].name = f->names[i]; tmp[i].idx = i; }
    qsort(tmp, (size_t)f->n, sizeof *tmp, cmp_named);
    for (int i = 0; i < f->n; i++) {
        if (i > 0 && !strcmp(tmp[i].name, tmp[i - 1].name)) {
            dsocr_status s = ds_fail(err, DSOCR_ERR_FORMAT, "%s: tensor %s: name appears twice in the header",
                                     f->path, tmp[i].name);
            free(tmp);
            return s;
        }
        f->by_name[i] = tmp[i].idx;
    }
    free(tmp);
    return DSOCR_OK;
}

/* Sorted by begin, a tensor overlaps an earlier one iff it starts before the furthest
 * end seen so far. Empty tensors occupy no bytes and are skipped. */
static dsocr_status check_overlaps(ds_st_file *f, st_span *spans, dsocr_error *err) {
    qsort(spans, (size_t)f->n, sizeof *spans, cmp_span);
    const st_span *furthest = NULL;
    for (int i = 0; i < f->n; i++) {
        const st_span *b = &spans[i];
        if (b->end == b->begin) continue;
        if (furthest && furthest->end > b->begin)
            return ds_fail(err, DSOCR_ERR_FORMAT,
                           "%s: tensors %s and %s overlap at byte offset %llu (data_offsets [%llu, %llu] and [%llu, %llu])",
                           f->path, f->names[furthest->idx], f->names[b->idx],
                           (unsigned long long)(f->data_start + b->begin), (unsigned long long)furthest->begin,
                           (unsigned long long)furthest->end, (unsigned long long)b->begin, (unsigned long long)b->end);
        if (!furthest || b->end > furthest->end) furthest = b;
    }
    return DSOCR_OK;
}

static dsocr_status parse_header(ds_st_file *f, dsocr_error *err) {
    if (f->size < 8)
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: file is %zu bytes, shorter than the 8-byte header length",
                       f->path, f->size);
    uint64_t hlen = read_u64_le(f->base);
    if (hlen > ST_MAX_HEADER)
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: header length %llu at byte offset 0 is absurd (limit %u)",
                       f->path, (unsigned long long)hlen, ST_MAX_HEADER);
    if (hlen > f->size - 8)
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: header length %llu runs past the end of the file (%zu bytes)",
                       f->path, (unsigned long long)hlen, f->size);
    f->data_start = 8 + hlen;

    const char *json = (const char *)f->base + 8, *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, (size_t)hlen, &end, 0);
    if (!root) {
        size_t at = end && end >= json && end <= json + hlen ? (size_t)(end - json) : 0;
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: header is not valid JSON (error near byte offset %zu)",
                       f->path, 8 + at);
    }
    /* only whitespace (the padding) may follow the JSON value */
    for (const char *p = end; p < json + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            return ds_fail(err, DSOCR_ERR_FORMAT, "%s: header has trailing garbage at byte offset %zu",
                           f->path, 8 + (size_t)(p - json));
        }

    dsocr_status s = DSOCR_OK;
    st_span *spans = NULL;
    if (!cJSON_IsObject(root)) {
        s = ds_fail(err, DSOCR_ERR_FORMAT, "%s: header JSON is not an object", f->path);
        goto done;
    }
    int n_entries = cJSON_GetArraySize(root);
    f->tensors = calloc((size_t)n_entries + 1, sizeof *f->tensors);
    f->names = calloc((size_t)n_entries + 1, sizeof *f->names);
    spans = calloc((size_t)n_entries + 1, sizeof *spans);
    if (!f->tensors || !f->names || !spans) { s = ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", f->path); goto done; }

    int seen_meta = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (e->string && !strcmp(e->string, "__metadata__")) {
            if (seen_meta++) { s = ds_fail(err, DSOCR_ERR_FORMAT, "%s: header: __metadata__ appears twice", f->path); goto done; }
            if ((s = parse_metadata(f, e, err)) != DSOCR_OK) goto done;
            continue;
        }
        int i = f->n;
        if ((s = parse_entry(f, e, i, &spans[i], err)) != DSOCR_OK) goto done;
        if (!(f->names[i] = dup_str(e->string))) { s = ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", f->path); goto done; }
        f->tensors[i].name = f->names[i];
        f->n++;
    }
    if ((s = build_name_index(f, err)) != DSOCR_OK) goto done;
    s = check_overlaps(f, spans, err);
done:
    free(spans);
    cJSON_Delete(root);
    return s;
}

/* ---- public API --------------------------------------------------------- */

static dsocr_status open_image(const uint8_t *data, size_t size, const char *name, int mapped,
                               ds_st_file **out, dsocr_error *err) {
    *out = NULL;
    ds_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = dup_str(name ? name : "(memory)"))) {
        free(f);
        return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", name ? name : "(memory)");
    }
    f->base = data;
    f->size = size;
    f->mapped = mapped;
    dsocr_status s = parse_header(f, err);
    if (s != DSOCR_OK) {
        f->mapped = 0; /* the caller still owns (and unmaps) the image on failure */
        ds_st_close(f);
        return s;
    }
    *out = f;
    return DSOCR_OK;
}

dsocr_status ds_st_open_memory(const void *data, size_t size, const char *name,
                               ds_st_file **out, dsocr_error *err) {
    if (!out) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "ds_st_open_memory: out is NULL");
    *out = NULL;
    if (!data && size) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "ds_st_open_memory: data is NULL");
    return open_image(data, size, name, 0, out, err);
}

dsocr_status ds_st_open(const char *path, ds_st_file **out, dsocr_error *err) {
    if (!out || !path) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "ds_st_open: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ds_fail(err, DSOCR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return ds_fail(err, DSOCR_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ds_fail(err, DSOCR_ERR_IO, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if (size < 8) { /* also avoids mmap of length 0 */
        close(fd);
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: file is %zu bytes, shorter than the 8-byte header length", path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd); /* the mapping keeps the file alive */
    if (map == MAP_FAILED) return ds_fail(err, DSOCR_ERR_IO, "%s: cannot mmap %zu bytes: %s", path, size, strerror(map_errno));
    dsocr_status s = open_image(map, size, path, 1, out, err);
    if (s != DSOCR_OK) munmap(map, size);
    return s;
}

void ds_st_close(ds_st_file *f) {
    if (!f) return;
    if (f->mapped) munmap((void *)f->base, f->size);
    if (f->names)
        for (int i = 0; i < f->n; i++) free(f->names[i]);
    for (int i = 0; i < f->n_meta; i++) { free(f->meta_keys[i]); free(f->meta_values[i]); }
    free(f->names);
    free(f->tensors);
    free(f->by_name);
    free(f->meta_keys);
    free(f->meta_values);
    free(f->path);
    free(f);
}

const char *ds_st_path(const ds_st_file *f) { return f->path; }
int ds_st_count(const ds_st_file *f) { return f->n; }

const ds_tensor *ds_st_at(const ds_st_file *f, int i) {
    return (i >= 0 && i < f->n) ? &f->tensors[i] : NULL;
}

const ds_tensor *ds_st_find(const ds_st_file *f, const char *name) {
    if (!name) return NULL;
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->names[f->by_name[mid]]);
        if (c == 0) return &f->tensors[f->by_name[mid]];
        if (c < 0) hi = mid - 1; else lo = mid + 1;
    }
    return NULL;
}

const char *ds_st_metadata(const ds_st_file *f, const char *key) {
    for (int i = 0; key && i < f->n_meta; i++)
        if (!strcmp(f->meta_keys[i], key)) return f->meta_values[i];
    return NULL;
}

uint64_t ds_st_offset(const ds_st_file *f, const ds_tensor *t) {
    return (uint64_t)((const uint8_t *)t->data - f->base);
}
