/* Checkpoint directory: shards found through model.safetensors.index.json (or a
 * single *.safetensors), a sorted name table over all of them, and the binder
 * that checks every tensor the model asks for before anything runs. */
#include "io/checkpoint.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CKPT_MAX_INDEX (64u * 1000u * 1000u) /* the real index is ~200 KB */

typedef struct ckpt_entry {
    const char *name;        /* points into the shard's own name table */
    const ds_tensor *tensor;
    int shard;
} ckpt_entry;

struct ds_checkpoint {
    char *dir;
    int n_shards;
    ds_st_file **shards;
    char **shard_paths;
    int n;
    ckpt_entry *entries;     /* sorted by name */
    uint64_t total_bytes;
};

/* ---- helpers ------------------------------------------------------------- */

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static char *join_path(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const ckpt_entry *)a)->name, ((const ckpt_entry *)b)->name);
}

static int find_index(const ds_checkpoint *ck, const char *name) {
    int lo = 0, hi = ck->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(name, ck->entries[mid].name);
        if (c == 0) return mid;
        if (c < 0) hi = mid - 1; else lo = mid + 1;
    }
    return -1;
}

/* Opens dir/name as shard number ck->n_shards (or returns the existing number). */
static dsocr_status add_shard(ds_checkpoint *ck, const char *name, const char *referrer, int *index,
                              dsocr_error *err) {
    for (int i = 0; i < ck->n_shards; i++)
        if (!strcmp(strrchr(ck->shard_paths[i], '/') + 1, name)) { *index = i; return DSOCR_OK; }
    if (!name[0] || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: shard file name \"%.200s\" must be a plain file name in %s",
                       referrer, name, ck->dir);
    ds_st_file **sh = realloc(ck->shards, sizeof *sh * (size_t)(ck->n_shards + 1));
    if (sh) ck->shards = sh;
    char **sp = realloc(ck->shard_paths, sizeof *sp * (size_t)(ck->n_shards + 1));
    if (sp) ck->shard_paths = sp;
    char *path = join_path(ck->dir, name);
    if (!sh || !sp || !path) { free(path); return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", ck->dir); }
    if (!file_exists(path)) {
        dsocr_status s = ds_fail(err, DSOCR_ERR_IO, "%s names shard %s, which does not exist", referrer, path);
        free(path);
        return s;
    }
    dsocr_status s = ds_st_open(path, &ck->shards[ck->n_shards], err);
    if (s != DSOCR_OK) { free(path); return s; }
    ck->shard_paths[ck->n_shards] = path;
    *index = ck->n_shards++;
    return DSOCR_OK;
}

static dsocr_status add_entry(ds_checkpoint *ck, int *cap, const char *name, const ds_tensor *t, int shard,
                              dsocr_error *err) {
    if (ck->n == *cap) {
        int ncap = *cap ? *cap * 2 : 256;
        ckpt_entry *e = realloc(ck->entries, sizeof *e * (size_t)ncap);
        if (!e) return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", ck->dir);
        ck->entries = e;
        *cap = ncap;
    }
    ck->entries[ck->n].name = name;
    ck->entries[ck->n].tensor = t;
    ck->entries[ck->n].shard = shard;
    ck->n++;
    ck->total_bytes += (uint64_t)ds_tensor_numel(t) * ds_dtype_size(t->dtype);
    return DSOCR_OK;
}

/* ---- opening ------------------------------------------------------------- */

static dsocr_status open_indexed(ds_checkpoint *ck, const char *index_path, dsocr_error *err) {
    FILE *fp = fopen(index_path, "rb");
    if (!fp) return ds_fail(err, DSOCR_ERR_IO, "%s: cannot open: %s", index_path, strerror(errno));
    char *buf = NULL;
    long size = -1;
    if (fseek(fp, 0, SEEK_END) == 0) size = ftell(fp);
    if (size < 0 || size > (long)CKPT_MAX_INDEX || fseek(fp, 0, SEEK_SET) != 0) {
        fclose(fp);
        return ds_fail(err, size < 0 ? DSOCR_ERR_IO : DSOCR_ERR_FORMAT, "%s: unreadable or absurdly large (%ld bytes)",
                       index_path, size);
    }
    buf = malloc((size_t)size + 1);
    if (!buf) { fclose(fp); return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", index_path); }
    size_t got = fread(buf, 1, (size_t)size, fp);
    fclose(fp);
    if (got != (size_t)size) { free(buf); return ds_fail(err, DSOCR_ERR_IO, "%s: short read", index_path); }
    buf[size] = 0;
    cJSON *root = cJSON_ParseWithLength(buf, (size_t)size);
    free(buf);
    if (!root) return ds_fail(err, DSOCR_ERR_FORMAT, "%s: not valid JSON", index_path);

    dsocr_status s = DSOCR_OK;
    int cap = 0;
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(map)) {
        s = ds_fail(err, DSOCR_ERR_FORMAT, "%s: key weight_map is missing or not an object", index_path);
        goto done;
    }
    for (const cJSON *e = map->child; e; e = e->next) {
        if (!cJSON_IsString(e) || !e->valuestring) {
            s = ds_fail(err, DSOCR_ERR_FORMAT, "%s: weight_map[\"%s\"] is not a file name string", index_path,
                        e->string ? e->string : "");
            goto done;
        }
        int shard;
        if ((s = add_shard(ck, e->valuestring, index_path, &shard, err)) != DSOCR_OK) goto done;
        const ds_tensor *t = ds_st_find(ck->shards[shard], e->string);
        if (!t) {
            s = ds_fail(err, DSOCR_ERR_FORMAT, "%s: tensor %s is missing (%s lists it in this file)",
                        ck->shard_paths[shard], e->string, index_path);
            goto done;
        }
        if ((s = add_entry(ck, &cap, t->name, t, shard, err)) != DSOCR_OK) goto done;
    }
    if (ck->n == 0) s = ds_fail(err, DSOCR_ERR_FORMAT, "%s: weight_map is empty", index_path);
done:
    cJSON_Delete(root);
    return s;
}

static dsocr_status open_single(ds_checkpoint *ck, dsocr_error *err) {
    DIR *d = opendir(ck->dir);
    if (!d) return ds_fail(err, DSOCR_ERR_IO, "%s: cannot list directory: %s", ck->dir, strerror(errno));
    char *found = NULL, *second = NULL;
    int n_found = 0;
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.' || !ends_with(de->d_name, ".safetensors")) continue;
        n_found++;
        if (n_found == 1) found = dup_str(de->d_name);
        else if (n_found == 2) second = dup_str(de->d_name);
    }
    closedir(d);
    dsocr_status s = DSOCR_OK;
    if (n_found == 0)
        s = ds_fail(err, DSOCR_ERR_IO, "%s: no *.safetensors file and no model.safetensors.index.json", ck->dir);
    else if (n_found > 1)
        s = ds_fail(err, DSOCR_ERR_FORMAT,
                    "%s: %d *.safetensors files (%s, %s%s) but no model.safetensors.index.json to say which to use",
                    ck->dir, n_found, found ? found : "?", second ? second : "?", n_found > 2 ? ", ..." : "");
    else if (!found)
        s = ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", ck->dir);
    int shard, cap = 0;
    if (s == DSOCR_OK) s = add_shard(ck, found, ck->dir, &shard, err);
    for (int i = 0; s == DSOCR_OK && i < ds_st_count(ck->shards[0]); i++) {
        const ds_tensor *t = ds_st_at(ck->shards[0], i);
        s = add_entry(ck, &cap, t->name, t, 0, err);
    }
    free(found);
    free(second);
    return s;
}

dsocr_status ds_ckpt_open(const char *dir, ds_checkpoint **out, dsocr_error *err) {
    if (!dir || !out) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "ds_ckpt_open: NULL argument");
    *out = NULL;
    struct stat st;
    if (stat(dir, &st) != 0) return ds_fail(err, DSOCR_ERR_IO, "%s: checkpoint directory: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return ds_fail(err, DSOCR_ERR_IO, "%s: checkpoint path is not a directory", dir);

    ds_checkpoint *ck = calloc(1, sizeof *ck);
    if (!ck || !(ck->dir = dup_str(dir))) { free(ck); return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", dir); }
    size_t len = strlen(ck->dir);
    while (len > 1 && ck->dir[len - 1] == '/') ck->dir[--len] = 0;

    dsocr_status s = DSOCR_OK;
    char *config = join_path(ck->dir, "config.json");
    char *index = join_path(ck->dir, "model.safetensors.index.json");
    if (!config || !index) s = ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", dir);
    else if (!file_exists(config)) s = ds_fail(err, DSOCR_ERR_IO, "%s: missing (not a checkpoint directory?)", config);
    else if (file_exists(index)) s = open_indexed(ck, index, err);
    else s = open_single(ck, err);
    free(config);
    free(index);

    if (s == DSOCR_OK) {
        qsort(ck->entries, (size_t)ck->n, sizeof *ck->entries, cmp_entry);
        for (int i = 1; i < ck->n; i++)
            if (!strcmp(ck->entries[i].name, ck->entries[i - 1].name)) {
                s = ds_fail(err, DSOCR_ERR_FORMAT, "%s: tensor %s is listed twice in the weight map", dir,
                            ck->entries[i].name);
                break;
            }
    }
    if (s != DSOCR_OK) { ds_ckpt_close(ck); return s; }
    *out = ck;
    return DSOCR_OK;
}

void ds_ckpt_close(ds_checkpoint *ck) {
    if (!ck) return;
    for (int i = 0; i < ck->n_shards; i++) { ds_st_close(ck->shards[i]); free(ck->shard_paths[i]); }
    free(ck->shards);
    free(ck->shard_paths);
    free(ck->entries);
    free(ck->dir);
    free(ck);
}

const char *ds_ckpt_dir(const ds_checkpoint *ck) { return ck->dir; }
int ds_ckpt_tensor_count(const ds_checkpoint *ck) { return ck->n; }
uint64_t ds_ckpt_total_bytes(const ds_checkpoint *ck) { return ck->total_bytes; }
int ds_ckpt_shard_count(const ds_checkpoint *ck) { return ck->n_shards; }
const char *ds_ckpt_shard_path(const ds_checkpoint *ck, int i) {
    return (i >= 0 && i < ck->n_shards) ? ck->shard_paths[i] : NULL;
}

const ds_tensor *ds_ckpt_find(const ds_checkpoint *ck, const char *name, const char **file) {
    int i = name ? find_index(ck, name) : -1;
    if (file) *file = i >= 0 ? ck->shard_paths[ck->entries[i].shard] : NULL;
    return i >= 0 ? ck->entries[i].tensor : NULL;
}

/* ---- binder -------------------------------------------------------------- */

typedef struct bind_record {
    char *name;
    int ndim;
    int64_t shape[DS_MAX_DIMS];
} bind_record;

struct ds_binder {
    const ds_checkpoint *ck;  /* NULL for a recorder */
    int n_bound;
    char **problems;
    int n_problems, cap_problems;
    unsigned char *used;      /* per checkpoint entry: bound at least once */
    bind_record *records;     /* recorder mode */
    int n_records, cap_records;
    int oom;                  /* problems (or records) lost to failed allocations */
};

ds_binder *ds_binder_new(const ds_checkpoint *ck) {
    if (!ck) return NULL;
    ds_binder *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->ck = ck;
    b->used = calloc((size_t)ck->n + 1, 1);
    if (!b->used) { free(b); return NULL; }
    return b;
}

ds_binder *ds_binder_new_recorder(void) { return calloc(1, sizeof(ds_binder)); }

static void add_problem(ds_binder *b, const char *fmt, ...) DS_PRINTF(2, 3);
static void add_problem(ds_binder *b, const char *fmt, ...) {
    if (b->n_problems == b->cap_problems) {
        int ncap = b->cap_problems ? b->cap_problems * 2 : 16;
        char **p = realloc(b->problems, sizeof *p * (size_t)ncap);
        if (!p) { b->oom++; return; }
        b->problems = p;
        b->cap_problems = ncap;
    }
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *s = dup_str(buf);
    if (!s) { b->oom++; return; }
    b->problems[b->n_problems++] = s;
}

static const char *dims_str(int ndim, const int64_t *shape, char *buf, size_t n) {
    ds_tensor t = {0};
    t.ndim = ndim < 0 ? 0 : ndim > DS_MAX_DIMS ? DS_MAX_DIMS : ndim;
    for (int i = 0; i < t.ndim; i++) t.shape[i] = shape[i];
    return ds_shape_str(&t, buf, n);
}

static ds_tensor record_bind(ds_binder *b, const char *name, int ndim, const int64_t *shape) {
    ds_tensor out = {0};
    for (int i = 0; i < b->n_records; i++) {
        bind_record *r = &b->records[i];
        if (strcmp(r->name, name)) continue;
        int same = r->ndim == ndim;
        for (int d = 0; same && d < ndim; d++) same = r->shape[d] == shape[d];
        if (!same) {
            char a[128], c[128];
            add_problem(b, "%s: bound twice with different shapes %s and %s", name,
                        dims_str(r->ndim, r->shape, a, sizeof a), dims_str(ndim, shape, c, sizeof c));
        }
        out.name = r->name;
        goto shaped;
    }
    if (b->n_records == b->cap_records) {
        int ncap = b->cap_records ? b->cap_records * 2 : 256;
        bind_record *r = realloc(b->records, sizeof *r * (size_t)ncap);
        if (!r) { b->oom++; return out; }
        b->records = r;
        b->cap_records = ncap;
    }
    bind_record *r = &b->records[b->n_records];
    if (!(r->name = dup_str(name))) { b->oom++; return out; }
    r->ndim = ndim;
    for (int d = 0; d < ndim; d++) r->shape[d] = shape[d];
    b->n_records++;
    out.name = r->name;
shaped:
    /* a view with the requested shape and no data: shape-driven code still works */
    out.dtype = DS_BF16;
    out.ndim = ndim;
    for (int d = 0; d < ndim; d++) out.shape[d] = shape[d];
    ds_tensor_set_contiguous(&out);
    return out;
}

ds_tensor ds_bind(ds_binder *b, int ndim, const int64_t *shape, const char *fmt, ...) {
    ds_tensor zero = {0};
    if (!b) return zero;
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof name) {
        add_problem(b, "%.100s...: tensor name too long", name);
        return zero;
    }
    if (ndim < 0 || ndim > DS_MAX_DIMS || (ndim > 0 && !shape)) {
        add_problem(b, "%s: asked for with %d dimensions (at most %d)", name, ndim, DS_MAX_DIMS);
        return zero;
    }
    b->n_bound++;
    if (!b->ck) return record_bind(b, name, ndim, shape);

    int i = find_index(b->ck, name);
    if (i < 0) {
        add_problem(b, "%s: missing", name);
        return zero;
    }
    b->used[i] = 1;
    const ckpt_entry *e = &b->ck->entries[i];
    const ds_tensor *t = e->tensor;
    /* the shard's base name: finish() names the full path or directory once */
    const char *file = strrchr(b->ck->shard_paths[e->shard], '/') + 1;
    int ok = 1;
    if (t->dtype != DS_BF16 && t->dtype != DS_F16 && t->dtype != DS_F32) {
        add_problem(b, "%s: dtype %s in file %s, expected BF16, F16 or F32", name, ds_dtype_name(t->dtype), file);
        ok = 0;
    }
    int same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    if (!same) {
        char have[128], want[128];
        add_problem(b, "%s: shape %s in file %s, expected %s", name, ds_shape_str(t, have, sizeof have), file,
                    dims_str(ndim, shape, want, sizeof want));
        ok = 0;
    }
    return ok ? *t : zero;
}

int ds_binder_problems(const ds_binder *b) { return b ? b->n_problems + b->oom : 0; }
int ds_binder_bound_count(const ds_binder *b) { return b ? b->n_bound : 0; }

int ds_binder_count(const ds_binder *b) { return b ? b->n_records : 0; }
const char *ds_binder_name(const ds_binder *b, int i) {
    return (b && i >= 0 && i < b->n_records) ? b->records[i].name : NULL;
}
int ds_binder_shape(const ds_binder *b, int i, int64_t shape[DS_MAX_DIMS]) {
    if (!b || i < 0 || i >= b->n_records) return -1;
    for (int d = 0; d < b->records[i].ndim; d++) shape[d] = b->records[i].shape[d];
    return b->records[i].ndim;
}

int ds_binder_unused_count(const ds_binder *b) {
    if (!b || !b->ck) return 0;
    int n = 0;
    for (int i = 0; i < b->ck->n; i++) n += !b->used[i];
    return n;
}
const char *ds_binder_unused_name(const ds_binder *b, int k) {
    if (!b || !b->ck) return NULL;
    for (int i = 0; i < b->ck->n; i++)
        if (!b->used[i] && k-- == 0) return b->ck->entries[i].name;
    return NULL;
}

void ds_binder_free(ds_binder *b) {
    if (!b) return;
    for (int i = 0; i < b->n_problems; i++) free(b->problems[i]);
    for (int i = 0; i < b->n_records; i++) free(b->records[i].name);
    free(b->problems);
    free(b->records);
    free(b->used);
    free(b);
}

/* Appends to a fixed buffer, never overflowing; returns 0 once full. */
static int append(char *buf, size_t cap, size_t *len, const char *fmt, ...) DS_PRINTF(4, 5);
static int append(char *buf, size_t cap, size_t *len, const char *fmt, ...) {
    if (*len >= cap - 1) return 0;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n < 0) return 0;
    if ((size_t)n >= cap - *len) { *len = cap - 1; return 0; }
    *len += (size_t)n;
    return 1;
}

dsocr_status ds_binder_finish(ds_binder *b, dsocr_error *err) {
    if (!b) return ds_fail(err, DSOCR_ERR_NOMEM, "checkpoint binder: out of memory");
    int n = b->n_problems + b->oom;
    if (n == 0) { ds_binder_free(b); return DSOCR_OK; }
    if (b->n_problems == 0) { ds_binder_free(b); return ds_fail(err, DSOCR_ERR_NOMEM, "checkpoint binder: out of memory"); }

    /* "checkpoint F: 4 tensor problems: a: missing; b: shape ...; ... and N more" */
    char msg[sizeof(((dsocr_error *)0)->message)];
    size_t len = 0;
    if (!b->ck)
        append(msg, sizeof msg, &len, "tensor recorder: ");
    else if (b->ck->n_shards == 1)
        append(msg, sizeof msg, &len, "checkpoint %s: ", b->ck->shard_paths[0]);
    else
        append(msg, sizeof msg, &len, "checkpoint %s (%d shards): ", b->ck->dir, b->ck->n_shards);
    append(msg, sizeof msg, &len, "%d tensor problem%s: ", n, n == 1 ? "" : "s");
    const int max_full = 8;
    const size_t reserve = 32; /* room for "; ... and N more" */
    int shown = 0;
    for (; shown < b->n_problems && shown < max_full; shown++) {
        const char *p = b->problems[shown];
        if (len + strlen(p) + 2 + reserve >= sizeof msg) break;
        append(msg, sizeof msg, &len, "%s%s", shown ? "; " : "", p);
    }
    if (shown < n) append(msg, sizeof msg, &len, "; ... and %d more", n - shown);
    ds_binder_free(b);
    return ds_fail(err, DSOCR_ERR_FORMAT, "%s", msg);
}
